//! Edit-key hashes and POST rate buckets on PostgreSQL (schema version 2 here, SQLite's 4).
//!
//! The same rules as `sqlite/access.rs`: only a key's SHA-256 is stored, and a post without
//! one is the admin's alone. A bucket is read and rewritten under a transaction-scoped
//! advisory lock on its client address, so two workers, or two hosts, taking a token for the
//! same address at once are serialised and never both spend the last one.

use crate::security::rate_limit::{self, Bucket};
use crate::security::Digest256;
use r2d2_postgres::postgres::types::Type;
use r2d2_postgres::postgres::{Client, Error};
use std::time::Duration;

/// Namespaces the per-address advisory locks apart from the migration lock and from other
/// applications' locks: the lock is on (this class, hash of the address).
const RATE_LOCK_CLASS: i32 = 0x7062_7274; // "pbrt"

/// Inserts a new post and, when given, the hash of its edit key, in one transaction.
pub(super) fn create(
    client: &mut Client,
    insert_post: &str,
    params: &[&(dyn r2d2_postgres::postgres::types::ToSql + Sync)],
    key_hash: Option<&Digest256>,
) -> Result<i64, Error> {
    let mut tx = client.transaction()?;
    let id: i64 = tx.query_one(insert_post, params)?.try_get(0)?;
    if let Some(hash) = key_hash {
        tx.execute(
            "INSERT INTO post_keys (post_id, key_hash) VALUES ($1, $2)",
            &[&id, &&hash[..]],
        )?;
    }
    tx.commit()?;
    Ok(id)
}

/// See [`Store::edit_key`](crate::store::Store::edit_key).
pub(super) fn edit_key(client: &mut Client, id: i64) -> Result<Option<Option<Digest256>>, Error> {
    let row = client.query_typed_opt(
        "SELECT k.key_hash FROM posts p LEFT JOIN post_keys k ON k.post_id = p.id
         WHERE p.id = $1",
        &[(&id, Type::INT8)],
    )?;
    let Some(row) = row else {
        return Ok(None);
    };
    let hash: Option<Vec<u8>> = row.try_get(0)?;
    // The column's CHECK keeps hashes at 32 bytes; anything else reads as "no key".
    Ok(Some(
        hash.and_then(|h| <Digest256>::try_from(h.as_slice()).ok()),
    ))
}

/// See [`Store::set_edit_key`](crate::store::Store::set_edit_key).
pub(super) fn set_edit_key(
    client: &mut Client,
    id: i64,
    hash: Option<&Digest256>,
) -> Result<(), Error> {
    match hash {
        Some(hash) => client.execute(
            "INSERT INTO post_keys (post_id, key_hash) VALUES ($1, $2)
             ON CONFLICT (post_id) DO UPDATE SET key_hash = excluded.key_hash",
            &[&id, &&hash[..]],
        ),
        None => client.execute("DELETE FROM post_keys WHERE post_id = $1", &[&id]),
    }
    .map(|_| ())
}

/// See [`Store::take_post_token`](crate::store::Store::take_post_token). Buckets idle long
/// enough to be full again are deleted in the same transaction.
pub(super) fn take_post_token(
    client: &mut Client,
    address: &str,
    now: f64,
    per_minute: u32,
) -> Result<Result<(), Duration>, Error> {
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&RATE_LOCK_CLASS, &address],
    )?;
    let bucket = tx
        .query_opt(
            "SELECT tokens, updated FROM post_rate WHERE client = $1",
            &[&address],
        )?
        .map(|row| -> Result<Bucket, Error> {
            Ok(Bucket {
                tokens: row.try_get(0)?,
                updated: row.try_get(1)?,
            })
        })
        .transpose()?;
    let (bucket, taken) = rate_limit::take(bucket, now, per_minute);
    tx.execute(
        "INSERT INTO post_rate (client, tokens, updated) VALUES ($1, $2, $3)
         ON CONFLICT (client) DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated",
        &[&address, &bucket.tokens, &bucket.updated],
    )?;
    tx.execute(
        "DELETE FROM post_rate WHERE updated < $1",
        &[&(now - rate_limit::idle_after(per_minute))],
    )?;
    tx.commit()?;
    Ok(taken)
}
