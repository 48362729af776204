//! HUP: reload the configuration and roll the workers over by generation.
//!
//! The new generation boots beside the old one; the old one is told to stop only when every
//! new worker called `ready()`. A failed reload, or a new generation that cannot boot, leaves
//! the old generation serving with its settings.

use super::{notify, sane, Arbiter, State};
use crate::worker::panic_message;
use crate::Service;
use nix::unistd::Pid;
use sd_notify::NotifyState;
use std::panic::{catch_unwind, AssertUnwindSafe};

impl<S: Service + Sync> Arbiter<S> {
    /// HUP: reload the configuration and replace every worker, without a dropped request.
    pub(super) fn handle_hup(&mut self) {
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
    pub(super) fn check_table_fits(&mut self) {
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
    pub(super) fn handle_generation_ready(&mut self) {
        let State::Reloading { generation, .. } = self.state else {
            return;
        };
        let retired = self.retire(|w| w.generation != generation);
        log::info!("Generation {generation} ready: retiring {retired} old workers");
        self.state = State::Running;
        notify::send(&[NotifyState::Ready]);
    }

    /// A worker of the reloading generation could not boot: drop that generation, keep the old.
    pub(super) fn handle_reload_failed(&mut self, pid: Pid, message: &str) {
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
}
