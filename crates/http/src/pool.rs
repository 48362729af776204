//! The handler threads: run the application on complete requests and write the responses.
//!
//! A thread owns a connection from a complete request until its response is written; then it
//! serves the next request if one is already buffered (pipelining without a trip through
//! poll), hands the connection back for keep-alive, or closes it gracefully. The application
//! runs under `catch_unwind`: a panic costs one 500 and a log line, never the thread.

use crate::access_log::{log_access, AccessEntry};
use crate::connection::Connection;
use crate::dispatch::{Dispatch, Job};
use crate::error::ProtocolError;
use crate::framing::{encode_head, sends_body, Framing};
use crate::handler::error_page;
use crate::panic_capture;
use crate::reader::Progress;
use crate::request::wants_close;
use crate::{Request, Response, ServeOutcome, Version};
use std::panic::AssertUnwindSafe;
use std::time::{Instant, SystemTime};

/// Bodies up to this size are copied behind the head so a response is one write(2); larger
/// ones go out with writev(2) from where they are.
const COPY_BODY_MAX: usize = 16 * 1024;

/// A handler thread's loop: serve jobs until the queue closes.
pub(crate) fn run(dispatch: &Dispatch, thread: usize) {
    let mut out = Vec::with_capacity(1024);
    while let Some(job) = dispatch.next_job() {
        // The application's panics are caught in `respond`; this catches the rest (a panic in
        // `Control`, or a bug here), so the pool never shrinks and the job is always counted
        // finished, which a drain waits for. The connection is dropped with the job.
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| match job {
            Job::Serve(conn, request) => serve(dispatch, thread, conn, request, &mut out),
            Job::Reject(conn, error) => reject(dispatch, conn, &error, &mut out),
        }));
        if outcome.is_err() {
            log::error!(
                "handler thread {thread}: panic outside the application; connection dropped"
            );
        }
        dispatch.finish_job();
    }
}

/// Answers `request` and any complete requests pipelined behind it on `conn`.
fn serve(
    dispatch: &Dispatch,
    thread: usize,
    mut conn: Connection,
    mut request: Request,
    out: &mut Vec<u8>,
) {
    let limits = &dispatch.config.limits;
    loop {
        let received = SystemTime::now();
        let started = Instant::now();
        request.client =
            crate::forwarded::client_of(&request, &dispatch.config.forwarded_allow_ips);
        dispatch
            .control
            .request_started(thread, &request.method, &request.path);
        let response = respond(dispatch, &request);
        dispatch.control.request_finished(thread);
        if dispatch.count_served() {
            dispatch.begin_drain(ServeOutcome::Recycled);
        }
        // The client's own word that this is its last request, as opposed to our decision to
        // close (a drain), after which a client may still send requests.
        let client_closes = wants_close(&request, false);
        let close = client_closes || dispatch.is_draining();
        let framing = Framing {
            close,
            keep_alive_10: !close && request.version == Version::Http10,
            head_request: request.method == "HEAD",
        };
        let written = write_response(&conn, &response, framing, out, dispatch);
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
        if close && client_closes && conn.reader.is_empty() {
            if conn.finish_after_last_request() {
                dispatch.give_back(conn);
            }
            return;
        }
        if close {
            return linger(dispatch, conn);
        }
        match conn.reader.advance(limits) {
            Progress::Complete(head, body) => {
                request = Request::from_head(head, body, conn.peer);
            }
            Progress::NeedMore => return dispatch.give_back(conn),
            Progress::Failed(error) => return reject(dispatch, conn, &error, out),
        }
    }
}

/// Runs the application for `request`, turning panics and invalid statuses into 500s.
fn respond(dispatch: &Dispatch, request: &Request) -> Response {
    // `OPTIONS *` asks about the server, not a resource: answered here, the app never sees
    // a path that does not start with `/`.
    if request.method == "OPTIONS" && request.target == "*" {
        return Response::new(200);
    }
    let handler = &dispatch.handler;
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
fn reject(dispatch: &Dispatch, conn: Connection, error: &ProtocolError, out: &mut Vec<u8>) {
    let status = error.status();
    let detail = error.to_string();
    log::debug!(
        "refusing request from {}: {detail}",
        conn.peer
            .map_or_else(|| "unix socket".to_string(), |p| p.to_string())
    );
    let handler = &dispatch.handler;
    let mut response = panic_capture::catch(|| handler.error_response(status, &detail))
        .unwrap_or_else(|_| error_page(status));
    response.status = status;
    let framing = Framing {
        close: true,
        keep_alive_10: false,
        head_request: false,
    };
    let started = Instant::now();
    let written = write_response(&conn, &response, framing, out, dispatch);
    log_access(&AccessEntry {
        request: None,
        peer: conn.peer,
        status,
        bytes: written.unwrap_or(0),
        received: SystemTime::now(),
        elapsed: started.elapsed(),
    });
    if written.is_some() {
        linger(dispatch, conn);
    }
}

/// Writes head and body within `write_timeout`; the body bytes sent, or `None` on failure.
fn write_response(
    conn: &Connection,
    response: &Response,
    framing: Framing,
    out: &mut Vec<u8>,
    dispatch: &Dispatch,
) -> Option<usize> {
    out.clear();
    encode_head(out, response, framing);
    let body = if sends_body(response.status, framing.head_request) {
        response.body.as_bytes()
    } else {
        &[]
    };
    let deadline = Instant::now() + dispatch.config.write_timeout;
    let result = if body.len() <= COPY_BODY_MAX {
        out.extend_from_slice(body);
        conn.write_all(&[out], deadline)
    } else {
        conn.write_all(&[out, body], deadline)
    };
    if out.capacity() > 4 * COPY_BODY_MAX {
        // One large header set should not pin memory in this thread forever.
        *out = Vec::with_capacity(1024);
    }
    match result {
        Ok(()) => Some(body.len()),
        Err(e) => {
            log::debug!("writing response failed: {e}");
            None
        }
    }
}

/// Closes gracefully: shut the write side, and let the poller discard what the client still
/// sends for a moment (without holding this thread).
fn linger(dispatch: &Dispatch, mut conn: Connection) {
    if conn.start_linger() {
        dispatch.give_back(conn);
    }
}
