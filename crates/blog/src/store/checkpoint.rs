//! WAL checkpoints off the request path, one step per turn of the store's upkeep thread.
//!
//! By default SQLite checkpoints inside the commit that pushes the WAL past 1000 pages, so
//! one write in a few hundred copies pages back into the database and fsyncs it while its
//! thread holds the process's write turn, stalling every other writer. Connections here turn
//! that off (`wal_autocheckpoint = 0`) and the upkeep thread (`upkeep.rs`) runs a PASSIVE
//! checkpoint every turn instead, which blocks no one. Under constant writes a passive
//! checkpoint never catches up with the end of the log, so SQLite never starts the WAL over
//! and the file grows without bound; past [`RESTART_FRAMES`] a RESTART checkpoint runs, which
//! holds writers back for the moment it takes to copy the (few, hot) pages and wait for
//! in-flight reads.

use r2d2_sqlite::rusqlite::Connection;

/// A WAL longer than this many frames (4 KiB each) is started over.
const RESTART_FRAMES: i64 = 2000;

/// Runs checkpoints and remembers whether the last one failed.
#[derive(Default)]
pub(super) struct Checkpoints {
    /// Logged on change only: a full disk would otherwise log ten lines a second.
    failing: bool,
}

impl Checkpoints {
    /// Folds the WAL back into the database (see the module doc).
    pub fn run(&mut self, conn: &Connection) {
        // The row is (busy, frames in the WAL, frames checkpointed).
        let passive = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            row.get::<_, i64>(1)
        });
        let outcome = match passive {
            Ok(frames) if frames > RESTART_FRAMES => {
                conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
            }
            other => other.map(|_| ()),
        };
        match outcome {
            Err(err) if !self.failing => {
                log::warn!("WAL checkpoint failed, retrying quietly until it works: {err}");
                self.failing = true;
            }
            Ok(()) if self.failing => {
                log::info!("WAL checkpoints work again");
                self.failing = false;
            }
            _ => {}
        }
    }
}
