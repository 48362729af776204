//! Counting a view: journal it, then read the post's count and add this worker's journaled
//! views that the database snapshot lacks, so a reader sees their own view at once and never
//! twice. Only the count and the change generation are read, from one snapshot: the page
//! itself comes from the page cache, or from `find` when it has to be rendered.

use super::{classify, offset, SqliteStore};
use crate::store::{StoreError, ViewCount};
use r2d2_sqlite::rusqlite::{self, params, Connection};

impl SqliteStore {
    /// [`Store::count_view`](crate::store::Store::count_view) through this worker's journal.
    pub(super) fn journaled_view(&self, id: i64) -> Result<Option<ViewCount>, StoreError> {
        let Some(journal) = self.views.journal_name() else {
            return self.view_directly(id);
        };
        let conn = self.conn()?;
        // Read first: a missing post is not journaled.
        let Some((mut count, snapshot)) = read_count(&conn, id, journal).map_err(classify)? else {
            return Ok(None);
        };
        let Some(unapplied) = self.views.record(id) else {
            drop(conn);
            return self.view_directly(id);
        };
        let unseen = match unapplied.beyond(snapshot) {
            Some(unseen) => unseen,
            // A flush committed between the read and the record: read the count again. This
            // snapshot is later than the record, so it is never too old.
            None => match read_count(&conn, id, journal).map_err(classify)? {
                Some((again, snapshot)) => {
                    count = again;
                    unapplied.beyond(snapshot).unwrap_or(0)
                }
                None => return Ok(None),
            },
        };
        let unseen = i64::try_from(unseen).unwrap_or(i64::MAX);
        count.views = count.views.saturating_add(unseen);
        Ok(Some(count))
    }

    /// The count as committed, without this worker's journaled views and without counting.
    pub(super) fn committed_view_count(&self, id: i64) -> Result<Option<ViewCount>, StoreError> {
        self.read(|conn| Ok(read_count(conn, id, "")?.map(|(count, _)| count)))
    }

    /// Counts a view with its own committed UPDATE, then reads the count: for a worker whose
    /// view journal could not be created or refuses writes.
    fn view_directly(&self, id: i64) -> Result<Option<ViewCount>, StoreError> {
        self.write(|conn| {
            conn.prepare_cached("UPDATE posts SET view_count = view_count + 1 WHERE id = ?1")?
                .execute([id])
        })?;
        self.committed_view_count(id)
    }
}

/// A post's count and the change generation and, from the same snapshot, how far `journal`
/// is applied (0 before its first flush, or for no journal at all: `""`).
fn read_count(
    conn: &Connection,
    id: i64,
    journal: &str,
) -> rusqlite::Result<Option<(ViewCount, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT view_count,
                (SELECT generation FROM post_stats WHERE id = 1),
                (SELECT applied_offset FROM view_journals WHERE name = ?2)
         FROM posts WHERE id = ?1",
    )?;
    let mut rows = stmt.query(params![id, journal])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let generation: Option<i64> = row.get(1)?;
    let count = ViewCount {
        views: row.get(0)?,
        generation: generation.map_or(0, |g| g.max(0) as u64),
    };
    Ok(Some((count, offset(row.get(2)?))))
}
