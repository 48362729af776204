//! The two traits through which the outside world plugs into the server.
//!
//! [`Handler`] is the application. [`Control`] is the surrounding process (a prefork worker or
//! the single-process runner): it says when to stop and hears heartbeats and what each thread is
//! serving, so a supervisor can spot a stuck request and name it.

use crate::{Request, Response};
use std::os::fd::BorrowedFd;

/// The application: turns a request into a response. Called from several threads at once.
pub trait Handler: Send + Sync + 'static {
    /// Serves one request. A panic here is caught by the server and answered with
    /// [`Handler::panic_response`]; the thread keeps serving.
    fn handle(&self, req: &Request) -> Response;

    /// The response after `handle` panicked with `message` (`backtrace` captured at the panic).
    fn panic_response(&self, _req: &Request, _message: &str, _backtrace: &str) -> Response {
        error_page(500)
    }

    /// The page for a protocol-level error the server answers itself (400, 408, 413, 414, 431,
    /// 501, 505…) with a short human-readable `detail`. No request is available: it was bad.
    fn error_response(&self, status: u16, detail: &str) -> Response {
        let reason = Response::reason(status);
        Response::text(status, format!("{status} {reason}: {detail}\n"))
    }
}

/// A minimal plain-text error page, used where the application has none.
pub fn error_page(status: u16) -> Response {
    Response::text(status, format!("{} {}\n", status, Response::reason(status)))
}

/// The process around the server: stop requests, heartbeats and per-thread activity.
pub trait Control: Send + Sync {
    /// `true` once the process wants the server to stop accepting and drain.
    fn should_stop(&self) -> bool;
    /// A descriptor that becomes readable when `should_stop` may have changed, so the
    /// poller can include it in poll(2) and wake at once. `None`: poll with a short timeout.
    /// The server never reads it; once a drain starts it stops polling it. If it is readable
    /// while `should_stop` is still false, it is ignored for 200 ms at a time (no busy loop).
    fn wake_fd(&self) -> Option<BorrowedFd<'_>>;
    /// Called by the poller at least once a second while the server runs.
    fn heartbeat(&self);
    /// Handler thread `thread` (0-based, < `ServerConfig::threads`) started serving a request.
    fn request_started(&self, thread: usize, method: &str, path: &str);
    /// Handler thread `thread` finished the request it was serving.
    fn request_finished(&self, thread: usize);
    /// The request just finished got `status`, produced in `elapsed` (before it is written),
    /// for metrics. Requests refused before a handler saw them are not reported.
    fn request_measured(&self, _thread: usize, _status: u16, _elapsed: std::time::Duration) {}
}
