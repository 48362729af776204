//! Errors of the blog crate: what can stop an [`App`](crate::App) from starting.
//!
//! Request-time problems are not errors of this kind: they become error pages (see `failure`).

/// What can go wrong building the app.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be opened, created or migrated, e.g.
    /// `cannot open /srv/blog.db: file is not a database`.
    #[error("database: {0}")]
    Database(String),
    /// A template (embedded or from the override directory) failed to load or parse.
    #[error("templates: {0}")]
    Template(String),
    /// The static override directory exists but could not be read.
    #[error("static files: {0}")]
    Static(String),
}
