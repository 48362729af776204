//! View journal files: one per worker, an append-only list of the post ids it served.
//!
//! A file is a 16-byte header (`MAGIC`, then the journal offset of its first record, u64 LE)
//! and 8-byte records (a post id, i64 LE). Offsets count record bytes over the journal's whole
//! life, so they keep growing when a long-lived worker starts its file over (`restart`). The
//! owner holds an exclusive `flock` on the file from before it appears under its `.log` name
//! until it is gone: a journal whose lock can be taken belongs to a dead process ([`Orphan`]).

use super::tally::Counts;
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub(super) const MAGIC: &[u8; 8] = b"pbviews1";
pub(super) const HEADER: u64 = 16;
/// Bytes of one record.
pub(super) const RECORD: u64 = 8;
/// A journal's name: `<name>.log`; while being written before it replaces one: `<name>.new`.
const LIVE: &str = "log";
const STAGED: &str = "new";

/// This process's journal, locked for as long as it exists.
#[derive(Debug)]
pub(super) struct Journal {
    dir: PathBuf,
    name: String,
    file: File,
    /// Offset of the file's first record.
    base: u64,
    /// Offset after the last record written whole.
    end: u64,
}

impl Journal {
    /// Creates an empty journal for this process in `dir` (created if missing).
    pub fn create(dir: &Path) -> io::Result<Journal> {
        std::fs::create_dir_all(dir)
            .map_err(|e| context(e, format!("creating {}", dir.display())))?;
        // Unique per process and per store (tests open several stores in one process).
        static STORES: AtomicU64 = AtomicU64::new(0);
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "{}-{started}-{}",
            std::process::id(),
            STORES.fetch_add(1, Ordering::Relaxed)
        );
        let staged = Staged::create(dir, &name)?;
        staged.install(dir, &name, 0, &[])
    }

    /// The journal's name: its file stem, and its key in the `view_journals` table.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Offset after the last record.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Bytes of records in the file now.
    pub fn len(&self) -> u64 {
        self.end - self.base
    }

    /// Views per post in this journal's records after offset `applied`, and where they end.
    pub fn counts_after(&self, applied: u64) -> io::Result<(Counts, u64)> {
        read_counts(&self.file, applied, self.end)
            .map_err(|e| context(e, format!("reading journal {}", self.name)))
    }

    /// Appends a view of `id` and returns the new end.
    ///
    /// One `pwrite` at the known end, without fsync: like SQLite's WAL with
    /// `synchronous = NORMAL`, a record survives the process dying (kill -9 included: the bytes
    /// are in the kernel's page cache) but not power loss or a kernel crash. A failed or short
    /// write leaves the end where it was; the next record overwrites whatever part landed, and
    /// readers ignore a partial record at the tail.
    pub fn append(&mut self, id: i64) -> io::Result<u64> {
        let at = HEADER + self.len();
        self.file.write_all_at(&id.to_le_bytes(), at)?;
        self.end += RECORD;
        Ok(self.end)
    }

    /// Starts the file over: `staged` gets the records not yet applied (which end where the
    /// journal ends) and replaces the file in one rename, so at every instant the file under
    /// the journal's name holds every record past the database's `applied_offset`.
    pub fn restart(&mut self, staged: Staged, applied: u64, unapplied: &[i64]) -> io::Result<()> {
        let kept = RECORD * unapplied.len() as u64;
        if applied + kept != self.end {
            return Err(io::Error::other(format!(
                "journal {} restart: {kept} bytes kept after offset {applied} do not end at {}",
                self.name, self.end
            )));
        }
        let fresh = staged.install(&self.dir, &self.name, applied, unapplied)?;
        // The old file is unlinked; dropping it here releases its lock.
        *self = fresh;
        Ok(())
    }

    /// Hands the journal over to the cleanup that dead ones get (see [`Orphan`]), once the
    /// database holds every record: nothing may be appended any more.
    pub fn into_orphan(self) -> Orphan {
        Orphan {
            path: path(&self.dir, &self.name, LIVE),
            name: self.name,
            file: self.file,
        }
    }
}

/// A locked file being written before it takes a journal's name.
#[derive(Debug)]
pub(super) struct Staged {
    file: File,
}

impl Staged {
    /// A staged file for journal `name` in `dir`, to start it over with (see
    /// [`Journal::restart`]).
    pub fn create(dir: &Path, name: &str) -> io::Result<Staged> {
        let staged = path(dir, name, STAGED);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&staged)
            .map_err(|e| context(e, format!("creating {}", staged.display())))?;
        file.try_lock()
            .map_err(|e| context(lock_error(e), format!("locking {}", staged.display())))?;
        Ok(Staged { file })
    }

    /// Writes the header and `records`, then renames the file to the journal's name (which
    /// fails if recovery took the staged file for a dead one's leftover and removed it).
    fn install(self, dir: &Path, name: &str, base: u64, records: &[i64]) -> io::Result<Journal> {
        let mut bytes = Vec::with_capacity(HEADER as usize + RECORD as usize * records.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&base.to_le_bytes());
        for id in records {
            bytes.extend_from_slice(&id.to_le_bytes());
        }
        let staged = path(dir, name, STAGED);
        self.file
            .write_all_at(&bytes, 0)
            .map_err(|e| context(e, format!("writing {}", staged.display())))?;
        let live = path(dir, name, LIVE);
        std::fs::rename(&staged, &live)
            .map_err(|e| context(e, format!("renaming {} into place", staged.display())))?;
        Ok(Journal {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            file: self.file,
            base,
            end: base + RECORD * records.len() as u64,
        })
    }
}

/// A journal whose owner is gone, locked by us.
#[derive(Debug)]
pub(super) struct Orphan {
    path: PathBuf,
    name: String,
    file: File,
}

impl Orphan {
    /// The journals and staged files in `dir` (none if it does not exist).
    pub fn candidates(dir: &Path) -> io::Result<Vec<PathBuf>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(context(e, format!("listing {}", dir.display()))),
        };
        let mut found = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| context(e, format!("listing {}", dir.display())))?
                .path();
            let extension = path.extension().and_then(|e| e.to_str());
            if matches!(extension, Some(LIVE | STAGED)) {
                found.push(path);
            }
        }
        found.sort();
        Ok(found)
    }

    /// Takes the file at `path` if its owner is dead: `None` when it is alive (its lock is
    /// held), or the file is already gone or replaced (another worker adopted it first).
    pub fn adopt(path: &Path) -> io::Result<Option<Orphan>> {
        let fail = |e: io::Error| context(e, format!("adopting {}", path.display()));
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(fail(e)),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(fail(e)),
        }
        // Whoever adopted it before us removed it before letting go of the lock; a journal
        // restarted meanwhile is another file under the same name.
        let ours = file.metadata().map_err(fail)?;
        match std::fs::symlink_metadata(path) {
            Ok(now) if now.dev() == ours.dev() && now.ino() == ours.ino() => {}
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(fail(e)),
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| fail(io::Error::other("not a journal name")))?
            .to_string();
        Ok(Some(Orphan {
            path: path.to_path_buf(),
            name,
            file,
        }))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A staged file never became a journal: its records are all in the journal it was
    /// meant to replace, or it was a new journal's empty start.
    pub fn is_staged(&self) -> bool {
        self.path.extension().and_then(|e| e.to_str()) == Some(STAGED)
    }

    /// Views per post in the records after offset `applied`, up to the last whole record,
    /// and the offset that last record ends at.
    pub fn counts_after(&mut self, applied: u64) -> io::Result<(Counts, u64)> {
        read_counts(&self.file, applied, u64::MAX)
            .map_err(|e| context(e, format!("reading {}", self.path.display())))
    }

    /// Cuts the file back to its header once the database holds all its records. This marks
    /// it done: a crash before the file is removed, or before its table row is deleted (which
    /// reads as offset 0), finds no records to count again.
    pub fn empty(&self) -> io::Result<()> {
        self.file
            .set_len(HEADER.min(self.file.metadata()?.len()))
            .map_err(|e| context(e, format!("emptying {}", self.path.display())))
    }

    /// Deletes the file, still holding its lock.
    pub fn remove(self) -> io::Result<()> {
        std::fs::remove_file(&self.path)
            .map_err(|e| context(e, format!("removing {}", self.path.display())))
    }
}

/// Views per post in the whole records of `file` from offset `applied` up to offset `upto`
/// (or the file's end), and the offset the last one read ends at (`applied` if none).
fn read_counts(file: &File, applied: u64, upto: u64) -> io::Result<(Counts, u64)> {
    let length = file.metadata()?.len();
    if length < HEADER {
        // Never the case for a `.log` unless the disk lost writes: nothing to count.
        return Ok((Counts::new(), applied));
    }
    let mut header = [0u8; HEADER as usize];
    file.read_exact_at(&mut header, 0)?;
    let (magic, base) = header.split_at(MAGIC.len());
    if magic != MAGIC {
        return Err(io::Error::other("not a view journal (bad magic)"));
    }
    let base = u64::from_le_bytes(base.try_into().map_err(io::Error::other)?);
    let end = (base + (length - HEADER) / RECORD * RECORD).min(upto.max(base));
    let start = applied.max(base);
    if (start - base) % RECORD != 0 {
        return Err(io::Error::other(format!(
            "applied offset {applied} is not on a record boundary"
        )));
    }
    let mut counts = Counts::new();
    if start >= end {
        return Ok((counts, end.max(applied)));
    }
    // Positional reads: the owner's writes do not depend on the file position either.
    let (mut at, stop) = (HEADER + start - base, HEADER + end - base);
    let mut chunk = vec![0u8; 8192 * RECORD as usize];
    while at < stop {
        let n = usize::try_from(stop - at).map_or(chunk.len(), |left| left.min(chunk.len()));
        file.read_exact_at(&mut chunk[..n], at)?;
        for record in chunk[..n].chunks_exact(RECORD as usize) {
            let id = i64::from_le_bytes(record.try_into().map_err(io::Error::other)?);
            *counts.entry(id).or_default() += 1;
        }
        at += n as u64;
    }
    Ok((counts, end))
}

fn path(dir: &Path, name: &str, extension: &str) -> PathBuf {
    dir.join(format!("{name}.{extension}"))
}

fn lock_error(e: TryLockError) -> io::Error {
    match e {
        TryLockError::Error(e) => e,
        TryLockError::WouldBlock => io::Error::from(io::ErrorKind::WouldBlock),
    }
}

/// The same error, with what was being done in front.
fn context(e: io::Error, doing: String) -> io::Error {
    io::Error::new(e.kind(), format!("{doing}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(counts: &Counts) -> Vec<(i64, u64)> {
        let mut v: Vec<_> = counts.iter().map(|(k, v)| (*k, *v)).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn a_live_journal_cannot_be_adopted_and_a_dropped_one_can() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path()).unwrap();
        assert_eq!(journal.append(5).unwrap(), 8);
        assert_eq!(journal.append(-1).unwrap(), 16);
        let found = Orphan::candidates(dir.path()).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(Orphan::adopt(&found[0]).unwrap().is_none(), "owner alive");
        drop(journal);
        let mut orphan = Orphan::adopt(&found[0]).unwrap().expect("owner gone");
        assert!(!orphan.is_staged());
        let (counts, end) = orphan.counts_after(0).unwrap();
        assert_eq!((ids(&counts), end), (vec![(-1, 1), (5, 1)], 16));
        assert!(
            Orphan::adopt(&found[0]).unwrap().is_none(),
            "one adopter at a time"
        );
        orphan.remove().unwrap();
        assert!(Orphan::adopt(&found[0]).unwrap().is_none(), "gone");
    }

    #[test]
    fn a_torn_tail_is_ignored_and_applied_records_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path()).unwrap();
        for id in [1, 2, 2, 3] {
            journal.append(id).unwrap();
        }
        let live = path(dir.path(), journal.name(), LIVE);
        drop(journal);
        let mut bytes = std::fs::read(&live).unwrap();
        bytes.extend_from_slice(&[9, 9, 9]);
        std::fs::write(&live, bytes).unwrap();
        let mut orphan = Orphan::adopt(&live).unwrap().unwrap();
        let (counts, end) = orphan.counts_after(8).unwrap();
        assert_eq!((ids(&counts), end), (vec![(2, 2), (3, 1)], 32));
        let (counts, end) = orphan.counts_after(32).unwrap();
        assert!(counts.is_empty());
        assert_eq!(end, 32);
        orphan.empty().unwrap();
        let (counts, _) = orphan.counts_after(0).unwrap();
        assert!(counts.is_empty(), "an emptied journal counts nothing");
    }

    #[test]
    fn a_restart_keeps_offsets_growing_and_only_unapplied_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path()).unwrap();
        for id in [1, 2, 3] {
            journal.append(id).unwrap();
        }
        let staged = Staged::create(dir.path(), journal.name()).unwrap();
        assert!(journal.restart(staged, 8, &[3]).is_err(), "must end at 24");
        let staged = Staged::create(dir.path(), journal.name()).unwrap();
        journal.restart(staged, 16, &[3]).unwrap();
        assert_eq!((journal.len(), journal.end()), (8, 24));
        assert_eq!(journal.append(4).unwrap(), 32);
        let live = path(dir.path(), journal.name(), LIVE);
        drop(journal);
        let mut orphan = Orphan::adopt(&live).unwrap().unwrap();
        let (counts, end) = orphan.counts_after(16).unwrap();
        assert_eq!((ids(&counts), end), (vec![(3, 1), (4, 1)], 32));
        let (counts, _) = orphan.counts_after(24).unwrap();
        assert_eq!(ids(&counts), vec![(4, 1)]);
    }

    #[test]
    fn a_foreign_file_is_refused_not_counted() {
        let dir = tempfile::tempdir().unwrap();
        let foreign = dir.path().join("notes.log");
        std::fs::write(&foreign, b"just some text, not a journal at all").unwrap();
        let mut orphan = Orphan::adopt(&foreign).unwrap().unwrap();
        let err = orphan.counts_after(0).unwrap_err();
        assert!(err.to_string().contains("bad magic"), "{err}");
    }
}
