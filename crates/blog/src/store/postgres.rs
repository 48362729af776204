//! The PostgreSQL [`Store`]: one r2d2 pool per worker (built after fork), blocking `postgres`.
//!
//! Many pyblogd hosts may share the database, so nothing here is per-process state: a view is
//! one atomic `UPDATE … RETURNING`, exact however many hosts count at once, and the change
//! generation comes from the database, so every host's page cache sees every host's edits.
//! A lost database makes operations fail as [`StoreError::Busy`] (503 with `Retry-After`);
//! the pool drops broken connections and opens new ones once the server answers again.

use super::postgres_schema;
use super::{Draft, Post, PostSummary, Stats, Store, StoreError, ViewCount};
use crate::config::PostgresTarget;
use crate::security::Digest256;
use r2d2_postgres::postgres::error::SqlState;
use r2d2_postgres::postgres::types::Type;
use r2d2_postgres::postgres::{Client, Config, NoTls, Row};
use r2d2_postgres::PostgresConnectionManager;
use std::time::Duration;

const SUMMARY_COLUMNS: &str = "id, title, name, description, created_at, updated_at, view_count";

/// How long a request waits for a pooled connection (or a new one) before answering 503: short,
/// so a lost database gives quick error pages instead of handler threads piling up.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(2);
/// Used when the URI names no `connect_timeout`: a dead host fails in seconds, not minutes.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

mod access;

type Manager = PostgresConnectionManager<NoTls>;

/// Reads and views use `query_typed*`: with the parameter types given, parse, bind and execute
/// go in one round trip instead of a prepare round trip first (pooled connections share no
/// statement cache).
pub(crate) struct PostgresStore {
    pool: r2d2::Pool<Manager>,
}

impl PostgresStore {
    /// Connects once (so a database that is down at start is a clear error, not a pool that
    /// retries quietly), migrates, then builds the pool. Errors name the host and database,
    /// never the password.
    pub fn open(target: &PostgresTarget) -> Result<PostgresStore, String> {
        let mut config: Config = target
            .uri
            .parse()
            .map_err(|e| format!("invalid PostgreSQL URI: {e}"))?;
        let shown = describe(&config);
        let fail = |why: String| format!("cannot open PostgreSQL {shown}: {why}");
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        // The server enforces the timeout, so a slow query is cancelled even while this
        // worker's thread is blocked reading its result; it stays under the worker timeout.
        let millis = target.statement_timeout.as_millis();
        // Notices (e.g. "already exists, skipping") would reach the log as INFO lines.
        config.options(&format!(
            "-c statement_timeout={millis} -c client_min_messages=warning"
        ));
        config.application_name("pyblogd");

        let mut client = config
            .connect(NoTls)
            .map_err(|e| fail(describe_error(&e)))?;
        postgres_schema::migrate(&mut client).map_err(fail)?;
        drop(client);

        let manager = PostgresConnectionManager::new(config, NoTls);
        // `build_unchecked`: the server just answered, and `build` would block for the whole
        // checkout timeout if it stopped answering meanwhile.
        let pool = r2d2::Pool::builder()
            .max_size(target.pool_size)
            // Connections are opened on demand: N workers × H hosts × pool size must stay under
            // the server's max_connections, so idle workers should not hold spare ones.
            .min_idle(Some(0))
            .connection_timeout(CHECKOUT_TIMEOUT)
            // No round trip per checkout: a connection the server dropped fails its query
            // (a 503), r2d2 sees it closed on return and discards it, and the next checkout
            // opens a fresh one.
            .test_on_check_out(false)
            .build_unchecked(manager);
        Ok(PostgresStore { pool })
    }

    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, r2d2_postgres::postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut conn = self
            .pool
            .get()
            .map_err(|e| StoreError::Busy(format!("no database connection available: {e}")))?;
        f(&mut conn).map_err(classify)
    }

    fn summaries(&self, sql: &str, param: i64) -> Result<Vec<PostSummary>, StoreError> {
        self.with(|client| {
            client
                .query_typed(sql, &[(&param, Type::INT8)])?
                .iter()
                .map(summary)
                .collect()
        })
    }
}

impl Store for PostgresStore {
    fn create(
        &self,
        draft: &Draft,
        now: i64,
        key_hash: Option<&Digest256>,
    ) -> Result<i64, StoreError> {
        self.with(|client| {
            access::create(
                client,
                "INSERT INTO posts (created_at, updated_at, view_count, title, name,
                                    description, markdown, html)
                 VALUES ($1, $1, 0, $2, $3, $4, $5, $6) RETURNING id",
                &[
                    &now,
                    &draft.title,
                    &draft.name,
                    &draft.description,
                    &draft.markdown,
                    &draft.html,
                ],
                key_hash,
            )
        })
    }

    fn update(&self, id: i64, draft: &Draft, now: i64) -> Result<bool, StoreError> {
        self.with(|client| {
            let changed = client.execute(
                "UPDATE posts SET title = $2, name = $3, description = $4, markdown = $5,
                                  html = $6, updated_at = $7
                 WHERE id = $1",
                &[
                    &id,
                    &draft.title,
                    &draft.name,
                    &draft.description,
                    &draft.markdown,
                    &draft.html,
                    &now,
                ],
            )?;
            Ok(changed == 1)
        })
    }

    fn delete(&self, id: i64) -> Result<bool, StoreError> {
        self.with(|client| Ok(client.execute("DELETE FROM posts WHERE id = $1", &[&id])? == 1))
    }

    fn find(&self, id: i64) -> Result<Option<Post>, StoreError> {
        let sql = format!("SELECT {SUMMARY_COLUMNS}, markdown, html FROM posts WHERE id = $1");
        self.with(|client| {
            client
                .query_typed_opt(&sql, &[(&id, Type::INT8)])?
                .map(|r| post(&r))
                .transpose()
        })
    }

    /// One statement: the row lock orders concurrent views on every host, and the count it
    /// returns includes exactly this view. The generation is read in the same snapshot.
    fn count_view(&self, id: i64) -> Result<Option<ViewCount>, StoreError> {
        self.with(|client| {
            client
                .query_typed_opt(
                    "WITH counted AS (
                         UPDATE posts SET view_count = view_count + 1 WHERE id = $1
                         RETURNING view_count)
                     SELECT counted.view_count, post_stats.generation
                     FROM counted, post_stats WHERE post_stats.id = 1",
                    &[(&id, Type::INT8)],
                )?
                .map(|r| view_count(&r))
                .transpose()
        })
    }

    fn view_count(&self, id: i64) -> Result<Option<ViewCount>, StoreError> {
        self.with(|client| {
            client
                .query_typed_opt(
                    "SELECT posts.view_count, post_stats.generation
                     FROM posts, post_stats WHERE posts.id = $1 AND post_stats.id = 1",
                    &[(&id, Type::INT8)],
                )?
                .map(|r| view_count(&r))
                .transpose()
        })
    }

    fn latest(&self, offset: u64, limit: u32) -> Result<Vec<PostSummary>, StoreError> {
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM posts ORDER BY created_at DESC, id DESC
             LIMIT {limit} OFFSET $1"
        );
        self.summaries(&sql, offset)
    }

    fn popular_since(&self, since: i64, limit: u32) -> Result<Vec<PostSummary>, StoreError> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM posts WHERE created_at > $1
             ORDER BY view_count DESC, created_at DESC, id DESC LIMIT {limit}"
        );
        self.summaries(&sql, since)
    }

    fn stats(&self) -> Result<Stats, StoreError> {
        self.with(|client| {
            let row = client
                .query_typed_one("SELECT total, generation FROM post_stats WHERE id = 1", &[])?;
            Ok(Stats {
                total: row.try_get::<_, i64>(0)?.max(0) as u64,
                generation: row.try_get::<_, i64>(1)?.max(0) as u64,
            })
        })
    }

    fn unrendered(&self, limit: u32) -> Result<Vec<(i64, String)>, StoreError> {
        let sql = format!("SELECT id, markdown FROM posts WHERE html = '' LIMIT {limit}");
        self.with(|client| {
            client
                .query(&sql, &[])?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect()
        })
    }

    fn set_rendered(&self, id: i64, html: &str, description: &str) -> Result<(), StoreError> {
        self.with(|client| {
            client
                .execute(
                    "UPDATE posts SET html = $2, description = $3 WHERE id = $1 AND html = ''",
                    &[&id, &html, &description],
                )
                .map(|_| ())
        })
    }

    fn edit_key(&self, id: i64) -> Result<Option<Option<Digest256>>, StoreError> {
        self.with(|client| access::edit_key(client, id))
    }

    fn set_edit_key(&self, id: i64, hash: Option<&Digest256>) -> Result<(), StoreError> {
        self.with(|client| access::set_edit_key(client, id, hash))
    }

    fn take_post_token(
        &self,
        client: &str,
        now: f64,
        per_minute: u32,
    ) -> Result<Result<(), Duration>, StoreError> {
        self.with(|conn| access::take_post_token(conn, client, now, per_minute))
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.with(|client| client.simple_query("SELECT 1").map(|_| ()))
    }

    fn export(&self, after_id: i64, limit: u32) -> Result<Vec<Post>, StoreError> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}, markdown, html FROM posts WHERE id > $1
             ORDER BY id LIMIT {limit}"
        );
        self.with(|client| client.query(&sql, &[&after_id])?.iter().map(post).collect())
    }

    /// Upserts by id in one transaction, then moves the id sequence past the largest id so
    /// posts created afterwards do not collide with the imported ones.
    fn import(&self, posts: &[Post]) -> Result<(), StoreError> {
        self.with(|client| {
            let mut tx = client.transaction()?;
            let upsert = tx.prepare(
                "INSERT INTO posts (id, created_at, updated_at, view_count, title, name,
                                    description, markdown, html)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (id) DO UPDATE SET
                     created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
                     view_count = EXCLUDED.view_count, title = EXCLUDED.title,
                     name = EXCLUDED.name, description = EXCLUDED.description,
                     markdown = EXCLUDED.markdown, html = EXCLUDED.html",
            )?;
            for p in posts {
                let s = &p.summary;
                tx.execute(
                    &upsert,
                    &[
                        &s.id,
                        &s.created_at,
                        &s.updated_at,
                        &s.view_count,
                        &s.title,
                        &s.name,
                        &s.description,
                        &p.markdown,
                        &p.html,
                    ],
                )?;
            }
            tx.batch_execute(
                "SELECT setval(pg_get_serial_sequence('posts', 'id'),
                               GREATEST((SELECT MAX(id) FROM posts), 1))",
            )?;
            tx.commit()
        })
    }
}

fn summary(row: &Row) -> Result<PostSummary, r2d2_postgres::postgres::Error> {
    Ok(PostSummary {
        id: row.try_get(0)?,
        title: row.try_get(1)?,
        name: row.try_get(2)?,
        description: row.try_get(3)?,
        created_at: row.try_get(4)?,
        updated_at: row.try_get(5)?,
        view_count: row.try_get(6)?,
    })
}

fn post(row: &Row) -> Result<Post, r2d2_postgres::postgres::Error> {
    Ok(Post {
        summary: summary(row)?,
        markdown: row.try_get(7)?,
        html: row.try_get(8)?,
    })
}

fn view_count(row: &Row) -> Result<ViewCount, r2d2_postgres::postgres::Error> {
    Ok(ViewCount {
        views: row.try_get(0)?,
        generation: row.try_get::<_, i64>(1)?.max(0) as u64,
    })
}

/// Sorts Postgres failures into what a handler can act on. A lost connection, a server
/// shutting down or starting, a statement timeout, or a lock conflict is temporary: 503 with
/// `Retry-After`. A read-only server (a standby) or a full disk refuses writes only.
fn classify(err: r2d2_postgres::postgres::Error) -> StoreError {
    let message = describe_error(&err);
    let Some(code) = err.code() else {
        // No SQLSTATE: the connection itself failed (closed, reset, timed out).
        return StoreError::Busy(message);
    };
    let temporary = [
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::QUERY_CANCELED,
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::LOCK_NOT_AVAILABLE,
        SqlState::TOO_MANY_CONNECTIONS,
    ];
    if code.code().starts_with("08") || temporary.contains(code) {
        StoreError::Busy(message)
    } else if [SqlState::READ_ONLY_SQL_TRANSACTION, SqlState::DISK_FULL].contains(code) {
        StoreError::Unwritable(message)
    } else {
        StoreError::Failed(message)
    }
}

/// The server's own message when there is one (`Error`'s Display says only "db error").
fn describe_error(err: &r2d2_postgres::postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => match std::error::Error::source(err) {
            Some(cause) => format!("{err}: {cause}"),
            None => err.to_string(),
        },
    }
}

/// `user@host:port/dbname`, for error messages: never the password.
fn describe(config: &Config) -> String {
    use r2d2_postgres::postgres::config::Host;
    let user = config.get_user().unwrap_or("");
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or(user);
    format!("{user}@{host}:{port}/{db}")
}
