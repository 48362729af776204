//! The SQLite [`Store`]: one r2d2 pool per worker, prepared statements cached per connection.
//!
//! Writes from this process's threads queue on `write_gate` first: SQLite lets one writer in
//! at a time anyway, and a mutex hands the turn over in microseconds where SQLite's busy
//! handler would sleep for milliseconds. Writers in other workers still meet on SQLite's
//! lock and wait up to the busy timeout. Views are counted with group commit (`views.rs`):
//! one UPDATE per view, committed before the post is read, never lost or counted twice.

use super::checkpoint::Checkpointer;
use super::schema;
use super::views::ViewQueue;
use super::{Draft, Post, PostSummary, Stats, Store, StoreError};
use r2d2_sqlite::rusqlite::{self, params, Connection, ErrorCode, OpenFlags, Row};
use r2d2_sqlite::SqliteConnectionManager;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Enough connections for every handler thread of a worker; they are opened lazily.
const POOL_SIZE: u32 = 16;

const SUMMARY_COLUMNS: &str = "id, title, name, description, created_at, updated_at, view_count";

pub(crate) struct SqliteStore {
    pool: r2d2::Pool<SqliteConnectionManager>,
    /// This process's write turn: SQLite admits one writer at a time anyway.
    write_gate: Mutex<()>,
    views: ViewQueue,
    /// Folds the WAL back into the database every second; stops when the store is dropped.
    _checkpointer: Checkpointer,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `path`, then builds the pool.
    /// Errors read `cannot open /abs/path/blog.db: <why>`.
    pub fn open(path: &Path) -> Result<SqliteStore, String> {
        let shown = absolute(path);
        let fail = |why: String| format!("cannot open {}: {why}", shown.display());
        if let Some(parent) = shown.parent() {
            if !parent.is_dir() {
                return Err(fail(format!(
                    "directory {} does not exist",
                    parent.display()
                )));
            }
        }
        // No SQLITE_OPEN_URI: a file named `file:…` is a file, not a URI with options.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(|e| fail(e.to_string()))?;
        schema::configure(&conn).map_err(|e| fail(e.to_string()))?;
        schema::migrate(&mut conn).map_err(fail)?;
        drop(conn);

        let manager = SqliteConnectionManager::file(path)
            .with_flags(flags)
            .with_init(|conn| schema::configure(conn));
        // `build_unchecked`: the file was just opened successfully, and `build` would block
        // for the whole connection timeout retrying if it could not.
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(schema::BUSY_TIMEOUT)
            // A connection to a local file does not go stale; checking costs a statement.
            .test_on_check_out(false)
            .build_unchecked(manager);
        let checkpointer = Checkpointer::start(path.to_path_buf(), flags).map_err(fail)?;
        Ok(SqliteStore {
            pool,
            write_gate: Mutex::new(()),
            views: ViewQueue::default(),
            _checkpointer: checkpointer,
        })
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>, StoreError> {
        self.pool
            .get()
            .map_err(|e| StoreError::Busy(format!("no database connection available: {e}")))
    }

    /// Runs a write with this process's other writers held back.
    fn write<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let conn = self.conn()?;
        // The gate guards no data, so a panic while holding it leaves nothing inconsistent.
        let _turn = self.write_gate.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(classify)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let conn = self.conn()?;
        f(&conn).map_err(classify)
    }
}

impl Store for SqliteStore {
    fn create(&self, draft: &Draft, now: i64) -> Result<i64, StoreError> {
        self.write(|conn| {
            let mut stmt = conn.prepare_cached(
                "INSERT INTO posts (created_at, updated_at, view_count, title, name, description,
                                    markdown, html)
                 VALUES (?1, ?1, 0, ?2, ?3, ?4, ?5, ?6)",
            )?;
            stmt.execute(params![
                now,
                draft.title,
                draft.name,
                draft.description,
                draft.markdown,
                draft.html
            ])?;
            Ok(conn.last_insert_rowid())
        })
    }

    fn update(&self, id: i64, draft: &Draft, now: i64) -> Result<bool, StoreError> {
        self.write(|conn| {
            let mut stmt = conn.prepare_cached(
                "UPDATE posts SET title = ?2, name = ?3, description = ?4, markdown = ?5,
                                  html = ?6, updated_at = ?7
                 WHERE id = ?1",
            )?;
            let changed = stmt.execute(params![
                id,
                draft.title,
                draft.name,
                draft.description,
                draft.markdown,
                draft.html,
                now
            ])?;
            Ok(changed == 1)
        })
    }

    fn delete(&self, id: i64) -> Result<bool, StoreError> {
        self.write(|conn| {
            let mut stmt = conn.prepare_cached("DELETE FROM posts WHERE id = ?1")?;
            Ok(stmt.execute([id])? == 1)
        })
    }

    fn find(&self, id: i64) -> Result<Option<Post>, StoreError> {
        self.read(|conn| read_post(conn, id))
    }

    fn view(&self, id: i64) -> Result<Option<Post>, StoreError> {
        let conn = self.conn()?;
        let outcome = self.views.enqueue(id);
        let counted = {
            let _turn = self.write_gate.lock().unwrap_or_else(|p| p.into_inner());
            // Another thread's transaction may have counted this view while we waited.
            match outcome.take() {
                Some(result) => result,
                None => {
                    self.views
                        .flush(|ids| count_views(&conn, ids).map_err(classify));
                    outcome.take().unwrap_or(Ok(()))
                }
            }
        };
        counted?;
        // Read after the commit, so the count shown includes this view.
        read_post(&conn, id).map_err(classify)
    }

    fn latest(&self, offset: u64, limit: u32) -> Result<Vec<PostSummary>, StoreError> {
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        self.read(|conn| {
            let sql = latest_sql(limit);
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map([offset], summary_from_row)?;
            rows.collect()
        })
    }

    fn popular_since(&self, since: i64, limit: u32) -> Result<Vec<PostSummary>, StoreError> {
        self.read(|conn| {
            let sql = popular_sql(limit);
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map([since], summary_from_row)?;
            rows.collect()
        })
    }

    fn unrendered(&self, limit: u32) -> Result<Vec<(i64, String)>, StoreError> {
        self.read(|conn| {
            let sql = format!("SELECT id, markdown FROM posts WHERE html = '' LIMIT {limit}");
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })
    }

    fn set_rendered(&self, id: i64, html: &str, description: &str) -> Result<(), StoreError> {
        self.write(|conn| {
            let mut stmt = conn.prepare_cached(
                "UPDATE posts SET html = ?2, description = ?3 WHERE id = ?1 AND html = ''",
            )?;
            stmt.execute(params![id, html, description]).map(|_| ())
        })
    }

    fn stats(&self) -> Result<Stats, StoreError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT total, generation FROM post_stats WHERE id = 1")?;
            stmt.query_row([], |row| {
                Ok(Stats {
                    total: row.get::<_, i64>(0)?.max(0) as u64,
                    generation: row.get::<_, i64>(1)?.max(0) as u64,
                })
            })
        })
    }
}

/// Newest first, skipping `?1` posts. The inner query walks the created_at index backwards
/// (rowid breaks ties) and skips entries without reading a post row; only the page's rows are
/// read. The limit is part of the text: SQLite re-prepares a statement whenever a bound LIMIT
/// changes, which cost more than the query itself.
fn latest_sql(limit: u32) -> String {
    format!(
        "SELECT {SUMMARY_COLUMNS} FROM posts WHERE id IN (
             SELECT id FROM posts ORDER BY created_at DESC, id DESC LIMIT {limit} OFFSET ?1)
         ORDER BY created_at DESC, id DESC"
    )
}

/// Most viewed posts created after `?1`. The inner query ranges over the
/// (created_at, view_count) index and sorts last week's entries without reading their rows
/// (which carry kilobytes of Markdown and HTML); only the winners are read.
fn popular_sql(limit: u32) -> String {
    let order = "view_count DESC, created_at DESC, id DESC";
    format!(
        "SELECT {SUMMARY_COLUMNS} FROM posts WHERE id IN (
             SELECT id FROM posts WHERE created_at > ?1 ORDER BY {order} LIMIT {limit})
         ORDER BY {order}"
    )
}

fn read_post(conn: &Connection, id: i64) -> rusqlite::Result<Option<Post>> {
    let sql = format!("SELECT {SUMMARY_COLUMNS}, markdown, html FROM posts WHERE id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([id])?;
    rows.next()?.map(post_from_row).transpose()
}

/// One `UPDATE … view_count + 1` per view, all committed together (see `views`).
fn count_views(conn: &Connection, ids: &[i64]) -> rusqlite::Result<()> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let counted = conn
        .prepare_cached("UPDATE posts SET view_count = view_count + 1 WHERE id = ?1")
        .and_then(|mut stmt| ids.iter().try_for_each(|id| stmt.execute([id]).map(|_| ())));
    let result = counted.and_then(|()| conn.prepare_cached("COMMIT")?.execute([]).map(|_| ()));
    if result.is_err() && !conn.is_autocommit() {
        // Leave the pooled connection clean; the error above is what matters.
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<PostSummary> {
    Ok(PostSummary {
        id: row.get(0)?,
        title: row.get(1)?,
        name: row.get(2)?,
        description: row.get(3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
        view_count: row.get(6)?,
    })
}

fn post_from_row(row: &Row<'_>) -> rusqlite::Result<Post> {
    Ok(Post {
        summary: summary_from_row(row)?,
        markdown: row.get(7)?,
        html: row.get(8)?,
    })
}

/// I/O errors that mean the filesystem refuses writes, not that the data is unreadable. A disk
/// remounted read-only after an error (ext4 `errors=remount-ro`) fails writes through files
/// already open with EROFS, which SQLite reports as `IOERR_WRITE`; only files opened later
/// see `SQLITE_READONLY`. Reads still work in both cases.
const WRITE_IO_ERRORS: &[i32] = &[
    rusqlite::ffi::SQLITE_IOERR_WRITE,
    rusqlite::ffi::SQLITE_IOERR_FSYNC,
    rusqlite::ffi::SQLITE_IOERR_DIR_FSYNC,
    rusqlite::ffi::SQLITE_IOERR_TRUNCATE,
];

/// Sorts SQLite's failures into what a handler can act on.
fn classify(err: rusqlite::Error) -> StoreError {
    let message = err.to_string();
    let is_write_io_error = matches!(
        &err,
        rusqlite::Error::SqliteFailure(e, _) if WRITE_IO_ERRORS.contains(&e.extended_code)
    );
    match err.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy(message),
        Some(ErrorCode::ReadOnly | ErrorCode::DiskFull) => StoreError::Unwritable(message),
        Some(ErrorCode::SystemIoFailure) if is_write_io_error => StoreError::Unwritable(message),
        _ => StoreError::Failed(message),
    }
}

/// The path as an operator should read it in an error: absolute, against the working dir.
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(path),
        Err(_) => path.to_path_buf(),
    }
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
