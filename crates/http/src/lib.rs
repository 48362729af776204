//! Blocking HTTP/1.1 server core for pyblogd: parsing, limits, keep-alive, bodies, responses.
//!
//! It knows nothing of the blog nor of processes. A caller hands [`serve`] its listeners, a
//! [`Handler`] (the application) and a [`Control`] (how the surrounding process asks it to stop
//! and learns what it is doing), and gets back when asked to stop or after `max_requests`.
//!
//! Module map, in the order a request meets them (each layer uses only the ones above it):
//! - `config` — what the caller hands in: [`ServerConfig`], [`Limits`], [`Listener`], and
//!   [`ServeOutcome`]. `error` — [`ProtocolError`] and the one mapping from parse errors to
//!   statuses. `handler` — the [`Handler`] and [`Control`] traits the outside world implements.
//! - `forwarded` — [`ForwardedAllow`]: the client address behind trusted proxies
//!   (`--forwarded-allow-ips`), resolved before the application sees the request.
//! - Parsing, no I/O: `head` (httparse plus the HTTP/1.1 rules, [`Version`], how a body is
//!   delimited), `target` (path decoding), `form`, `chunked`, `reader` (complete requests from
//!   arriving bytes, [`parse_request`]) and `request` ([`Request`]).
//! - Serving: `serve` ([`serve`]: threads and wiring), `poller` (the poll loop, with `accept`
//!   and `drain`), `connection` (socket I/O, deadlines), `handoff` (the queue and state the
//!   poller and handler threads share), `handler_pool` (runs the application), `keep_alive`
//!   (the one keep-alive/close decision), `write_response` (the head the server owns, then the
//!   body), `response` ([`Response`], [`Body`]), `panic_capture`, `access_log`, `date`.
#![forbid(unsafe_code)]

mod access_log;
mod chunked;
mod config;
mod connection;
mod date;
mod error;
pub mod form;
mod forwarded;
mod handler;
mod handler_pool;
mod handoff;
mod head;
mod keep_alive;
mod panic_capture;
mod poller;
mod reader;
mod request;
mod response;
mod serve;
mod target;
mod write_response;

pub use config::{Limits, Listener, ServeOutcome, ServerConfig};
pub use date::civil_from_days;
pub use error::ProtocolError;
pub use forwarded::ForwardedAllow;
pub use handler::{error_page, Control, Handler};
pub use head::Version;
pub use reader::parse_request;
pub use request::Request;
pub use response::{Body, Response};
pub use serve::serve;
