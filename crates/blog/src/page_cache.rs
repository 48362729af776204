//! Rendered pages that depend only on the set of posts: home and the list pages.
//!
//! Such a page changes when a post is created, edited or deleted, which the store's change
//! generation tells in one cheap query, and otherwise only in its relative times ("3 minutes
//! ago") and the home page's view counts. So a rendered page is reused while the generation is
//! unchanged, for at most a second: new and deleted posts show at once in every worker, and
//! counts lag by under a second. This also bounds "Popular this week", a sort of last week's
//! posts, to one run per second per worker however busy the home page is.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a page is reused while no post changed.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// A bound on memory: list pages past this many are rendered each time until it clears.
const MAX_PAGES: usize = 256;

struct Cached {
    generation: u64,
    rendered: Instant,
    body: Arc<[u8]>,
}

#[derive(Default)]
pub(crate) struct PageCache {
    pages: Mutex<HashMap<String, Cached>>,
}

impl PageCache {
    /// The page stored under `key`, if it was rendered at `generation` less than a second ago.
    pub fn get(&self, key: &str, generation: u64) -> Option<Arc<[u8]>> {
        // Only derived data lives here, so a lock poisoned by a panic is safe to reuse.
        let pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        pages
            .get(key)
            .filter(|c| c.generation == generation && c.rendered.elapsed() < FRESH_FOR)
            .map(|c| Arc::clone(&c.body))
    }

    pub fn put(&self, key: &str, generation: u64, body: Arc<[u8]>) {
        let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        if pages.len() >= MAX_PAGES && !pages.contains_key(key) {
            pages.retain(|_, c| c.generation == generation && c.rendered.elapsed() < FRESH_FOR);
            if pages.len() >= MAX_PAGES {
                return;
            }
        }
        let cached = Cached {
            generation,
            rendered: Instant::now(),
            body,
        };
        pages.insert(key.to_string(), cached);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_reused_only_for_its_generation() {
        let cache = PageCache::default();
        cache.put("home", 7, Arc::from(&b"seven"[..]));
        assert_eq!(cache.get("home", 7).as_deref(), Some(&b"seven"[..]));
        assert_eq!(cache.get("home", 8), None, "a post changed: render again");
        assert_eq!(cache.get("list:2", 7), None);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = PageCache::default();
        for page in 0..(MAX_PAGES + 10) {
            cache.put(&format!("list:{page}"), 1, Arc::from(&b"x"[..]));
        }
        let pages = cache.pages.lock().unwrap();
        assert!(pages.len() <= MAX_PAGES);
    }
}
