//! The master's status as an operator sees it (`pyblogd status`), and the client that asks for it.
//!
//! The master answers on a Unix control socket next to its pidfile ([`control_socket_path`]):
//! a client connects, the master writes one JSON [`Status`] and closes. The client sends
//! nothing, so the master never waits to read from one. Everything comes from the master's own
//! records and the shared worker table: no worker is asked.

use serde::{Deserialize, Serialize};
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a client waits for the master's answer: the master answers on its next turn
/// (it wakes for the socket), so only a master hung for this long makes the client give up.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer a client accepts; a snapshot of the largest table is far smaller.
const MAX_ANSWER: u64 = 16 * 1024 * 1024;

/// Everything `pyblogd status` shows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Status {
    pub master_pid: u32,
    /// Milliseconds since the master started.
    pub uptime_ms: u64,
    /// The generation new workers get; HUP increments it.
    pub generation: u64,
    /// `running`, `reloading` or `stopping`.
    pub state: String,
    /// Worker processes wanted now (`--workers`, moved by TTIN/TTOU).
    pub workers_wanted: usize,
    /// The configuration in a few `name = value` pairs, from [`crate::Service::summary`].
    pub config: Vec<(String, String)>,
    pub listeners: Vec<String>,
    pub workers: Vec<WorkerStatus>,
}

/// One live worker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkerStatus {
    pub pid: u32,
    pub generation: u64,
    /// `booting`, `ready`, `stopping`, `exited` (reaped on the master's next turn), or
    /// `retiring` when the master told it to drain.
    pub state: String,
    /// Milliseconds since the fork.
    pub age_ms: u64,
    /// Requests (tasks) finished since it started.
    pub requests: u64,
    /// Milliseconds since its last heartbeat.
    pub heartbeat_age_ms: u64,
    /// Resident set size in bytes (`/proc/PID/statm`); `None` when it cannot be read.
    pub rss_bytes: Option<u64>,
    /// What its handler threads serve right now, longest-running first.
    pub tasks: Vec<TaskStatus>,
}

/// One request (task) in progress.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskStatus {
    /// What the task said it serves, e.g. `GET /posts/1` (at most [`crate::LABEL_LEN`] bytes).
    pub label: String,
    /// Milliseconds since it started.
    pub running_ms: u64,
}

/// Why [`query`] got no status.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("no master is running (pidfile {} {why})", pidfile.display())]
    NotRunning { pidfile: PathBuf, why: String },
    #[error("cannot reach the master at {}: {cause}", socket.display())]
    Unreachable {
        socket: PathBuf,
        cause: std::io::Error,
    },
    #[error("the master at {} answered something unreadable: {cause}", socket.display())]
    BadAnswer {
        socket: PathBuf,
        cause: serde_json::Error,
    },
}

/// The control socket of the master whose pidfile is `pidfile`: `PIDFILE.ctl`.
pub fn control_socket_path(pidfile: &Path) -> PathBuf {
    let mut name = pidfile.as_os_str().to_owned();
    name.push(".ctl");
    PathBuf::from(name)
}

/// Asks the master named by `pidfile` for its status. Refuses without touching the socket
/// when the pidfile is missing or names no running process, so a stale socket left by a
/// killed master is never mistaken for a live one.
pub fn query(pidfile: &Path) -> Result<Status, QueryError> {
    let not_running = |why: String| QueryError::NotRunning {
        pidfile: pidfile.to_path_buf(),
        why,
    };
    let text =
        std::fs::read_to_string(pidfile).map_err(|e| not_running(format!("unreadable: {e}")))?;
    let pid: i32 = text
        .trim()
        .parse()
        .map_err(|_| not_running(format!("holds no pid: {:?}", text.trim())))?;
    if !crate::pidfile::is_running(nix::unistd::Pid::from_raw(pid)) {
        return Err(not_running(format!(
            "names pid {pid}, which is not running"
        )));
    }
    let socket = control_socket_path(pidfile);
    let unreachable = |cause| QueryError::Unreachable {
        socket: socket.clone(),
        cause,
    };
    let stream = UnixStream::connect(&socket).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .map_err(unreachable)?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .map_err(unreachable)?;
    serde_json::from_slice(&answer).map_err(|cause| QueryError::BadAnswer { socket, cause })
}

/// Resident set size of `pid` in bytes, from the `VmRSS:` line of `/proc/PID/status` (kB).
pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_sits_next_to_the_pidfile() {
        assert_eq!(
            control_socket_path(Path::new("/run/pyblogd.pid")),
            PathBuf::from("/run/pyblogd.pid.ctl")
        );
    }

    #[test]
    fn missing_pidfile_means_no_master() {
        let dir = tempfile::tempdir().unwrap();
        let err = query(&dir.path().join("none.pid")).unwrap_err();
        assert!(matches!(err, QueryError::NotRunning { .. }), "{err}");
        assert!(err.to_string().starts_with("no master is running"), "{err}");
    }

    #[test]
    fn own_rss_is_readable() {
        assert!(rss_bytes(std::process::id()).is_some_and(|rss| rss > 0));
    }
}
