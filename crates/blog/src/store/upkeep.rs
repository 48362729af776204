//! The store's background thread, one per worker: view flushes, dead journals, checkpoints.
//!
//! Every [`EVERY`] it commits the views journaled since the last turn (one transaction, and
//! only when there are any), then folds the WAL back into the database; every
//! [`RECOVER_EVERY`] turns it also applies the view journals of workers that died, so their
//! views reach the database within seconds, not at the next start. It has its own connection,
//! so it never waits for the pool, and it ends within a turn after the store is dropped.

use super::checkpoint::Checkpoints;
use super::views::ViewCounter;
use r2d2_sqlite::rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::Weak;
use std::time::Duration;

/// How often views are committed and the WAL is checkpointed: the longest a view waits
/// before other workers' pages show it.
const EVERY: Duration = Duration::from_millis(100);
/// Dead workers' journals are looked for every this many turns (2 s).
const RECOVER_EVERY: u32 = 20;

/// Starts the thread for the database at `path` (already open and in WAL mode); it runs
/// while `views` (owned by the store) lives.
pub(super) fn start(path: &Path, flags: OpenFlags, views: Weak<ViewCounter>) -> Result<(), String> {
    let conn = Connection::open_with_flags(path, flags)
        .and_then(|conn| super::schema::configure(&conn).map(|()| conn))
        .map_err(|e| format!("cannot open the upkeep connection: {e}"))?;
    std::thread::Builder::new()
        .name("sqlite-upkeep".into())
        .spawn(move || run(&conn, &views))
        .map_err(|e| format!("cannot start the upkeep thread: {e}"))?;
    Ok(())
}

fn run(conn: &Connection, views: &Weak<ViewCounter>) {
    let mut checkpoints = Checkpoints::default();
    // Logged on change only, like checkpoints.
    let mut flush_failing = false;
    let mut turn: u32 = 0;
    loop {
        std::thread::sleep(EVERY);
        turn = turn.wrapping_add(1);
        let Some(counter) = views.upgrade() else {
            return;
        };
        match counter.flush(conn) {
            Err(err) if !flush_failing => {
                log::warn!("cannot commit view counts, keeping them to retry every turn: {err}");
                flush_failing = true;
            }
            Ok(_) if flush_failing => {
                log::info!("view counts are committed again");
                flush_failing = false;
            }
            _ => {}
        }
        if turn.is_multiple_of(RECOVER_EVERY) {
            counter.recover(conn);
        }
        drop(counter);
        checkpoints.run(conn);
    }
}
