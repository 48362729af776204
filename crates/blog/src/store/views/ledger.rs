//! The database side of view journals: counts and the journal offset they reach, together.
//!
//! `view_journals` (schema version 3) holds, per journal, the offset up to which its records
//! are in `posts.view_count`. Both change in one transaction, so whoever applies a journal
//! (its owner's flusher, or a sibling recovering it) starts exactly where the last commit ended.

use super::tally::Counts;
use r2d2_sqlite::rusqlite::{params, Connection, Error, OptionalExtension, Result};

/// How a batch went in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Applied {
    /// Counted, and the journal recorded as applied up to the batch's end.
    Done,
    /// Nothing changed: the journal's recorded offset is not where the batch starts, but here
    /// (say, a commit that reported an error had landed after all). Count again from there.
    Elsewhere(u64),
}

/// Adds `counts`, the views in journal `name` from offset `from` to offset `to`, to the posts'
/// view counts and records the journal as applied up to `to`, in one `BEGIN IMMEDIATE …
/// COMMIT`; unless the journal's recorded offset is not `from`, which makes each batch count
/// at most once whatever happened to the one before. A post deleted meanwhile updates nothing.
pub(super) fn apply(
    conn: &Connection,
    name: &str,
    counts: &Counts,
    (from, to): (u64, u64),
) -> Result<Applied> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let result = applied_offset(conn, name).and_then(|recorded| {
        if recorded != from {
            return Ok(Applied::Elsewhere(recorded));
        }
        add_counts(conn, name, counts, to)?;
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(Applied::Done)
    });
    if !conn.is_autocommit() {
        // Nothing to keep (a batch that does not start where the journal stands), or a
        // failure: leave the connection clean; the error above is what matters.
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

fn add_counts(conn: &Connection, name: &str, counts: &Counts, applied: u64) -> Result<()> {
    let mut add =
        conn.prepare_cached("UPDATE posts SET view_count = view_count + ?2 WHERE id = ?1")?;
    for (id, n) in counts {
        add.execute(params![id, integer(*n)?])?;
    }
    conn.prepare_cached(
        "INSERT INTO view_journals (name, applied_offset) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET applied_offset = excluded.applied_offset",
    )?
    .execute(params![name, integer(applied)?])?;
    Ok(())
}

/// SQLite integers are signed; counts and offsets never come near the limit.
fn integer(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|e| Error::ToSqlConversionFailure(Box::new(e)))
}

/// How far journal `name` is applied: 0 when it has no row (nothing applied yet, or its file
/// was emptied before the row was deleted).
pub(super) fn applied_offset(conn: &Connection, name: &str) -> Result<u64> {
    conn.prepare_cached("SELECT applied_offset FROM view_journals WHERE name = ?1")?
        .query_row([name], |row| row.get::<_, i64>(0))
        .optional()
        // The column's CHECK keeps it non-negative.
        .map(|applied| applied.map_or(0, |a| a.max(0) as u64))
}

/// Deletes journal `name`'s row; call it only once the file is emptied (see `Orphan::empty`).
pub(super) fn forget(conn: &Connection, name: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM view_journals WHERE name = ?1")?
        .execute([name])
        .map(|_| ())
}
