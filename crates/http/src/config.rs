//! What a caller hands [`serve`](crate::serve()) and gets back: the listening sockets, the
//! server's settings and limits, and why it returned.
//!
//! Plain data with gunicorn's defaults and no behaviour of its own, kept apart from `serve` so
//! the parser (which needs [`Limits`]) does not depend on the serving machinery.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixListener;
use std::time::Duration;

/// A listening socket handed in by the caller (already bound and listening).
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    pub(crate) fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(true),
            Listener::Unix(l) => l.set_nonblocking(true),
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l) => l.as_fd(),
        }
    }
}

/// Request limits, with gunicorn's flag names and defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `--limit-request-line`: longest request line in bytes (4094; 0 = no limit of its own, but
    /// still at most 64 KiB so a line that never ends is bounded) → 414.
    pub request_line: usize,
    /// `--limit-request-fields`: most header fields (100) → 431.
    pub request_fields: usize,
    /// `--limit-request-field_size`: longest header field, name + value (8190) → 431.
    pub request_field_size: usize,
    /// `--limit-request-body`: largest body in bytes (1 MiB) → 413 without reading it.
    pub request_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_line: 4094,
            request_fields: 100,
            request_field_size: 8190,
            request_body: 1024 * 1024,
        }
    }
}

/// How one server instance behaves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Handler threads (`--threads`).
    pub threads: usize,
    /// Idle time allowed between requests on a keep-alive connection (`--keep-alive`).
    pub keep_alive: Duration,
    /// Time allowed to receive a complete request head (→ 408 and close).
    pub header_timeout: Duration,
    /// Time allowed to receive a complete body once its head arrived (→ 408 and close).
    pub body_timeout: Duration,
    /// Time allowed for writing one response.
    pub write_timeout: Duration,
    /// After serving this many requests, stop accepting, drain and return (`None` = never).
    pub max_requests: Option<u64>,
    /// How long a stop may spend draining in-flight requests before returning anyway.
    pub graceful_timeout: Duration,
    pub limits: Limits,
    /// Most connections held open at once; beyond it new ones are closed at once.
    pub max_connections: usize,
    /// Peers whose `X-Forwarded-For` names the client (`--forwarded-allow-ips`).
    pub forwarded_allow_ips: crate::ForwardedAllow,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            threads: 4,
            keep_alive: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_requests: None,
            graceful_timeout: Duration::from_secs(30),
            limits: Limits::default(),
            max_connections: 10_000,
            forwarded_allow_ips: crate::ForwardedAllow::default(),
        }
    }
}

/// Why [`serve`](crate::serve()) returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeOutcome {
    /// `Control::should_stop` turned true and in-flight requests were drained.
    Stopped,
    /// `max_requests` were served; the caller should exit so a fresh process replaces it.
    Recycled,
}
