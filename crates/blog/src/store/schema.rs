//! The SQLite schema, its migrations, and the settings every connection gets.
//!
//! Migrations are numbered by `PRAGMA user_version` and applied inside `BEGIN IMMEDIATE`, so
//! when N freshly forked workers open a new file at once exactly one creates the schema and the
//! others wait on the busy timeout, then find it done. A database already at the current
//! version is only read, so a read-only file still opens and serves pages.

use super::legacy;
use r2d2_sqlite::rusqlite::{Connection, TransactionBehavior};
use std::time::Duration;

/// How long a connection waits for another writer before giving up with SQLITE_BUSY.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// First retries after a locked database: short, since a write (a post, a batch of views)
/// holds the lock for tens of microseconds. SQLite's own busy_timeout handler sleeps 1 ms,
/// 2 ms, 5 ms… which lets one worker starve the others when writes are many and small.
const QUICK_RETRY: Duration = Duration::from_micros(50);
const QUICK_RETRIES: u32 = 200;
/// Later retries: a long writer (a migration, a big import) is waited for politely.
const SLOW_RETRY: Duration = Duration::from_millis(1);

/// Settings applied to every connection when it is opened.
///
/// `synchronous = NORMAL` in WAL mode syncs only at checkpoints: a committed transaction
/// survives the process being killed (even `kill -9`: the WAL is in the OS page cache and
/// SQLite replays it on the next open), but the last commits may be lost on power loss or a
/// kernel crash. That is the usual trade for a blog; use FULL to survive power loss at the
/// cost of one fsync per write (views are written in batches, at most ten a second per worker).
///
/// `cache_size = -256`: at most 256 KiB of pages per connection, not SQLite's default 2 MiB.
/// Each connection of each worker keeps its own cache, so the default let a worker's pool
/// hold up to 2 MiB per connection of copies of the same pages; the file's pages stay in
/// the OS page cache, shared by every worker, and a miss re-reads one from there (a `pread`
/// of a few microseconds). 256 KiB still holds the B-tree interior pages a lookup walks.
///
/// `wal_autocheckpoint = 0`: checkpoints run on a background thread (`checkpoint.rs`), not
/// inside whichever commit happens to cross the threshold. `journal_size_limit`: a WAL that
/// grew in a burst is cut back to 64 MiB when it starts over.
const CONNECTION_PRAGMAS: &str = "
    PRAGMA foreign_keys = ON;
    PRAGMA synchronous = NORMAL;
    PRAGMA temp_store = MEMORY;
    PRAGMA cache_size = -256;
    PRAGMA wal_autocheckpoint = 0;
    PRAGMA journal_size_limit = 67108864;
";

/// Each entry moves the schema from version `index` to `index + 1`.
///
/// Version 1 — column order matters: the small columns come first and `markdown`/`html` last, so lists and
/// the popular query read a row's leading bytes without touching overflow pages.
/// `post_stats` holds the post count and a change generation, maintained by triggers, so list
/// pages never `COUNT(*)` (O(n) in SQLite) and caches can tell when posts changed. The edit
/// trigger names its columns so that view-count updates do not bump the generation.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE posts (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        view_count  INTEGER NOT NULL DEFAULT 0 CHECK (view_count >= 0),
        title       TEXT NOT NULL,
        name        TEXT NOT NULL,
        description TEXT NOT NULL,
        markdown    TEXT NOT NULL,
        html        TEXT NOT NULL
    );
    CREATE INDEX posts_by_created_at ON posts (created_at);
    CREATE INDEX posts_unrendered ON posts (id) WHERE html = '';
    CREATE TABLE post_stats (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        total      INTEGER NOT NULL,
        generation INTEGER NOT NULL
    );
    INSERT INTO post_stats (id, total, generation) VALUES (1, 0, 0);
    CREATE TRIGGER posts_count_insert AFTER INSERT ON posts BEGIN
        UPDATE post_stats SET total = total + 1, generation = generation + 1 WHERE id = 1;
    END;
    CREATE TRIGGER posts_count_delete AFTER DELETE ON posts BEGIN
        UPDATE post_stats SET total = total - 1, generation = generation + 1 WHERE id = 1;
    END;
    CREATE TRIGGER posts_edit AFTER UPDATE OF title, name, description, markdown, html, created_at
    ON posts BEGIN
        UPDATE post_stats SET generation = generation + 1 WHERE id = 1;
    END;
",
    "
    -- Version 2: \"Popular this week\" filters on created_at and sorts by view_count; with
    -- both in one index the candidates are found and sorted without reading any post row
    -- (rows carry kilobytes of Markdown and HTML). Views pay one extra index-entry update.
    CREATE INDEX posts_by_created_at_and_views ON posts (created_at, view_count);
",
    "
    -- Version 3: how far each worker's view journal (`<database>.views/NAME.log`) is counted
    -- into posts.view_count. The offset moves in the same transaction as the counts, so
    -- whoever applies a journal, its worker or a sibling after a crash, starts exactly where
    -- the last commit ended (see store/views).
    CREATE TABLE view_journals (
        name           TEXT PRIMARY KEY,
        applied_offset INTEGER NOT NULL CHECK (applied_offset >= 0)
    ) WITHOUT ROWID;
",
    "
    -- Version 4: who may change a post, and how fast an address may POST. `post_keys` holds
    -- the SHA-256 of each post's edit key (never the key); a post without a row (adopted from
    -- the original PyProject, or created before keys existed) is editable by the admin only.
    -- `post_rate` holds one token bucket per client address, shared by every worker.
    CREATE TABLE post_keys (
        post_id  INTEGER PRIMARY KEY REFERENCES posts (id) ON DELETE CASCADE,
        key_hash BLOB NOT NULL CHECK (length(key_hash) = 32)
    );
    CREATE TABLE post_rate (
        client  TEXT PRIMARY KEY,
        tokens  REAL NOT NULL,
        updated REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX post_rate_by_updated ON post_rate (updated);
",
];

/// Applies the per-connection settings.
pub(crate) fn configure(conn: &Connection) -> Result<(), r2d2_sqlite::rusqlite::Error> {
    conn.busy_handler(Some(wait_for_writer))?;
    conn.execute_batch(CONNECTION_PRAGMAS)?;
    // Enough for every statement the store prepares, so each is parsed once per connection.
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

/// SQLite's busy handler: `true` to retry after a pause, `false` to give up with
/// SQLITE_BUSY after about [`BUSY_TIMEOUT`] in all.
fn wait_for_writer(attempts_so_far: i32) -> bool {
    let attempt = u32::try_from(attempts_so_far).unwrap_or(0);
    let slow_retries = (BUSY_TIMEOUT.as_micros() / SLOW_RETRY.as_micros()) as u32;
    if attempt < QUICK_RETRIES {
        std::thread::sleep(QUICK_RETRY);
        true
    } else if attempt - QUICK_RETRIES < slow_retries {
        std::thread::sleep(SLOW_RETRY);
        true
    } else {
        false
    }
}

/// Brings the database to the current schema version, creating it on first run.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), String> {
    let latest = MIGRATIONS.len() as i64;
    let current = user_version(conn)?;
    if current > latest {
        return Err(format!(
            "schema version {current} is newer than this pyblogd understands ({latest}); \
             upgrade pyblogd"
        ));
    }
    if current == latest {
        return Ok(());
    }
    enable_wal(conn)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| format!("cannot lock for migration: {e}"))?;
    // Re-read under the write lock: another worker may have migrated while we waited.
    let current = user_version(&tx)?;
    // Version 0 with a `posts` table: a database of the original PyProject.
    let adopting = current == 0 && legacy::set_aside(&tx)?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        tx.execute_batch(sql)
            .map_err(|e| format!("migration to version {} failed: {e}", index + 1))?;
    }
    if adopting {
        legacy::import(&tx)?;
    }
    tx.pragma_update(None, "user_version", latest)
        .map_err(|e| format!("cannot record schema version: {e}"))?;
    tx.commit()
        .map_err(|e| format!("cannot commit migration: {e}"))?;
    if current < latest {
        log::info!("database schema migrated from version {current} to {latest}");
    }
    Ok(())
}

/// Switches the file to WAL, which lets readers run while one writer commits (the setting is
/// stored in the file, so this is idempotent when a racing worker already did it).
///
/// The switch needs an exclusive lock, and SQLite answers SQLITE_BUSY at once, without its
/// busy handler, when workers started together hold shared locks on the new file. So it is
/// retried here for up to the busy timeout, with short growing pauses.
fn enable_wal(conn: &Connection) -> Result<(), String> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(2);
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |row| {
            row.get::<_, String>(0)
        }) {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => return Err(format!("cannot enable WAL (journal mode stays {mode:?})")),
            Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(format!("cannot enable WAL: {e}")),
        }
    }
}

fn is_busy(e: &r2d2_sqlite::rusqlite::Error) -> bool {
    use r2d2_sqlite::rusqlite::ErrorCode;
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

fn user_version(conn: &Connection) -> Result<i64, String> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards the per-connection memory bound: every pooled connection holds its own cache.
    #[test]
    fn connections_keep_a_small_page_cache() {
        let conn = Connection::open_in_memory().unwrap();
        configure(&conn).unwrap();
        let cache: i64 = conn
            .query_row("PRAGMA cache_size", [], |row| row.get(0))
            .unwrap();
        assert_eq!(cache, -256, "negative means KiB");
    }
}
