//! The public face of the server: its configuration types and [`serve`], which wires the
//! poller thread (the calling thread) to a pool of handler threads and waits for the drain.
//!
//! `serve` owns the threads it starts: on a normal return every handler thread has been
//! joined. Only when `graceful_timeout` runs out with a request still running are the busy
//! threads left behind (a thread cannot be cancelled); the caller is expected to exit then.

use crate::dispatch::Dispatch;
use crate::poller::Poller;
use crate::{pool, Control, Handler};
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A listening socket handed in by the caller (already bound and listening).
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    fn set_nonblocking(&self) -> io::Result<()> {
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

/// Why [`serve`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeOutcome {
    /// `Control::should_stop` turned true and in-flight requests were drained.
    Stopped,
    /// `max_requests` were served; the caller should exit so a fresh process replaces it.
    Recycled,
}

/// Serves `listeners` with `handler` until `control` asks to stop or `max_requests` is reached.
///
/// The calling thread becomes the poller; `config.threads` handler threads are started and
/// joined before a normal return. Listeners are made non-blocking and closed when the drain
/// begins. Errors are start-up failures (threads, the wake pipe) or a failing poll(2).
pub fn serve(
    listeners: Vec<Listener>,
    handler: Arc<dyn Handler>,
    config: &ServerConfig,
    control: Arc<dyn Control>,
) -> io::Result<ServeOutcome> {
    if config.threads == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "threads must be at least 1",
        ));
    }
    crate::panic_capture::install_hook();
    for listener in &listeners {
        listener.set_nonblocking()?;
    }
    let (wake_rx, wake_tx) = UnixStream::pair()?;
    wake_rx.set_nonblocking(true)?;
    wake_tx.set_nonblocking(true)?;
    let dispatch = Arc::new(Dispatch::new(config.clone(), handler, control, wake_tx));
    let mut threads = Vec::with_capacity(config.threads);
    for index in 0..config.threads {
        let shared = Arc::clone(&dispatch);
        let spawned = std::thread::Builder::new()
            .name(format!("http-handler-{index}"))
            .spawn(move || pool::run(&shared, index));
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                stop_pool(&dispatch, threads);
                return Err(io::Error::new(
                    e.kind(),
                    format!("starting handler thread {index}: {e}"),
                ));
            }
        }
    }
    let outcome = Poller::new(&dispatch, listeners, wake_rx).run();
    stop_pool(&dispatch, threads);
    outcome
}

/// Closes the job queue and joins the handler threads, unless some are still busy (after a
/// graceful timeout): those are left to finish or die with the process.
fn stop_pool(dispatch: &Dispatch, threads: Vec<JoinHandle<()>>) {
    dispatch.close_queue();
    if dispatch.busy() > 0 {
        log::warn!("leaving {} busy handler threads behind", dispatch.busy());
        return;
    }
    for thread in threads {
        if thread.join().is_err() {
            log::error!("a handler thread panicked outside a request");
        }
    }
}
