//! HTTP/1.1 behaviour of the real binary over raw TCP: keep-alive, pipelining, bodies,
//! 100-continue, HEAD, every limit's status, recovery after bad input, panics, idle clients,
//! and unix-socket binds. Runs `--single-process` (the supervisor has its own tests).

use crate::support;

use std::io::{BufReader, Read, Write};
use std::time::{Duration, Instant};
use support::{read_reply, Options, Server};

fn single() -> Server {
    support::start(
        Options::default()
            .args(&["--single-process", "--threads", "4"])
            .env("PYBLOGD_FAULT_ROUTES", "1"),
    )
}

fn status_of(raw: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(raw);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[test]
fn hundred_requests_on_one_keep_alive_connection() {
    let server = single();
    let s = server.connect();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut writer = s;
    for i in 0..100 {
        write!(
            writer,
            "GET /static/style.css?n={i} HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        .unwrap();
        let reply = read_reply(&mut reader, false).unwrap();
        assert_eq!(reply.status, 200, "request {i}");
        assert!(reply.header("date").is_some());
        assert_eq!(reply.header("server"), Some("pyblogd"));
        assert_ne!(reply.header("connection"), Some("close"));
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = single();
    let mut s = server.connect();
    let mut batch = String::new();
    for path in ["/", "/nope-1", "/new", "/nope-2", "/posts"] {
        batch.push_str(&format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"));
    }
    s.write_all(batch.as_bytes()).unwrap();
    let mut reader = BufReader::new(s);
    let statuses: Vec<u16> = (0..5)
        .map(|_| read_reply(&mut reader, false).unwrap().status)
        .collect();
    assert_eq!(statuses, vec![200, 404, 200, 404, 200]);
}

#[test]
fn chunked_post_creates_a_post() {
    let server = single();
    let body = support::our_form(&[
        ("title", "Chunked"),
        ("name", "ann"),
        ("content", "sent in chunks"),
    ]);
    let (a, b) = body.split_at(body.len() / 2);
    let req = format!(
        "POST /posts HTTP/1.1\r\nHost: t\r\n{}Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\nX-Trailer: yes\r\n\r\n",
        support::from_our_page("t"),
        a.len(),
        b.len()
    );
    let raw = server.raw(req.as_bytes());
    assert_eq!(status_of(&raw), 303, "{}", String::from_utf8_lossy(&raw));
    let page = server.get("/posts");
    assert!(page.text().contains("Chunked"), "{}", page.text());
}

#[test]
fn expect_100_continue_gets_interim_response_before_body() {
    let server = single();
    let body = support::our_form(&[
        ("title", "Continued"),
        ("name", "bo"),
        ("content", "after 100"),
    ]);
    let mut s = server.connect();
    write!(
        s,
        "POST /posts HTTP/1.1\r\nHost: t\r\n{}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        support::from_our_page("t"),
        body.len()
    )
    .unwrap();
    let mut first = [0u8; 25];
    s.read_exact(&mut first).unwrap();
    assert!(
        first.starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&first)
    );
    s.write_all(body.as_bytes()).unwrap();
    let reply = read_reply(&mut BufReader::new(s), false).unwrap();
    assert_eq!(reply.status, 303);
}

#[test]
fn expect_other_than_continue_is_417() {
    let server = single();
    let raw = server
        .raw(b"POST /posts HTTP/1.1\r\nHost: t\r\nExpect: magic\r\nContent-Length: 1\r\n\r\nx");
    assert_eq!(status_of(&raw), 417);
}

#[test]
fn head_has_length_but_no_body() {
    let server = single();
    let get = server.get("/static/style.css");
    let mut s = server.connect();
    s.write_all(b"HEAD /static/style.css HTTP/1.1\r\nHost: t\r\n\r\nGET /static/style.css HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(s);
    let head = read_reply(&mut reader, true).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(get.body.len().to_string().as_str())
    );
    // The next response starts right after the HEAD's headers: no body bytes in between.
    let next = read_reply(&mut reader, false).unwrap();
    assert_eq!(next.status, 200);
    assert_eq!(next.body, get.body);
}

#[test]
fn limits_answer_their_status_codes() {
    let server = support::start(Options::default().args(&[
        "--single-process",
        "--limit-request-line",
        "100",
        "--limit-request-fields",
        "5",
        "--limit-request-field_size",
        "200",
        "--limit-request-body",
        "1000",
    ]));
    // Request line: "GET " + path + " HTTP/1.1" exactly at the limit is fine, one more is 414.
    let at = format!("/{}", "a".repeat(100 - 4 - 9 - 1));
    let raw =
        server.raw(format!("GET {at} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes());
    assert_eq!(status_of(&raw), 404, "a line at the limit is served");
    let over = format!("{at}a");
    let raw = server.raw(format!("GET {over} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    assert_eq!(status_of(&raw), 414);

    let fields =
        |n: usize| -> String { (0..n).map(|i| format!("X-F{i}: v\r\n")).collect::<String>() };
    let raw = server.raw(
        format!(
            "GET / HTTP/1.1\r\nHost: t\r\n{}Connection: close\r\n\r\n",
            fields(3)
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&raw), 200, "5 fields are allowed");
    let raw = server.raw(
        format!(
            "GET / HTTP/1.1\r\nHost: t\r\n{}Connection: close\r\n\r\n",
            fields(4)
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&raw), 431, "6 fields are not");

    let raw = server.raw(
        format!(
            "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
            "b".repeat(300)
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&raw), 431);

    // The body limit is checked from Content-Length before any body byte is read.
    let mut s = server.connect();
    s.write_all(b"POST /posts HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1001\r\n\r\n")
        .unwrap();
    let reply = read_reply(&mut BufReader::new(s), false).unwrap();
    assert_eq!(reply.status, 413);
}

#[test]
fn malformed_request_gets_400_and_server_keeps_serving() {
    let server = single();
    for bad in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /%00 HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : t\r\n\r\n",
    ] {
        let raw = server.raw(bad);
        assert_eq!(status_of(&raw), 400, "for {:?}", String::from_utf8_lossy(bad));
        assert_eq!(server.get("/").status, 200, "next connection served");
    }
    let raw = server.raw(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n");
    assert_eq!(status_of(&raw), 501);
}

#[test]
fn handler_panic_is_a_500_and_the_process_serves_on() {
    let server = single();
    let reply = server.get("/__fault/panic");
    assert_eq!(reply.status, 500);
    assert!(
        !reply.text().contains("panicked at"),
        "production hides internals"
    );
    server.wait_log("/__fault/panic", support::PATIENCE);
    for _ in 0..5 {
        assert_eq!(server.get("/").status, 200);
    }
    assert!(support::is_alive(server.pid()));
}

#[test]
fn fifty_idle_connections_do_not_block_a_request() {
    let server = support::start(Options::default().args(&["--single-process", "--threads", "2"]));
    let idle: Vec<_> = (0..50).map(|_| server.connect()).collect();
    // Half of them have sent a partial head, too.
    for s in idle.iter().step_by(2) {
        (&*s).write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    }
    let started = Instant::now();
    let reply = server.get("/");
    assert_eq!(reply.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    drop(idle);
}

#[test]
fn slow_head_times_out_with_408() {
    let server =
        support::start(Options::default().args(&["--single-process", "--header-timeout", "1"]));
    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert_eq!(status_of(&out), 408);
}

#[test]
fn serves_on_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("pyblogd.sock");
    let bind = format!("unix:{}", sock.display());
    let server = support::start_in(
        dir,
        Options {
            args: vec!["--single-process".into(), "--bind".into(), bind],
            env: vec![],
            wait_ready: false,
        },
    );
    assert!(
        support::wait_until(support::PATIENCE, || sock.exists()),
        "log:\n{}",
        server.log_text()
    );
    let mut reply = None;
    support::wait_until(support::PATIENCE, || {
        let Ok(mut s) = std::os::unix::net::UnixStream::connect(&sock) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(support::PATIENCE));
        if s.write_all(b"GET /static/style.css HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .is_err()
        {
            return false;
        }
        reply = read_reply(&mut BufReader::new(s), false).ok();
        reply.is_some()
    });
    let reply = reply.unwrap_or_else(|| panic!("no reply; log:\n{}", server.log_text()));
    assert_eq!(reply.status, 200);
}

#[test]
fn http10_closes_unless_asked_to_keep_alive() {
    let server = single();
    let raw = server.raw(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(status_of(&raw), 200, "read to EOF means the server closed");
    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let first = read_reply(&mut reader, false).unwrap();
    assert_eq!(
        first
            .header("connection")
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("keep-alive")
    );
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(read_reply(&mut reader, false).unwrap().status, 200);
}

#[test]
fn sigterm_lets_in_flight_request_finish() {
    let mut server = single();
    let mut s = server.connect();
    s.write_all(b"GET /__fault/slow?ms=2500 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    // No observable "in flight" signal exists from outside a single process, so allow the
    // poller well over the time it needs to read the head (microseconds) before TERM.
    std::thread::sleep(Duration::from_millis(500));
    server.signal(nix::sys::signal::Signal::SIGTERM);
    let reply = read_reply(&mut BufReader::new(s), false).unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        server.wait_exit(support::PATIENCE),
        Some(0),
        "log:\n{}",
        server.log_text()
    );
}
