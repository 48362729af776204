//! The pyblogd blog: routes, handlers, storage, Markdown, templates and static files.
//!
//! It knows nothing of processes or sockets: [`App`] is an `http::Handler` built once per worker
//! (after fork) from a [`Config`]. Module map:
//! - `config` — [`Config`], [`Mode`], `DATABASE_URI` parsing ([`DatabaseTarget`]).
//! - `router` — method + path → `Route`, no I/O.
//! - `pages` — one handler per route, plus the page/error-page plumbing of [`App`].
//! - `post_form` — the new/edit form: decoding and the original's validation rules.
//! - `page_cache` — rendered home, list and post pages, reused for a second while no post changes.
//! - `store` — the `Store` trait, its SQLite and PostgreSQL implementations (r2d2 pools).
//! - `migrate` — `pyblogd migrate`: copy posts between SQLite and PostgreSQL, verified.
//! - `markdown` — render + highlight + sanitise, once at save time.
//! - `render` — minijinja environment: embedded templates, directory override.
//! - `assets` — static files: embedded, directory override, ETag, cache-busting.
//! - `security` — who may change what: edit keys, admin session, CSRF, rate limit, headers.
//! - `failure`, `clock`, `escape` — error-to-status mapping, dates, HTML escaping.
#![forbid(unsafe_code)]

mod assets;
mod clock;
mod config;
mod error;
mod escape;
mod failure;
mod markdown;
mod migrate;
mod page_cache;
mod pages;
mod post_form;
mod render;
mod router;
mod security;
mod store;

pub use config::{Config, DatabaseTarget, Mode, PostgresTarget};
pub use error::Error;
pub use migrate::{copy_posts, CopyReport};

use assets::Assets;
use markdown::Markdown;
use page_cache::{PageCache, SplicedPage};
use render::Renderer;
use std::sync::Arc;
use store::{PostgresStore, SqliteStore, Store};

/// The application, one per worker process, shared by its handler threads.
pub struct App {
    mode: Mode,
    fault_routes: bool,
    store: Box<dyn Store>,
    renderer: Renderer,
    assets: Arc<Assets>,
    markdown: Markdown,
    /// Home and list pages.
    pages: PageCache<Arc<[u8]>>,
    /// Post pages, with a hole for the view count.
    posts: PageCache<SplicedPage>,
    /// Edit keys, admin session, CSRF, rate limit and security headers.
    guard: security::Guard,
    /// `SITE_URL` without a trailing slash, for absolute links (the key link).
    site_url: Option<String>,
}

/// Home and list pages kept at most: a crawler walking every list page renders each one.
const CACHED_PAGES: usize = 256;
/// Post pages kept at most (about 10 KB each): the posts being read right now.
const CACHED_POSTS: usize = 64;

impl App {
    /// Opens the database (creating file and schema on first run), loads templates and assets.
    ///
    /// Call it in the worker, after fork: it opens database connections and may start the
    /// connection pool's helper threads.
    pub fn new(config: Config) -> Result<App, Error> {
        let store = open_store(&config.database)?;
        let assets = Arc::new(Assets::new(&config.static_dir, config.mode).map_err(Error::Static)?);
        let site_url = config
            .site_url
            .as_deref()
            .map(|u| u.trim_end_matches('/'))
            .filter(|u| !u.is_empty());
        let renderer = Renderer::new(
            &config.templates_dir,
            config.mode,
            site_url,
            Arc::clone(&assets),
        )
        .map_err(Error::Template)?;
        let app = App {
            mode: config.mode,
            fault_routes: config.fault_routes,
            store,
            renderer,
            assets,
            markdown: Markdown::new(),
            pages: PageCache::new(CACHED_PAGES),
            posts: PageCache::new(CACHED_POSTS),
            guard: security::Guard::new(
                site_url,
                config.admin_token.as_deref(),
                config.post_rate_limit,
            ),
            site_url: site_url.map(str::to_string),
        };
        app.render_adopted_posts()?;
        Ok(app)
    }

    /// Has `release` called whenever a part of the app that grows while working has gone idle
    /// and freed its memory (today: the syntax highlighter, a few seconds after the last save,
    /// which frees 4–6 MB per language it highlighted). The binary passes a call that makes
    /// the allocator return free pages to the OS; without one, freed memory stays with the
    /// allocator for reuse. It runs on the retiring component's own thread, never on a
    /// request's. Only the first call of this method takes effect.
    pub fn with_memory_release(self, release: impl Fn() + Send + Sync + 'static) -> App {
        self.markdown.set_memory_release(Arc::new(release));
        self
    }

    /// Renders posts adopted from the original PyProject database, which arrive without HTML.
    /// Workers starting together may render the same post twice; the store keeps the first.
    fn render_adopted_posts(&self) -> Result<(), Error> {
        let failed =
            |e: store::StoreError| Error::Database(format!("rendering adopted posts: {e}"));
        loop {
            let batch = self.store.unrendered(100).map_err(failed)?;
            if batch.is_empty() {
                return Ok(());
            }
            for (id, markdown) in batch {
                let rendered = self.markdown.render(&markdown);
                self.store
                    .set_rendered(id, &rendered.html, &rendered.description)
                    .map_err(failed)?;
            }
        }
    }
}

/// Opens the database `target` names (creating and migrating its schema when needed).
pub(crate) fn open_store(target: &DatabaseTarget) -> Result<Box<dyn Store>, Error> {
    Ok(match target {
        DatabaseTarget::Sqlite(path) => Box::new(SqliteStore::open(path).map_err(Error::Database)?),
        DatabaseTarget::Postgres(pg) => Box::new(PostgresStore::open(pg).map_err(Error::Database)?),
    })
}

impl http::Handler for App {
    fn handle(&self, req: &http::Request) -> http::Response {
        let response = match router::route(&req.method, &req.path, self.fault_routes)
            .and_then(|route| self.dispatch(route, req))
        {
            Ok(response) => response,
            Err(failure) => self.failure_page(&failure),
        };
        self.guard.harden(response)
    }

    fn panic_response(
        &self,
        _req: &http::Request,
        message: &str,
        backtrace: &str,
    ) -> http::Response {
        let trace = (self.mode == Mode::Development).then(|| format!("{message}\n\n{backtrace}"));
        self.guard.harden(self.error_page(
            500,
            "Something went wrong on our side. It has been logged.",
            trace,
        ))
    }

    fn error_response(&self, status: u16, detail: &str) -> http::Response {
        self.guard.harden(self.error_page(
            status,
            &format!("The request could not be served: {detail}."),
            None,
        ))
    }
}
