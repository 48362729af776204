//! What the master shows an operator: the status on the control socket, the metrics scrape.
//!
//! A snapshot joins the master's roster (pid, generation, age, retiring) with each worker's
//! slot in the shared table (state, heartbeat, requests, tasks) and `/proc` (RSS). It is built
//! only when a client asked, in the loop's thread, from memory the master already reads.

use super::{Arbiter, State};
use crate::control::ControlSocket;
use crate::metrics::{render, Sample};
use crate::metrics_listener::MetricsListener;
use crate::protocol::SlotState;
use crate::status::{control_socket_path, rss_bytes, Status, TaskStatus, WorkerStatus};
use crate::table::monotonic_ms;
use crate::Error;
use crate::Service;
use std::collections::BTreeMap;
use std::os::fd::BorrowedFd;
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

/// Binds `--metrics-bind`. The operator asked for it, so a failure stops the start, except
/// in a USR2 upgrade (`upgrading`): the old master still holds the port until it is told to
/// stop, and refusing to start would abort the upgrade over a scrape endpoint.
pub(super) fn bind_metrics(
    addr: std::net::SocketAddr,
    upgrading: bool,
) -> Result<Option<MetricsListener>, Error> {
    let listener = match MetricsListener::bind(addr) {
        Ok(listener) => listener,
        Err(cause) if upgrading => {
            log::error!("Cannot bind metrics {addr} while the old master holds it ({cause}): running without metrics; restart to get them back");
            return Ok(None);
        }
        Err(cause) => {
            return Err(Error::Bind {
                addr: format!("metrics {addr}"),
                cause,
            })
        }
    };
    match listener.local_addr() {
        Ok(bound) => log::info!("Metrics at: http://{bound}/metrics"),
        Err(e) => log::warn!("Metrics listener bound, address unknown: {e}"),
    }
    Ok(Some(listener))
}

impl<S: Service + Sync> Arbiter<S> {
    /// What the loop's wait watches besides the signal pipe.
    pub(super) fn watched_fds(&self) -> Vec<BorrowedFd<'_>> {
        let control = self.control.as_ref().map(ControlSocket::fd);
        let metrics = self.metrics.iter().flat_map(MetricsListener::fds);
        control.into_iter().chain(metrics).collect()
    }

    /// Answers status clients and scrapers, if any wait; never blocks on them.
    pub(super) fn answer_observers(&mut self) {
        if let Some(control) = &self.control {
            control.answer(|| self.status());
        }
        if let Some(mut metrics) = self.metrics.take() {
            metrics.serve(|| self.metrics_text());
            self.metrics = Some(metrics);
        }
    }

    fn metrics_text(&self) -> String {
        let now_ms = monotonic_ms();
        let mut workers = BTreeMap::new();
        let (mut requests_of_live, mut in_flight, mut rss) = (0, 0, 0);
        let mut generic_of_live = [0; crate::table::COUNTERS];
        for worker in self.roster.iter() {
            let slot = self.table.slot(worker.slot);
            let state = worker_state(
                worker.retiring_since.is_some(),
                slot.as_ref().map(|s| s.state()),
            );
            *workers.entry(state).or_insert(0) += 1;
            if let Some(slot) = slot {
                requests_of_live += slot.requests();
                in_flight += slot.busy_tasks(now_ms).len() as u64;
                for (total, n) in generic_of_live.iter_mut().zip(slot.counters()) {
                    *total += n;
                }
            }
            rss += rss_bytes(worker.pid.as_raw().unsigned_abs()).unwrap_or(0);
        }
        render(&Sample {
            prefix: &self
                .settings
                .proc_name
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            uptime_seconds: self.started_at.elapsed().as_secs_f64(),
            generation: self.generation,
            workers_wanted: self.wanted,
            workers,
            requests_of_live,
            in_flight,
            rss_bytes: rss,
            counters: &self.counters,
            generic_of_live,
            series: &self.counter_series,
        })
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
                let state = worker_state(
                    worker.retiring_since.is_some(),
                    slot.as_ref().map(|s| s.state()),
                );
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

/// A worker's state for people: its slot's, or `retiring` once told to drain.
fn worker_state(retiring: bool, slot: Option<SlotState>) -> &'static str {
    let state = slot.unwrap_or(SlotState::Free);
    if retiring && state != SlotState::Exited {
        return "retiring";
    }
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
