//! `pyblogd status`: asks the running master over its control socket and prints what it says.
//!
//! The master answers with JSON (see `prefork::Status`); `--json` prints it as it came, one
//! line, for scripts; without it a table for people. Exits 1 with one stderr line when no
//! master runs or it cannot be reached.

use clap::Args;
use prefork::{Status, WorkerStatus};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// Exit status when there is no master to ask.
const EXIT_NO_MASTER: i32 = 1;

/// Flags of `pyblogd status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The running master's pidfile; its control socket is PIDFILE.ctl [env: PYBLOGD_PID].
    #[arg(short = 'p', long = "pid", env = "PYBLOGD_PID")]
    pub pidfile: Option<PathBuf>,

    /// Print the status as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the subcommand; returns the process exit status. `fallback` is a `--pid` given
/// before the subcommand (`pyblogd --pid X status`).
pub fn run(args: &StatusArgs, fallback: Option<PathBuf>) -> i32 {
    let Some(pidfile) = args.pidfile.clone().or(fallback) else {
        eprintln!("pyblogd status: no pidfile: pass --pid PATH (or set PYBLOGD_PID)");
        return crate::EXIT_CONFIG;
    };
    let status = match prefork::query(&pidfile) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("pyblogd status: {e}");
            return EXIT_NO_MASTER;
        }
    };
    if args.json {
        match serde_json::to_string(&status) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("pyblogd status: cannot encode the status: {e}");
                return EXIT_NO_MASTER;
            }
        }
    } else {
        print!("{}", table(&status));
    }
    0
}

/// The status for people: a header about the master, then one row per worker.
fn table(status: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "master {}  {}  up {}  generation {}  workers {}/{}",
        status.master_pid,
        status.state,
        human_duration(status.uptime_ms),
        status.generation,
        status.workers.len(),
        status.workers_wanted,
    );
    let _ = writeln!(out, "listening: {}", status.listeners.join(", "));
    let config: Vec<String> = status
        .config
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let _ = writeln!(out, "config: {}", config.join("  "));
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<8} {:>3} {:<9} {:>8} {:>8} {:>10} {:>9}  CURRENT",
        "PID", "GEN", "STATE", "AGE", "REQUESTS", "HEARTBEAT", "RSS"
    );
    for worker in &status.workers {
        let _ = writeln!(out, "{}", row(worker));
    }
    out
}

fn row(worker: &WorkerStatus) -> String {
    let current = match worker.tasks.first() {
        Some(task) => {
            let more = match worker.tasks.len() - 1 {
                0 => String::new(),
                n => format!(" (+{n} more)"),
            };
            format!(
                "{} for {}{more}",
                task.label,
                human_duration(task.running_ms)
            )
        }
        None => "idle".to_string(),
    };
    let rss = worker.rss_bytes.map_or_else(
        || "?".to_string(),
        |bytes| format!("{:.1}M", bytes as f64 / 1048576.0),
    );
    format!(
        "{:<8} {:>3} {:<9} {:>8} {:>8} {:>10} {:>9}  {current}",
        worker.pid,
        worker.generation,
        worker.state,
        human_duration(worker.age_ms),
        worker.requests,
        format!("{} ago", human_duration(worker.heartbeat_age_ms)),
        rss,
    )
}

/// `850ms`, `4.2s`, `3m05s`, `2h07m`, `3d04h`: short enough for a column, exact enough to act on.
fn human_duration(ms: u64) -> String {
    let d = Duration::from_millis(ms);
    let secs = d.as_secs();
    match secs {
        0 => format!("{ms}ms"),
        1..=59 => format!("{:.1}s", d.as_secs_f64()),
        60..=3599 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..=86399 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86400, secs % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(human_duration(850), "850ms");
        assert_eq!(human_duration(4_200), "4.2s");
        assert_eq!(human_duration(185_000), "3m05s");
        assert_eq!(human_duration(7_620_000), "2h07m");
        assert_eq!(human_duration(273_600_000), "3d04h");
    }
}
