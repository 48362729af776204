//! Errors of the supervisor.

/// What can go wrong in the master.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("invalid bind address {0:?}")]
    BadAddress(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("worker failed to boot: {0}")]
    Boot(String),
}
