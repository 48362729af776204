//! The server over real TCP: keep-alive, pipelining, bodies, 100-continue, HEAD, errors.

use crate::support;

use http::{Limits, ServerConfig};
use support::{config, get, TestServer};

#[test]
fn a_hundred_requests_on_one_keep_alive_connection() {
    let server = TestServer::start(config());
    let mut client = server.client();
    for i in 0..100 {
        let reply = client.round_trip(get(&format!("/echo?i={i}")));
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-query"), Some(format!("i={i}").as_str()));
        assert!(!reply.closes());
    }
}

#[test]
fn responses_carry_framing_headers() {
    let server = TestServer::start(config());
    let reply = server.client().round_trip(get("/"));
    assert_eq!(reply.body, b"hello");
    assert_eq!(reply.header("content-length"), Some("5"));
    assert_eq!(reply.header("server"), Some("pyblogd"));
    let date = reply.header("date").unwrap();
    assert!(date.ends_with(" GMT") && date.len() == 29, "{date}");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = TestServer::start(config());
    let mut client = server.client();
    let batch: String = (0..10).map(|i| get(&format!("/echo?n={i}"))).collect();
    client.send(batch);
    for i in 0..10 {
        let reply = client.reply();
        assert_eq!(reply.header("x-query"), Some(format!("n={i}").as_str()));
    }
    // The connection is still good afterwards.
    assert_eq!(client.round_trip(get("/")).status, 200);
}

#[test]
fn content_length_and_chunked_bodies_arrive_whole() {
    let server = TestServer::start(config());
    let mut client = server.client();
    let reply = client
        .round_trip("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world");
    assert_eq!(reply.body, b"hello world");
    let chunked = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
                   5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: y\r\n\r\n";
    let reply = client.round_trip(chunked);
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (200, &b"hello world"[..])
    );
    // A body sent in pieces, the next request right behind it.
    client.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab");
    std::thread::sleep(std::time::Duration::from_millis(20));
    client.send("c\r\n0\r\n\r\nGET /echo?next HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(client.reply().body, b"abc");
    assert_eq!(client.reply().header("x-query"), Some("next"));
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let server = TestServer::start(config());
    let mut client = server.client();
    client
        .send("PUT /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    let interim = client.reply();
    assert_eq!(interim.status, 100);
    client.send("data");
    let reply = client.reply();
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"data"[..]));
}

#[test]
fn expect_100_continue_with_a_body_too_large_gets_413_at_once() {
    let server = TestServer::start(ServerConfig {
        limits: Limits {
            request_body: 10,
            ..Limits::default()
        },
        ..config()
    });
    let mut client = server.client();
    client.send(
        "PUT /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n",
    );
    let reply = client.reply();
    assert_eq!(reply.status, 413);
    assert!(reply.closes());
    client.expect_closed();
}

#[test]
fn other_expectations_get_417() {
    let server = TestServer::start(config());
    let reply = server
        .client()
        .round_trip("GET / HTTP/1.1\r\nHost: t\r\nExpect: tea\r\n\r\n");
    assert_eq!(reply.status, 417);
}

#[test]
fn head_gets_get_headers_and_no_body() {
    let server = TestServer::start(config());
    let mut client = server.client();
    let reply = client
        .send("HEAD /big?n=1000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .head_reply();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), Some("1000"));
    // Had a body been sent, this would read it instead of the next status line.
    assert_eq!(client.round_trip(get("/")).body, b"hello");
}

#[test]
fn no_body_or_length_on_204_and_304() {
    let server = TestServer::start(config());
    let mut client = server.client();
    for code in [204, 304] {
        let reply = client.round_trip(get(&format!("/status?code={code}")));
        assert_eq!(reply.status, code);
        assert_eq!(reply.header("content-length"), None);
    }
    assert_eq!(client.round_trip(get("/")).status, 200);
}

#[test]
fn large_bodies_are_written_whole() {
    let server = TestServer::start(config());
    let reply = server.client().round_trip(get("/big?n=3000000"));
    assert_eq!(reply.body.len(), 3_000_000);
    assert!(reply.body.iter().all(|&b| b == b'x'));
}

#[test]
fn http10_closes_unless_keep_alive_is_asked() {
    let server = TestServer::start(config());
    let mut client = server.client();
    let reply = client.round_trip("GET / HTTP/1.0\r\n\r\n");
    assert!(reply.closes());
    client.expect_closed();
    let mut client = server.client();
    let reply = client.round_trip("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(reply.header("connection"), Some("keep-alive"));
    assert_eq!(client.round_trip("GET / HTTP/1.0\r\n\r\n").status, 200);
    client.expect_closed();
}

#[test]
fn connection_close_is_honoured() {
    let server = TestServer::start(config());
    let mut client = server.client();
    let reply = client.round_trip("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert!(reply.closes());
    client.expect_closed();
}

#[test]
fn options_asterisk_is_answered_by_the_server() {
    let server = TestServer::start(config());
    let reply = server
        .client()
        .round_trip("OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        (reply.status, reply.header("content-length")),
        (200, Some("0"))
    );
}

#[test]
fn malformed_request_gets_400_and_close_then_others_are_served() {
    let server = TestServer::start(config());
    for bad in [
        "GET / HTTP/1.1\r\nHost : t\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET /../etc/passwd HTTP/1.1\r\nHost: t\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\nabc",
        "GET / HTTP/1.1\nHost: t\n\n",
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let mut client = server.client();
        let reply = client.round_trip(bad);
        assert_eq!(reply.status, 400, "{bad:?}");
        assert!(reply.closes());
        client.expect_closed();
    }
    assert_eq!(server.client().round_trip(get("/")).status, 200);
}

#[test]
fn unsupported_codings_and_versions() {
    let server = TestServer::start(config());
    let reply = server
        .client()
        .round_trip("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    assert_eq!(reply.status, 501);
    let mut client = server.client();
    let reply = client.round_trip("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert_eq!(reply.status, 505);
    client.expect_closed();
}

#[test]
fn a_panic_gets_500_and_the_server_goes_on() {
    let server = TestServer::start(config());
    let mut client = server.client();
    let reply = client.round_trip(get("/panic"));
    assert_eq!(reply.status, 500);
    let body = String::from_utf8(reply.body).unwrap();
    assert!(body.starts_with("panic: boom at /panic"), "{body}");
    assert!(body.contains("backtrace: true"));
    assert_eq!(server.client().round_trip(get("/")).status, 200);
    // The connection that saw the panic is still usable too.
    assert_eq!(client.round_trip(get("/")).status, 200);
}

#[test]
fn control_hears_what_each_thread_serves() {
    let server = TestServer::start(config());
    server.client().round_trip(get("/echo?x"));
    support::wait_until("request finished", || {
        server
            .control
            .finished
            .load(std::sync::atomic::Ordering::SeqCst)
            == 1
    });
    let started = server.control.started.lock().unwrap().clone();
    assert_eq!(started.len(), 1);
    assert!(started[0].0 < 2);
    assert_eq!(
        (started[0].1.as_str(), started[0].2.as_str()),
        ("GET", "/echo")
    );
    support::wait_until("a heartbeat", || {
        server
            .control
            .heartbeats
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 2
    });
}

#[test]
fn a_client_leaving_mid_response_does_not_hurt_the_server() {
    let server = TestServer::start(config());
    for _ in 0..3 {
        let mut client = server.client();
        client.send(get("/big?n=20000000"));
        drop(client);
    }
    assert_eq!(server.client().round_trip(get("/")).status, 200);
}
