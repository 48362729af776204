//! Slow and many clients against the real binary (`-w 2`): a slowloris attack (heads and
//! bodies trickled a byte a second over 1,000 connections) must not delay a normal request
//! past a few seconds, and running out of file descriptors must make workers back off, not
//! spin, crash or stop serving once descriptors are free again.

use crate::support;

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{children, cpu_time, wait_until, Options, Server, PATIENCE};

/// How long a normal request may take while under attack (a functional bound, not a benchmark).
const PROMPT: Duration = Duration::from_secs(3);

fn prefork(server: Server) -> (Server, Vec<i32>) {
    let ok = wait_until(PATIENCE, || children(server.pid()).len() == 2);
    assert!(ok, "workers never came up; log:\n{}", server.log_text());
    let workers = children(server.pid());
    (server, workers)
}

/// Times `n` normal requests, one after another, each on a fresh connection.
fn latencies(server: &Server, n: usize, pause: Duration) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let started = Instant::now();
            let reply = server.get("/");
            assert_eq!(reply.status, 200);
            let took = started.elapsed();
            std::thread::sleep(pause);
            took
        })
        .collect()
}

fn summary(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[times.len() - 1])
}

/// Writes one byte a second to each connection until `stop`; counts connections the server
/// closed on us.
fn trickle(mut conns: Vec<(TcpStream, Vec<u8>)>, stop: Arc<AtomicBool>, closed: Arc<AtomicUsize>) {
    // Bounded: at most 30 rounds whatever happens to `stop`.
    for sent in 0..30 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let round = Instant::now();
        conns.retain_mut(|(stream, bytes)| {
            let byte = bytes.get(sent).copied().unwrap_or(b'a');
            match stream.write(&[byte]) {
                Ok(_) => true,
                Err(e) if e.kind() == ErrorKind::WouldBlock => true,
                Err(_) => {
                    closed.fetch_add(1, Ordering::Relaxed);
                    false
                }
            }
        });
        let rest = Duration::from_secs(1).saturating_sub(round.elapsed());
        // Sleep in small steps so a stop is noticed promptly.
        let wake = Instant::now() + rest;
        while Instant::now() < wake && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_thousand_slow_clients_do_not_delay_a_normal_request() {
    let limit = support::raise_fd_limit();
    assert!(limit >= 1200, "need 1200 descriptors, have {limit}");
    let (server, workers) = prefork(support::start(Options::default().args(&["-w", "2"])));
    let (base_median, base_max) = summary(latencies(&server, 10, Duration::from_millis(50)));

    // 500 heads sent a byte a second, and 500 complete heads whose bodies come a byte a second.
    let head = b"GET / HTTP/1.1\r\nHost: slow\r\nX-Slow: ".to_vec();
    let upload = b"POST /posts HTTP/1.1\r\nHost: slow\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n";
    let mut conns = Vec::with_capacity(1000);
    for i in 0..1000 {
        let mut stream = server.connect();
        let bytes = if i % 2 == 0 {
            head.clone()
        } else {
            stream.write_all(upload).expect("upload head");
            b"title=".to_vec()
        };
        stream.set_nonblocking(true).expect("nonblocking");
        conns.push((stream, bytes));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let closed = Arc::new(AtomicUsize::new(0));
    let trickler = {
        let (stop, closed) = (stop.clone(), closed.clone());
        std::thread::spawn(move || trickle(conns, stop, closed))
    };
    // Let the attack settle in (every connection accepted and parked), then measure.
    std::thread::sleep(Duration::from_secs(1));
    let attacked = latencies(&server, 16, Duration::from_millis(250));
    stop.store(true, Ordering::Relaxed);
    trickler.join().expect("trickler");
    let (median, max) = summary(attacked);
    eprintln!(
        "normal GET / latency: without attack median {base_median:?} max {base_max:?}; \
         with 1000 slow clients median {median:?} max {max:?}; \
         {} slow connections closed by the server meanwhile",
        closed.load(Ordering::Relaxed)
    );
    assert!(max < PROMPT, "a request took {max:?} under attack");
    // The slow clients were held open, not simply refused (the head timeout is 10 s).
    assert!(
        closed.load(Ordering::Relaxed) < 100,
        "{} slow connections were closed early",
        closed.load(Ordering::Relaxed)
    );
    assert_eq!(children(server.pid()), workers, "a worker was replaced");
}

/// The open-file limit of a running process, from /proc/PID/limits.
fn fd_limit(pid: i32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[test]
fn running_out_of_descriptors_backs_off_and_recovers() {
    support::raise_fd_limit();
    // `ulimit -n` sets both soft and hard limits, so the server cannot raise its own.
    let server = support::start_wrapped(
        &["sh", "-c", "ulimit -n 128 && exec \"$0\" \"$@\""],
        Options::default().args(&["-w", "2"]),
    );
    let (server, workers) = prefork(server);
    for &pid in std::iter::once(&server.pid()).chain(&workers) {
        assert_eq!(
            fd_limit(pid),
            Some(128),
            "pid {pid} runs with another limit"
        );
    }
    let busy = || -> Duration { workers.iter().filter_map(|&w| cpu_time(w)).sum() };

    // 300 connections, each with the start of a head: more than both workers can hold.
    let conns: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut s = server.connect();
            s.write_all(b"GET / HTTP/1.1\r\n").expect("partial head");
            s
        })
        .collect();
    // Wait until the workers have run into the limit: the log says so, once per episode.
    server.wait_log("pausing accepts", Duration::from_secs(10));
    let before = busy();
    std::thread::sleep(Duration::from_secs(1));
    let spent = busy() - before;
    eprintln!("workers used {spent:?} of CPU in 1 s while out of descriptors");
    assert!(
        spent < Duration::from_millis(400),
        "workers spin while out of descriptors: {spent:?} of CPU in 1 s"
    );

    drop(conns);
    let started = Instant::now();
    let served = wait_until(PATIENCE, || {
        matches!(server.try_get("/").map(|r| r.status), Ok(200))
    });
    assert!(served, "never served again; log:\n{}", server.log_text());
    eprintln!(
        "served again {:?} after the connections closed",
        started.elapsed()
    );
    assert_eq!(
        children(server.pid()),
        workers,
        "a worker died; log:\n{}",
        server.log_text()
    );
    assert!(support::is_alive(server.pid()));
}
