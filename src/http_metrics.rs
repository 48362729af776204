//! The HTTP metrics workers count in shared memory: responses by status class and a latency
//! histogram, as generic prefork counters that this module names.
//!
//! Each finished request costs a few atomic adds in the worker's slot; the master sums the
//! slots for `--metrics-bind`. Latency is the time to produce the response (the handler's
//! work), not to write it to a slow client. No route label: the paths of a blog are
//! unbounded, and a label per path would grow the table without end.

use prefork::{CounterSeries, Monitor};
use std::time::Duration;

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Upper bounds of the latency buckets, in seconds (Prometheus' defaults, which fit a blog
/// whose pages take milliseconds and whose slow paths take a second or more).
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const FIRST_CLASS: usize = 0;
const FIRST_BUCKET: usize = FIRST_CLASS + CLASSES.len();
/// `+Inf` bucket, right after the finite ones.
const INF_BUCKET: usize = FIRST_BUCKET + BUCKETS.len();
const SUM_MICROS: usize = INF_BUCKET + 1;
const COUNT: usize = SUM_MICROS + 1;
const _: () = assert!(COUNT < prefork::COUNTERS, "more series than counter words");

/// The names of the counters, index by index, for `prefork::Settings::counters`.
pub fn series() -> Vec<CounterSeries> {
    let responses = |class: &str| CounterSeries {
        family: "http_responses_total".to_string(),
        kind: "counter",
        help: "Responses by status class.".to_string(),
        suffix: format!("{{class=\"{class}\"}}"),
        scale: 1.0,
    };
    let latency = |suffix: String, scale: f64| CounterSeries {
        family: "http_request_duration_seconds".to_string(),
        kind: "histogram",
        help: "Time to produce a response, in seconds.".to_string(),
        suffix,
        scale,
    };
    let mut all: Vec<CounterSeries> = CLASSES.iter().map(|c| responses(c)).collect();
    all.extend(
        BUCKETS
            .iter()
            .map(|le| latency(format!("_bucket{{le=\"{le}\"}}"), 1.0)),
    );
    all.push(latency("_bucket{le=\"+Inf\"}".to_string(), 1.0));
    all.push(latency("_sum".to_string(), 1e-6));
    all.push(latency("_count".to_string(), 1.0));
    all
}

/// Counts one response of `status` produced in `elapsed`.
pub fn record(monitor: &Monitor, status: u16, elapsed: Duration) {
    if let Some(index) = class_index(status) {
        monitor.add_to_counter(FIRST_CLASS + index, 1);
    }
    // Buckets are cumulative, as Prometheus reads them: every bucket at or above the time.
    let seconds = elapsed.as_secs_f64();
    for (i, le) in BUCKETS.iter().enumerate() {
        if seconds <= *le {
            monitor.add_to_counter(FIRST_BUCKET + i, 1);
        }
    }
    monitor.add_to_counter(INF_BUCKET, 1);
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    monitor.add_to_counter(SUM_MICROS, micros);
    monitor.add_to_counter(COUNT, 1);
}

fn class_index(status: u16) -> Option<usize> {
    match status {
        100..=599 => Some(usize::from(status / 100 - 1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_line_up_with_their_indices() {
        let all = series();
        assert_eq!(all.len(), COUNT + 1);
        assert_eq!(all[FIRST_CLASS + 1].suffix, "{class=\"2xx\"}");
        assert_eq!(all[INF_BUCKET].suffix, "_bucket{le=\"+Inf\"}");
        assert_eq!(all[SUM_MICROS].suffix, "_sum");
        assert_eq!(all[COUNT].suffix, "_count");
    }

    #[test]
    fn statuses_fall_in_their_class() {
        assert_eq!(class_index(200), Some(1));
        assert_eq!(class_index(404), Some(3));
        assert_eq!(class_index(599), Some(4));
        assert_eq!(class_index(99), None);
        assert_eq!(class_index(600), None);
    }
}
