//! The SQLite [`Store`]: one r2d2 pool per worker, prepared statements cached per connection.
//!
//! Writes from this process's threads queue on `write_gate` first: SQLite lets one writer in
//! at a time anyway, and a mutex hands the turn over in microseconds where SQLite's busy
//! handler would sleep for milliseconds. Writers in other workers still meet on SQLite's
//! lock and wait up to the busy timeout. Views are journaled per worker and committed in
//! batches by the upkeep thread (`views/`); a page adds this worker's views that its database
//! snapshot lacks, so a reader sees their own view at once and never twice.

use super::schema;
use super::upkeep;
use super::views::ViewCounter;
use super::{Draft, Post, PostSummary, Stats, Store, StoreError, ViewCount};
use crate::security::Digest256;
use r2d2_sqlite::rusqlite::{self, params, Connection, ErrorCode, OpenFlags, Row};
use r2d2_sqlite::SqliteConnectionManager;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Enough connections for every handler thread of a worker. They are opened on demand, when a
/// thread finds none idle, so a worker holds as many as it ever ran queries at once.
const POOL_SIZE: u32 = 16;

mod access;
mod viewing;

const SUMMARY_COLUMNS: &str = "id, title, name, description, created_at, updated_at, view_count";

pub(crate) struct SqliteStore {
    pool: r2d2::Pool<SqliteConnectionManager>,
    /// This process's write turn: SQLite admits one writer at a time anyway.
    write_gate: Arc<Mutex<()>>,
    /// Also keeps the upkeep thread (view flushes, checkpoints) alive: it ends once this is
    /// dropped.
    views: Arc<ViewCounter>,
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
        let write_gate = Arc::new(Mutex::new(()));
        let views = Arc::new(ViewCounter::open(path, Arc::clone(&write_gate)));
        // Views that workers which died took with them, before this one serves any page.
        views.recover(&conn);
        drop(conn);

        let manager = SqliteConnectionManager::file(path)
            .with_flags(flags)
            .with_init(|conn| schema::configure(conn));
        // `build_unchecked`: the file was just opened successfully, and `build` would block
        // for the whole connection timeout retrying if it could not.
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            // No spare connection: r2d2 opens another whenever the idle count drops below
            // `min_idle`, so with 1 every moment all were checked out added one, and a busy
            // worker soon held all 16, each with its own page cache, statement cache and
            // schema (~0.5 MB apiece once warm).
            .min_idle(Some(0))
            .connection_timeout(schema::BUSY_TIMEOUT)
            // A connection to a local file does not go stale; checking costs a statement.
            .test_on_check_out(false)
            .build_unchecked(manager);
        upkeep::start(path, flags, Arc::downgrade(&views)).map_err(fail)?;
        Ok(SqliteStore {
            pool,
            write_gate,
            views,
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

    /// Commits pending views now, as the upkeep thread does every turn.
    #[cfg(test)]
    pub(crate) fn flush_views(&self) -> Result<u64, StoreError> {
        let conn = self.conn()?;
        self.views.flush(&conn).map_err(StoreError::Failed)
    }

    /// Simulates this worker being killed: its journal is let go without a final flush.
    #[cfg(test)]
    pub(crate) fn abandon_views(&self) {
        self.views.abandon();
    }
}

impl Drop for SqliteStore {
    /// The final flush: this worker's pending views are committed and its journal removed
    /// (or, if that fails, left for another worker or the next start to apply).
    fn drop(&mut self) {
        match self.pool.get() {
            Ok(conn) => self.views.retire(&conn),
            Err(e) => log::warn!(
                "cannot commit this worker's last views ({e}); its view journal keeps them"
            ),
        }
    }
}

impl Store for SqliteStore {
    fn create(
        &self,
        draft: &Draft,
        now: i64,
        key_hash: Option<&Digest256>,
    ) -> Result<i64, StoreError> {
        self.write(|conn| {
            let tx = conn.unchecked_transaction()?;
            let mut stmt = tx.prepare_cached(
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
            drop(stmt);
            let id = tx.last_insert_rowid();
            if let Some(hash) = key_hash {
                tx.prepare_cached("INSERT INTO post_keys (post_id, key_hash) VALUES (?1, ?2)")?
                    .execute(params![id, &hash[..]])?;
            }
            tx.commit()?;
            Ok(id)
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

    fn count_view(&self, id: i64) -> Result<Option<ViewCount>, StoreError> {
        self.journaled_view(id)
    }

    fn view_count(&self, id: i64) -> Result<Option<ViewCount>, StoreError> {
        self.committed_view_count(id)
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

    fn edit_key(&self, id: i64) -> Result<Option<Option<Digest256>>, StoreError> {
        self.read(|conn| access::edit_key(conn, id))
    }

    fn set_edit_key(&self, id: i64, hash: Option<&Digest256>) -> Result<(), StoreError> {
        self.write(|conn| access::set_edit_key(conn, id, hash))
    }

    fn take_post_token(
        &self,
        client: &str,
        now: f64,
        per_minute: u32,
    ) -> Result<Result<(), Duration>, StoreError> {
        self.write(|conn| access::take_post_token(conn, client, now, per_minute))
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())))
    }

    fn export(&self, after_id: i64, limit: u32) -> Result<Vec<Post>, StoreError> {
        self.read(|conn| {
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS}, markdown, html FROM posts WHERE id > ?1
                 ORDER BY id LIMIT {limit}"
            );
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map([after_id], post_from_row)?;
            rows.collect()
        })
    }

    /// Upserts by id in one transaction; AUTOINCREMENT's sequence follows explicit ids itself.
    fn import(&self, posts: &[Post]) -> Result<(), StoreError> {
        self.write(|conn| {
            let tx = conn.unchecked_transaction()?;
            {
                let mut upsert = tx.prepare(
                    "INSERT INTO posts (id, created_at, updated_at, view_count, title, name,
                                        description, markdown, html)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (id) DO UPDATE SET
                         created_at = excluded.created_at, updated_at = excluded.updated_at,
                         view_count = excluded.view_count, title = excluded.title,
                         name = excluded.name, description = excluded.description,
                         markdown = excluded.markdown, html = excluded.html",
                )?;
                for p in posts {
                    let s = &p.summary;
                    upsert.execute(params![
                        s.id,
                        s.created_at,
                        s.updated_at,
                        s.view_count,
                        s.title,
                        s.name,
                        s.description,
                        p.markdown,
                        p.html
                    ])?;
                }
            }
            tx.commit()
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

/// A journal's applied offset as read: no row yet is 0, and the column's CHECK keeps it
/// non-negative.
fn offset(applied: Option<i64>) -> u64 {
    applied.map_or(0, |a| a.max(0) as u64)
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
