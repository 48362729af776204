//! Each configured limit, at its bound (served) and one past it (refused with its status).

use crate::support;

use http::{Limits, ServerConfig};
use support::{Client, TestServer};

fn server() -> TestServer {
    TestServer::start(ServerConfig {
        limits: Limits {
            request_line: 100,
            request_fields: 10,
            request_field_size: 100,
            request_body: 1000,
        },
        ..support::config()
    })
}

/// Sends `request` on a new connection; returns the status, checking errors close.
fn status_of(server: &TestServer, request: &[u8]) -> u16 {
    let mut client: Client = server.client();
    let reply = client.round_trip(request);
    if reply.status >= 400 {
        assert!(reply.closes(), "error responses close");
        client.expect_closed();
    }
    reply.status
}

fn request_with_line(len: usize) -> Vec<u8> {
    let fixed = "GET /echo? HTTP/1.1".len();
    format!(
        "GET /echo?{} HTTP/1.1\r\nHost: t\r\n\r\n",
        "a".repeat(len - fixed)
    )
    .into_bytes()
}

#[test]
fn request_line() {
    let server = server();
    assert_eq!(status_of(&server, &request_with_line(100)), 200);
    assert_eq!(status_of(&server, &request_with_line(101)), 414);
}

fn request_with_fields(n: usize) -> Vec<u8> {
    let extra: String = (1..n).map(|i| format!("X-{i}: v\r\n")).collect();
    format!("GET / HTTP/1.1\r\nHost: t\r\n{extra}\r\n").into_bytes()
}

#[test]
fn field_count() {
    let server = server();
    assert_eq!(status_of(&server, &request_with_fields(10)), 200);
    assert_eq!(status_of(&server, &request_with_fields(11)), 431);
}

fn request_with_field_size(size: usize) -> Vec<u8> {
    let value = "v".repeat(size - "X-Big".len());
    format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {value}\r\n\r\n").into_bytes()
}

#[test]
fn field_size() {
    let server = server();
    assert_eq!(status_of(&server, &request_with_field_size(100)), 200);
    assert_eq!(status_of(&server, &request_with_field_size(101)), 431);
}

#[test]
fn content_length_body() {
    let server = server();
    let body = "b".repeat(1000);
    let at = format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n{body}");
    assert_eq!(status_of(&server, at.as_bytes()), 200);
    // Refused from the head alone: no body byte is sent.
    let past = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n";
    assert_eq!(status_of(&server, past.as_bytes()), 413);
}

#[test]
fn chunked_body() {
    let server = server();
    let chunked = |n: usize| {
        format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
            500,
            "a".repeat(500),
            n - 500,
            "b".repeat(n - 500)
        )
    };
    assert_eq!(status_of(&server, chunked(1000).as_bytes()), 200);
    assert_eq!(status_of(&server, chunked(1001).as_bytes()), 413);
}

#[test]
fn a_head_that_never_ends() {
    let server = server();
    let mut client = server.client();
    let mut endless = b"GET / HTTP/1.1\r\nHost: t\r\nX-Endless: ".to_vec();
    endless.resize(20_000, b'a');
    let reply = client.round_trip(endless);
    assert_eq!(reply.status, 431);
    client.expect_closed();
}

#[test]
fn a_request_line_that_never_ends() {
    let server = server();
    let mut client = server.client();
    let mut endless = b"GET /".to_vec();
    endless.resize(5_000, b'a');
    assert_eq!(client.round_trip(endless).status, 414);
    client.expect_closed();
}
