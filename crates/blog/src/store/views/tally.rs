//! This worker's journaled views that the database may not hold yet, by post.
//!
//! Journal offsets are the clock here: the flusher commits the counts of a prefix of the
//! journal together with the offset where that prefix ends, so a snapshot's `applied_offset`
//! says exactly which of this worker's views it includes. A page adds the rest, which is how
//! a reader sees their own view before it reaches the database, without ever seeing it twice.

use std::collections::HashMap;

/// Counts of views by post id.
pub(super) type Counts = HashMap<i64, u64>;

/// The views journaled but not known to be committed, split where the flusher cut them.
#[derive(Debug, Default)]
pub(super) struct Tally {
    /// Committed up to here (journal offset), as far as this process has seen.
    applied: u64,
    /// Taken by the flusher, not yet committed: counts and the offset they end at.
    in_flight: Option<(Counts, u64)>,
    /// Everything after `in_flight` (or after `applied` when nothing is in flight).
    pending: Counts,
    /// The journal's end: every record before it is in `in_flight` or `pending`, or applied.
    end: u64,
}

/// One post's share of a [`Tally`], captured when a view of it was journaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) struct Unapplied {
    applied: u64,
    /// (offset the segment ends at, views of the post in it), oldest first.
    segments: [(u64, u64); 2],
}

impl Unapplied {
    /// How many of these views a database snapshot whose `applied_offset` is `snapshot` lacks,
    /// or `None` when the snapshot is older than the capture (a batch committed in between
    /// whose counts are no longer known): read again.
    pub fn beyond(&self, snapshot: u64) -> Option<u64> {
        if snapshot < self.applied {
            return None;
        }
        // A snapshot's offset is always a segment boundary (or later than both).
        Some(
            self.segments
                .iter()
                .filter(|(end, _)| *end > snapshot)
                .map(|(_, count)| count)
                .sum(),
        )
    }
}

impl Tally {
    /// A tally for a journal whose records up to `applied` are all committed.
    pub fn new(applied: u64) -> Tally {
        Tally {
            applied,
            end: applied,
            ..Tally::default()
        }
    }

    /// A tally rebuilt from the journal: committed up to `applied`, `pending` after it, up to
    /// `end`.
    pub fn resume(applied: u64, pending: Counts, end: u64) -> Tally {
        Tally {
            applied,
            in_flight: None,
            pending,
            end,
        }
    }

    /// Counts a view of `id` whose record ends the journal at `end`, and returns the post's
    /// share of what the database may lack (this view included).
    pub fn record(&mut self, id: i64, end: u64) -> Unapplied {
        debug_assert!(end > self.end, "a record always grows the journal");
        self.end = end;
        let pending = self.pending.entry(id).or_default();
        *pending += 1;
        let (flight_end, in_flight) = match &self.in_flight {
            Some((counts, end)) => (*end, counts.get(&id).copied().unwrap_or(0)),
            None => (self.applied, 0),
        };
        Unapplied {
            applied: self.applied,
            segments: [(flight_end, in_flight), (end, *pending)],
        }
    }

    /// The pending views and the offset they end at, now in flight; `None` when there are
    /// none or a batch is already in flight.
    pub fn take(&mut self) -> Option<(Counts, u64)> {
        if self.pending.is_empty() || self.in_flight.is_some() {
            return None;
        }
        let counts = std::mem::take(&mut self.pending);
        self.in_flight = Some((counts.clone(), self.end));
        Some((counts, self.end))
    }

    /// Ends the batch in flight: committed, or (when the commit failed) pending again, to be
    /// retried with whatever came after it. Nothing is ever dropped here.
    pub fn settle(&mut self, committed: bool) {
        let Some((counts, end)) = self.in_flight.take() else {
            return;
        };
        if committed {
            self.applied = end;
        } else {
            for (id, n) in counts {
                *self.pending.entry(id).or_default() += n;
            }
        }
    }

    /// Committed up to this journal offset.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// `true` when the database holds every journaled view.
    pub fn is_settled(&self) -> bool {
        self.in_flight.is_none() && self.pending.is_empty()
    }

    /// The post id of every view not yet committed (each id as often as it was viewed), when
    /// nothing is in flight: what a restarted journal must keep.
    pub fn unapplied_records(&self) -> Option<Vec<i64>> {
        if self.in_flight.is_some() {
            return None;
        }
        let mut records = Vec::new();
        for (&id, &n) in &self.pending {
            records.extend(std::iter::repeat_n(id, usize::try_from(n).ok()?));
        }
        Some(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records a view of `id` as the next 8-byte record.
    fn view(tally: &mut Tally, id: i64) -> Unapplied {
        let end = tally.end + 8;
        tally.record(id, end)
    }

    #[test]
    fn a_reader_sees_their_view_once_whenever_the_flush_commits() {
        let mut tally = Tally::new(0);
        view(&mut tally, 7);
        let (counts, end) = tally.take().unwrap();
        assert_eq!((counts[&7], end), (1, 8));
        // Captured while the first view is in flight.
        let mine = view(&mut tally, 7);
        assert_eq!(mine.beyond(0), Some(2), "snapshot before the commit: both");
        assert_eq!(
            mine.beyond(8),
            Some(1),
            "snapshot after the commit: only mine"
        );
        assert_eq!(mine.beyond(16), Some(0), "a later flush has mine too");
        tally.settle(true);
        assert_eq!(tally.applied(), 8);
        assert_eq!(mine.beyond(0), Some(2), "the capture does not change");
    }

    #[test]
    fn a_snapshot_older_than_the_capture_asks_for_a_second_read() {
        let mut tally = Tally::new(0);
        view(&mut tally, 1);
        tally.take().unwrap();
        tally.settle(true);
        let mine = view(&mut tally, 1);
        assert_eq!(
            mine.beyond(0),
            None,
            "a batch committed between read and capture"
        );
        assert_eq!(mine.beyond(8), Some(1));
    }

    #[test]
    fn a_failed_commit_puts_its_views_back_in_front_of_newer_ones() {
        let mut tally = Tally::new(16);
        view(&mut tally, 1);
        view(&mut tally, 2);
        tally.take().unwrap();
        view(&mut tally, 1);
        assert!(tally.take().is_none(), "one batch in flight at a time");
        tally.settle(false);
        assert_eq!(tally.applied(), 16);
        let (counts, end) = tally.take().unwrap();
        assert_eq!(counts, Counts::from([(1, 2), (2, 1)]));
        assert_eq!(end, 40);
        assert!(
            tally.unapplied_records().is_none(),
            "unknown while in flight"
        );
        tally.settle(true);
        assert!(tally.is_settled());
        assert_eq!(tally.unapplied_records(), Some(Vec::new()));
    }

    #[test]
    fn unapplied_records_are_each_pending_view() {
        let mut tally = Tally::new(0);
        for id in [3, 4, 3] {
            view(&mut tally, id);
        }
        let mut records = tally.unapplied_records().unwrap();
        records.sort_unstable();
        assert_eq!(records, [3, 3, 4]);
    }
}
