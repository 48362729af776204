//! The master process: keeps N workers alive and answers operators' signals.
//!
//! It never serves requests and never opens the database. Each turn it sleeps on the signal
//! pipe for at most a second, then handles queued signals, reaps exited children, kills workers
//! whose heartbeat went stale, and spawns or retires workers until the count and generation are
//! right. Every decision is made here, in one thread; state changes only in `handle_*`.

use crate::backoff::Backoff;
use crate::pidfile::Pidfile;
use crate::protocol::{exit_code, ExitReason};
use crate::roster::{describe_exit, KillReason, Roster};
use crate::signals::{name, BlockedSignals, Event, SignalQueue};
use crate::sys::{fork_single_threaded, Forked};
use crate::table::{monotonic_ms, WorkerTable};
use crate::worker::{panic_message, run_child, ChildPlan};
use crate::{bind, notify, upgrade, Error, Listener, Service, Settings};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use sd_notify::NotifyState;
use std::panic::{catch_unwind, AssertUnwindSafe};
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
        })
    }

    /// The arbiter loop; returns the process exit status.
    pub(crate) fn run(mut self) -> Result<i32, Error> {
        loop {
            let events = self.signals.wait(self.sleep_time());
            for event in events.map_err(|e| Error::io("waiting for signals", e))? {
                self.handle_event(event);
            }
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

    /// HUP: reload the configuration and replace every worker, without a dropped request.
    fn handle_hup(&mut self) {
        log::info!("Hang up: Master");
        if matches!(self.state, State::Stopping { .. }) {
            log::warn!("Ignoring HUP: stopping");
            return;
        }
        notify::send(&[NotifyState::Reloading]);
        let reloaded = catch_unwind(AssertUnwindSafe(|| self.service.reload()))
            .unwrap_or_else(|panic| Err(format!("reload panicked: {}", panic_message(&*panic))));
        if let Err(message) = reloaded {
            log::error!("Reload failed, keeping the running configuration and workers: {message}");
            notify::send(&[NotifyState::Ready]);
            return;
        }
        let new_settings = sane(self.service.settings());
        let old_settings = std::mem::replace(&mut self.settings, new_settings);
        let old_wanted = std::mem::replace(&mut self.wanted, self.settings.workers);
        self.check_table_fits();
        let (previous, previous_settings, previous_wanted) =
            match std::mem::replace(&mut self.state, State::Running) {
                State::Reloading {
                    generation: abandoned,
                    previous,
                    previous_settings,
                    previous_wanted,
                } => {
                    // A reload still booting is abandoned for this newer one; a failure still
                    // falls back to the generation that served before either.
                    self.retire(|w| w.generation == abandoned);
                    (previous, previous_settings, previous_wanted)
                }
                _ => (self.generation, Box::new(old_settings), old_wanted),
            };
        self.generation += 1;
        log::info!(
            "Reloading: booting generation {} ({} workers)",
            self.generation,
            self.wanted
        );
        self.state = State::Reloading {
            generation: self.generation,
            previous,
            previous_settings,
            previous_wanted,
        };
    }

    /// Clamps the worker count to the table, which cannot grow after the first fork.
    fn check_table_fits(&mut self) {
        let per_generation = self.table.capacity() / 2;
        if self.wanted > per_generation {
            log::warn!(
                "The worker table holds {per_generation} workers per generation: running that \
                 many instead of {} (restart the master to grow it)",
                self.wanted
            );
            self.wanted = per_generation;
        }
        if self.settings.threads > self.table.tasks_per_slot() {
            log::warn!(
                "Only the first {} threads of each worker are watched for timeouts (restart the \
                 master to watch all {})",
                self.table.tasks_per_slot(),
                self.settings.threads
            );
        }
    }

    /// The new generation is fully booted: retire everything older.
    fn handle_generation_ready(&mut self) {
        let State::Reloading { generation, .. } = self.state else {
            return;
        };
        let retired = self.retire(|w| w.generation != generation);
        log::info!("Generation {generation} ready: retiring {retired} old workers");
        self.state = State::Running;
        notify::send(&[NotifyState::Ready]);
    }

    /// A worker of the reloading generation could not boot: drop that generation, keep the old.
    fn handle_reload_failed(&mut self, pid: Pid, message: &str) {
        if !matches!(self.state, State::Reloading { .. }) {
            return;
        }
        let State::Reloading {
            generation,
            previous,
            previous_settings,
            previous_wanted,
        } = std::mem::replace(&mut self.state, State::Running)
        else {
            return;
        };
        self.settings = *previous_settings;
        log::error!(
            "Reload failed: worker (pid {pid}) of generation {generation} did not boot \
             ({message}); keeping generation {previous}"
        );
        self.retire(|w| w.generation == generation);
        self.generation = previous;
        self.wanted = previous_wanted;
        notify::send(&[NotifyState::Ready]);
    }

    /// TERM (graceful) or INT/QUIT (quick): stop the workers, close the listeners, then exit.
    fn handle_stop(&mut self, graceful: bool) {
        let now = Instant::now();
        let grace = if graceful {
            self.settings.graceful_timeout
        } else {
            QUICK_STOP_GRACE
        };
        let deadline = match self.state {
            State::Stopping {
                graceful: true,
                deadline,
                ..
            } if !graceful => deadline.min(now + grace),
            State::Stopping { .. } => return,
            _ => now + grace,
        };
        if self.successor.is_none() {
            notify::send(&[NotifyState::Stopping]);
        }
        let signal = if graceful {
            Signal::SIGTERM
        } else {
            Signal::SIGQUIT
        };
        for worker in self.roster.iter_mut() {
            let _ = kill(worker.pid, signal);
            worker.retiring_since.get_or_insert(now);
        }
        // Workers hold their own copies; the master's go now so that the last worker to exit
        // closes the socket.
        self.listeners.clear();
        self.state = State::Stopping {
            graceful,
            deadline,
            status: exit_code::OK,
        };
    }

    /// No worker has ever booted and one failed to: the configuration is broken, give up.
    fn handle_fatal_boot(&mut self) {
        log::error!("No worker could boot: shutting down");
        for worker in self.roster.iter_mut() {
            let _ = kill(worker.pid, Signal::SIGKILL);
            worker.killed.get_or_insert(KillReason::BootAborted);
        }
        self.listeners.clear();
        self.state = State::Stopping {
            graceful: false,
            deadline: Instant::now(),
            status: exit_code::BOOT_FAILED,
        };
    }

    fn handle_ttin(&mut self) {
        if matches!(self.state, State::Stopping { .. }) {
            return;
        }
        let per_generation = self.table.capacity() / 2;
        if self.wanted >= per_generation {
            log::warn!(
                "TTIN refused: the worker table holds {per_generation} workers per generation"
            );
            return;
        }
        self.wanted += 1;
        log::info!("Number of workers raised to {}", self.wanted);
    }

    fn handle_ttou(&mut self) {
        if matches!(self.state, State::Stopping { .. }) {
            return;
        }
        if self.wanted <= 1 {
            log::warn!("TTOU refused: keeping at least one worker");
            return;
        }
        self.wanted -= 1;
        log::info!("Number of workers lowered to {}", self.wanted);
    }

    /// USR1: reopen our logs, and have every worker reopen theirs.
    fn handle_usr1(&mut self) {
        self.service.reopen_logs();
        for worker in self.roster.iter() {
            let _ = kill(worker.pid, Signal::SIGUSR1);
        }
    }

    /// USR2: start a new master from the binary on disk, sharing our listeners.
    fn handle_usr2(&mut self) {
        if matches!(self.state, State::Stopping { .. }) {
            log::warn!("Ignoring USR2: stopping");
            return;
        }
        if let Some(pid) = self.successor {
            log::warn!("Ignoring USR2: the new master (pid {pid}) is still running");
            return;
        }
        if let Some(old) = self.predecessor.filter(|pid| kill(*pid, None).is_ok()) {
            log::warn!("Ignoring USR2: the previous master (pid {old}) still runs; stop it first");
            return;
        }
        if let Some(pidfile) = &mut self.pidfile {
            if let Err(e) = pidfile.move_aside() {
                log::error!("Upgrade refused: cannot move the pidfile aside: {e}");
                return;
            }
        }
        match upgrade::spawn_new_master(&self.listeners, &mut self.signals) {
            Ok(pid) => {
                log::info!("Upgrading: started new master with pid {pid}");
                self.successor = Some(pid);
            }
            Err(e) => {
                log::error!("Upgrade failed: {e}");
                self.restore_pidfile();
            }
        }
    }

    /// The master we started on USR2 exited: we are the master again.
    fn handle_successor_exit(&mut self, status: WaitStatus) {
        log::warn!("New master exited ({status:?}): this master keeps serving");
        self.successor = None;
        self.restore_pidfile();
        notify::send(&[NotifyState::MainPid(self.pid.as_raw().unsigned_abs())]);
    }

    fn restore_pidfile(&mut self) {
        if let Some(pidfile) = &mut self.pidfile {
            if let Err(e) = pidfile.move_back() {
                log::error!(
                    "Cannot move the pidfile back from {}: {e}",
                    pidfile.current().display()
                );
            }
        }
    }

    /// Collects every exited child and acts on how it ended.
    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    log::error!("Cannot reap workers: {e}");
                    return;
                }
                Ok(status) => {
                    if let Some(pid) = status.pid() {
                        self.handle_exit(pid, status);
                    }
                }
            }
        }
    }

    fn handle_exit(&mut self, pid: Pid, status: WaitStatus) {
        if Some(pid) == self.successor {
            self.handle_successor_exit(status);
            return;
        }
        let Some(mut worker) = self.roster.remove(pid) else {
            return;
        };
        let Some(slot) = self.table.slot(worker.slot) else {
            return;
        };
        worker.booted |= slot.has_booted();
        let recycled = slot.exit_reason() == ExitReason::Recycled;
        let message = slot.message();
        let (level, line) = describe_exit(
            &worker,
            status,
            slot.exit_reason(),
            &message,
            slot.requests(),
        );
        log::log!(level, "{line}");
        slot.release();
        self.ever_booted |= worker.booted;
        let expected = worker.retiring_since.is_some()
            || matches!(
                worker.killed,
                Some(KillReason::BootAborted | KillReason::QuickStop)
            );
        let lived = worker.spawned_at.elapsed();
        if expected || (worker.booted && (recycled || lived >= MIN_LIFETIME)) {
            return;
        }
        // It died before it ever served, or right after (a crash loop), and not because we
        // asked it to.
        let fatal_kind = !worker.booted
            && matches!(
                status,
                WaitStatus::Exited(_, exit_code::BOOT_FAILED | exit_code::PANICKED)
            );
        match self.state {
            State::Reloading { generation, .. }
                if !worker.booted && worker.generation == generation =>
            {
                self.handle_reload_failed(pid, &message);
            }
            State::Stopping { .. } => {}
            _ if !self.ever_booted && fatal_kind => self.handle_fatal_boot(),
            _ => {
                let delay = self.backoff.record_failure(Instant::now());
                log::warn!("Booting the next worker in {:.1}s", delay.as_secs_f64());
            }
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

    /// SIGKILL for workers that hung, outstayed their drain, or outlived the stop deadline.
    fn murder(&mut self) {
        let now = Instant::now();
        let now_ms = monotonic_ms();
        let stop_kill = match self.state {
            State::Stopping {
                graceful, deadline, ..
            } if now >= deadline => Some(if graceful {
                KillReason::Drain(self.settings.graceful_timeout)
            } else {
                KillReason::QuickStop
            }),
            _ => None,
        };
        for worker in self.roster.iter_mut().filter(|w| w.killed.is_none()) {
            let Some(slot) = self.table.slot(worker.slot) else {
                continue;
            };
            let verdict = stop_kill.clone().or_else(|| {
                let timeout = self.settings.timeout;
                worker.overdue(&slot, now, now_ms, timeout, self.settings.graceful_timeout)
            });
            let Some(reason) = verdict else { continue };
            if let KillReason::Timeout { on, .. } = &reason {
                log::error!("WORKER TIMEOUT (pid {}) {on}", worker.pid);
            }
            // A Rust worker has no interpreter to dump a traceback on SIGABRT, and a core of a
            // hung process is rarely wanted in production: the log line above says where it
            // hung, and SIGKILL frees its slot at once.
            let _ = kill(worker.pid, Signal::SIGKILL);
            worker.killed = Some(reason);
        }
    }

    /// Notes booted workers, then spawns or retires until the count and generation are right.
    fn manage(&mut self) {
        self.observe_boots();
        match self.state {
            State::Stopping { .. } => {}
            State::Reloading { generation, .. } => {
                self.spawn_missing(generation);
                if self.roster.ready_count(generation) >= self.wanted {
                    self.handle_generation_ready();
                }
            }
            State::Running => {
                self.spawn_missing(self.generation);
                self.retire_surplus();
            }
        }
    }

    fn observe_boots(&mut self) {
        let mut any = false;
        for worker in self.roster.iter_mut().filter(|w| !w.booted) {
            if self.table.slot(worker.slot).is_some_and(|s| s.has_booted()) {
                worker.booted = true;
                any = true;
            }
        }
        // Boots work again once a worker started after the last failure has stayed up a while;
        // older workers prove nothing about the failing dependency.
        let now = Instant::now();
        let recovered = self.backoff.is_failing()
            && self.roster.iter().any(|w| {
                w.booted
                    && self.backoff.started_after_failure(w.spawned_at)
                    && now.saturating_duration_since(w.spawned_at) >= MIN_LIFETIME
            });
        if recovered {
            log::info!("Workers boot again");
            self.backoff.reset();
        }
        if !any {
            return;
        }
        self.ever_booted = true;
        if !self.announced_ready && self.roster.ready_count(self.generation) >= self.wanted {
            self.announced_ready = true;
            let pid = self.pid.as_raw().unsigned_abs();
            notify::send(&[NotifyState::MainPid(pid), NotifyState::Ready]);
        }
    }

    fn spawn_missing(&mut self, generation: u64) {
        let missing = self
            .wanted
            .saturating_sub(self.roster.active(generation).count());
        if missing == 0 || !self.backoff.may_spawn(Instant::now()) {
            return;
        }
        // While boots fail, one worker at a time: the next only after this one succeeds or fails.
        let batch = if self.backoff.is_failing() {
            if self.roster.any_booting(generation) {
                return;
            }
            1
        } else {
            missing
        };
        for _ in 0..batch {
            if let Err(e) = self.spawn(generation) {
                log::error!("Cannot start a worker: {e}");
                self.backoff.record_failure(Instant::now());
                return;
            }
        }
    }

    /// Retires workers of other generations, and the oldest beyond the wanted count (TTOU).
    fn retire_surplus(&mut self) {
        let current = self.generation;
        self.retire(|w| w.generation != current);
        let mut active: Vec<(u64, Pid)> = self
            .roster
            .active(current)
            .map(|w| (w.seq, w.pid))
            .collect();
        if active.len() <= self.wanted {
            return;
        }
        active.sort_unstable();
        let oldest: Vec<Pid> = active[..active.len() - self.wanted]
            .iter()
            .map(|&(_, pid)| pid)
            .collect();
        self.retire(|w| oldest.contains(&w.pid));
    }

    /// Sends TERM to matching workers not yet retiring; returns how many.
    fn retire(&mut self, which: impl Fn(&crate::roster::Worker) -> bool) -> usize {
        let now = Instant::now();
        let mut count = 0;
        for worker in self.roster.iter_mut() {
            if worker.retiring_since.is_none() && which(worker) {
                let _ = kill(worker.pid, Signal::SIGTERM);
                worker.retiring_since = Some(now);
                count += 1;
            }
        }
        count
    }

    /// Forks one worker of `generation`.
    fn spawn(&mut self, generation: u64) -> Result<(), Error> {
        let index = self
            .roster
            .free_slot(self.table.capacity())
            .ok_or_else(|| Error::io("spawning", std::io::Error::other("worker table full")))?;
        let slot = self
            .table
            .slot(index)
            .ok_or_else(|| Error::io("spawning", std::io::Error::other("no such slot")))?;
        slot.claim(generation, monotonic_ms());
        let waker = self
            .signals
            .waker()
            .map_err(|e| Error::io("sharing the wake pipe", e))?;
        // Buffered output would be written twice, once by each process.
        log::logger().flush();
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let blocked = BlockedSignals::block_all().map_err(|e| Error::io("blocking signals", e))?;
        match fork_single_threaded().map_err(|e| Error::io("forking a worker", e))? {
            Forked::Parent(pid) => {
                slot.set_pid(pid.as_raw().unsigned_abs());
                self.roster.add(pid, index, generation);
                Ok(())
            }
            Forked::Child => {
                self.signals.uninstall();
                let plan = ChildPlan {
                    table: Arc::clone(&self.table),
                    slot: index,
                    master: self.pid,
                    master_waker: waker,
                    listeners: std::mem::take(&mut self.listeners),
                    max_requests: self.settings.max_requests,
                    max_requests_jitter: self.settings.max_requests_jitter,
                };
                run_child(&self.service, plan, blocked)
            }
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
        let predecessor_alive = self.predecessor.is_some_and(|pid| kill(pid, None).is_ok());
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
