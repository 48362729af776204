//! `--metrics-bind`: the master's Prometheus endpoint, scraped over real TCP. Counts move by
//! exactly the requests sent, a timeout kill shows under its reason, and no listener exists
//! unless one is configured.

use crate::support::{self, wait_until, Options, Server, PATIENCE};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

/// The address from the master's `Metrics at: http://ADDR/metrics` line.
fn metrics_addr(server: &Server) -> SocketAddr {
    server.wait_log("Metrics at: http://", PATIENCE);
    server
        .log_text()
        .lines()
        .filter_map(|l| l.split("Metrics at: http://").nth(1))
        .filter_map(|rest| rest.split('/').next())
        .find_map(|a| a.parse().ok())
        .expect("metrics address in the log")
}

/// One scrape: the response body of `GET /metrics`.
fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect_timeout(&addr, PATIENCE).expect("connect to metrics");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: m\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read metrics");
    let (head, body) = reply.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.to_string()
}

/// The value of the series named exactly `series` (with its labels).
fn value(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
        .parse()
        .unwrap_or_else(|_| panic!("{series} is not a whole number:\n{text}"))
}

#[test]
fn requests_total_moves_by_exactly_the_requests_sent() {
    let server =
        support::start(Options::default().args(&["-w", "2", "--metrics-bind", "127.0.0.1:0"]));
    let metrics = metrics_addr(&server);
    let mut before = value(&scrape(metrics), "pyblogd_requests_total");
    // Settle: the readiness probe's request may still be finishing.
    assert!(wait_until(PATIENCE, || {
        let now = value(&scrape(metrics), "pyblogd_requests_total");
        std::mem::replace(&mut before, now) == now
    }));
    let first = scrape(metrics);
    let ok = "pyblogd_http_responses_total{class=\"2xx\"}";
    let missing = "pyblogd_http_responses_total{class=\"4xx\"}";
    let count = "pyblogd_http_request_duration_seconds_count";
    let inf = "pyblogd_http_request_duration_seconds_bucket{le=\"+Inf\"}";
    for _ in 0..9 {
        assert_eq!(server.get("/static/style.css").status, 200);
    }
    assert_eq!(server.get("/static/no-such-file.css").status, 404);
    let mut after = 0;
    wait_until(PATIENCE, || {
        after = value(&scrape(metrics), "pyblogd_requests_total");
        after >= before + 10
    });
    assert_eq!(after, before + 10);
    let text = scrape(metrics);
    assert_eq!(value(&text, ok), value(&first, ok) + 9, "{text}");
    assert_eq!(value(&text, missing), value(&first, missing) + 1, "{text}");
    assert_eq!(value(&text, count), value(&first, count) + 10, "{text}");
    assert_eq!(value(&text, inf), value(&first, inf) + 10, "{text}");
    assert!(text.contains("# TYPE pyblogd_http_request_duration_seconds histogram"));
    // Both workers were forked at start; the second may still have been booting then.
    assert!(wait_until(PATIENCE, || {
        value(&scrape(metrics), "pyblogd_workers{state=\"ready\"}") == 2
    }));
    assert_eq!(value(&text, "pyblogd_workers_wanted"), 2);
    assert_eq!(value(&text, "pyblogd_requests_in_flight"), 0);
    assert!(
        text.contains("# TYPE pyblogd_requests_total counter"),
        "{text}"
    );
}

#[test]
fn a_worker_killed_by_timeout_shows_under_its_reason() {
    let server = support::start(
        Options::default()
            .args(&["-w", "1", "-t", "2", "--metrics-bind", "127.0.0.1:0"])
            .env("PYBLOGD_FAULT_ROUTES", "1"),
    );
    let metrics = metrics_addr(&server);
    let text = scrape(metrics);
    assert_eq!(
        value(&text, "pyblogd_worker_exits_total{reason=\"timeout\"}"),
        0
    );
    let spawned = value(&text, "pyblogd_worker_spawns_total");

    let mut hang = TcpStream::connect(server.addr).unwrap();
    hang.write_all(b"GET /__fault/hang HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut in_flight_seen = false;
    let killed = wait_until(PATIENCE, || {
        let text = scrape(metrics);
        in_flight_seen |= value(&text, "pyblogd_requests_in_flight") == 1;
        value(&text, "pyblogd_worker_exits_total{reason=\"timeout\"}") == 1
    });
    assert!(
        killed,
        "no timeout kill counted; log:\n{}",
        server.log_text()
    );
    assert!(in_flight_seen, "the hung request never showed as in flight");
    // The replacement is counted as a spawn; nothing else died.
    assert!(wait_until(PATIENCE, || {
        value(&scrape(metrics), "pyblogd_worker_spawns_total") == spawned + 1
    }));
    let text = scrape(metrics);
    assert_eq!(
        value(&text, "pyblogd_worker_exits_total{reason=\"crashed\"}"),
        0
    );
}

#[test]
fn the_metrics_listener_is_absent_unless_configured() {
    let server = support::start(Options::default().args(&["-w", "1"]));
    assert!(!server.log_text().contains("Metrics at:"));
    // The master holds exactly one listening TCP socket: the public one.
    let listening = listening_ports(server.pid());
    assert_eq!(
        listening,
        vec![server.addr.port()],
        "master listens elsewhere too"
    );

    let with =
        support::start(Options::default().args(&["-w", "1", "--metrics-bind", "127.0.0.1:0"]));
    let mut ports = listening_ports(with.pid());
    ports.sort_unstable();
    let mut expected = vec![with.addr.port(), metrics_addr(&with).port()];
    expected.sort_unstable();
    assert_eq!(ports, expected);
}

#[test]
fn metrics_bind_may_not_be_a_public_address() {
    let out = std::process::Command::new(support::binary())
        .args([
            "-b",
            "127.0.0.1:18123",
            "--metrics-bind",
            "127.0.0.1:18123",
            "--check-config",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--metrics-bind"), "{stderr}");
}

/// Ports of the TCP sockets `pid` holds in LISTEN state (from /proc: its fds' inodes joined
/// with /proc/net/tcp{,6}).
fn listening_ports(pid: i32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|t| {
            let t = t.to_string_lossy().into_owned();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // fields: sl local rem st ... inode is the tenth
            if fields.len() > 9 && fields[3] == "0A" && inodes.iter().any(|i| i == fields[9]) {
                let port = fields[1].rsplit(':').next().unwrap();
                ports.push(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports
}
