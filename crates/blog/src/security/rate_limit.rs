//! `POST_RATE_LIMIT`: a token bucket per client address, shared by every worker.
//!
//! Each address may send `per_minute` POSTs in a burst, then one more every `60 / per_minute`
//! seconds. The buckets live in the database (`post_rate` table, updated in one short write
//! transaction), so `-w 4` allows the same rate as `-w 1`. Each worker also remembers which
//! addresses it refused and until when, so a flood of refused POSTs costs no database write.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A client's bucket as stored: tokens left at `updated` (unix seconds, fractional).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    pub tokens: f64,
    pub updated: f64,
}

/// Takes one token from `bucket` (a new client starts full) at `now`: the bucket to store,
/// and `Err(wait)` when it was empty, `wait` being how long until a token is back.
pub(crate) fn take(
    bucket: Option<Bucket>,
    now: f64,
    per_minute: u32,
) -> (Bucket, Result<(), Duration>) {
    let capacity = f64::from(per_minute.max(1));
    let per_second = capacity / 60.0;
    let tokens = match bucket {
        None => capacity,
        // A clock that stepped back refills nothing rather than draining the bucket.
        Some(b) => (b.tokens + (now - b.updated).max(0.0) * per_second).min(capacity),
    };
    if tokens >= 1.0 {
        let left = Bucket {
            tokens: tokens - 1.0,
            updated: now,
        };
        return (left, Ok(()));
    }
    let wait = Duration::from_secs_f64(((1.0 - tokens) / per_second).clamp(0.0, 3600.0));
    (
        Bucket {
            tokens,
            updated: now,
        },
        Err(wait),
    )
}

/// Seconds after which an untouched bucket is full again, so its row can go.
pub(crate) fn idle_after(per_minute: u32) -> f64 {
    60.0 + 60.0 / f64::from(per_minute.max(1))
}

/// Most refused addresses a worker remembers; past that it asks the database each time.
const REMEMBERED: usize = 4096;

/// This worker's memory of refused addresses: address → when it may POST again.
#[derive(Default)]
pub(crate) struct Refusals {
    until: Mutex<HashMap<String, Instant>>,
}

impl Refusals {
    /// How long `client` must still wait, if this worker refused it recently.
    pub fn wait(&self, client: &str) -> Option<Duration> {
        // Only a cache of refusals lives here: a lock poisoned by a panic is safe to reuse.
        let until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        let left = until.get(client)?.checked_duration_since(Instant::now())?;
        (!left.is_zero()).then_some(left)
    }

    /// Remembers that `client` may not POST for `wait`.
    pub fn remember(&self, client: &str, wait: Duration) {
        let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        until.retain(|_, t| *t > now);
        if until.len() < REMEMBERED {
            until.insert(client.to_string(), now + wait);
        }
    }
}

/// `Retry-After` in whole seconds, never 0.
pub(crate) fn retry_after(wait: Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_client_gets_a_full_burst_then_waits() {
        let mut bucket = None;
        for _ in 0..3 {
            let (b, taken) = take(bucket, 100.0, 3);
            assert_eq!(taken, Ok(()));
            bucket = Some(b);
        }
        let (b, taken) = take(bucket, 100.0, 3);
        assert_eq!(
            taken,
            Err(Duration::from_secs(20)),
            "3 a minute: one per 20 s"
        );
        assert_eq!(b.tokens, 0.0);
    }

    #[test]
    fn tokens_come_back_with_time_up_to_the_burst() {
        let empty = Some(Bucket {
            tokens: 0.0,
            updated: 100.0,
        });
        assert!(take(empty, 110.0, 3).1.is_err(), "half a token back");
        let (b, taken) = take(empty, 120.0, 3);
        assert_eq!(taken, Ok(()));
        assert!(b.tokens.abs() < 1e-9);
        let (b, _) = take(empty, 100_000.0, 3);
        assert!((b.tokens - 2.0).abs() < 1e-9, "capped at the burst: {b:?}");
    }

    #[test]
    fn a_clock_stepping_back_refills_nothing() {
        let empty = Some(Bucket {
            tokens: 0.0,
            updated: 100.0,
        });
        assert!(take(empty, 50.0, 60).1.is_err());
    }

    #[test]
    fn refusals_are_remembered_until_they_expire() {
        let refusals = Refusals::default();
        assert_eq!(refusals.wait("a"), None);
        refusals.remember("a", Duration::from_secs(30));
        assert!(refusals
            .wait("a")
            .is_some_and(|w| w > Duration::from_secs(29)));
        assert_eq!(refusals.wait("b"), None);
        refusals.remember("c", Duration::ZERO);
        assert_eq!(refusals.wait("c"), None);
    }

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        assert_eq!(retry_after(Duration::from_millis(1)), 1);
        assert_eq!(retry_after(Duration::ZERO), 1);
        assert_eq!(retry_after(Duration::from_secs(20)), 20);
        assert_eq!(retry_after(Duration::from_millis(20_001)), 21);
    }
}
