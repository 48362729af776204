//! The blog's configuration, as resolved by the binary, and `DATABASE_URI` parsing.
//!
//! The binary builds one [`Config`] from its CLI, environment and `.env`; the blog only reads it.
//! `DATABASE_URI` keeps SQLAlchemy's spelling so an operator of the original can reuse their
//! `.env` unchanged: three slashes then a relative path, four slashes for an absolute one.

use std::path::PathBuf;

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
}

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
            "postgres" | "postgresql" => Err(format!(
                "DATABASE_URI {uri:?}: PostgreSQL is not supported yet; \
                 use sqlite:///relative/blog.db or sqlite:////absolute/blog.db"
            )),
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
    fn unsupported_targets_say_why() {
        let pg = DatabaseTarget::parse("postgresql://u:p@localhost/blog").unwrap_err();
        assert!(pg.contains("PostgreSQL is not supported"), "{pg}");
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
