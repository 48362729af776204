//! From a [`Route`] to a response: dispatch, page rendering, and every error page.
//!
//! Handlers live in `reading` (home, list, post), `writing` (forms, create, edit, delete),
//! `admin` (the admin session) and `faults` (test routes); `access` holds the checks in front
//! of every change (CSRF, rate limit, authorship). They return `Result<Response, Failure>`; `failure_page` is the one
//! place a `Failure` becomes a status and a page. If the error template itself cannot render,
//! a hand-written page is served instead: an error page never fails.

mod access;
mod admin;
mod faults;
mod reading;
mod writing;

use crate::escape::escape_html;
use crate::failure::Failure;
use crate::page_cache::SplicedPage;
use crate::router::Route;
use crate::App;
use http::{Body, Request, Response};
use minijinja::{context, Value};
use serde::Serialize;
use std::sync::Arc;

/// What the site says about itself where a page has nothing more specific.
pub(crate) const SITE_DESCRIPTION: &str =
    "A small blog where developers share what they learn about code, one Markdown post at a time.";

/// Stands where a spliced page's per-request value goes: private-use characters, which no
/// template writes and the autoescaper leaves alone.
const HOLE: &str = "\u{e000}pyblogd-hole\u{e000}";

/// The meta tags of one page (the layout turns them into `<title>`, description, canonical,
/// Open Graph and Twitter tags).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Meta {
    pub title: String,
    pub description: String,
    /// `website` or `article`.
    pub og_type: &'static str,
    /// Path (and query) of the canonical URL; joined to `site_url` by the layout.
    pub path: String,
    /// ISO 8601, for articles.
    pub published: Option<String>,
    pub modified: Option<String>,
    /// Forms and error pages ask search engines not to index them.
    pub noindex: bool,
}

impl Meta {
    pub fn website(title: &str, description: &str, path: &str) -> Meta {
        Meta {
            title: title.to_string(),
            description: description.to_string(),
            og_type: "website",
            path: path.to_string(),
            published: None,
            modified: None,
            noindex: false,
        }
    }
}

impl App {
    pub(crate) fn dispatch(&self, route: Route, req: &Request) -> Result<Response, Failure> {
        match route {
            Route::Home => self.home(),
            Route::ListPosts => self.list(req),
            // HEAD (link checkers, crawlers) reads the post without counting a view.
            Route::ShowPost(id) => self.show(id, req),
            Route::NewPost => self.new_form(req),
            Route::CreatePost => self.create(req),
            Route::EditPost(id) => self.edit_form(id, req),
            Route::UpdatePost(id) => self.update(id, req),
            Route::ConfirmDelete(id) => self.confirm_delete(id, req),
            Route::DeletePost(id) => self.delete(id, req),
            Route::AdminLoginForm => self.admin_form(req),
            Route::AdminLogin => self.admin_login(req),
            Route::AdminLogout => self.admin_logout(req),
            Route::Static(path) => self.assets.serve(req, &path).ok_or(Failure::NotFound),
            Route::Fault(fault) => faults::misbehave(fault, req),
            Route::Health => Ok(self.health()),
        }
    }

    /// A plain-text answer for load balancers: never cached, never an error page, and a
    /// lost database is 503 with `Retry-After` like any page that needs it.
    fn health(&self) -> Response {
        match self.store.ping() {
            Ok(()) => Response::text(200, "ok\n").with_header("Cache-Control", "no-store"),
            Err(e) => {
                log::warn!("health check: {e}");
                Response::text(503, "database unavailable\n")
                    .with_header("Cache-Control", "no-store")
                    .with_header("Retry-After", "1")
            }
        }
    }

    /// Renders `template` into an HTML response with the headers every page carries.
    pub(crate) fn page(
        &self,
        status: u16,
        template: &str,
        ctx: Value,
    ) -> Result<Response, Failure> {
        let body = self.renderer.render(template, ctx)?;
        Ok(html(status, Body::Owned(body.into_bytes())))
    }

    /// A page that depends only on the posts (see `page_cache`): reused while `generation`
    /// holds, else built by `build` (template name and context) and stored. Development
    /// mode renders every time, so template edits show at once.
    pub(crate) fn cached_page(
        &self,
        key: &str,
        generation: u64,
        build: impl FnOnce() -> Result<(&'static str, Value), Failure>,
    ) -> Result<Response, Failure> {
        let caching = self.mode == crate::Mode::Production;
        if caching {
            if let Some(body) = self.pages.get(key, generation) {
                return Ok(html(200, Body::Shared(body)));
            }
        }
        let (template, ctx) = build()?;
        let body: Arc<[u8]> = self.renderer.render(template, ctx)?.into_bytes().into();
        if caching {
            self.pages.put(key, generation, Arc::clone(&body));
        }
        Ok(html(200, Body::Shared(body)))
    }

    /// A page that depends only on the posts but for one value, `filling` (a post's view
    /// count): rendered once per generation with [`HOLE`] in that place (`build` gets what to
    /// show there), then filled on each request. A page where the hole is not found exactly
    /// once is rendered with `filling` every time, as is every page in development mode.
    pub(crate) fn spliced_page(
        &self,
        key: &str,
        generation: u64,
        filling: &str,
        build: impl Fn(&str) -> Result<(&'static str, Value), Failure>,
    ) -> Result<Response, Failure> {
        let caching = self.mode == crate::Mode::Production;
        if caching {
            if let Some(page) = self.posts.get(key, generation) {
                return Ok(html(200, Body::Owned(page.fill(filling))));
            }
            let (template, ctx) = build(HOLE)?;
            if let Some(page) = SplicedPage::cut(&self.renderer.render(template, ctx)?, HOLE) {
                let body = page.fill(filling);
                self.posts.put(key, generation, page);
                return Ok(html(200, Body::Owned(body)));
            }
        }
        let (template, ctx) = build(filling)?;
        self.page(200, template, ctx)
    }

    /// The error page for `failure`, logged at the level it deserves.
    pub(crate) fn failure_page(&self, failure: &Failure) -> Response {
        match failure {
            Failure::Internal(detail) => log::error!("internal error: {detail}"),
            Failure::Unavailable(detail) => log::warn!("unavailable: {detail}"),
            _ => {}
        }
        let trace = match self.mode {
            crate::Mode::Development => failure.detail().map(str::to_string),
            crate::Mode::Production => None,
        };
        let response = self.error_page(failure.status(), &failure.message(), trace);
        match failure {
            Failure::MethodNotAllowed(allow) => response.with_header("Allow", *allow),
            Failure::Unavailable(_) => response.with_header("Retry-After", "1"),
            Failure::TooManyRequests(after) => {
                response.with_header("Retry-After", after.to_string())
            }
            _ => response,
        }
    }

    /// An error page from the template, or a plain one if the template fails.
    pub(crate) fn error_page(&self, status: u16, message: &str, trace: Option<String>) -> Response {
        let reason = Response::reason(status);
        let mut meta = Meta::website(&format!("{status} {reason}"), message, "");
        meta.noindex = true;
        let ctx = context! { status, reason, message, trace => trace.clone(), meta => ser(meta) };
        match self.renderer.render("error.html", ctx) {
            Ok(body) => html(status, Body::Owned(body.into_bytes())),
            Err(err) => {
                log::error!("error template failed, serving a plain page: {err:#}");
                let page = plain_error_page(status, reason, message, trace.as_deref());
                html(status, Body::Owned(page.into_bytes()))
            }
        }
    }
}

/// A serde value for a template context.
pub(crate) fn ser<T: Serialize>(value: T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

fn html(status: u16, body: Body) -> Response {
    Response::new(status)
        .with_header("Content-Type", "text/html; charset=utf-8")
        .with_body(body)
        .with_header("Cache-Control", "no-cache")
}

/// The last resort: no template, no assets, everything escaped.
fn plain_error_page(status: u16, reason: &str, message: &str, trace: Option<&str>) -> String {
    let trace = trace.map_or(String::new(), |t| format!("<pre>{}</pre>", escape_html(t)));
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{status} {reason}</title></head><body><h1>{status} {reason}</h1>\
         <p>{}</p>{trace}<p><a href=\"/\">Home</a></p></body></html>\n",
        escape_html(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_page_escapes_everything() {
        let page = plain_error_page(500, "Internal Server Error", "<b>", Some("<script>"));
        assert!(
            page.contains("&lt;b&gt;") && page.contains("&lt;script&gt;"),
            "{page}"
        );
        assert!(!page.contains("<script>"), "{page}");
    }
}
