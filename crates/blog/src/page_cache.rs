//! Rendered pages that depend only on the set of posts: home, the list pages and each post.
//!
//! Such a page changes when a post is created, edited or deleted, which the store's change
//! generation tells in one cheap query, and otherwise only in its relative times ("3 minutes
//! ago") and its view counts. So a rendered page is reused while the generation is unchanged,
//! for at most a second: new and deleted posts show at once in every worker, relative times
//! lag by under a second, and so do the home page's counts. A post page is kept with a hole
//! where its view count goes ([`SplicedPage`]), filled on every request, so a reader always
//! sees their own view. This also bounds "Popular this week", a sort of last week's posts, to
//! one run per second per worker however busy the home page is.
//!
//! # Design note: what is written where, when it is applied, what a crash loses
//!
//! - **Written**: only in this worker's memory: rendered home and list pages (at most 256) and
//!   post pages with their view-count hole (at most 64), each stamped with the generation and
//!   the instant it was rendered. Nothing is shared between workers or written to disk.
//! - **Applied**: a page is served from here while the store's generation (bumped by a database
//!   trigger on every create, edit and delete) is unchanged and it is under a second old;
//!   storing a page drops every entry that can no longer be served. Development mode bypasses
//!   the cache so template edits show at once.
//! - **Lost on a crash**: nothing that matters: it holds derived data only, and a new worker
//!   renders each page again on its first request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a page is reused while no post changed.
const FRESH_FOR: Duration = Duration::from_secs(1);

struct Cached<T> {
    generation: u64,
    rendered: Instant,
    page: T,
}

impl<T> Cached<T> {
    fn is_fresh(&self, generation: u64) -> bool {
        self.generation == generation && self.rendered.elapsed() < FRESH_FOR
    }
}

/// Pages by key (`home`, `list:3`, a post id…), each stamped with the generation it was
/// rendered at, and at most `capacity` of them.
pub(crate) struct PageCache<T> {
    capacity: usize,
    pages: Mutex<HashMap<String, Cached<T>>>,
}

impl<T: Clone> PageCache<T> {
    /// A cache of at most `capacity` pages: past that, pages are rendered each time until
    /// some expire.
    pub fn new(capacity: usize) -> PageCache<T> {
        PageCache {
            capacity,
            pages: Mutex::new(HashMap::new()),
        }
    }

    /// The page stored under `key`, if it was rendered at `generation` less than a second ago.
    pub fn get(&self, key: &str, generation: u64) -> Option<T> {
        // Only derived data lives here, so a lock poisoned by a panic is safe to reuse.
        let pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        pages
            .get(key)
            .filter(|c| c.is_fresh(generation))
            .map(|c| c.page.clone())
    }

    /// Stores `page` as rendered now at `generation`. Pages that can no longer be served
    /// (older than a second, or of another generation) are dropped first, so memory holds
    /// only what was rendered in the last second, and never more than the capacity.
    pub fn put(&self, key: &str, generation: u64, page: T) {
        let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        pages.retain(|_, c| c.is_fresh(generation));
        if pages.len() >= self.capacity && !pages.contains_key(key) {
            return;
        }
        let cached = Cached {
            generation,
            rendered: Instant::now(),
            page,
        };
        pages.insert(key.to_string(), cached);
    }
}

/// A page with one hole for a value that changes on every request (a post's view count).
#[derive(Clone)]
pub(crate) struct SplicedPage {
    /// The page without the hole.
    body: Arc<[u8]>,
    /// Where the hole is, in bytes.
    hole: usize,
}

impl SplicedPage {
    /// The page `rendered` with its one occurrence of `marker` cut out; `None` when the
    /// marker is missing or occurs more than once (a template that shows the value twice, or
    /// content that happens to contain the marker), since then the hole is not known.
    pub fn cut(rendered: &str, marker: &str) -> Option<SplicedPage> {
        let hole = rendered.find(marker)?;
        let after = hole + marker.len();
        if rendered[after..].contains(marker) {
            return None;
        }
        let mut body = Vec::with_capacity(rendered.len() - marker.len());
        body.extend_from_slice(&rendered.as_bytes()[..hole]);
        body.extend_from_slice(&rendered.as_bytes()[after..]);
        Some(SplicedPage {
            body: body.into(),
            hole,
        })
    }

    /// The page with `value` in the hole.
    pub fn fill(&self, value: &str) -> Vec<u8> {
        let mut page = Vec::with_capacity(self.body.len() + value.len());
        page.extend_from_slice(&self.body[..self.hole]);
        page.extend_from_slice(value.as_bytes());
        page.extend_from_slice(&self.body[self.hole..]);
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_reused_only_for_its_generation() {
        let cache = PageCache::new(4);
        cache.put("home", 7, Arc::<[u8]>::from(&b"seven"[..]));
        assert_eq!(cache.get("home", 7).as_deref(), Some(&b"seven"[..]));
        assert_eq!(cache.get("home", 8), None, "a post changed: render again");
        assert_eq!(cache.get("list:2", 7), None);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = PageCache::new(16);
        for page in 0..26 {
            cache.put(&format!("list:{page}"), 1, page);
        }
        let pages = cache.pages.lock().unwrap();
        assert_eq!(pages.len(), 16);
    }

    #[test]
    fn pages_of_an_older_generation_are_dropped_when_another_is_stored() {
        let cache = PageCache::new(16);
        for page in 0..10 {
            cache.put(&format!("list:{page}"), 1, page);
        }
        cache.put("home", 2, 99);
        let pages = cache.pages.lock().unwrap();
        assert_eq!(pages.keys().collect::<Vec<_>>(), ["home"]);
    }

    #[test]
    fn a_spliced_page_is_filled_where_its_marker_was() {
        let page = SplicedPage::cut("<p>\u{e000}n\u{e000} views</p>", "\u{e000}n\u{e000}").unwrap();
        assert_eq!(page.fill("12"), b"<p>12 views</p>");
        assert_eq!(page.fill(""), b"<p> views</p>");
        let at_end = SplicedPage::cut("views: #", "#").unwrap();
        assert_eq!(at_end.fill("3"), b"views: 3");
    }

    #[test]
    fn a_page_without_exactly_one_marker_cannot_be_spliced() {
        assert!(SplicedPage::cut("<p>no hole</p>", "#").is_none());
        assert!(SplicedPage::cut("<p># and #</p>", "#").is_none());
    }
}
