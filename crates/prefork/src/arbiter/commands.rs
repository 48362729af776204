//! The operator's other signals: stop (TERM, INT, QUIT), TTIN/TTOU, USR1, USR2.
//!
//! Each handler changes the arbiter's state or targets and returns; the loop's next turn does
//! the spawning, retiring and killing.

use super::{notify, Arbiter, State, QUICK_STOP_GRACE};
use crate::pidfile::is_running;
use crate::protocol::exit_code;
use crate::roster::KillReason;
use crate::{upgrade, Service};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::WaitStatus;
use sd_notify::NotifyState;
use std::time::Instant;

impl<S: Service + Sync> Arbiter<S> {
    /// TERM (graceful) or INT/QUIT (quick): stop the workers, close the listeners, then exit.
    pub(super) fn handle_stop(&mut self, graceful: bool) {
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
    pub(super) fn handle_fatal_boot(&mut self) {
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

    pub(super) fn handle_ttin(&mut self) {
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

    pub(super) fn handle_ttou(&mut self) {
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
    pub(super) fn handle_usr1(&mut self) {
        self.service.reopen_logs();
        for worker in self.roster.iter() {
            let _ = kill(worker.pid, Signal::SIGUSR1);
        }
    }

    /// USR2: start a new master from the binary on disk, sharing our listeners.
    pub(super) fn handle_usr2(&mut self) {
        if matches!(self.state, State::Stopping { .. }) {
            log::warn!("Ignoring USR2: stopping");
            return;
        }
        if let Some(pid) = self.successor {
            log::warn!("Ignoring USR2: the new master (pid {pid}) is still running");
            return;
        }
        if let Some(old) = self.predecessor.filter(|pid| is_running(*pid)) {
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
    pub(super) fn handle_successor_exit(&mut self, status: WaitStatus) {
        log::warn!("New master exited ({status:?}): this master keeps serving");
        self.successor = None;
        self.restore_pidfile();
        notify::send(&[NotifyState::MainPid(self.pid.as_raw().unsigned_abs())]);
    }

    pub(super) fn restore_pidfile(&mut self) {
        if let Some(pidfile) = &mut self.pidfile {
            if let Err(e) = pidfile.move_back() {
                log::error!(
                    "Cannot move the pidfile back from {}: {e}",
                    pidfile.current().display()
                );
            }
        }
    }
}
