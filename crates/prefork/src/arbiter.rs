//! The master process: keeps N workers alive and answers operators' signals.
//!
//! It never serves requests and never opens the database. Each turn it sleeps on the signal
//! pipe for at most a second, then handles queued signals, reaps exited children, kills workers
//! whose heartbeat went stale, and spawns or retires workers until the count and generation are
//! right. Every decision is made here, in one thread; state changes only in `handle_*`.
//!
//! Submodules: `reload` (HUP and generations), `commands` (stop, TTIN/TTOU, USR1, USR2),
//! `lifecycle` (spawn, reap, murder, manage), `observe` (the status on the control socket).

mod commands;
mod lifecycle;
mod observe;
mod reload;

use crate::backoff::Backoff;
use crate::control::ControlSocket;
use crate::metrics::Counters;
use crate::metrics_listener::MetricsListener;
use crate::pidfile::{is_running, Pidfile};
use crate::roster::Roster;
use crate::signals::{name, Event, SignalQueue};
use crate::table::WorkerTable;
use crate::{bind, notify, upgrade, Error, Listener, Service, Settings};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use sd_notify::NotifyState;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest sleep between two turns of the loop.
const TICK: Duration = Duration::from_secs(1);
/// How long workers get to exit after INT/QUIT before they are killed.
const QUICK_STOP_GRACE: Duration = Duration::from_secs(1);
/// Workers TTIN may add beyond `--workers`; the table holds two generations of that many.
const TTIN_HEADROOM: usize = 8;
/// A booted worker that dies sooner than this counts as a failed boot: without it a worker
/// that returns right after `ready()` would be respawned in a tight loop.
const MIN_LIFETIME: Duration = Duration::from_secs(1);
/// Most task sub-slots per worker; threads beyond are served but not tracked.
const MAX_TASKS: usize = 1024;

/// Where the master is in its life.
enum State {
    /// Serving with generation `Arbiter::generation`.
    Running,
    /// Generation `generation` boots beside `previous`, which serves until all new workers are
    /// ready. The previous settings come back if the new generation cannot boot.
    Reloading {
        generation: u64,
        previous: u64,
        previous_settings: Box<Settings>,
        previous_wanted: usize,
    },
    /// Workers were told to stop; the rest are killed at `deadline`; then `run` returns `status`.
    Stopping {
        graceful: bool,
        deadline: Instant,
        status: i32,
    },
}

pub(crate) struct Arbiter<S: Service + Sync> {
    service: S,
    settings: Settings,
    /// Closed (emptied) when stopping, so the master holds no listening socket open.
    listeners: Vec<Listener>,
    unix_paths: Vec<PathBuf>,
    table: Arc<WorkerTable>,
    signals: SignalQueue,
    roster: Roster,
    state: State,
    generation: u64,
    /// Workers per generation: `settings.workers`, moved by TTIN/TTOU.
    wanted: usize,
    /// Some worker called `ready()` since start: boot failures are retried, not fatal.
    ever_booted: bool,
    announced_ready: bool,
    backoff: Backoff,
    pidfile: Option<Pidfile>,
    /// The master that started us on USR2, while it may still run.
    predecessor: Option<Pid>,
    /// The master we started on USR2, until it exits.
    successor: Option<Pid>,
    pid: Pid,
    started_at: Instant,
    /// `PIDFILE.ctl`, answering `pyblogd status`; none without a pidfile.
    control: Option<ControlSocket>,
    /// `--metrics-bind`, and what the master counts for it.
    metrics: Option<MetricsListener>,
    counters: Counters,
    /// Names of the generic worker counters, from the first settings (a reload keeps them,
    /// so a series never changes meaning while the master runs).
    counter_series: Vec<crate::CounterSeries>,
}

impl<S: Service + Sync> Arbiter<S> {
    pub(crate) fn new(service: S, listeners: Vec<Listener>) -> Result<Self, Error> {
        let settings = sane(service.settings());
        let capacity = 2 * (settings.workers + TTIN_HEADROOM);
        let tasks = settings.threads.min(MAX_TASKS);
        let table = WorkerTable::shared(capacity, tasks)
            .map_err(|e| Error::io("mapping the worker table", e))?;
        let signals =
            SignalQueue::install().map_err(|e| Error::io("installing signal handlers", e))?;
        let predecessor = upgrade::predecessor_from_env();
        if let Some(old) = predecessor {
            log::info!("Started by master {old} (USR2): TERM it once this master serves");
        }
        let pidfile = match &settings.pidfile {
            Some(path) => Some(Pidfile::create(path, predecessor)?),
            None => None,
        };
        log::info!("Using worker: prefork (threads: {})", settings.threads);
        let control = settings.pidfile.as_deref().and_then(observe::bind_control);
        let counter_series = settings.counters.clone();
        let metrics = match settings.metrics_bind {
            Some(addr) => observe::bind_metrics(addr, predecessor.is_some())?,
            None => None,
        };
        Ok(Arbiter {
            service,
            wanted: settings.workers,
            settings,
            unix_paths: bind::unix_paths(&listeners),
            listeners,
            table: Arc::new(table),
            signals,
            roster: Roster::default(),
            state: State::Running,
            generation: 1,
            ever_booted: false,
            announced_ready: false,
            backoff: Backoff::default(),
            pidfile,
            predecessor,
            successor: None,
            pid: nix::unistd::getpid(),
            started_at: Instant::now(),
            control,
            metrics,
            counters: Counters::default(),
            counter_series,
        })
    }

    /// The arbiter loop; returns the process exit status.
    pub(crate) fn run(mut self) -> Result<i32, Error> {
        // Spawn the first generation at once: waiting for the first tick would add a whole
        // second to every start (and to every USR2 hand-over).
        self.manage();
        loop {
            let events = self.signals.wait(self.sleep_time(), &self.watched_fds());
            for event in events.map_err(|e| Error::io("waiting for signals", e))? {
                self.handle_event(event);
            }
            self.answer_observers();
            self.reap();
            if let Some(status) = self.finished() {
                return Ok(status);
            }
            self.murder();
            self.manage();
        }
    }

    /// Sleep until the next tick, backoff expiry or stop deadline, whichever comes first.
    fn sleep_time(&self) -> Duration {
        let now = Instant::now();
        let mut sleep = TICK;
        if let Some(left) = self.backoff.remaining(now) {
            sleep = sleep.min(left);
        }
        if let State::Stopping { deadline, .. } = self.state {
            sleep = sleep.min(deadline.saturating_duration_since(now));
        }
        sleep
    }

    fn handle_event(&mut self, event: Event) {
        // A worker's wake-up and SIGCHLD only end the sleep: every turn reads the table and
        // reaps anyway.
        let Event::Signal(signal) = event else { return };
        if signal == Signal::SIGCHLD {
            return;
        }
        log::info!("Handling signal: {}", name(signal));
        match signal {
            Signal::SIGHUP => self.handle_hup(),
            Signal::SIGTERM => self.handle_stop(true),
            Signal::SIGINT | Signal::SIGQUIT => self.handle_stop(false),
            Signal::SIGTTIN => self.handle_ttin(),
            Signal::SIGTTOU => self.handle_ttou(),
            Signal::SIGUSR1 => self.handle_usr1(),
            Signal::SIGUSR2 => self.handle_usr2(),
            _ => {}
        }
    }

    /// Stopped and every worker reaped: say goodbye and return the exit status.
    fn finished(&self) -> Option<i32> {
        match self.state {
            State::Stopping { status, .. } if self.roster.is_empty() => {
                log::info!("Shutting down: Master");
                Some(status)
            }
            _ => None,
        }
    }
}

impl<S: Service + Sync> Drop for Arbiter<S> {
    /// Every exit path, errors included: no worker outlives the master, so the port is free
    /// when `run` returns. Then the pidfile and our Unix sockets go.
    fn drop(&mut self) {
        for worker in self.roster.iter() {
            let _ = kill(worker.pid, Signal::SIGKILL);
        }
        for worker in self.roster.iter() {
            while let Err(Errno::EINTR) = waitpid(worker.pid, None) {}
        }
        if let Some(pidfile) = &self.pidfile {
            pidfile.remove();
        }
        let predecessor_alive = self.predecessor.is_some_and(is_running);
        if let Some(successor) = self.successor {
            // systemd follows the new master (NotifyAccess=main suffices: we are main).
            notify::send(&[NotifyState::MainPid(successor.as_raw().unsigned_abs())]);
        } else if !predecessor_alive {
            // The sockets are shared with the other master while one runs.
            for path in &self.unix_paths {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Settings with the counts the loop relies on made at least one.
fn sane(mut settings: Settings) -> Settings {
    settings.workers = settings.workers.max(1);
    settings.threads = settings.threads.max(1);
    settings
}
