//! Master/worker supervisor for pyblogd, in the shape of gunicorn's arbiter.
//!
//! It knows nothing of HTTP. The master binds listeners (or inherits them from systemd or its own
//! re-exec), forks workers, answers operators' signals, watches heartbeats in shared memory, and
//! replaces workers that die or hang. Each worker runs [`Service::boot_worker`] with a
//! [`WorkerContext`]. All `unsafe` of the project (fork, mmap, prctl) lives in `sys`.
//!
//! Module map (contract; the implementation adds modules as it needs):
//! - `listener` — [`BindAddress`], [`Listener`], binding and inherited fds.
//! - `arbiter` — the master loop and its state machine.
//! - `worker` — [`WorkerContext`], [`Monitor`]: the child's side.
//! - `sys` — the unsafe calls, each with a SAFETY note.

mod error;
mod listener;
mod worker;

pub use error::Error;
pub use listener::{BindAddress, Listener};
pub use worker::{BootError, Monitor, WorkerContext};

use std::path::PathBuf;
use std::time::Duration;

/// Supervisor settings; rebuilt by [`Service::reload`] on HUP.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Number of workers (`-w`).
    pub workers: usize,
    /// Threads per worker: the number of activity slots each worker gets in shared memory.
    pub threads: usize,
    /// Kill a worker silent (or stuck on one task) for longer than this; `None` = never.
    pub timeout: Option<Duration>,
    /// How long a stopping worker may drain before it is killed.
    pub graceful_timeout: Duration,
    /// Recycle a worker after this many requests, plus up to `max_requests_jitter` more.
    pub max_requests: Option<u64>,
    pub max_requests_jitter: u64,
    /// `--pid`: written atomically at start, removed on exit.
    pub pidfile: Option<PathBuf>,
    /// Process title prefix / name used in log lines, e.g. `pyblogd`.
    pub proc_name: String,
}

/// What the supervisor runs: implemented by the binary.
pub trait Service {
    /// The current settings.
    fn settings(&self) -> Settings;
    /// HUP: re-read configuration (environment, `.env`) and validate it. On `Err` the master
    /// logs the message and keeps the running generation and configuration.
    fn reload(&mut self) -> Result<(), String>;
    /// USR1 (master and workers): reopen log files.
    fn reopen_logs(&self);
    /// Runs in a freshly forked worker (or in-process with `run_single`): build per-process state
    /// (database pool, templates), call `ctx.monitor.ready()`, serve until `monitor.should_stop()`.
    fn boot_worker(&self, ctx: WorkerContext) -> Result<(), BootError>;
}
