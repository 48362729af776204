//! The master's own record of its workers, and the words for how each one ended.
//!
//! The shared table says what a worker reports; the roster says what the master did to it
//! (when it was told to stop, whether and why it was killed). Together they let the reap log
//! give the real reason for a death: our own timeout kill is never blamed on memory.

use crate::protocol::{exit_code, ExitReason, SlotState};
use crate::table::Slot;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// Why the master sent a worker SIGKILL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KillReason {
    /// Silent or stuck for longer than `--timeout`; `on` says where.
    Timeout { limit: Duration, on: String },
    /// Still draining when the graceful timeout ran out.
    Drain(Duration),
    /// A quick stop (INT/QUIT) whose short grace ran out.
    QuickStop,
    /// The server is giving up because no worker could boot.
    BootAborted,
}

/// One live worker, as the master sees it.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) pid: Pid,
    pub(crate) slot: usize,
    pub(crate) generation: u64,
    /// Spawn order: the smallest is the oldest (TTOU retires it).
    pub(crate) seq: u64,
    pub(crate) spawned_at: Instant,
    /// When it was sent TERM to drain.
    pub(crate) retiring_since: Option<Instant>,
    pub(crate) killed: Option<KillReason>,
    /// The worker called `ready()` (seen in its slot).
    pub(crate) booted: bool,
}

/// The live workers.
#[derive(Debug, Default)]
pub(crate) struct Roster {
    workers: Vec<Worker>,
    next_seq: u64,
}

impl Roster {
    pub(crate) fn add(&mut self, pid: Pid, slot: usize, generation: u64) {
        self.next_seq += 1;
        self.workers.push(Worker {
            pid,
            slot,
            generation,
            seq: self.next_seq,
            spawned_at: Instant::now(),
            retiring_since: None,
            killed: None,
            booted: false,
        });
    }

    pub(crate) fn remove(&mut self, pid: Pid) -> Option<Worker> {
        let index = self.workers.iter().position(|w| w.pid == pid)?;
        Some(self.workers.swap_remove(index))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Worker> {
        self.workers.iter()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Worker> {
        self.workers.iter_mut()
    }

    /// The lowest slot index no live worker holds, below `capacity`.
    pub(crate) fn free_slot(&self, capacity: usize) -> Option<usize> {
        (0..capacity).find(|i| self.workers.iter().all(|w| w.slot != *i))
    }

    /// Workers of `generation` not told to stop.
    pub(crate) fn active(&self, generation: u64) -> impl Iterator<Item = &Worker> {
        self.workers
            .iter()
            .filter(move |w| w.generation == generation && w.retiring_since.is_none())
    }

    /// Active workers of `generation` that have booted.
    pub(crate) fn ready_count(&self, generation: u64) -> usize {
        self.active(generation).filter(|w| w.booted).count()
    }

    /// Whether an active worker of `generation` is still booting.
    pub(crate) fn any_booting(&self, generation: u64) -> bool {
        self.active(generation).any(|w| !w.booted)
    }
}

impl Worker {
    /// Whether this worker must be killed now, and why. `None` while it is healthy.
    ///
    /// Timed out: its heartbeat is older than `timeout` (booting workers included: a boot that
    /// hangs is a hang), or one of its tasks has run longer than `timeout`. A retiring worker is
    /// also killed once it drained for `graceful`.
    pub(crate) fn overdue(
        &self,
        slot: &Slot<'_>,
        now: Instant,
        now_ms: u64,
        timeout: Option<Duration>,
        graceful: Duration,
    ) -> Option<KillReason> {
        if let Some(since) = self.retiring_since {
            if now.saturating_duration_since(since) >= graceful {
                return Some(KillReason::Drain(graceful));
            }
        }
        let limit = timeout?;
        let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        if let Some((age, label)) = slot.longest_task(now_ms) {
            if age > limit_ms {
                return Some(KillReason::Timeout {
                    limit,
                    on: format!("stuck for {}s on {label}", age / 1000),
                });
            }
        }
        let silent = now_ms.saturating_sub(slot.heartbeat());
        if silent > limit_ms {
            let booting = if slot.state() == SlotState::Booting {
                " while booting"
            } else {
                ""
            };
            return Some(KillReason::Timeout {
                limit,
                on: format!("no heartbeat for {}s{booting}", silent / 1000),
            });
        }
        None
    }
}

/// The log line for a reaped worker: level and text, from how it ended (`status`), what the
/// master did to it (`worker.killed`) and what it wrote in its slot (`reason`, `message`).
pub(crate) fn describe_exit(
    worker: &Worker,
    status: WaitStatus,
    reason: ExitReason,
    message: &str,
    requests: u64,
) -> (log::Level, String) {
    use log::Level::{Error, Info, Warn};
    let pid = worker.pid;
    match status {
        WaitStatus::Exited(_, exit_code::OK) => match reason {
            ExitReason::Recycled => (
                Info,
                format!("Worker (pid {pid}) recycled after max requests ({requests} served)"),
            ),
            _ => (Info, format!("Worker (pid {pid}) exited cleanly")),
        },
        WaitStatus::Exited(_, exit_code::BOOT_FAILED) if reason == ExitReason::BootFailed => (
            Error,
            format!("Worker (pid {pid}) failed to boot: {message}"),
        ),
        WaitStatus::Exited(_, exit_code::PANICKED) if reason == ExitReason::Panicked => {
            (Error, format!("Worker (pid {pid}) panicked: {message}"))
        }
        WaitStatus::Exited(_, code) if !message.is_empty() => (
            Error,
            format!("Worker (pid {pid}) exited with code {code}: {message}"),
        ),
        WaitStatus::Exited(_, code) => {
            (Error, format!("Worker (pid {pid}) exited with code {code}"))
        }
        WaitStatus::Signaled(_, Signal::SIGKILL, _) => match &worker.killed {
            Some(KillReason::Timeout { limit, on }) => (
                Error,
                format!(
                    "Worker (pid {pid}) was killed after {}s timeout ({on})",
                    limit.as_secs()
                ),
            ),
            Some(KillReason::Drain(limit)) => (
                Warn,
                format!(
                    "Worker (pid {pid}) was killed: still draining after the {}s graceful timeout",
                    limit.as_secs()
                ),
            ),
            Some(KillReason::QuickStop) => {
                (Info, format!("Worker (pid {pid}) was killed on quick stop"))
            }
            Some(KillReason::BootAborted) => (
                Info,
                format!("Worker (pid {pid}) was killed: no worker could boot"),
            ),
            None => (
                Error,
                format!(
                    "Worker (pid {pid}) was killed by signal SIGKILL, not sent by the master: \
                     perhaps out of memory?"
                ),
            ),
        },
        WaitStatus::Signaled(_, signal, core) => {
            let core = if core { " (core dumped)" } else { "" };
            (
                Error,
                format!(
                    "Worker (pid {pid}) was killed by signal {}{core}",
                    signal.as_str()
                ),
            )
        }
        other => (Warn, format!("Worker (pid {pid}) changed state: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::WorkerTable;

    fn worker() -> Worker {
        let mut roster = Roster::default();
        roster.add(Pid::from_raw(42), 0, 1);
        roster.remove(Pid::from_raw(42)).unwrap()
    }

    #[test]
    fn our_own_kills_are_never_blamed_on_memory() {
        let mut w = worker();
        let status = WaitStatus::Signaled(w.pid, Signal::SIGKILL, false);
        let (_, line) = describe_exit(&w, status, ExitReason::Unknown, "", 0);
        assert!(line.contains("perhaps out of memory?"), "{line}");
        w.killed = Some(KillReason::Timeout {
            limit: Duration::from_secs(2),
            on: "stuck for 2s on GET /hang".to_string(),
        });
        let (_, line) = describe_exit(&w, status, ExitReason::Unknown, "", 0);
        assert_eq!(
            line,
            "Worker (pid 42) was killed after 2s timeout (stuck for 2s on GET /hang)"
        );
    }

    #[test]
    fn exits_say_why() {
        let w = worker();
        let cases = [
            (
                WaitStatus::Exited(w.pid, 0),
                ExitReason::Recycled,
                "",
                "recycled after max requests (7 served)",
            ),
            (
                WaitStatus::Exited(w.pid, 0),
                ExitReason::Stopped,
                "",
                "exited cleanly",
            ),
            (
                WaitStatus::Exited(w.pid, 3),
                ExitReason::BootFailed,
                "no db",
                "failed to boot: no db",
            ),
            (
                WaitStatus::Exited(w.pid, 70),
                ExitReason::Panicked,
                "boom",
                "panicked: boom",
            ),
            (
                WaitStatus::Exited(w.pid, 9),
                ExitReason::Unknown,
                "",
                "exited with code 9",
            ),
            (
                WaitStatus::Signaled(w.pid, Signal::SIGSEGV, true),
                ExitReason::Unknown,
                "",
                "was killed by signal SIGSEGV (core dumped)",
            ),
        ];
        for (status, reason, message, want) in cases {
            let (_, line) = describe_exit(&w, status, reason, message, 7);
            assert_eq!(line, format!("Worker (pid 42) {want}"));
        }
    }

    #[test]
    fn overdue_names_the_stuck_task_or_the_silence() {
        let table = WorkerTable::local(1, 2);
        let slot = table.slot(0).unwrap();
        let w = worker();
        let now = Instant::now();
        let timeout = Some(Duration::from_secs(2));
        let graceful = Duration::from_secs(30);
        slot.claim(1, 10_000);
        slot.mark_ready(10_000);
        assert_eq!(w.overdue(&slot, now, 11_000, timeout, graceful), None);
        assert_eq!(w.overdue(&slot, now, 99_000, None, graceful), None);
        let silent = w.overdue(&slot, now, 13_500, timeout, graceful);
        assert!(
            matches!(silent, Some(KillReason::Timeout { on, .. }) if on == "no heartbeat for 3s")
        );
        slot.beat(13_500);
        slot.task_started(1, &["GET", "/hang"], 10_500);
        let stuck = w.overdue(&slot, now, 13_500, timeout, graceful);
        assert!(
            matches!(stuck, Some(KillReason::Timeout { on, .. }) if on == "stuck for 3s on GET /hang")
        );
    }

    #[test]
    fn a_hanging_boot_times_out_too() {
        let table = WorkerTable::local(1, 1);
        let slot = table.slot(0).unwrap();
        slot.claim(1, 1_000); // booting since 1 s; it never calls ready() nor heartbeat()
        let w = worker();
        let timeout = Some(Duration::from_secs(5));
        let graceful = Duration::from_secs(30);
        assert_eq!(
            w.overdue(&slot, Instant::now(), 5_000, timeout, graceful),
            None
        );
        let verdict = w.overdue(&slot, Instant::now(), 7_000, timeout, graceful);
        assert!(
            matches!(&verdict, Some(KillReason::Timeout { on, .. }) if on == "no heartbeat for 6s while booting"),
            "{verdict:?}"
        );
    }

    #[test]
    fn retiring_workers_are_killed_after_the_graceful_timeout() {
        let table = WorkerTable::local(1, 1);
        let slot = table.slot(0).unwrap();
        slot.claim(1, 0);
        let mut w = worker();
        let now = Instant::now();
        w.retiring_since = Some(now);
        let graceful = Duration::from_secs(1);
        assert_eq!(w.overdue(&slot, now, 0, None, graceful), None);
        assert_eq!(
            w.overdue(&slot, now + graceful, 0, None, graceful),
            Some(KillReason::Drain(graceful))
        );
    }

    #[test]
    fn free_slots_are_reused_lowest_first() {
        let mut roster = Roster::default();
        roster.add(Pid::from_raw(1), 0, 1);
        roster.add(Pid::from_raw(2), 1, 1);
        assert_eq!(roster.free_slot(3), Some(2));
        roster.remove(Pid::from_raw(1));
        assert_eq!(roster.free_slot(3), Some(0));
        roster.add(Pid::from_raw(3), 0, 1);
        roster.add(Pid::from_raw(4), 2, 1);
        assert_eq!(roster.free_slot(3), None);
    }
}
