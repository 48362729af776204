//! Master/worker supervisor for pyblogd, in the shape of gunicorn's arbiter.
//!
//! It knows nothing of HTTP. The master binds listeners (or inherits them from systemd or its own
//! re-exec), forks workers, answers operators' signals, watches heartbeats in shared memory, and
//! replaces workers that die or hang. Each worker runs [`Service::boot_worker`] with a
//! [`WorkerContext`]. All `unsafe` of the project (fork, mmap, raw signal actions, malloc_trim)
//! lives in `sys`.
//!
//! Module map:
//! - `listener` — [`BindAddress`], [`Listener`]; `bind` — [`bind`], systemd and USR2 sockets.
//! - `arbiter` — the master loop and its state machine; `roster` — the master's worker records
//!   and the words for each death; `backoff` — retrying workers that fail to boot.
//! - `worker` — [`WorkerContext`], [`Monitor`]: the child's side; `single` — [`run_single`].
//! - `table` — the shared-memory worker table; `protocol` — exit codes and the other child →
//!   master conventions ([`exit_code`]).
//! - `status` — [`Status`], what `pyblogd status` shows, and [`query`], its client; `control` —
//!   the master's non-blocking control socket that answers it.
//! - `metrics` — the master's counters and their Prometheus text; `metrics_listener` — the
//!   `--metrics-bind` scrape endpoint, non-blocking like the control socket.
//! - `signals` — the master's signal queue and masking around fork; `pidfile`; `notify` —
//!   sd_notify; `upgrade` — USR2 re-exec; `sys` — the unsafe calls, each with a SAFETY note.
//! - [`release_free_memory`] — hands a worker's freed heap back to the OS (`malloc_trim`).
//!
//! # Signals (master)
//! | signal | effect |
//! |---|---|
//! | `TERM` | graceful stop: workers get TERM and drain for `graceful_timeout`, then SIGKILL; the master closes its listeners, removes the pidfile and its Unix sockets, returns 0 |
//! | `INT`, `QUIT` | quick stop: workers get QUIT (they exit at once), SIGKILL after 1 s |
//! | `HUP` | [`Service::reload`]; on success a new generation boots and the old one gets TERM only once every new worker called [`Monitor::ready`]; if the reload or the new generation fails, the old generation keeps serving |
//! | `TTIN` / `TTOU` | one worker more / fewer (never below one; TTOU retires the oldest gracefully) |
//! | `USR1` | [`Service::reopen_logs`] in the master, forwarded to every worker |
//! | `USR2` | binary upgrade, below |
//!
//! Workers: TERM = stop accepting and drain ([`Monitor::should_stop`], [`Monitor::wake_fd`]),
//! INT/QUIT = exit at once, USR1 = reopen logs. One signal thread per worker receives them; the
//! thread that runs `boot_worker` and every thread it starts keep them blocked, so server code
//! never sees EINTR from them. A worker gets SIGKILL when the master dies (`PR_SET_PDEATHSIG`),
//! and stops by itself if [`Monitor::heartbeat`] finds the master gone.
//!
//! # Zero-downtime binary upgrade (USR2)
//! 1. Install the new binary at the same path.
//! 2. `kill -USR2 $(cat PIDFILE)`. The old master renames `PIDFILE` to `PIDFILE.oldbin` and
//!    execs the binary with its original arguments; the new master adopts the listening
//!    sockets (`PYBLOGD_LISTEN_FDS`), writes `PIDFILE`, boots its workers. Both serve now.
//! 3. Check the new one (its log says `Listening at:`, requests show new workers).
//! 4. `kill -TERM $(cat PIDFILE.oldbin)`: the old master drains its workers and exits, leaving
//!    the sockets (and Unix socket files) to the new one; under systemd it hands `MAINPID=` over.
//!
//! To roll back instead, `kill -TERM $(cat PIDFILE)` (the new master): the old master sees it
//! exit and renames `PIDFILE.oldbin` back to `PIDFILE`. Under systemd use `Type=notify` with
//! `NotifyAccess=all`, so the new master may announce itself (`MAINPID=`, `READY=1`).
//!
//! # Exit status of [`run`]
//! [`exit_code::OK`] after a stop; [`exit_code::BOOT_FAILED`] when a worker failed to boot
//! before any worker had booted (its message is logged first); `Err` when the master itself
//! cannot run (pidfile in use, signals, fork). Every path kills and reaps all workers first.

mod arbiter;
mod backoff;
mod bind;
mod control;
mod error;
mod listener;
mod metrics;
mod metrics_listener;
mod notify;
mod pidfile;
mod protocol;
mod roster;
mod signals;
mod single;
mod status;
// The one module allowed unsafe code: fork, mmap, raw signal actions, malloc_trim; every
// block carries a SAFETY note (clippy::undocumented_unsafe_blocks denies one without).
#[allow(unsafe_code)]
mod sys;
mod table;
mod upgrade;
mod worker;

pub use bind::bind;
pub use error::Error;
pub use listener::{BindAddress, Listener};
pub use metrics::CounterSeries;
pub use protocol::exit_code;
pub use status::{control_socket_path, query, QueryError, Status, TaskStatus, WorkerStatus};
pub use table::{COUNTERS, LABEL_LEN};
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
    /// Process title prefix / name used in log lines, e.g. `pyblogd`; also the metric prefix.
    pub proc_name: String,
    /// `--metrics-bind`: where the master serves Prometheus text; `None` = no listener.
    /// Bound once at start (like the listeners); a reload does not move it.
    pub metrics_bind: Option<std::net::SocketAddr>,
    /// Names for the generic counters workers add to ([`Monitor::add_to_counter`]): entry `i`
    /// names counter `i`. Read at start; a reload keeps the first names.
    pub counters: Vec<CounterSeries>,
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
    /// The configuration in a few `name = value` pairs for [`Status::config`].
    fn summary(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Runs in a freshly forked worker (or in-process with `run_single`): build per-process state
    /// (database pool, templates), call `ctx.monitor.ready()`, serve until `monitor.should_stop()`.
    fn boot_worker(&self, ctx: WorkerContext) -> Result<(), BootError>;
}

/// Runs the master until it is stopped; returns the exit status for the process.
///
/// `listeners` come from [`bind`]. The master stays single-threaded (forking refuses
/// otherwise), so call this before starting any thread. `Sync` lets each worker reopen its
/// logs on USR1 from a small thread while [`Service::boot_worker`] serves. The master never
/// calls `boot_worker` itself. See the crate docs for signals, upgrade and exit statuses.
pub fn run(service: impl Service + Sync, listeners: Vec<Listener>) -> Result<i32, Error> {
    arbiter::Arbiter::new(service, listeners)?.run()
}

/// `--single-process`: runs [`Service::boot_worker`] on this thread, without fork.
///
/// TERM stops gracefully (the service drains; exit after `graceful_timeout` at the latest),
/// INT/QUIT quickly (one second), USR1 reopens logs; HUP, TTIN, TTOU and USR2 are ignored.
/// The [`Monitor`] works as in a worker, its slot in local memory; no one reads heartbeats.
/// Returns [`exit_code::OK`], or the worker's exit code ([`exit_code::BOOT_FAILED`] when
/// `boot_worker` failed before `ready()`) after logging why.
pub fn run_single(service: impl Service + Sync, listeners: Vec<Listener>) -> Result<i32, Error> {
    single::run_single(service, listeners)
}

/// Gives the memory that a worker has freed back to the OS, so its resident size shrinks
/// after a burst of work instead of staying at its peak.
///
/// glibc keeps freed memory in its arenas (one per thread, up to eight per CPU) and returns
/// only the top of the main heap by itself; this walks every arena and releases each free
/// page (`malloc_trim(0)`). It costs time in proportion to the heap's size, with each arena
/// locked in turn, so call it after work that freed a lot (a component retiring), never per
/// request. Returns true when memory was released; with another C library, a no-op (false).
pub fn release_free_memory() -> bool {
    sys::malloc_trim()
}
