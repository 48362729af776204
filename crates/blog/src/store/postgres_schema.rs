//! The PostgreSQL schema and its forward migrations, applied once under an advisory lock.
//!
//! The same tables as SQLite (`schema.rs`), spelled for Postgres. Versions are recorded in
//! `schema_migrations`, one row per applied version; every host and worker that starts takes
//! a transaction-scoped advisory lock first, so when several start at the same moment exactly
//! one migrates and the others wait, then find nothing left to do.

use r2d2_postgres::postgres::Client;

/// The advisory lock key that serialises migrations ("pyblogd" in ASCII, as a number), so
/// it does not collide with locks another application takes on the same database.
const MIGRATION_LOCK: i64 = 0x0070_7962_6c6f_6764;

/// Each entry moves the schema from version `index` to `index + 1`.
///
/// Version 1 matches SQLite's versions 1–2 (posts, stats kept by triggers, the popular index).
/// The edit trigger names its columns so that view-count updates do not bump the generation.
/// There is no `view_journals` table: views are counted by one atomic UPDATE each (see
/// `postgres.rs`), which is exact across hosts without a journal.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE posts (
        id          BIGSERIAL PRIMARY KEY,
        created_at  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL,
        view_count  BIGINT NOT NULL DEFAULT 0 CHECK (view_count >= 0),
        title       TEXT NOT NULL,
        name        TEXT NOT NULL,
        description TEXT NOT NULL,
        markdown    TEXT NOT NULL,
        html        TEXT NOT NULL
    );
    CREATE INDEX posts_by_created_at ON posts (created_at);
    CREATE INDEX posts_unrendered ON posts (id) WHERE html = '';
    CREATE INDEX posts_by_created_at_and_views ON posts (created_at, view_count);
    CREATE TABLE post_stats (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        total      BIGINT NOT NULL,
        generation BIGINT NOT NULL
    );
    INSERT INTO post_stats (id, total, generation) VALUES (1, 0, 0);
    CREATE FUNCTION posts_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE post_stats SET total = total + 1, generation = generation + 1 WHERE id = 1;
        RETURN NULL;
    END $$;
    CREATE FUNCTION posts_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE post_stats SET total = total - 1, generation = generation + 1 WHERE id = 1;
        RETURN NULL;
    END $$;
    CREATE FUNCTION posts_edit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE post_stats SET generation = generation + 1 WHERE id = 1;
        RETURN NULL;
    END $$;
    CREATE TRIGGER posts_count_insert AFTER INSERT ON posts
        FOR EACH ROW EXECUTE FUNCTION posts_count_insert();
    CREATE TRIGGER posts_count_delete AFTER DELETE ON posts
        FOR EACH ROW EXECUTE FUNCTION posts_count_delete();
    CREATE TRIGGER posts_edit
        AFTER UPDATE OF title, name, description, markdown, html, created_at ON posts
        FOR EACH ROW EXECUTE FUNCTION posts_edit();
",
    "
    -- Version 2 (SQLite's 4): who may change a post, and how fast an address may POST.
    -- `post_keys` holds the SHA-256 of each post's edit key (never the key); a post without a
    -- row is editable by the admin only. `post_rate` holds one token bucket per client
    -- address, shared by every worker on every host.
    CREATE TABLE post_keys (
        post_id  BIGINT PRIMARY KEY REFERENCES posts (id) ON DELETE CASCADE,
        key_hash BYTEA NOT NULL CHECK (length(key_hash) = 32)
    );
    CREATE TABLE post_rate (
        client  TEXT PRIMARY KEY,
        tokens  DOUBLE PRECISION NOT NULL,
        updated DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX post_rate_by_updated ON post_rate (updated);
",
];

/// Brings the database to the current schema version, creating it on first run.
pub(crate) fn migrate(client: &mut Client) -> Result<(), String> {
    let latest = MIGRATIONS.len() as i32;
    let mut tx = client
        .transaction()
        .map_err(|e| format!("cannot start migration: {e}"))?;
    // Held until commit or rollback: concurrent starters queue here, on every host.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(|e| format!("cannot take the migration lock: {e}"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .map_err(|e| format!("cannot create schema_migrations: {e}"))?;
    let current: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .and_then(|row| row.try_get(0))
        .map_err(|e| format!("cannot read the schema version: {e}"))?;
    if current > latest {
        return Err(format!(
            "schema version {current} is newer than this pyblogd understands ({latest}); \
             upgrade pyblogd"
        ));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        let version = index as i32 + 1;
        tx.batch_execute(sql)
            .map_err(|e| format!("migration to version {version} failed: {e}"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&version],
        )
        .map_err(|e| format!("cannot record schema version {version}: {e}"))?;
    }
    tx.commit()
        .map_err(|e| format!("cannot commit migration: {e}"))?;
    if current < latest {
        log::info!("database schema migrated from version {current} to {latest}");
    }
    Ok(())
}
