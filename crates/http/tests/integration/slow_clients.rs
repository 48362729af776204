//! Slow and idle clients cost a descriptor, never a thread, and their deadlines are kept.

use crate::support;

use http::ServerConfig;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::{get, TestServer};

/// A normal request on a fresh connection must be answered within this, however many slow
/// clients are parked (handler threads are 2; a parked client would hold one for 30 s).
const PROMPT: Duration = Duration::from_secs(3);

fn patient_server() -> TestServer {
    TestServer::start(ServerConfig {
        threads: 2,
        header_timeout: Duration::from_secs(30),
        body_timeout: Duration::from_secs(30),
        ..ServerConfig::default()
    })
}

fn timed_get(server: &TestServer) -> Duration {
    let started = Instant::now();
    let reply = server.client().round_trip(get("/"));
    assert_eq!(reply.status, 200);
    started.elapsed()
}

#[test]
fn idle_connections_do_not_block_a_normal_request() {
    let server = patient_server();
    let idle: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(server.addr.unwrap()).unwrap())
        .collect();
    assert!(timed_get(&server) < PROMPT);
    drop(idle);
}

#[test]
fn slow_heads_and_slow_bodies_do_not_block_a_normal_request() {
    let server = patient_server();
    let addr = server.addr.unwrap();
    let mut slow_heads: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    let mut slow_bodies: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nab")
                .unwrap();
            s
        })
        .collect();
    for round in 0..3 {
        for s in slow_heads.iter_mut().chain(slow_bodies.iter_mut()) {
            s.write_all(b"z").unwrap();
        }
        let took = timed_get(&server);
        assert!(took < PROMPT, "round {round}: {took:?}");
    }
}

#[test]
fn an_incomplete_head_times_out_with_408() {
    let server = TestServer::start(ServerConfig {
        header_timeout: Duration::from_millis(300),
        ..support::config()
    });
    let mut client = server.client();
    client.send("GET / HTTP/1.1\r\nHost:");
    let reply = client.reply();
    assert_eq!(reply.status, 408);
    assert!(reply.closes());
    client.expect_closed();
}

#[test]
fn a_connection_that_sends_nothing_is_closed_silently() {
    let server = TestServer::start(ServerConfig {
        header_timeout: Duration::from_millis(300),
        ..support::config()
    });
    let mut stream = TcpStream::connect(server.addr.unwrap()).unwrap();
    stream.set_read_timeout(Some(support::PATIENCE)).unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[test]
fn an_incomplete_body_times_out_with_408() {
    let server = TestServer::start(ServerConfig {
        body_timeout: Duration::from_millis(300),
        ..support::config()
    });
    let mut client = server.client();
    client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(client.reply().status, 408);
    client.expect_closed();
}

#[test]
fn an_idle_keep_alive_connection_is_closed_silently() {
    let server = TestServer::start(ServerConfig {
        keep_alive: Duration::from_millis(300),
        ..support::config()
    });
    let mut client = server.client();
    assert_eq!(client.round_trip(get("/")).status, 200);
    let started = Instant::now();
    client.expect_closed();
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[test]
fn a_client_that_half_closes_mid_head_gets_400() {
    let server = support::TestServer::start(support::config());
    let mut client = server.client();
    client.send("GET / HTTP/1.1\r\nHo");
    client.shutdown_write();
    assert_eq!(client.reply().status, 400);
}
