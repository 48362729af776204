//! `pyblogd status` against a real master: the table and the JSON, a worker stuck on a slow
//! request, request counts that move by exactly what was sent, and a clear refusal when no
//! master runs.

use crate::support::{self, children, wait_until, Options, Server, PATIENCE};
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `pyblogd status --pid PIDFILE [extra]`.
fn status_command(pidfile: &Path, extra: &[&str]) -> Output {
    Command::new(support::binary())
        .arg("status")
        .arg("--pid")
        .arg(pidfile)
        .args(extra)
        .env_remove("PYBLOGD_PID")
        .output()
        .expect("run pyblogd status")
}

/// The status as JSON; panics with stderr when the command fails.
fn status_json(pidfile: &Path) -> serde_json::Value {
    let out = status_command(pidfile, &["--json"]);
    assert!(
        out.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status --json prints JSON")
}

fn start_with_pidfile(workers: &str) -> Server {
    support::start(
        Options::default()
            .args(&["-w", workers, "--pid", "master.pid"])
            .env("PYBLOGD_FAULT_ROUTES", "1"),
    )
}

fn total_requests(status: &serde_json::Value) -> u64 {
    status["workers"]
        .as_array()
        .expect("workers array")
        .iter()
        .map(|w| w["requests"].as_u64().expect("requests"))
        .sum()
}

#[test]
fn status_shows_three_workers_and_the_one_stuck_on_a_slow_request() {
    let server = start_with_pidfile("3");
    let pidfile = server.path("master.pid");
    // Workers are forked at once but boot at their own pace: wait until all three are ready.
    assert!(wait_until(PATIENCE, || {
        let status = status_json(&pidfile);
        let workers = status["workers"].as_array().cloned().unwrap_or_default();
        workers.len() == 3 && workers.iter().all(|w| w["state"] == "ready")
    }));

    // A request that stays in flight while we look; the connection dies with the server.
    let mut slow = TcpStream::connect(server.addr).expect("connect");
    slow.write_all(b"GET /__fault/slow?ms=60000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send slow request");
    let mut status = serde_json::Value::Null;
    let stuck = wait_until(PATIENCE, || {
        status = status_json(&pidfile);
        status["workers"].as_array().is_some_and(|workers| {
            workers.iter().any(|w| {
                w["tasks"][0]["label"]
                    .as_str()
                    .is_some_and(|l| l.starts_with("GET /__fault/slow"))
            })
        })
    });
    assert!(stuck, "no worker shows the slow request: {status}");

    assert_eq!(status["master_pid"], server.pid());
    assert_eq!(status["state"], "running");
    assert_eq!(status["generation"], 1);
    assert_eq!(status["workers_wanted"], 3);
    assert_eq!(status["listeners"][0], server.addr.to_string());
    let mut pids: Vec<i64> = status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["pid"].as_i64().unwrap())
        .collect();
    pids.sort_unstable();
    let mut real: Vec<i64> = children(server.pid()).into_iter().map(i64::from).collect();
    real.sort_unstable();
    assert_eq!(pids, real, "status names the master's real children");
    for worker in status["workers"].as_array().unwrap() {
        assert_eq!(worker["generation"], 1, "{worker}");
        assert_eq!(worker["state"], "ready", "{worker}");
        assert!(worker["rss_bytes"].as_u64().unwrap() > 0, "{worker}");
        assert!(
            worker["heartbeat_age_ms"].as_u64().unwrap() < 30_000,
            "{worker}"
        );
    }

    // The table says the same for people: one row per worker, the stuck one named.
    let out = status_command(&pidfile, &[]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        table.starts_with(&format!("master {}  running", server.pid())),
        "{table}"
    );
    assert!(table.contains("workers 3/3"), "{table}");
    for pid in &real {
        assert!(
            table.lines().any(|l| l.starts_with(&pid.to_string())),
            "no row for worker {pid}:\n{table}"
        );
    }
    assert!(table.contains("GET /__fault/slow"), "{table}");
    assert!(
        table.contains("workers=3"),
        "config summary missing:\n{table}"
    );
}

#[test]
fn request_counts_move_by_exactly_the_requests_sent() {
    let server = start_with_pidfile("2");
    let pidfile = server.path("master.pid");
    // Counts settle first: the readiness probe's request may still be finishing.
    let mut before = total_requests(&status_json(&pidfile));
    assert!(wait_until(PATIENCE, || {
        let now = total_requests(&status_json(&pidfile));
        let settled = now == before;
        before = now;
        settled
    }));
    for _ in 0..7 {
        assert_eq!(server.get("/static/style.css").status, 200);
    }
    let mut after = 0;
    wait_until(PATIENCE, || {
        after = total_requests(&status_json(&pidfile));
        after >= before + 7
    });
    assert_eq!(after, before + 7);
}

#[test]
fn status_refuses_clearly_when_no_master_runs() {
    let dir = tempfile::tempdir().unwrap();
    let missing = status_command(&dir.path().join("none.pid"), &[]);
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.starts_with("pyblogd status: no master is running"),
        "{stderr}"
    );

    // A pidfile left by a master that died names a process that no longer exists.
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    let stale = dir.path().join("stale.pid");
    std::fs::write(&stale, format!("{gone_pid}\n")).unwrap();
    let out = status_command(&stale, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not running"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn control_socket_sits_next_to_the_pidfile_and_goes_with_the_master() {
    let mut server = start_with_pidfile("1");
    let socket = server.path("master.pid.ctl");
    assert!(socket.exists());
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(server.wait_exit(PATIENCE), Some(0));
    assert!(!socket.exists(), "control socket left behind");
}
