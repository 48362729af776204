//! The blog's configuration, as resolved by the binary, and `DATABASE_URI` parsing.
//!
//! The binary builds one [`Config`] from its CLI, environment and `.env`; the blog only reads it.
//! `DATABASE_URI` keeps SQLAlchemy's spelling so an operator of the original can reuse their
//! `.env` unchanged: three slashes then a relative path, four slashes for an absolute one;
//! `postgres://…` as libpq spells it.

use std::path::PathBuf;
use std::time::Duration;

/// `MODE`: development shows tracebacks and reloads templates; production hides internals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Development,
    Production,
}

/// Where the posts live, parsed from `DATABASE_URI` (SQLAlchemy's URI forms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// `sqlite:///relative/blog.db`, `sqlite:////absolute/blog.db`; default `blog.db`.
    /// A relative path is resolved against the working directory when the app opens it.
    Sqlite(PathBuf),
    /// `postgres://user:password@host:port/dbname?…` or `postgresql://…` (libpq's URI form).
    Postgres(PostgresTarget),
}

/// A PostgreSQL database and how each worker's pool talks to it.
///
/// Two query parameters are pyblogd's own and taken out of the URI before it reaches the
/// driver: `pool_size` (connections per worker, default 8) and `statement_timeout` (seconds,
/// default 10, kept under the worker `--timeout` of 30 so a slow query is cancelled by the
/// server before the master kills the worker). libpq's `connect_timeout` (seconds, default 5
/// here) and `sslmode=disable|prefer` pass through; TLS itself is not built in, so `prefer`
/// connects in plain text and `require` fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresTarget {
    /// The URI handed to the driver (may hold a password: never log it).
    pub uri: String,
    pub pool_size: u32,
    pub statement_timeout: Duration,
}

impl PostgresTarget {
    /// The URI with any password replaced by `***`, for logs and `--check-config`.
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.uri.split_once("://") else {
            return self.uri.clone();
        };
        match rest.split_once('@') {
            Some((userinfo, host)) if userinfo.contains(':') && !userinfo.contains('/') => {
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{scheme}://{user}:***@{host}")
            }
            _ => self.uri.clone(),
        }
    }
}

/// Per worker: N workers × H hosts × this must stay under the server's `max_connections`
/// (100 by default), and a worker rarely runs more queries at once than it has cores.
const DEFAULT_POOL_SIZE: u32 = 8;
const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The file used when `DATABASE_URI` is empty or unset.
const DEFAULT_SQLITE_FILE: &str = "blog.db";

impl DatabaseTarget {
    /// Parses a `DATABASE_URI`; anything unsupported is an error with a readable message.
    ///
    /// Accepted: empty (→ `blog.db` in the working directory), `sqlite:///relative/path.db`,
    /// `sqlite:////absolute/path.db`, and SQLAlchemy's driver form `sqlite+pysqlite:///…`.
    pub fn parse(uri: &str) -> Result<DatabaseTarget, String> {
        let uri = uri.trim();
        if uri.is_empty() {
            return Ok(DatabaseTarget::Sqlite(PathBuf::from(DEFAULT_SQLITE_FILE)));
        }
        let Some((scheme, rest)) = uri.split_once("://") else {
            return Err(format!(
                "DATABASE_URI {uri:?} is not a database URI: expected sqlite:///relative/blog.db \
                 or sqlite:////absolute/blog.db"
            ));
        };
        // SQLAlchemy spells drivers as `dialect+driver`; only the dialect matters here.
        let dialect = scheme
            .split('+')
            .next()
            .unwrap_or(scheme)
            .to_ascii_lowercase();
        match dialect.as_str() {
            "sqlite" => parse_sqlite(uri, rest),
            "postgres" | "postgresql" => parse_postgres(uri, rest),
            _ => Err(format!(
                "DATABASE_URI {uri:?}: unsupported database {dialect:?}; \
                 use sqlite:///relative/blog.db or sqlite:////absolute/blog.db"
            )),
        }
    }
}

/// `rest` is what follows `sqlite://`: an empty host, a slash, then the path.
fn parse_sqlite(uri: &str, rest: &str) -> Result<DatabaseTarget, String> {
    if rest.contains('?') || rest.contains('#') {
        return Err(format!(
            "DATABASE_URI {uri:?}: query parameters are not supported; give only the file path"
        ));
    }
    let Some(path) = rest.strip_prefix('/') else {
        return Err(format!(
            "DATABASE_URI {uri:?}: a host is not allowed for SQLite; \
             use sqlite:///relative/blog.db or sqlite:////absolute/blog.db"
        ));
    };
    if path.is_empty() || path == ":memory:" {
        return Err(format!(
            "DATABASE_URI {uri:?}: an in-memory database is not supported \
             (each worker would see its own empty blog); name a file"
        ));
    }
    if path.ends_with('/') {
        return Err(format!(
            "DATABASE_URI {uri:?}: the path names a directory, not a file"
        ));
    }
    Ok(DatabaseTarget::Sqlite(PathBuf::from(path)))
}

/// `rest` follows `scheme://`. pyblogd's own parameters are taken out; the driver checks the
/// rest when the store opens (and that error names the problem).
fn parse_postgres(uri: &str, rest: &str) -> Result<DatabaseTarget, String> {
    let (base, query) = match rest.split_once('?') {
        Some((base, query)) => (base, query),
        None => (rest, ""),
    };
    let mut pool_size = DEFAULT_POOL_SIZE;
    let mut statement_timeout = DEFAULT_STATEMENT_TIMEOUT;
    let mut passed = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "pool_size" => {
                pool_size = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| {
                        format!("DATABASE_URI: pool_size {value:?} is not a number from 1 to 1000")
                    })?;
            }
            "statement_timeout" => {
                let seconds: f64 = value.parse().ok().filter(|s: &f64| *s > 0.0 && *s <= 86_400.0).ok_or_else(
                    || format!("DATABASE_URI: statement_timeout {value:?} is not a number of seconds (0 < s ≤ 86400)"),
                )?;
                statement_timeout = Duration::from_secs_f64(seconds);
            }
            _ => passed.push(pair),
        }
    }
    if base.trim_start_matches('/').is_empty() && passed.is_empty() && !uri.contains('@') {
        return Err(format!(
            "DATABASE_URI {uri:?}: name a server, e.g. postgres://user:password@host/dbname"
        ));
    }
    // The driver accepts both schemes; it is handed `postgresql://` plus what is left.
    let mut driver_uri = format!("postgresql://{base}");
    if !passed.is_empty() {
        driver_uri.push('?');
        driver_uri.push_str(&passed.join("&"));
    }
    // Checked here, so a bad URI stops the server before it starts (exit 2), not each worker.
    let config: r2d2_postgres::postgres::Config = driver_uri
        .parse()
        .map_err(|e| format!("DATABASE_URI: not a valid PostgreSQL URI: {e}"))?;
    if config.get_ssl_mode() == r2d2_postgres::postgres::config::SslMode::Require {
        return Err(
            "DATABASE_URI: sslmode=require needs TLS, which pyblogd does not build in; \
                    use sslmode=prefer or disable over a private network"
                .to_string(),
        );
    }
    Ok(DatabaseTarget::Postgres(PostgresTarget {
        uri: driver_uri,
        pool_size,
        statement_timeout,
    }))
}

/// Everything the blog needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseTarget,
    pub mode: Mode,
    /// `SITE_URL`: absolute base for canonical / Open Graph URLs; `None` omits those tags.
    pub site_url: Option<String>,
    /// Override directory for templates (used when it exists), e.g. `./templates`.
    pub templates_dir: PathBuf,
    /// Override directory for static files (used when it exists), e.g. `./static`.
    pub static_dir: PathBuf,
    /// `PYBLOGD_FAULT_ROUTES=1`: enables `/__fault/*` test routes.
    pub fault_routes: bool,
    /// `ADMIN_TOKEN`: enables `/admin/login`, whose session may edit and delete any post.
    /// `None`: no admin.
    pub admin_token: Option<String>,
    /// `POST_RATE_LIMIT`: POSTs a minute per client address; 0 turns the limit off.
    pub post_rate_limit: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(path: &str) -> Result<DatabaseTarget, String> {
        Ok(DatabaseTarget::Sqlite(PathBuf::from(path)))
    }

    #[test]
    fn empty_means_blog_db_in_the_working_directory() {
        assert_eq!(DatabaseTarget::parse(""), sqlite("blog.db"));
        assert_eq!(DatabaseTarget::parse("   "), sqlite("blog.db"));
    }

    #[test]
    fn three_slashes_are_relative_four_are_absolute() {
        assert_eq!(
            DatabaseTarget::parse("sqlite:///blog.db"),
            sqlite("blog.db")
        );
        assert_eq!(
            DatabaseTarget::parse("sqlite:///data/posts.db"),
            sqlite("data/posts.db")
        );
        assert_eq!(
            DatabaseTarget::parse("sqlite:////var/lib/b.db"),
            sqlite("/var/lib/b.db")
        );
        assert_eq!(DatabaseTarget::parse("SQLite:///x.db"), sqlite("x.db"));
        assert_eq!(
            DatabaseTarget::parse("sqlite+pysqlite:///x.db"),
            sqlite("x.db")
        );
    }

    #[test]
    fn postgres_keeps_driver_parameters_and_takes_out_ours() {
        let target = DatabaseTarget::parse(
            "postgres://u:p@db.example:6543/blog?pool_size=3&sslmode=prefer&statement_timeout=2.5",
        );
        assert_eq!(
            target,
            Ok(DatabaseTarget::Postgres(PostgresTarget {
                uri: "postgresql://u:p@db.example:6543/blog?sslmode=prefer".to_string(),
                pool_size: 3,
                statement_timeout: Duration::from_millis(2500),
            }))
        );
        let plain = DatabaseTarget::parse("postgresql://localhost/blog");
        assert_eq!(
            plain,
            Ok(DatabaseTarget::Postgres(PostgresTarget {
                uri: "postgresql://localhost/blog".to_string(),
                pool_size: DEFAULT_POOL_SIZE,
                statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            }))
        );
        for bad in [
            "postgres://h/db?pool_size=0",
            "postgres://h/db?pool_size=x",
            "postgres://h/db?statement_timeout=-1",
            "postgres://",
            "postgres://h/db?sslmode=require",
            "postgres://h/db?sslmode=bogus",
            "postgres://h:notaport/db",
        ] {
            assert!(
                DatabaseTarget::parse(bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn unsupported_targets_say_why() {
        let my = DatabaseTarget::parse("mysql://localhost/blog").unwrap_err();
        assert!(my.contains("unsupported database \"mysql\""), "{my}");
        let junk = DatabaseTarget::parse("blog.db").unwrap_err();
        assert!(junk.contains("not a database URI"), "{junk}");
        for bad in [
            "sqlite://",
            "sqlite:///",
            "sqlite://:memory:",
            "sqlite:///:memory:",
            "sqlite://host/x.db",
            "sqlite:///x.db?mode=ro",
            "sqlite:///dir/",
        ] {
            assert!(
                DatabaseTarget::parse(bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }
}
