//! Counting views with group commit: one UPDATE per view, one transaction per turn.
//!
//! Every view is a write, and SQLite commits one transaction at a time across all workers;
//! the commit (locks, a WAL frame) costs far more than the UPDATE. So a thread counting a
//! view queues its post id and takes the process's write turn: if another thread's
//! transaction already covered its id, it is done; otherwise it drains the queue and runs
//! `UPDATE posts SET view_count = view_count + 1 WHERE id = ?` once per queued view inside
//! one `BEGIN IMMEDIATE … COMMIT`. Each view is committed before its page is rendered, so
//! a view is never lost once served and never counted twice.

use super::StoreError;
use std::sync::{Arc, Mutex, MutexGuard};

/// Where one queued view learns how its transaction ended.
#[derive(Default)]
pub(super) struct Outcome {
    result: Mutex<Option<Result<(), StoreError>>>,
}

impl Outcome {
    fn lock(&self) -> MutexGuard<'_, Option<Result<(), StoreError>>> {
        // Holds only a finished result: a poisoned lock still holds a valid value.
        self.result.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The result, if a transaction has covered this view.
    pub fn take(&self) -> Option<Result<(), StoreError>> {
        self.lock().take()
    }

    fn set(&self, result: Result<(), StoreError>) {
        *self.lock() = Some(result);
    }
}

/// Views waiting for a transaction.
#[derive(Default)]
pub(super) struct ViewQueue {
    waiting: Mutex<Vec<(i64, Arc<Outcome>)>>,
}

impl ViewQueue {
    fn waiting(&self) -> MutexGuard<'_, Vec<(i64, Arc<Outcome>)>> {
        // A panic while pushing or draining leaves a valid Vec behind.
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a view of post `id`; the caller then takes the write turn.
    pub fn enqueue(&self, id: i64) -> Arc<Outcome> {
        let outcome = Arc::new(Outcome::default());
        self.waiting().push((id, Arc::clone(&outcome)));
        outcome
    }

    /// With the write turn held: hands every queued post id (one per view, in order) to
    /// `write`, which counts them in one transaction, and tells each waiter how it went.
    pub fn flush(&self, write: impl FnOnce(&[i64]) -> Result<(), StoreError>) {
        let batch = std::mem::take(&mut *self.waiting());
        if batch.is_empty() {
            return;
        }
        let ids: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
        let result = write(&ids);
        for (_, outcome) in batch {
            outcome.set(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_flush_counts_every_queued_view_and_answers_each() {
        let queue = ViewQueue::default();
        let a = queue.enqueue(1);
        let b = queue.enqueue(2);
        let c = queue.enqueue(1);
        let mut counted = Vec::new();
        queue.flush(|ids| {
            counted.extend_from_slice(ids);
            Ok(())
        });
        assert_eq!(counted, [1, 2, 1], "one UPDATE per view, in order");
        for outcome in [a, b, c] {
            assert_eq!(outcome.take(), Some(Ok(())));
        }
    }

    #[test]
    fn a_failed_transaction_fails_every_view_in_it() {
        let queue = ViewQueue::default();
        let a = queue.enqueue(1);
        let b = queue.enqueue(2);
        queue.flush(|_| Err(StoreError::Busy("locked".into())));
        assert!(matches!(a.take(), Some(Err(StoreError::Busy(_)))));
        assert!(matches!(b.take(), Some(Err(StoreError::Busy(_)))));
        let later = queue.enqueue(3);
        assert_eq!(
            later.take(),
            None,
            "a view queued after the flush waits for the next"
        );
    }
}
