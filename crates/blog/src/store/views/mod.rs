//! Exact view counts without a database write per view: a journal per worker, applied once.
//!
//! A view appends the post id to this worker's journal file (`journal`) and to an in-memory
//! tally (`tally`). The store's background thread commits the tally every 100 ms in one
//! transaction that also records how far the journal is now applied (`ledger`). A worker that
//! dies (kill -9, abort, OOM) leaves its journal behind with every view it served; siblings
//! find it every few seconds, and every worker at start, and apply what lies past the
//! recorded offset exactly once: the journal's lock admits one adopter, and the offset moves
//! in the same transaction as the counts.
//!
//! # Design note: what is written where, when it is applied, what a crash loses
//!
//! - **Written**: a view is one 8-byte record (`pwrite`, no fsync) at the end of this worker's
//!   `<database>.views/<name>.log`, locked with `flock` for the worker's life, and one entry
//!   in the in-memory tally. The database holds `posts.view_count` and, in `view_journals`,
//!   per journal the offset up to which its records are counted; both change in one
//!   transaction, so a journal is never counted twice.
//! - **Applied**: by the worker's upkeep thread every 100 ms (only when views arrived); journals
//!   of dead workers (their lock is free) by any live worker every 2 s and by every worker at
//!   start; at a graceful stop by the final flush, after which the journal is removed. A
//!   journal past 1 MiB is started over (one rename) once all but its last records are applied.
//!   Until then a page adds this worker's unapplied views, so a reader sees their own view.
//! - **Lost on a crash**: of the process (kill -9, abort, OOM), nothing: the records are in the
//!   kernel's page cache and are applied by a sibling or the next start. Of the machine (power
//!   loss, kernel crash), the views appended since the kernel last wrote the file back, as
//!   SQLite's `synchronous = NORMAL` may lose its last commits; a torn tail is ignored. Without
//!   a journal (it cannot be created or appended to) each view is its own `UPDATE`.

mod journal;
mod ledger;
mod tally;

use journal::{Journal, Orphan, Staged};
use ledger::Applied;
use r2d2_sqlite::rusqlite::Connection;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tally::{Counts, Tally};

pub(super) use tally::Unapplied;

/// A journal is started over once it holds this many bytes of records (131 072 views) and
/// every record but those of the last 100 ms is applied (see [`ViewCounter::flush`]).
const RESTART_AT: u64 = 1 << 20;

/// This worker's view counter, shared by its handler threads and the store's upkeep thread.
pub(super) struct ViewCounter {
    /// Where the journals of every worker on this database live: `<database>.views/`.
    dir: PathBuf,
    /// This worker's journal, or `None` when it could not be created: then every view is its
    /// own `UPDATE` (exact, and slow).
    name: Option<String>,
    state: Mutex<State>,
    /// The store's write gate: flushes and recoveries are this process's writes too.
    gate: Arc<Mutex<()>>,
    restart_at: u64,
    /// Journals that failed to apply, so each is logged once, not every few seconds.
    refused: Mutex<HashSet<PathBuf>>,
}

struct State {
    /// `None` once retired (or never created).
    journal: Option<Journal>,
    tally: Tally,
    /// The last append failed (logged on change only).
    append_failing: bool,
}

impl ViewCounter {
    /// A counter with a new journal next to the database at `db`, or, when the journal
    /// cannot be created (a read-only directory), one that counts each view directly.
    pub fn open(db: &Path, gate: Arc<Mutex<()>>) -> ViewCounter {
        ViewCounter::with_restart_at(db, gate, RESTART_AT)
    }

    pub(super) fn with_restart_at(db: &Path, gate: Arc<Mutex<()>>, restart_at: u64) -> Self {
        let dir = journal_dir(db);
        let journal = match Journal::create(&dir) {
            Ok(journal) => Some(journal),
            Err(e) => {
                log::warn!(
                    "no view journal ({e}): this worker counts each view with its own UPDATE"
                );
                None
            }
        };
        ViewCounter {
            dir,
            name: journal.as_ref().map(|j| j.name().to_string()),
            state: Mutex::new(State {
                journal,
                tally: Tally::new(0),
                append_failing: false,
            }),
            gate,
            restart_at,
            refused: Mutex::new(HashSet::new()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update of the state completes without panicking in between (appends and
        // tally changes are one step each), so a poisoned lock still holds a valid state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn gate(&self) -> MutexGuard<'_, ()> {
        // The gate guards no data.
        self.gate.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This worker's journal name (its key in `view_journals`), when views are journaled.
    pub fn journal_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Journals a view of post `id`; `None` when it could not be (no journal, or the write
    /// failed): the caller then counts it directly.
    pub fn record(&self, id: i64) -> Option<Unapplied> {
        let mut state = self.state();
        let State {
            journal,
            tally,
            append_failing,
        } = &mut *state;
        match journal.as_mut()?.append(id) {
            Ok(end) => {
                if std::mem::take(append_failing) {
                    log::info!("the view journal takes views again");
                }
                Some(tally.record(id, end))
            }
            Err(e) => {
                if !std::mem::replace(append_failing, true) {
                    log::warn!(
                        "cannot append to the view journal ({e}); counting views directly \
                         until it works again"
                    );
                }
                None
            }
        }
    }

    /// Commits the views journaled so far in one transaction; returns how many. On failure
    /// they stay pending for the next flush.
    pub fn flush(&self, conn: &Connection) -> Result<u64, String> {
        let Some(name) = &self.name else {
            return Ok(0);
        };
        // Held until the batch settles: one flush at a time, and no other write of ours
        // waits on SQLite's busy handler behind it.
        let _turn = self.gate();
        let (counts, from, to) = {
            let mut state = self.state();
            let from = state.tally.applied();
            let Some((counts, to)) = state.tally.take() else {
                return Ok(0);
            };
            (counts, from, to)
        };
        match ledger::apply(conn, name, &counts, (from, to)) {
            Ok(Applied::Done) => {
                self.state().tally.settle(true);
                self.restart_if_long();
                Ok(counts.values().sum())
            }
            Ok(Applied::Elsewhere(recorded)) => self.resume(name, from, recorded).map(|()| 0),
            Err(e) => {
                self.state().tally.settle(false);
                Err(format!(
                    "committing {} views: {e}",
                    counts.values().sum::<u64>()
                ))
            }
        }
    }

    /// The database has this worker's journal applied up to `recorded`, not `believed` (a
    /// commit reported as failed had landed, or the database was restored from a backup):
    /// the tally is rebuilt from the journal's records after `recorded`, so each counts once.
    fn resume(&self, name: &str, believed: u64, recorded: u64) -> Result<(), String> {
        let mut state = self.state();
        let State { journal, tally, .. } = &mut *state;
        let Some(journal) = journal.as_ref() else {
            tally.settle(false);
            return Err(format!("view journal {name} is gone"));
        };
        match journal.counts_after(recorded) {
            Ok((counts, _)) if recorded <= journal.end() => {
                log::warn!(
                    "view journal {name} is applied up to offset {recorded}, not {believed}: \
                     counting on from there"
                );
                *tally = Tally::resume(recorded, counts, journal.end());
                Ok(())
            }
            outcome => {
                tally.settle(false);
                let why = outcome
                    .err()
                    .map_or("past its end".to_string(), |e| e.to_string());
                Err(format!(
                    "view journal {name} is applied up to offset {recorded} ({why}): \
                     keeping its views until that is sorted out"
                ))
            }
        }
    }

    /// Starts a long journal over with only its unapplied records (called with the gate held,
    /// right after a commit, so nothing is in flight).
    fn restart_if_long(&self) {
        let Some(name) = &self.name else {
            return;
        };
        let journal_len = self.state().journal.as_ref().map_or(0, Journal::len);
        if journal_len < self.restart_at {
            return;
        }
        // Created before taking the state lock: views wait only for the write and the rename.
        let restarted = Staged::create(&self.dir, name).and_then(|staged| {
            let mut state = self.state();
            let State { journal, tally, .. } = &mut *state;
            match (journal.as_mut(), tally.unapplied_records()) {
                (Some(journal), Some(records)) => {
                    journal.restart(staged, tally.applied(), &records)
                }
                _ => Ok(()),
            }
        });
        if let Err(e) = restarted {
            log::warn!("cannot start the view journal over, it keeps growing: {e}");
        }
    }

    /// Applies the journals of dead workers (their lock is free) and removes them; returns
    /// how many views that counted. Safe to run in every worker at once.
    pub fn recover(&self, conn: &Connection) -> u64 {
        let candidates = match Orphan::candidates(&self.dir) {
            Ok(paths) => paths,
            Err(e) => {
                self.refuse(&self.dir, &e.to_string());
                return 0;
            }
        };
        let mut views = 0;
        for path in candidates {
            match self.adopt(conn, &path) {
                Ok(counted) => views += counted,
                Err(e) => self.refuse(&path, &e),
            }
        }
        views
    }

    fn adopt(&self, conn: &Connection, path: &Path) -> Result<u64, String> {
        let Some(mut orphan) = Orphan::adopt(path).map_err(|e| e.to_string())? else {
            return Ok(0);
        };
        if orphan.is_staged() {
            orphan.remove().map_err(|e| e.to_string())?;
            return Ok(0);
        }
        let name = orphan.name().to_string();
        let applied = ledger::applied_offset(conn, &name)
            .map_err(|e| format!("reading how far journal {name} is applied: {e}"))?;
        let (counts, end) = orphan.counts_after(applied).map_err(|e| e.to_string())?;
        let _turn = self.gate();
        close(conn, orphan, &counts, (applied, end))?;
        let views = counts.values().sum();
        if views > 0 {
            log::info!("counted {views} views from the journal of a stopped worker ({name})");
        }
        Ok(views)
    }

    /// Logs a journal that could not be applied, once per path.
    fn refuse(&self, path: &Path, why: &str) {
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if refused.insert(path.to_path_buf()) {
            log::warn!("view journals: {why}; retrying quietly every few seconds");
        }
    }

    /// The final flush, at exit: commits what is pending, then removes this worker's journal.
    /// When the commit fails, the journal stays for another worker or the next start.
    pub fn retire(&self, conn: &Connection) {
        let Some(name) = &self.name else {
            return;
        };
        // A second flush commits what a resumed tally (see `resume`) still holds.
        let flushed = self.flush(conn).and_then(|_| self.flush(conn));
        let _turn = self.gate();
        let mut state = self.state();
        if let Err(e) = flushed.and_then(|_| {
            (state.tally.is_settled())
                .then_some(())
                .ok_or_else(|| "views still pending".to_string())
        }) {
            log::warn!(
                "cannot count this worker's last views ({e}); journal {name} keeps them for \
                 another worker or the next start"
            );
            return;
        }
        let Some(journal) = state.journal.take() else {
            return;
        };
        let (applied, end) = (state.tally.applied(), journal.end());
        if let Err(e) = close(conn, journal.into_orphan(), &Counts::new(), (applied, end)) {
            log::warn!("cannot remove view journal {name} (every view in it is counted): {e}");
        }
    }

    /// Lets go of the journal as a killed process would: no final flush, views left pending.
    #[cfg(test)]
    pub fn abandon(&self) {
        let mut state = self.state();
        state.journal = None;
        state.tally = Tally::new(0);
    }
}

/// Applies `counts`, the records from offset `from` to `to` (unless there are none), then
/// empties the file, deletes its row and removes it, in the order that leaves nothing to count
/// twice if any step fails or the process dies between two. The caller holds the write gate
/// and the journal's lock.
fn close(
    conn: &Connection,
    orphan: Orphan,
    counts: &Counts,
    (from, to): (u64, u64),
) -> Result<(), String> {
    let name = orphan.name().to_string();
    if !counts.is_empty() {
        match ledger::apply(conn, &name, counts, (from, to)) {
            Ok(Applied::Done) => {}
            Ok(Applied::Elsewhere(recorded)) => {
                return Err(format!(
                    "journal {name} is applied up to {recorded} now, not {from}: trying again"
                ))
            }
            Err(e) => return Err(format!("applying journal {name}: {e}")),
        }
    }
    orphan.empty().map_err(|e| e.to_string())?;
    ledger::forget(conn, &name).map_err(|e| format!("forgetting journal {name}: {e}"))?;
    orphan.remove().map_err(|e| e.to_string())
}

/// `<database>.views/`, next to the database file the path resolves to (as SQLite's own
/// `-wal` file is), so every worker finds the same directory.
fn journal_dir(db: &Path) -> PathBuf {
    let mut dir = std::fs::canonicalize(db)
        .unwrap_or_else(|_| db.to_path_buf())
        .into_os_string();
    dir.push(".views");
    PathBuf::from(dir)
}

#[cfg(test)]
mod tests;
