//! The poller's drain: how a stop or a recycle winds the connections down.
//!
//! Accepting stops (after taking what the kernel already accepted), idle keep-alive connections
//! close gracefully, requests already sent are still served with `Connection: close`, heads
//! under way get a short grace, and `graceful_timeout` bounds the whole drain.

use super::{Action, Poller};
use crate::config::ServeOutcome;
use crate::reader::Phase;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a connection may still complete a request head once a drain has begun.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

impl Poller<'_> {
    /// Starts a drain when asked; returns the outcome once the drain is over.
    pub(super) fn check_drain(&mut self, now: Instant) -> Option<ServeOutcome> {
        let handoff = self.handoff;
        if self.drain_deadline.is_none() {
            if handoff.control.should_stop() {
                handoff.begin_drain(ServeOutcome::Stopped);
            }
            let outcome = handoff.drain_outcome()?;
            self.start_drain(now);
            log::info!(
                "draining ({outcome:?}): {} connections open",
                handoff.open.load(Ordering::Relaxed)
            );
        }
        let outcome = handoff.drain_outcome()?;
        // Keep-alive connections close now; ones mid-request may finish; fresh ones get a
        // short grace for their first request; lingering ones run out.
        self.close_idle_keep_alive(now);
        if self.conns.is_empty() && handoff.busy() == 0 {
            self.take_returned(now);
            if self.conns.is_empty() {
                return Some(outcome);
            }
        }
        if self.drain_deadline.is_some_and(|d| now >= d) {
            log::warn!(
                "graceful timeout: returning with {} requests in flight and {} connections waiting",
                handoff.busy(),
                self.conns.len()
            );
            return Some(outcome);
        }
        None
    }

    /// During a drain, ends every idle keep-alive connection. A request the client already
    /// sent (it could not know of the drain) is still read and served, with
    /// `Connection: close`; the others get a graceful close (FIN, then discard), because
    /// closing a socket with unread bytes would answer a request in flight with an RST.
    fn close_idle_keep_alive(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.conns.len() {
            let conn = &self.conns[i];
            if conn.is_lingering() || !conn.reader.is_empty() || conn.served == 0 {
                i += 1;
                continue;
            }
            match self.read_and_advance(i, now) {
                Action::Keep if self.conns[i].reader.is_empty() => {
                    if self.conns[i].start_linger() {
                        i += 1;
                    } else {
                        drop(self.conns.swap_remove(i));
                    }
                }
                // Part of a head arrived: it gets the drain's grace like any other.
                Action::Keep => i += 1,
                // Served, rejected or dropped: the connection left slot `i`.
                action => self.act(i, action),
            }
        }
    }

    /// Stops accepting. Connections the kernel already accepted are taken first, so a stop
    /// does not reset clients queued in the backlog. Connections that have not sent a byte or
    /// are partway through a head get [`DRAIN_GRACE`] to complete it (an idle preconnect or a
    /// slowloris must not hold the drain); an upload under way keeps its body deadline.
    fn start_drain(&mut self, now: Instant) {
        self.drain_deadline = Some(now + self.handoff.config.graceful_timeout);
        for index in 0..self.listeners.len() {
            self.accept(index, now);
        }
        self.listeners.clear();
        self.head_grace_until = Some(now + DRAIN_GRACE);
        for i in 0..self.conns.len() {
            self.apply_head_grace(i);
        }
    }

    /// During a drain, caps the deadline of connection `i` if it has not completed a head.
    pub(super) fn apply_head_grace(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        if let Some(grace) = self.head_grace_until {
            if !conn.is_lingering() && conn.reader.phase() != Phase::Body {
                conn.deadline = conn.deadline.min(grace);
            }
        }
    }
}
