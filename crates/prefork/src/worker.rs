//! The worker's side: [`WorkerContext`], [`Monitor`], and the life of a forked worker.
//!
//! A worker is forked by the master with every signal blocked. It installs its own signal
//! actions (TERM: stop flag and wake pipe; INT/QUIT: exit now; USR1: reopen logs) served by one
//! signal thread, arranges to die with the master, then runs [`crate::Service::boot_worker`]
//! and leaves through `process::exit` with a named exit code after writing why in its slot.

use crate::protocol::{exit_code, ExitReason, SlotState};
use crate::signals::{install_quick_exit, receive_signals_here, wake_master, BlockedSignals};
use crate::table::{monotonic_ms, Slot, WorkerTable};
use crate::{Listener, Service};
use nix::sys::signal::Signal;
use nix::unistd::{getppid, Pid};
use signal_hook::SigId;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Handed to [`crate::Service::boot_worker`] in each worker.
pub struct WorkerContext {
    /// Inherited listeners, ready to accept (non-blocking state is the server's choice).
    pub listeners: Vec<crate::Listener>,
    /// This worker's monitor: stop requests, readiness, heartbeats, activity.
    pub monitor: Arc<Monitor>,
    /// Requests to serve before recycling (jitter applied), `None` = never.
    pub max_requests: Option<u64>,
}

/// A worker could not start (bad database, unreadable templates…): the message reaches the
/// master's log, and if no worker ever booted the master exits with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootError(pub String);

impl std::fmt::Display for BootError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BootError {}

impl From<String> for BootError {
    fn from(message: String) -> BootError {
        BootError(message)
    }
}

impl From<&str> for BootError {
    fn from(message: &str) -> BootError {
        BootError(message.to_string())
    }
}

/// The worker's link to the master; cheap to call from any thread.
///
/// Every method is `&self`, lock-free and allocation-free: a few atomic stores into the
/// worker's slot of the shared table, read by the master.
pub struct Monitor {
    table: Arc<WorkerTable>,
    slot: usize,
    pid: u32,
    /// The master to watch for; `None` in `--single-process`.
    master: Option<Pid>,
    master_waker: Option<OwnedFd>,
    stop: Arc<AtomicBool>,
    stopping_noted: AtomicBool,
    ready: AtomicBool,
    wake_read: UnixStream,
    wake_write: UnixStream,
    signal_ids: Vec<SigId>,
}

impl Monitor {
    /// Attaches to slot `slot` of `table` and makes TERM set the stop flag and the wake pipe.
    pub(crate) fn attach(
        table: Arc<WorkerTable>,
        slot: usize,
        master: Option<Pid>,
        master_waker: Option<OwnedFd>,
    ) -> std::io::Result<Monitor> {
        if table.slot(slot).is_none() {
            return Err(std::io::Error::other(format!(
                "no slot {slot} in the table"
            )));
        }
        let (wake_read, wake_write) = UnixStream::pair()?;
        wake_read.set_nonblocking(true)?;
        wake_write.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let term = Signal::SIGTERM as i32;
        // Registration order is execution order: the flag is set before the byte wakes a poller.
        let signal_ids = vec![
            signal_hook::flag::register(term, Arc::clone(&stop))?,
            signal_hook::low_level::pipe::register(term, wake_write.try_clone()?)?,
        ];
        Ok(Monitor {
            table,
            slot,
            pid: std::process::id(),
            master,
            master_waker,
            stop,
            stopping_noted: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            wake_read,
            wake_write,
            signal_ids,
        })
    }

    fn with_slot(&self, f: impl FnOnce(Slot<'_>)) {
        // `attach` checked the index; the table never shrinks.
        if let Some(slot) = self.table.slot(self.slot) {
            f(slot);
        }
    }

    /// Tells the master this worker booted and serves. During a reload the old generation is
    /// stopped only once every new worker said so; a worker that never says so within the
    /// timeout is killed as hung.
    pub fn ready(&self) {
        self.ready.store(true, Ordering::Release);
        self.with_slot(|slot| slot.mark_ready(monotonic_ms()));
        if let Some(waker) = &self.master_waker {
            wake_master(waker);
        }
    }

    /// `true` once the worker should stop accepting, drain and return from `boot_worker`:
    /// after TERM, after [`Monitor::request_stop`], or when the master is gone.
    pub fn should_stop(&self) -> bool {
        let stop = self.stop.load(Ordering::Acquire);
        if stop && !self.stopping_noted.swap(true, Ordering::Relaxed) {
            self.with_slot(|slot| {
                if matches!(slot.state(), SlotState::Booting | SlotState::Ready) {
                    slot.set_state(SlotState::Stopping);
                }
            });
        }
        stop
    }

    /// A descriptor that becomes readable (and stays readable) once a stop was requested, for
    /// poll(2). Reading from it is allowed but not needed.
    pub fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.wake_read.as_fd())
    }

    /// Proof of life, to call at least once a second (well within the master's `timeout`).
    /// Also checks that the master still exists and requests a stop if it does not.
    pub fn heartbeat(&self) {
        self.with_slot(|slot| slot.beat(monotonic_ms()));
        if let Some(master) = self.master {
            if getppid() != master && !self.stop.load(Ordering::Relaxed) {
                log::warn!("Master (pid {master}) is gone: stopping");
                self.request_stop();
            }
        }
    }

    /// Task (thread) `task` started serving `label`, e.g. `GET /path`. The label is cut to 64
    /// bytes; tasks numbered past `Settings::threads` at start-up are not tracked.
    pub fn task_started(&self, task: usize, label: &str) {
        self.task_started_parts(task, &[label]);
    }

    /// As [`Monitor::task_started`] with the label given in parts joined by spaces
    /// (`&[method, path]`), so a per-request label costs no allocation.
    pub fn task_started_parts(&self, task: usize, parts: &[&str]) {
        self.with_slot(|slot| slot.task_started(task, parts, monotonic_ms()));
    }

    /// Task `task` finished what it was serving; counts one request served.
    pub fn task_finished(&self, task: usize) {
        self.with_slot(|slot| slot.task_finished(task));
    }

    /// Adds `n` to generic counter `index` (< [`crate::COUNTERS`]; others are ignored) in
    /// shared memory, where the master sums it over workers for `--metrics-bind` under the
    /// name `Settings::counters` gives it. Lock-free: one atomic add.
    pub fn add_to_counter(&self, index: usize, n: u64) {
        self.with_slot(|slot| slot.add_to_counter(index, n));
    }

    /// This worker's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Requests served so far (finished tasks).
    pub fn requests_served(&self) -> u64 {
        self.table.slot(self.slot).map_or(0, |slot| slot.requests())
    }

    /// Asks this worker to stop, exactly as TERM does.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        // The pipe is never drained by us, so one byte keeps it readable; EAGAIN means it
        // already is.
        let _ = (&self.wake_write).write(&[1]);
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub(crate) fn record_exit(&self, reason: ExitReason, message: &str) {
        self.with_slot(|slot| slot.set_exit(reason, message));
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        for id in self.signal_ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("pid", &self.pid)
            .field("slot", &self.slot)
            .field("should_stop", &self.stop.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// What a freshly forked worker needs from the master.
pub(crate) struct ChildPlan {
    pub(crate) table: Arc<WorkerTable>,
    pub(crate) slot: usize,
    pub(crate) master: Pid,
    pub(crate) master_waker: OwnedFd,
    pub(crate) listeners: Vec<Listener>,
    pub(crate) max_requests: Option<u64>,
    pub(crate) max_requests_jitter: u64,
}

/// The life of a forked worker; never returns. Signals are blocked on entry (`blocked`) and
/// the master's signal actions already removed.
pub(crate) fn run_child<S: Service + Sync>(
    service: &S,
    plan: ChildPlan,
    blocked: BlockedSignals,
) -> ! {
    let table = Arc::clone(&plan.table);
    let slot = plan.slot;
    let code = match catch_unwind(AssertUnwindSafe(|| serve_child(service, plan, blocked))) {
        Ok(code) => code,
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            log::error!("Worker panicked: {message}");
            if let Some(slot) = table.slot(slot) {
                slot.set_exit(ExitReason::Panicked, &message);
            }
            exit_code::PANICKED
        }
    };
    std::process::exit(code)
}

fn serve_child<S: Service + Sync>(service: &S, plan: ChildPlan, blocked: BlockedSignals) -> i32 {
    // SIGKILL, not TERM, when the master dies: the master only dies this way by accident (a
    // graceful master stops its workers itself), so no one would ever supervise a drain or
    // kill a stuck orphan, and an orphan holding the listening socket keeps a restarted
    // master from binding. Requests in flight are lost either way.
    if let Err(e) = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL) {
        log::warn!("Cannot ask to die with the master ({e}); relying on heartbeat checks");
    }
    // The master may have died before the line above took effect.
    if getppid() != plan.master {
        signal_hook::low_level::exit(exit_code::OK);
    }
    let pid = std::process::id();
    log::info!("Booting worker with pid: {pid}");

    let setup = || -> std::io::Result<_> {
        install_quick_exit()?;
        let monitor = Arc::new(Monitor::attach(
            Arc::clone(&plan.table),
            plan.slot,
            Some(plan.master),
            Some(plan.master_waker),
        )?);
        let usr1 = signal_hook::iterator::Signals::new([Signal::SIGUSR1 as i32])?;
        Ok((monitor, usr1))
    };
    let (monitor, mut usr1) = match setup() {
        Ok(parts) => parts,
        Err(e) => {
            let message = format!("cannot set up the worker's signals: {e}");
            log::error!("{message}");
            if let Some(slot) = plan.table.slot(plan.slot) {
                slot.set_exit(ExitReason::BootFailed, &message);
            }
            return exit_code::BOOT_FAILED;
        }
    };
    // The worker's own actions are in place. Server threads never see the supervisor's
    // signals; the signal thread below takes them, including any that arrived since the fork.
    let signal_mask = match blocked.keep_handled_blocked() {
        Ok(mask) => mask,
        Err(e) => {
            let message = format!("cannot set the worker's signal mask: {e}");
            log::error!("{message}");
            monitor.record_exit(ExitReason::BootFailed, &message);
            return exit_code::BOOT_FAILED;
        }
    };

    let seed = u64::from(pid) ^ monotonic_ms().rotate_left(17);
    let max_requests = with_jitter(plan.max_requests, plan.max_requests_jitter, seed);
    let ctx = WorkerContext {
        listeners: plan.listeners,
        monitor: Arc::clone(&monitor),
        max_requests,
    };
    let usr1_handle = usr1.handle();
    let outcome = std::thread::scope(|scope| {
        scope.spawn(|| {
            if let Err(e) = receive_signals_here(&signal_mask) {
                log::error!("Cannot receive signals in the signal thread: {e}");
            }
            for _ in usr1.forever() {
                service.reopen_logs();
            }
        });
        // Caught here, inside the scope: the scope joins the USR1 thread before it returns,
        // so a panic must not skip closing it.
        let outcome = catch_unwind(AssertUnwindSafe(|| service.boot_worker(ctx)));
        usr1_handle.close();
        outcome
    });

    let (reason, code, message) = match outcome {
        Ok(Ok(())) if monitor.should_stop() => (ExitReason::Stopped, exit_code::OK, String::new()),
        Ok(Ok(())) if max_requests.is_some_and(|max| monitor.requests_served() >= max) => {
            (ExitReason::Recycled, exit_code::OK, String::new())
        }
        Ok(Ok(())) => (ExitReason::Returned, exit_code::OK, String::new()),
        Ok(Err(BootError(message))) if monitor.is_ready() => {
            log::error!("Worker failed: {message}");
            (ExitReason::ServeFailed, exit_code::SERVE_FAILED, message)
        }
        Ok(Err(BootError(message))) => {
            log::error!("Worker failed to boot: {message}");
            (ExitReason::BootFailed, exit_code::BOOT_FAILED, message)
        }
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            log::error!("Worker panicked: {message}");
            (ExitReason::Panicked, exit_code::PANICKED, message)
        }
    };
    monitor.record_exit(reason, &message);
    log::info!("Worker exiting (pid: {pid})");
    code
}

/// `base` plus a pseudo-random 0..=`jitter` derived from `seed`, so workers started together
/// do not all recycle at once. `None` and `Some(0)` both mean never.
pub(crate) fn with_jitter(base: Option<u64>, jitter: u64, seed: u64) -> Option<u64> {
    let base = base.filter(|&b| b > 0)?;
    let extra = match jitter.checked_add(1) {
        Some(span) => splitmix64(seed) % span,
        None => splitmix64(seed),
    };
    Some(base.saturating_add(extra))
}

/// One step of splitmix64: spreads nearby seeds (consecutive pids) across the range.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_range_and_varies() {
        assert_eq!(with_jitter(None, 10, 1), None);
        assert_eq!(with_jitter(Some(0), 10, 1), None);
        assert_eq!(with_jitter(Some(100), 0, 42), Some(100));
        let values: Vec<u64> = (0..200)
            .map(|seed| with_jitter(Some(100), 10, seed).unwrap())
            .collect();
        assert!(values.iter().all(|v| (100..=110).contains(v)));
        assert!(values.contains(&100) && values.contains(&110));
        assert!(with_jitter(Some(u64::MAX), u64::MAX, 3).is_some());
    }

    #[test]
    fn monitor_records_activity_and_stop_requests() {
        let table = Arc::new(WorkerTable::local(1, 2));
        table.slot(0).unwrap().claim(1, 1);
        let monitor = Monitor::attach(Arc::clone(&table), 0, None, None).unwrap();
        assert!(!monitor.should_stop());
        monitor.ready();
        assert_eq!(table.slot(0).unwrap().state(), SlotState::Ready);
        monitor.task_started_parts(1, &["GET", "/slow"]);
        let (_, label) = table.slot(0).unwrap().longest_task(monotonic_ms()).unwrap();
        assert_eq!(label, "GET /slow");
        monitor.task_finished(1);
        assert_eq!(monitor.requests_served(), 1);

        let fd = monitor.wake_fd().unwrap();
        let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
        assert_eq!(nix::poll::poll(&mut fds, 0u16).unwrap(), 0);
        monitor.request_stop();
        assert!(monitor.should_stop());
        assert_eq!(nix::poll::poll(&mut fds, 1000u16).unwrap(), 1);
        assert_eq!(table.slot(0).unwrap().state(), SlotState::Stopping);
    }

    #[test]
    fn attach_refuses_a_slot_past_the_table() {
        let table = Arc::new(WorkerTable::local(1, 1));
        assert!(Monitor::attach(table, 1, None, None).is_err());
    }
}
