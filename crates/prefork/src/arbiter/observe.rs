//! What the master shows an operator: the status answered on the control socket.
//!
//! A snapshot joins the master's roster (pid, generation, age, retiring) with each worker's
//! slot in the shared table (state, heartbeat, requests, tasks) and `/proc` (RSS). It is built
//! only when a client asked, in the loop's thread, from memory the master already reads.

use super::{Arbiter, State};
use crate::control::ControlSocket;
use crate::protocol::SlotState;
use crate::status::{control_socket_path, rss_bytes, Status, TaskStatus, WorkerStatus};
use crate::table::monotonic_ms;
use crate::Service;
use std::path::Path;
use std::time::Instant;

/// Binds the control socket next to `pidfile`. A failure only costs `pyblogd status`, so it
/// is logged and the server runs without it.
pub(super) fn bind_control(pidfile: &Path) -> Option<ControlSocket> {
    let path = control_socket_path(pidfile);
    match ControlSocket::bind(&path) {
        Ok(control) => Some(control),
        Err(e) => {
            log::error!("Cannot bind control socket {}: {e}", path.display());
            None
        }
    }
}

impl<S: Service + Sync> Arbiter<S> {
    /// Answers the clients waiting on the control socket, if any.
    pub(super) fn answer_status(&self) {
        if let Some(control) = &self.control {
            control.answer(|| self.status());
        }
    }

    fn status(&self) -> Status {
        let now = Instant::now();
        let now_ms = monotonic_ms();
        let state = match self.state {
            State::Running => "running",
            State::Reloading { .. } => "reloading",
            State::Stopping { .. } => "stopping",
        };
        let mut workers: Vec<WorkerStatus> = self
            .roster
            .iter()
            .map(|worker| {
                let slot = self.table.slot(worker.slot);
                let slot_state = slot.as_ref().map_or(SlotState::Free, |s| s.state());
                let state = if worker.retiring_since.is_some() && slot_state != SlotState::Exited {
                    "retiring"
                } else {
                    slot_state_name(slot_state)
                };
                let pid = worker.pid.as_raw().unsigned_abs();
                WorkerStatus {
                    pid,
                    generation: worker.generation,
                    state: state.to_string(),
                    age_ms: millis(now.saturating_duration_since(worker.spawned_at)),
                    requests: slot.as_ref().map_or(0, |s| s.requests()),
                    heartbeat_age_ms: slot
                        .as_ref()
                        .map_or(0, |s| now_ms.saturating_sub(s.heartbeat())),
                    rss_bytes: rss_bytes(pid),
                    tasks: slot
                        .map(|s| s.busy_tasks(now_ms))
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(running_ms, label)| TaskStatus { label, running_ms })
                        .collect(),
                }
            })
            .collect();
        workers.sort_by_key(|w| (w.generation, std::cmp::Reverse(w.age_ms)));
        Status {
            master_pid: self.pid.as_raw().unsigned_abs(),
            uptime_ms: millis(now.saturating_duration_since(self.started_at)),
            generation: self.generation,
            state: state.to_string(),
            workers_wanted: self.wanted,
            config: self.service.summary(),
            listeners: self
                .listeners
                .iter()
                .map(|l| l.local_addr_string())
                .collect(),
            workers,
        }
    }
}

fn slot_state_name(state: SlotState) -> &'static str {
    match state {
        SlotState::Free | SlotState::Booting => "booting",
        SlotState::Ready => "ready",
        SlotState::Stopping => "stopping",
        SlotState::Exited => "exited",
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
