//! The handler threads: run the application on complete requests and answer them.
//!
//! A thread owns a connection from a complete request until its response is written; then,
//! as `keep_alive` decides, it serves the next request if one is already buffered (pipelining
//! without a trip through poll), hands the connection back for keep-alive, or closes it
//! gracefully. The application runs under `catch_unwind`: a panic costs one 500, not the thread.

use crate::access_log::{log_access, AccessEntry};
use crate::config::ServeOutcome;
use crate::connection::Connection;
use crate::error::ProtocolError;
use crate::handler::error_page;
use crate::handoff::{Handoff, Job};
use crate::keep_alive::{after_response, Persistence};
use crate::panic_capture;
use crate::reader::Progress;
use crate::request::Request;
use crate::response::Response;
use crate::write_response::write_response;
use std::panic::AssertUnwindSafe;
use std::time::{Instant, SystemTime};

/// A handler thread's loop: serve jobs until the queue closes.
pub(crate) fn run(handoff: &Handoff, thread: usize) {
    let mut out = Vec::with_capacity(1024);
    while let Some(job) = handoff.next_job() {
        // The application's panics are caught in `respond`; this catches the rest (a panic in
        // `Control`, or a bug here), so the pool never shrinks and the job is always counted
        // finished, which a drain waits for. The connection is dropped with the job.
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| match job {
            Job::Serve(conn, request) => serve(handoff, thread, conn, request, &mut out),
            Job::Reject(conn, error) => reject(handoff, conn, &error, &mut out),
        }));
        if outcome.is_err() {
            log::error!(
                "handler thread {thread}: panic outside the application; connection dropped"
            );
        }
        handoff.finish_job();
    }
}

/// Answers `request` and any complete requests pipelined behind it on `conn`.
fn serve(
    handoff: &Handoff,
    thread: usize,
    mut conn: Connection,
    mut request: Request,
    out: &mut Vec<u8>,
) {
    let limits = &handoff.config.limits;
    loop {
        let received = SystemTime::now();
        let started = Instant::now();
        request.client = crate::forwarded::client_of(&request, &handoff.config.forwarded_allow_ips);
        handoff
            .control
            .request_started(thread, &request.method, &request.path);
        let response = respond(handoff, &request);
        handoff.control.request_finished(thread);
        if handoff.count_served() {
            handoff.begin_drain(ServeOutcome::Recycled);
        }
        let persistence = after_response(&request, handoff.is_draining(), !conn.reader.is_empty());
        let head_request = request.method == "HEAD";
        let written = write_response(
            &conn,
            &response,
            persistence,
            head_request,
            out,
            handoff.config.write_timeout,
        );
        log_access(&AccessEntry {
            request: Some(&request),
            peer: conn.peer,
            status: response.status,
            bytes: written.unwrap_or(0),
            received,
            elapsed: started.elapsed(),
        });
        if written.is_none() {
            return;
        }
        conn.served += 1;
        match persistence {
            Persistence::CloseAfterLast => {
                if conn.finish_after_last_request() {
                    handoff.give_back(conn);
                }
                return;
            }
            Persistence::Linger => return linger(handoff, conn),
            Persistence::KeepAlive | Persistence::KeepAliveHttp10 => {}
        }
        match conn.reader.advance(limits) {
            Progress::Complete(head, body) => {
                request = Request::from_head(head, body, conn.peer);
            }
            Progress::NeedMore => return handoff.give_back(conn),
            Progress::Failed(error) => return reject(handoff, conn, &error, out),
        }
    }
}

/// Runs the application for `request`, turning panics and invalid statuses into 500s.
fn respond(handoff: &Handoff, request: &Request) -> Response {
    // `OPTIONS *` asks about the server, not a resource: answered here, the app never sees
    // a path that does not start with `/`.
    if request.method == "OPTIONS" && request.target == "*" {
        return Response::new(200);
    }
    let handler = &handoff.handler;
    let response = match panic_capture::catch(|| handler.handle(request)) {
        Ok(response) => response,
        Err(panic) => {
            log::error!(
                "handler panicked on \"{}\": {}",
                request.line(),
                panic.message
            );
            log::debug!(
                "panic backtrace for \"{}\":\n{}",
                request.line(),
                panic.backtrace
            );
            panic_capture::catch(|| {
                handler.panic_response(request, &panic.message, &panic.backtrace)
            })
            .unwrap_or_else(|_| error_page(500))
        }
    };
    if (200..=599).contains(&response.status) {
        response
    } else {
        log::error!(
            "handler returned invalid status {} for \"{}\"",
            response.status,
            request.line()
        );
        error_page(500)
    }
}

/// Answers a refused request with the application's error page, then closes gracefully.
fn reject(handoff: &Handoff, conn: Connection, error: &ProtocolError, out: &mut Vec<u8>) {
    let status = error.status();
    let detail = error.to_string();
    log::debug!(
        "refusing request from {}: {detail}",
        conn.peer
            .map_or_else(|| "unix socket".to_string(), |p| p.to_string())
    );
    let handler = &handoff.handler;
    let mut response = panic_capture::catch(|| handler.error_response(status, &detail))
        .unwrap_or_else(|_| error_page(status));
    response.status = status;
    let started = Instant::now();
    // A refused request ends its connection whatever it asked for: its framing is in doubt.
    let written = write_response(
        &conn,
        &response,
        Persistence::Linger,
        false,
        out,
        handoff.config.write_timeout,
    );
    log_access(&AccessEntry {
        request: None,
        peer: conn.peer,
        status,
        bytes: written.unwrap_or(0),
        received: SystemTime::now(),
        elapsed: started.elapsed(),
    });
    if written.is_some() {
        linger(handoff, conn);
    }
}

/// Closes gracefully: shut the write side, and let the poller discard what the client still
/// sends for a moment (without holding this thread).
fn linger(handoff: &Handoff, mut conn: Connection) {
    if conn.start_linger() {
        handoff.give_back(conn);
    }
}
