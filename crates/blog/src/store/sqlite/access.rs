//! Who may change a post and how fast an address may POST: edit-key hashes and rate buckets.
//!
//! Both tables arrived with schema version 4. A bucket is read and written inside one
//! `BEGIN IMMEDIATE` transaction, so two workers taking a token for the same address at the
//! same moment are serialised by SQLite and never both spend the last one.

use crate::security::rate_limit::{self, Bucket};
use crate::security::Digest256;
use r2d2_sqlite::rusqlite::{self, params, Connection, OptionalExtension, TransactionBehavior};
use std::time::Duration;

/// See [`Store::edit_key`](crate::store::Store::edit_key).
pub(super) fn edit_key(conn: &Connection, id: i64) -> rusqlite::Result<Option<Option<Digest256>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT k.key_hash FROM posts p LEFT JOIN post_keys k ON k.post_id = p.id WHERE p.id = ?1",
    )?;
    let row: Option<Option<Vec<u8>>> = stmt.query_row([id], |row| row.get(0)).optional()?;
    // The column's CHECK keeps hashes at 32 bytes; anything else reads as "no key".
    Ok(row.map(|hash| hash.and_then(|h| <Digest256>::try_from(h.as_slice()).ok())))
}

/// See [`Store::set_edit_key`](crate::store::Store::set_edit_key).
pub(super) fn set_edit_key(
    conn: &Connection,
    id: i64,
    hash: Option<&Digest256>,
) -> rusqlite::Result<()> {
    match hash {
        Some(hash) => conn
            .prepare_cached(
                "INSERT INTO post_keys (post_id, key_hash) VALUES (?1, ?2)
                 ON CONFLICT (post_id) DO UPDATE SET key_hash = excluded.key_hash",
            )?
            .execute(params![id, &hash[..]]),
        None => conn
            .prepare_cached("DELETE FROM post_keys WHERE post_id = ?1")?
            .execute([id]),
    }
    .map(|_| ())
}

/// See [`Store::take_post_token`](crate::store::Store::take_post_token). Buckets idle long
/// enough to be full again are deleted in the same transaction, so the table holds only
/// addresses that posted in the last minute or so.
pub(super) fn take_post_token(
    conn: &Connection,
    client: &str,
    now: f64,
    per_minute: u32,
) -> rusqlite::Result<Result<(), Duration>> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let bucket = tx
        .prepare_cached("SELECT tokens, updated FROM post_rate WHERE client = ?1")?
        .query_row([client], |row| {
            Ok(Bucket {
                tokens: row.get(0)?,
                updated: row.get(1)?,
            })
        })
        .optional()?;
    let (bucket, taken) = rate_limit::take(bucket, now, per_minute);
    tx.prepare_cached(
        "INSERT INTO post_rate (client, tokens, updated) VALUES (?1, ?2, ?3)
         ON CONFLICT (client) DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated",
    )?
    .execute(params![client, bucket.tokens, bucket.updated])?;
    tx.prepare_cached("DELETE FROM post_rate WHERE updated < ?1")?
        .execute([now - rate_limit::idle_after(per_minute)])?;
    tx.commit()?;
    Ok(taken)
}
