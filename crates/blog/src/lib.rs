//! The pyblogd blog: routes, handlers, storage, Markdown, templates and static files.
//!
//! It knows nothing of processes or sockets: [`App`] is an `http::Handler` built once per worker
//! (after fork) from a [`Config`]. Module map (contract; the implementation adds modules):
//! - `config` — [`Config`], [`Mode`], database URI parsing.
//! - `router` — method + path → route, no I/O.
//! - `store` — the `Store` trait and its SQLite implementation (r2d2 pool).
//! - `markdown` — render + highlight + sanitise, once at save time.
//! - `render` — minijinja environment: embedded templates, directory override.
//! - `assets` — static files: embedded, directory override, ETag, cache-busting.
#![forbid(unsafe_code)]

mod config;
mod error;

pub use config::{Config, DatabaseTarget, Mode};
pub use error::Error;

/// The application, one per worker process.
pub struct App {}

impl App {
    /// Opens the database (creating file and schema on first run), loads templates and assets.
    pub fn new(config: Config) -> Result<App, Error> {
        let _ = config;
        Ok(App {})
    }
}

impl http::Handler for App {
    fn handle(&self, _req: &http::Request) -> http::Response {
        http::Response::html(200, "<!doctype html><title>pyblogd</title><p>pyblogd")
    }
}
