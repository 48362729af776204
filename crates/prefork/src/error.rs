//! Errors of the supervisor: what stops the master from starting or running.
//!
//! A worker that fails is not an error of the master: it is logged and replaced, or ends the
//! run with an exit status (see `exit_code`).

use std::path::PathBuf;

/// What can go wrong in the master.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The cause is part of the message and deliberately not a `source`: printing the error
    // with its chain (anyhow's `{:#}`) must not say it twice.
    #[error("cannot bind {addr}: {cause}")]
    Bind { addr: String, cause: std::io::Error },
    #[error("invalid bind address {0:?}")]
    BadAddress(String),
    #[error("{context}: {cause}")]
    Io {
        context: String,
        cause: std::io::Error,
    },
    #[error("worker failed to boot: {0}")]
    Boot(String),
    #[error("pidfile {} names a running process ({pid}): is another server running?", path.display())]
    PidfileInUse { path: PathBuf, pid: u32 },
}

impl Error {
    /// An [`Error::Io`] saying what was being done.
    pub(crate) fn io(context: impl Into<String>, source: impl Into<std::io::Error>) -> Error {
        Error::Io {
            context: context.into(),
            cause: source.into(),
        }
    }
}
