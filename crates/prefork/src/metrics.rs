//! The master's metrics: counters it keeps itself, and the Prometheus text built from them
//! and the shared worker table (`--metrics-bind`).
//!
//! Nothing here asks a worker: live workers' request counts and tasks are read from their
//! slots; a reaped worker's count is folded into `requests_of_reaped` before its slot is
//! reused, so `requests_total` never goes backwards. Names are listed in README (Operations).

use crate::protocol::ExitReason;
use crate::roster::KillReason;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// How the master exports one generic worker counter (see [`crate::Monitor::add_to_counter`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CounterSeries {
    /// Metric family without the prefix, e.g. `http_responses_total`; series of one family
    /// must be adjacent in `Settings::counters`.
    pub family: String,
    /// `counter` or `histogram` (for `_bucket`, `_sum`, `_count` series), for `# TYPE`.
    pub kind: &'static str,
    pub help: String,
    /// What follows the family name: `{class="2xx"}`, `_bucket{le="0.1"}`, `_sum`.
    pub suffix: String,
    /// The exported value is the sum times `scale` (e.g. microseconds → seconds: 1e-6).
    pub scale: f64,
}

/// What the master counts as it goes; all only ever grow.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Generic worker counters of workers already reaped.
    pub(crate) generic_of_reaped: [u64; crate::table::COUNTERS],
    pub(crate) spawned: u64,
    /// Requests finished by workers already reaped.
    pub(crate) requests_of_reaped: u64,
    /// Worker exits by reason (`exit_reason_label`).
    pub(crate) exits: BTreeMap<&'static str, u64>,
}

impl Counters {
    /// A worker was reaped after serving `requests`; why it ended.
    pub(crate) fn record_exit(
        &mut self,
        requests: u64,
        generic: [u64; crate::table::COUNTERS],
        killed: Option<&KillReason>,
        reason: ExitReason,
    ) {
        self.requests_of_reaped += requests;
        for (total, n) in self.generic_of_reaped.iter_mut().zip(generic) {
            *total += n;
        }
        *self
            .exits
            .entry(exit_reason_label(killed, reason))
            .or_default() += 1;
    }
}

/// The `reason` label of `pyblogd_worker_exits_total`: the master's kill, when it killed the
/// worker, else what the worker wrote in its slot.
fn exit_reason_label(killed: Option<&KillReason>, reason: ExitReason) -> &'static str {
    match killed {
        Some(KillReason::Timeout { .. }) => "timeout",
        Some(KillReason::Drain(_)) => "drain_timeout",
        Some(KillReason::QuickStop) => "quick_stop",
        Some(KillReason::BootAborted) => "boot_aborted",
        None => match reason {
            ExitReason::Unknown => "crashed",
            ExitReason::Stopped => "stopped",
            ExitReason::Recycled => "recycled",
            ExitReason::Returned => "returned",
            ExitReason::BootFailed => "boot_failed",
            ExitReason::ServeFailed => "serve_failed",
            ExitReason::Panicked => "panicked",
        },
    }
}

/// Every exit reason, so each series exists (at 0) from the first scrape: `rate()` and
/// alerts on `increase()` need the series before the first event.
const EXIT_REASONS: [&str; 11] = [
    "timeout",
    "drain_timeout",
    "quick_stop",
    "boot_aborted",
    "crashed",
    "stopped",
    "recycled",
    "returned",
    "boot_failed",
    "serve_failed",
    "panicked",
];

/// A point-in-time view for one scrape, filled by the arbiter.
pub(crate) struct Sample<'a> {
    pub(crate) prefix: &'a str,
    pub(crate) uptime_seconds: f64,
    pub(crate) generation: u64,
    pub(crate) workers_wanted: usize,
    /// Live workers by state (`booting`, `ready`, `stopping`, `retiring`, `exited`).
    pub(crate) workers: BTreeMap<&'static str, u64>,
    /// Requests finished by live workers.
    pub(crate) requests_of_live: u64,
    pub(crate) in_flight: u64,
    pub(crate) rss_bytes: u64,
    pub(crate) counters: &'a Counters,
    /// Generic counters summed over live workers, and their names.
    pub(crate) generic_of_live: [u64; crate::table::COUNTERS],
    pub(crate) series: &'a [CounterSeries],
}

/// The Prometheus text exposition format (version 0.0.4) for `sample`.
pub(crate) fn render(sample: &Sample<'_>) -> String {
    let p = sample.prefix;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, series: &[(String, String)]| {
        let _ = writeln!(out, "# HELP {p}_{name} {help}");
        let _ = writeln!(out, "# TYPE {p}_{name} {kind}");
        for (labels, value) in series {
            let _ = writeln!(out, "{p}_{name}{labels} {value}");
        }
    };
    let one = |value: String| vec![(String::new(), value)];
    metric(
        "master_uptime_seconds",
        "gauge",
        "Seconds since the master started.",
        &one(format!("{:.3}", sample.uptime_seconds)),
    );
    metric(
        "generation",
        "gauge",
        "Worker generation new workers get; each accepted HUP adds one.",
        &one(sample.generation.to_string()),
    );
    metric(
        "reloads_total",
        "counter",
        "Reloads (HUP) whose configuration was accepted.",
        &one(sample.generation.saturating_sub(1).to_string()),
    );
    metric(
        "workers_wanted",
        "gauge",
        "Workers the master keeps (--workers, moved by TTIN/TTOU).",
        &one(sample.workers_wanted.to_string()),
    );
    let states = ["booting", "ready", "stopping", "retiring", "exited"];
    let by_state: Vec<(String, String)> = states
        .iter()
        .map(|state| {
            let count = sample.workers.get(state).copied().unwrap_or(0);
            (format!("{{state=\"{state}\"}}"), count.to_string())
        })
        .collect();
    metric(
        "workers",
        "gauge",
        "Live worker processes by state.",
        &by_state,
    );
    metric(
        "worker_spawns_total",
        "counter",
        "Workers forked since the master started.",
        &one(sample.counters.spawned.to_string()),
    );
    let exits: Vec<(String, String)> = EXIT_REASONS
        .iter()
        .map(|reason| {
            let count = sample.counters.exits.get(reason).copied().unwrap_or(0);
            (format!("{{reason=\"{reason}\"}}"), count.to_string())
        })
        .collect();
    metric(
        "worker_exits_total",
        "counter",
        "Workers reaped, by why they ended (timeout = killed by --timeout).",
        &exits,
    );
    metric(
        "requests_total",
        "counter",
        "Requests finished by all workers, reaped ones included.",
        &one((sample.counters.requests_of_reaped + sample.requests_of_live).to_string()),
    );
    metric(
        "requests_in_flight",
        "gauge",
        "Requests being served now.",
        &one(sample.in_flight.to_string()),
    );
    metric(
        "workers_rss_bytes",
        "gauge",
        "Resident memory of all live workers.",
        &one(sample.rss_bytes.to_string()),
    );
    let mut previous_family = None;
    for (i, series) in sample
        .series
        .iter()
        .enumerate()
        .take(crate::table::COUNTERS)
    {
        let total = sample.generic_of_live[i] + sample.counters.generic_of_reaped[i];
        if previous_family != Some(&series.family) {
            let _ = writeln!(out, "# HELP {p}_{} {}", series.family, series.help);
            let _ = writeln!(out, "# TYPE {p}_{} {}", series.family, series.kind);
            previous_family = Some(&series.family);
        }
        let value = if series.scale == 1.0 {
            total.to_string()
        } else {
            format!("{}", total as f64 * series.scale)
        };
        let _ = writeln!(out, "{p}_{}{} {value}", series.family, series.suffix);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exit_reason_has_a_series_and_kills_win_over_slots() {
        let mut counters = Counters::default();
        let timeout = KillReason::Timeout {
            limit: std::time::Duration::from_secs(1),
            on: String::new(),
        };
        let mut generic = [0; crate::table::COUNTERS];
        generic[1] = 2_500_000;
        counters.record_exit(5, generic, Some(&timeout), ExitReason::Unknown);
        counters.record_exit(2, generic, None, ExitReason::Recycled);
        let series = [
            CounterSeries {
                family: "x_total".into(),
                kind: "counter",
                help: "x".into(),
                suffix: "{a=\"b\"}".into(),
                scale: 1.0,
            },
            CounterSeries {
                family: "y_seconds".into(),
                kind: "histogram",
                help: "y".into(),
                suffix: "_sum".into(),
                scale: 1e-6,
            },
        ];
        let mut live = [0; crate::table::COUNTERS];
        live[0] = 3;
        let text = render(&Sample {
            prefix: "pyblogd",
            uptime_seconds: 1.0,
            generation: 3,
            workers_wanted: 2,
            workers: BTreeMap::from([("ready", 2)]),
            requests_of_live: 4,
            in_flight: 1,
            rss_bytes: 10,
            counters: &counters,
            generic_of_live: live,
            series: &series,
        });
        assert!(text.contains("# TYPE pyblogd_x_total counter\npyblogd_x_total{a=\"b\"} 3\n"));
        assert!(text.contains("pyblogd_y_seconds_sum 5\n"), "{text}");
        assert!(text.contains("pyblogd_worker_exits_total{reason=\"timeout\"} 1\n"));
        assert!(text.contains("pyblogd_worker_exits_total{reason=\"recycled\"} 1\n"));
        assert!(text.contains("pyblogd_worker_exits_total{reason=\"panicked\"} 0\n"));
        assert!(text.contains("pyblogd_requests_total 11\n"));
        assert!(text.contains("pyblogd_reloads_total 2\n"));
        assert!(text.contains("pyblogd_workers{state=\"booting\"} 0\n"));
        assert!(text.contains("# TYPE pyblogd_requests_total counter\n"));
    }
}
