//! Blocking HTTP/1.1 server core for pyblogd: parsing, limits, keep-alive, bodies, responses.
//!
//! It knows nothing of the blog nor of processes. A caller hands [`serve`] its listeners, a
//! [`Handler`] (the application) and a [`Control`] (how the surrounding process asks it to stop
//! and learns what it is doing), and gets back when asked to stop or after `max_requests`.
//!
//! Module map:
//! - `request` — [`Request`]: method, decoded path, query, headers, body.
//! - `response` — [`Response`]: status, headers, body; framing is added when written.
//! - `handler` — the [`Handler`] and [`Control`] traits the outside world implements.
//! - `form` — `application/x-www-form-urlencoded` and query-string decoding.
//! - `server` — [`serve`], [`ServerConfig`], [`Limits`], [`Listener`].
#![forbid(unsafe_code)]

pub mod form;
mod handler;
mod request;
mod response;
mod server;

pub use handler::{Control, Handler};
pub use request::{Request, Version};
pub use response::{Body, Response};
pub use server::{serve, Limits, Listener, ServeOutcome, ServerConfig};
