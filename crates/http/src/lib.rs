//! Blocking HTTP/1.1 server core for pyblogd: parsing, limits, keep-alive, bodies, responses.
//!
//! It knows nothing of the blog nor of processes. A caller hands [`serve`] its listeners, a
//! [`Handler`] (the application) and a [`Control`] (how the surrounding process asks it to stop
//! and learns what it is doing), and gets back when asked to stop or after `max_requests`.
//!
//! Module map:
//! - `server` — [`serve`], [`ServerConfig`], [`Limits`], [`Listener`], [`ServeOutcome`].
//! - `handler` — the [`Handler`] and [`Control`] traits the outside world implements.
//! - `request` — [`Request`] and the one keep-alive decision (`wants_close`).
//! - `response` — [`Response`], [`Body`]; `framing` serialises heads (the server owns framing).
//! - `form` — `application/x-www-form-urlencoded` and query-string decoding.
//! - `forwarded` — [`ForwardedAllow`]: the client address behind trusted proxies.
//! - `error` — [`ProtocolError`] and the one mapping from parse errors to statuses.
//! - Parsing: `head` (httparse plus the HTTP/1.1 rules), `target` (path decoding), `chunked`,
//!   and `reader`, which assembles complete requests from arriving bytes.
//! - Serving: `poller` (accept, read, deadlines, drain), `dispatch` (hand-off between poller
//!   and pool), `pool` (handler threads), `connection` (socket I/O), `panic_capture`,
//!   `access_log`, `date`.
#![forbid(unsafe_code)]

mod access_log;
mod chunked;
mod connection;
mod date;
mod dispatch;
mod error;
pub mod form;
mod forwarded;
mod framing;
mod handler;
mod head;
mod panic_capture;
mod poller;
mod pool;
mod reader;
mod request;
mod response;
mod server;
mod target;

pub use date::civil_from_days;
pub use error::ProtocolError;
pub use forwarded::ForwardedAllow;
pub use handler::{error_page, Control, Handler};
pub use reader::parse_request;
pub use request::{Request, Version};
pub use response::{Body, Response};
pub use server::{serve, Limits, Listener, ServeOutcome, ServerConfig};
