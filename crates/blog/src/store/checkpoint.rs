//! WAL checkpoints off the request path: one background thread per worker.
//!
//! By default SQLite checkpoints inside the commit that pushes the WAL past 1000 pages, so
//! one view in a few hundred copies pages back into the database and fsyncs it while its
//! thread holds the process's write turn, stalling every other writer. Connections here turn
//! that off (`wal_autocheckpoint = 0`) and this thread runs a PASSIVE checkpoint every
//! [`EVERY`] instead, which blocks no one. Under constant writes a passive checkpoint never
//! catches up with the end of the log, so SQLite never starts the WAL over and the file
//! grows without bound; past [`RESTART_FRAMES`] the thread runs a RESTART checkpoint, which
//! holds writers back for the moment it takes to copy the (few, hot) pages and wait for
//! in-flight reads. The thread ends within one interval after the store is dropped.

use r2d2_sqlite::rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the WAL is folded back into the database.
const EVERY: Duration = Duration::from_millis(100);
/// A WAL longer than this many frames (4 KiB each) is started over.
const RESTART_FRAMES: i64 = 2000;

/// Keeps the checkpoint thread alive; dropping it lets the thread end.
pub(super) struct Checkpointer {
    _alive: Arc<()>,
}

impl Checkpointer {
    /// Starts the thread for the database at `path` (already open and in WAL mode).
    pub fn start(path: PathBuf, flags: OpenFlags) -> Result<Checkpointer, String> {
        let alive = Arc::new(());
        let watch: Weak<()> = Arc::downgrade(&alive);
        let conn = Connection::open_with_flags(&path, flags)
            .and_then(|conn| super::schema::configure(&conn).map(|()| conn))
            .map_err(|e| format!("cannot open a checkpoint connection: {e}"))?;
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(conn, watch))
            .map_err(|e| format!("cannot start the checkpoint thread: {e}"))?;
        Ok(Checkpointer { _alive: alive })
    }
}

fn run(conn: Connection, alive: Weak<()>) {
    // Logged on change only: a full disk would otherwise log ten lines a second.
    let mut failing = false;
    loop {
        std::thread::sleep(EVERY);
        if alive.upgrade().is_none() {
            return;
        }
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
            Err(err) if !failing => {
                log::warn!("WAL checkpoint failed, retrying quietly until it works: {err}");
                failing = true;
            }
            Ok(()) if failing => {
                log::info!("WAL checkpoints work again");
                failing = false;
            }
            _ => {}
        }
    }
}
