//! Errors of the blog crate.

/// What can go wrong building or running the app.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Database(String),
    #[error("templates: {0}")]
    Template(String),
}
