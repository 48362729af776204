//! Workers' lives as the loop sees them: spawn, reap, murder, manage.
//!
//! `spawn` is the fork site. `reap` says why each worker died and decides whether that was a
//! failed boot; `murder` kills the hung; `manage` spawns and retires until the count and the
//! generation are right.

use super::{notify, Arbiter, State, MIN_LIFETIME};
use crate::protocol::{exit_code, ExitReason};
use crate::roster::{describe_exit, KillReason, Worker};
use crate::signals::BlockedSignals;
use crate::sys::{fork_single_threaded, Forked};
use crate::table::monotonic_ms;
use crate::worker::{run_child, ChildPlan};
use crate::{Error, Service};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use sd_notify::NotifyState;
use std::sync::Arc;
use std::time::Instant;

impl<S: Service + Sync> Arbiter<S> {
    /// Collects every exited child and acts on how it ended.
    pub(super) fn reap(&mut self) {
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

    pub(super) fn handle_exit(&mut self, pid: Pid, status: WaitStatus) {
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
        self.counters.record_exit(
            slot.requests(),
            slot.counters(),
            worker.killed.as_ref(),
            slot.exit_reason(),
        );
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

    /// SIGKILL for workers that hung, outstayed their drain, or outlived the stop deadline.
    pub(super) fn murder(&mut self) {
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
    pub(super) fn manage(&mut self) {
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

    pub(super) fn observe_boots(&mut self) {
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

    pub(super) fn spawn_missing(&mut self, generation: u64) {
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
    pub(super) fn retire_surplus(&mut self) {
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
    pub(super) fn retire(&mut self, which: impl Fn(&Worker) -> bool) -> usize {
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
    pub(super) fn spawn(&mut self, generation: u64) -> Result<(), Error> {
        let index = self
            .roster
            .free_slot(self.table.capacity())
            .ok_or_else(|| Error::io("spawning", std::io::Error::other("worker table full")))?;
        let slot = self
            .table
            .slot(index)
            .ok_or_else(|| Error::io("spawning", std::io::Error::other("no such slot")))?;
        slot.claim(generation, monotonic_ms());
        self.counters.spawned += 1;
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
                // This process is a copy of the master, this Arbiter included, but never
                // returns into it: `run_child` ends in `process::exit`. Nothing stateful exists
                // yet; the Service builds it (database pool, templates) in `boot_worker`.
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
