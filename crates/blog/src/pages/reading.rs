//! The reading side: home, the paginated list of all posts, and a post (which counts a view).

use super::access::private_page;
use super::ser;
use super::{Meta, SITE_DESCRIPTION};
use crate::failure::Failure;
use crate::{clock, App};
use http::{Request, Response};
use minijinja::{context, Value};

/// Posts per list page and in the home page's "Latest posts".
pub(crate) const PER_PAGE: u32 = 5;

/// "Popular this week": how many posts, over how many seconds.
const POPULAR_COUNT: u32 = 5;
const POPULAR_WINDOW: i64 = 7 * 24 * 60 * 60;

impl App {
    pub(super) fn home(&self) -> Result<Response, Failure> {
        let stats = self.store.stats()?;
        self.cached_page("home", stats.generation, || {
            // No index serves both a date range and an order by views, so this sorts last
            // week's posts; the page cache runs it at most once a second per worker.
            let popular = self
                .store
                .popular_since(clock::now() - POPULAR_WINDOW, POPULAR_COUNT)?;
            let latest = self.store.latest(0, PER_PAGE)?;
            let meta = Meta::website("Home", SITE_DESCRIPTION, "/");
            let ctx = context! {
                meta => ser(meta),
                active => "home",
                popular => ser(&popular),
                latest => ser(&latest),
                total => stats.total,
                has_more => stats.total > u64::from(PER_PAGE),
            };
            Ok(("home.html", ctx))
        })
    }

    pub(super) fn list(&self, req: &Request) -> Result<Response, Failure> {
        let page = requested_page(req)?;
        let stats = self.store.stats()?;
        let pages = stats.total.div_ceil(u64::from(PER_PAGE)).max(1);
        if page > pages {
            return Err(Failure::NotFound);
        }
        self.cached_page(&format!("list:{page}"), stats.generation, || {
            let posts = self
                .store
                .latest((page - 1) * u64::from(PER_PAGE), PER_PAGE)?;
            let path = if page == 1 {
                "/posts".to_string()
            } else {
                format!("/posts?page={page}")
            };
            let title = if page == 1 {
                "All posts".to_string()
            } else {
                format!("All posts, page {page}")
            };
            let description = format!(
                "Every post on the blog, newest first: {} in all. Page {page} of {pages}.",
                stats.total
            );
            let ctx = context! {
                meta => ser(Meta::website(&title, &description, &path)),
                active => "posts",
                posts => ser(&posts),
                page,
                pages,
                total => stats.total,
                prev_page => (page > 1).then(|| page - 1),
                next_page => (page < pages).then(|| page + 1),
            };
            Ok(("list.html", ctx))
        })
    }

    /// A post, counting a view unless the request is a HEAD. Anonymous readers get the
    /// public page from the page cache with the count filled in, so a view reads one small
    /// row, not the post. The author (the post's key cookie) and the admin get a variant
    /// with Edit and Delete, rendered for them alone (it carries their form token), and right
    /// after a create the author sees the key link once.
    pub(super) fn show(&self, id: i64, req: &Request) -> Result<Response, Failure> {
        let counted = if req.method == "GET" {
            self.store.count_view(id)
        } else {
            self.store.view_count(id)
        };
        let count = match counted {
            Ok(count) => count,
            // A locked or read-only database must not hide the post: serve it uncounted.
            Err(err) if err.is_write_refusal() => {
                log::warn!("view of post {id} not counted: {err}");
                self.store.view_count(id)?
            }
            Err(err) => return Err(err.into()),
        };
        let count = count.ok_or(Failure::NotFound)?;
        let views = match count.views {
            1 => "1 view".to_string(),
            n => format!("{n} views"),
        };
        if self.reader_authority(id, req)?.is_some() {
            return self.author_view(id, req, &views);
        }
        let page = self.spliced_page(&id.to_string(), count.generation, &views, |views| {
            self.post_context(id, views)
        })?;
        // The same address serves the author a different page: no shared cache may mix them.
        Ok(page.with_header("Vary", "Cookie"))
    }

    /// The post page for its author or the admin.
    fn author_view(&self, id: i64, req: &Request, views: &str) -> Result<Response, Failure> {
        let (template, ctx) = self.post_context(id, views)?;
        let (token, token_cookie) = self.form_token(req)?;
        let shown_once = self.guard.take_show_key(req, id);
        let key = shown_once
            .as_ref()
            .and_then(|_| self.guard.key_cookie(req, id));
        let key_link = key.map(|key| format!("/posts/{id}/edit?key={key}"));
        let key_url = key_link.as_ref().map(|link| match &self.site_url {
            Some(site) => format!("{site}{link}"),
            None => match req.header("Host") {
                Some(host) => format!("http://{host}{link}"),
                None => link.clone(),
            },
        });
        let ctx = context! { can_edit => true, csrf_token => token, key_link, key_url, ..ctx };
        let page = self.page(200, template, ctx)?;
        let page = private_page(page, token_cookie).with_header("Vary", "Cookie");
        Ok(match shown_once {
            Some(clear) => page.with_header("Set-Cookie", clear),
            None => page,
        })
    }

    /// The template and context of post `id`'s page, with `views` where the count goes.
    fn post_context(&self, id: i64, views: &str) -> Result<(&'static str, Value), Failure> {
        let post = self.store.find(id)?.ok_or(Failure::NotFound)?;
        let summary = &post.summary;
        let description = if summary.description.is_empty() {
            format!("A post by {}.", summary.name)
        } else {
            summary.description.clone()
        };
        let meta = Meta {
            og_type: "article",
            published: Some(clock::iso(summary.created_at)),
            modified: Some(clock::iso(summary.updated_at)),
            ..Meta::website(&summary.title, &description, &format!("/posts/{id}"))
        };
        let ctx = context! {
            meta => ser(meta),
            active => "posts",
            edited => summary.updated_at > summary.created_at,
            post => ser(&post),
            views,
        };
        Ok(("post.html", ctx))
    }
}

/// `?page=N`: absent or not a positive number means page 1; a number too large to be a
/// page is past the last page (404); bad percent-encoding is a bad request.
fn requested_page(req: &Request) -> Result<u64, Failure> {
    let pairs = req
        .query_pairs()
        .map_err(|e| Failure::BadRequest(format!("query string: {e}")))?;
    let Some((_, raw)) = pairs.iter().find(|(k, _)| k == "page") else {
        return Ok(1);
    };
    let raw = raw.trim();
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(1);
    }
    match raw.parse::<u64>() {
        Ok(0) => Ok(1),
        Ok(n) if n <= u64::MAX / u64::from(PER_PAGE) => Ok(n),
        _ => Err(Failure::NotFound),
    }
}
