//! Exponential backoff for workers that keep failing to boot.
//!
//! Once a worker has booted at least once, a failing boot (database down, disk full) is
//! retried — but one worker at a time, 0.1 s after the first failure, doubling up to 10 s, so a
//! broken dependency never turns the master into a fork loop. One successful boot resets it.

use std::time::{Duration, Instant};

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: u32,
    next_at: Option<Instant>,
    last_failure: Option<Instant>,
}

impl Backoff {
    /// The wait after `failures` consecutive failed boots.
    pub(crate) fn delay(failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let doublings = (failures - 1).min(16);
        FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
    }

    /// A boot failed at `now`; returns how long until the next attempt.
    pub(crate) fn record_failure(&mut self, now: Instant) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let delay = Backoff::delay(self.failures);
        self.next_at = Some(now + delay);
        self.last_failure = Some(now);
        delay
    }

    /// Whether a worker spawned at `spawned` was started after the last failure, so its
    /// success says the cause is gone.
    pub(crate) fn started_after_failure(&self, spawned: Instant) -> bool {
        self.last_failure.is_some_and(|failed| spawned > failed)
    }

    /// A worker booted: spawn freely again.
    pub(crate) fn reset(&mut self) {
        *self = Backoff::default();
    }

    /// Whether boots are failing (then workers are started one at a time).
    pub(crate) fn is_failing(&self) -> bool {
        self.failures > 0
    }

    /// Whether a worker may be spawned at `now`.
    pub(crate) fn may_spawn(&self, now: Instant) -> bool {
        !matches!(self.next_at, Some(at) if now < at)
    }

    /// Time left until the next attempt, if one is pending.
    pub(crate) fn remaining(&self, now: Instant) -> Option<Duration> {
        self.next_at.map(|at| at.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_from_a_tenth_to_ten_seconds() {
        let delays: Vec<u128> = (1..=9).map(|n| Backoff::delay(n).as_millis()).collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
        );
        assert_eq!(Backoff::delay(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn holds_spawns_until_the_delay_passed_and_resets_on_success() {
        let start = Instant::now();
        let mut backoff = Backoff::default();
        assert!(backoff.may_spawn(start) && !backoff.is_failing());
        assert_eq!(backoff.record_failure(start), Duration::from_millis(100));
        assert!(!backoff.may_spawn(start + Duration::from_millis(99)));
        assert!(backoff.may_spawn(start + Duration::from_millis(100)));
        assert_eq!(backoff.record_failure(start), Duration::from_millis(200));
        assert_eq!(backoff.remaining(start), Some(Duration::from_millis(200)));
        assert!(!backoff.started_after_failure(start));
        assert!(backoff.started_after_failure(start + Duration::from_millis(1)));
        backoff.reset();
        assert!(backoff.may_spawn(start) && !backoff.is_failing());
        assert_eq!(backoff.remaining(start), None);
    }
}
