//! Start, stop, drain and recycle; unix sockets; the connection cap.

use crate::support;

use http::{Listener, ServeOutcome, ServerConfig};
use std::net::TcpStream;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};
use support::{get, wait_until, Client, TestServer};

#[test]
fn serves_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("http.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let mut server = TestServer::with_listener(Listener::Unix(listener), support::config());
    let mut client = Client::unix(UnixStream::connect(&path).unwrap());
    for _ in 0..3 {
        assert_eq!(client.round_trip(get("/")).body, b"hello");
    }
    drop(client);
    assert_eq!(server.stop(), ServeOutcome::Stopped);
}

#[test]
fn stop_drains_an_in_flight_request() {
    let mut server = TestServer::start(support::config());
    let mut slow = server.client();
    slow.send(get("/slow?ms=500"));
    let mut idle = server.client();
    assert_eq!(idle.round_trip(get("/")).status, 200);
    wait_until("the slow request is being served", || {
        server
            .control
            .started_paths()
            .contains(&"/slow".to_string())
    });
    server.control.stop();
    // The idle keep-alive connection is closed; the in-flight request completes.
    idle.expect_closed();
    let reply = slow.reply();
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (200, &b"slow done"[..])
    );
    assert!(reply.closes());
    drop(slow); // otherwise the server lingers up to a second for the client to close
    assert_eq!(server.join(), ServeOutcome::Stopped);
    assert!(
        TcpStream::connect(server.addr.unwrap()).is_err(),
        "listener closed"
    );
}

#[test]
fn stop_lets_a_started_upload_finish() {
    let mut server = TestServer::start(support::config());
    let mut upload = server.client();
    upload.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nabc");
    // Make sure the head has been read before stopping.
    let mut probe = server.client();
    assert_eq!(probe.round_trip(get("/")).status, 200);
    drop(probe);
    server.control.stop();
    std::thread::sleep(Duration::from_millis(100));
    upload.send("def");
    let reply = upload.reply();
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"abcdef"[..]));
    assert!(reply.closes());
    drop(upload);
    assert_eq!(server.join(), ServeOutcome::Stopped);
}

#[test]
fn a_fresh_connection_may_still_send_its_first_request_during_a_stop() {
    let mut server = TestServer::start(support::config());
    let mut late = server.client();
    server.control.stop();
    wait_until("the listener is closed", || {
        TcpStream::connect(server.addr.unwrap()).is_err()
    });
    let reply = late.round_trip(get("/"));
    assert_eq!(reply.status, 200);
    assert!(reply.closes());
    drop(late);
    assert_eq!(server.join(), ServeOutcome::Stopped);
}

#[test]
fn a_silent_fresh_connection_does_not_hold_the_drain() {
    let mut server = TestServer::start(support::config());
    let mut silent = server.client();
    // Served a request on another connection: the silent one was accepted before it.
    assert_eq!(server.client().round_trip(get("/")).status, 200);
    let started = Instant::now();
    assert_eq!(server.stop(), ServeOutcome::Stopped);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    silent.expect_closed();
}

#[test]
fn a_partial_head_does_not_hold_the_drain() {
    let mut server = TestServer::start(support::config());
    let mut slow = server.client();
    slow.send("GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ");
    let started = Instant::now();
    server.control.stop();
    // Bytes still trickle in during the drain; they do not buy the head more time.
    slow.send("z");
    // Refused (408) if its bytes were read before the grace ran out, else closed silently.
    match slow.try_reply(false) {
        Ok(reply) => assert_eq!(reply.status, 408),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ),
            "{e}"
        ),
    }
    drop(slow);
    assert_eq!(server.join(), ServeOutcome::Stopped);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn graceful_timeout_bounds_the_drain() {
    let mut server = TestServer::start(ServerConfig {
        graceful_timeout: Duration::from_millis(300),
        ..support::config()
    });
    let mut stuck = server.client();
    stuck.send(get("/slow?ms=5000"));
    wait_until("the stuck request is being served", || {
        server
            .control
            .started_paths()
            .contains(&"/slow".to_string())
    });
    let started = Instant::now();
    assert_eq!(server.stop(), ServeOutcome::Stopped);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn max_requests_recycles_after_draining() {
    let mut server = TestServer::start(ServerConfig {
        max_requests: Some(3),
        ..support::config()
    });
    let mut client = server.client();
    assert!(!client.round_trip(get("/")).closes());
    assert!(!client.round_trip(get("/")).closes());
    let last = client.round_trip(get("/"));
    assert_eq!(last.status, 200);
    assert!(last.closes());
    client.expect_closed();
    drop(client);
    assert_eq!(server.join(), ServeOutcome::Recycled);
}

#[test]
fn connections_beyond_the_cap_are_closed_at_once() {
    let server = TestServer::start(ServerConfig {
        max_connections: 3,
        ..support::config()
    });
    let first: Vec<Client> = (0..2).map(|_| server.client()).collect();
    let mut third = server.client();
    // Served, so the two before it have been accepted too (accept order is connect order).
    assert_eq!(third.round_trip(get("/")).status, 200);
    let mut fourth = server.client();
    fourth.send(get("/"));
    fourth.expect_closed();
    drop(first);
    drop(third);
    wait_until("a slot frees up", || {
        let mut client = server.client();
        client.send(get("/"));
        client.try_reply(false).is_ok_and(|r| r.status == 200)
    });
}

#[test]
fn serve_refuses_zero_threads() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let control: std::sync::Arc<dyn http::Control> = support::TestControl::new();
    let config = ServerConfig {
        threads: 0,
        ..ServerConfig::default()
    };
    let result = http::serve(
        vec![Listener::Tcp(listener)],
        std::sync::Arc::new(support::TestHandler),
        &config,
        control,
    );
    assert!(result.is_err());
}

#[test]
fn a_panic_outside_the_application_costs_one_connection() {
    let mut server = TestServer::start(support::config());
    let mut victim = server.client();
    victim.send(get("/control-panic"));
    assert!(
        victim.try_reply(false).is_err(),
        "the connection is dropped"
    );
    for _ in 0..4 {
        assert_eq!(server.client().round_trip(get("/")).status, 200);
    }
    let started = Instant::now();
    assert_eq!(server.stop(), ServeOutcome::Stopped);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "drain waited for a lost job"
    );
}
