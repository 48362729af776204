//! "Popular this week": the five most viewed posts created in the last seven days.
//!
//! No index serves both a date range and an order by views, so the query sorts last week's
//! posts — cheap for a normal blog, tens of milliseconds if a hundred thousand posts are a day
//! old. The result is kept per worker for at most a second and dropped as soon as the store's
//! change generation moves (any create, edit or delete in any worker), so new and deleted
//! posts show at once and only view counts may lag, by under a second.

use crate::store::{PostSummary, Stats, Store, StoreError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many posts the list shows.
pub(crate) const POPULAR_COUNT: u32 = 5;
/// The window, in seconds.
const WINDOW: i64 = 7 * 24 * 60 * 60;
/// How long a computed list is reused while nothing but views changed.
const FRESH_FOR: Duration = Duration::from_secs(1);

struct Cached {
    generation: u64,
    computed: Instant,
    posts: Arc<Vec<PostSummary>>,
}

#[derive(Default)]
pub(crate) struct Popular {
    cached: Mutex<Option<Cached>>,
}

impl Popular {
    /// The list as of `now` (unix seconds), given the store's current `stats`.
    pub fn get(
        &self,
        store: &dyn Store,
        stats: Stats,
        now: i64,
    ) -> Result<Arc<Vec<PostSummary>>, StoreError> {
        {
            // The cache holds only derived data, so a poisoned lock is safe to reuse.
            let cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = cached.as_ref() {
                if c.generation == stats.generation && c.computed.elapsed() < FRESH_FOR {
                    return Ok(Arc::clone(&c.posts));
                }
            }
        }
        // Computed outside the lock: two threads may both compute once, neither waits.
        let posts = Arc::new(store.popular_since(now - WINDOW, POPULAR_COUNT)?);
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        *cached = Some(Cached {
            generation: stats.generation,
            computed: Instant::now(),
            posts: Arc::clone(&posts),
        });
        Ok(posts)
    }
}
