//! The blog's configuration, as resolved by the binary (contract; implementation to follow).

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
    Sqlite(PathBuf),
}

impl DatabaseTarget {
    /// Parses a `DATABASE_URI`; anything unsupported is an error with a readable message.
    pub fn parse(uri: &str) -> Result<DatabaseTarget, String> {
        let _ = uri;
        Err("not yet built".to_string())
    }
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
}
