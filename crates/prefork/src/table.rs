//! The worker table: one fixed-size slot per worker in memory shared by master and workers.
//!
//! A worker writes its state, heartbeat, request count, exit reason and what each of its tasks
//! is serving; the master reads them to spot hung workers and to say why one died. The table
//! is an array of `AtomicU64` words (an anonymous shared mapping, or plain memory in
//! `--single-process`), so every access is an atomic and no lock can be left held by a dead
//! process. Times are CLOCK_MONOTONIC milliseconds, a clock all processes share.

use crate::protocol::{ExitReason, SlotState};
use crate::sys::SharedWords;
use std::sync::atomic::{fence, AtomicU64, Ordering};

/// Longest task label kept in the worker table, in bytes (longer ones are cut on a char
/// boundary).
pub const LABEL_LEN: usize = 64;
/// Generic counters per worker ([`crate::Monitor::add_to_counter`]); the binary names them
/// (`Settings::counters`) and the master sums them for `--metrics-bind`.
pub const COUNTERS: usize = 32;
/// Longest boot or failure message kept, in bytes.
pub(crate) const MESSAGE_LEN: usize = 256;

const LABEL_WORDS: usize = LABEL_LEN / 8;
const MESSAGE_WORDS: usize = MESSAGE_LEN / 8;

// Word offsets inside a slot.
const PID: usize = 0;
const GENERATION: usize = 1;
const STATE: usize = 2;
const HEARTBEAT: usize = 3;
const REQUESTS: usize = 4;
const EXIT_REASON: usize = 5;
const READY_AT: usize = 6;
const MESSAGE_BYTES: usize = 7;
const MESSAGE: usize = 8;
const COUNTER_WORDS: usize = MESSAGE + MESSAGE_WORDS;
const TASKS: usize = COUNTER_WORDS + COUNTERS;

// Word offsets inside a task sub-slot.
const TASK_STARTED: usize = 0;
const TASK_LABEL_BYTES: usize = 1;
const TASK_LABEL: usize = 2;
const TASK_WORDS: usize = TASK_LABEL + LABEL_WORDS;

/// Milliseconds of CLOCK_MONOTONIC: the same clock in every process of the machine.
pub(crate) fn monotonic_ms() -> u64 {
    // CLOCK_MONOTONIC always exists on Linux; clock_gettime fails only for an unknown clock.
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| {
            let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
            let nanos = u64::try_from(t.tv_nsec()).unwrap_or(0);
            secs * 1000 + nanos / 1_000_000
        })
        .unwrap_or(0)
}

/// `text` cut to at most `max` bytes, on a char boundary so it stays valid UTF-8.
pub(crate) fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

enum Backing {
    Shared(SharedWords),
    Local(Box<[AtomicU64]>),
}

/// The table: `capacity` slots of `tasks` task sub-slots each.
pub(crate) struct WorkerTable {
    backing: Backing,
    capacity: usize,
    tasks: usize,
}

impl WorkerTable {
    /// A table in anonymous shared memory, for the master to create before its first fork.
    pub(crate) fn shared(capacity: usize, tasks: usize) -> std::io::Result<WorkerTable> {
        let words = SharedWords::new(capacity * slot_words(tasks))?;
        Ok(WorkerTable {
            backing: Backing::Shared(words),
            capacity,
            tasks,
        })
    }

    /// A table in ordinary memory, for `--single-process`.
    pub(crate) fn local(capacity: usize, tasks: usize) -> WorkerTable {
        let words = (0..capacity * slot_words(tasks))
            .map(|_| AtomicU64::new(0))
            .collect();
        WorkerTable {
            backing: Backing::Local(words),
            capacity,
            tasks,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn tasks_per_slot(&self) -> usize {
        self.tasks
    }

    /// Slot `index`; `None` past the capacity.
    pub(crate) fn slot(&self, index: usize) -> Option<Slot<'_>> {
        let stride = slot_words(self.tasks);
        let words = match &self.backing {
            Backing::Shared(shared) => shared.words(),
            Backing::Local(local) => local,
        };
        let start = index.checked_mul(stride)?;
        words.get(start..start + stride).map(|words| Slot {
            words,
            tasks: self.tasks,
        })
    }
}

fn slot_words(tasks: usize) -> usize {
    TASKS + tasks * TASK_WORDS
}

/// One worker's slot. The master writes it only while the worker does not run (before the
/// fork, after the reap); in between only the worker writes and the master reads.
pub(crate) struct Slot<'a> {
    words: &'a [AtomicU64],
    tasks: usize,
}

impl Slot<'_> {
    /// Master, before the fork: a fresh slot for a worker of `generation`, heartbeat `now`.
    pub(crate) fn claim(&self, generation: u64, now: u64) {
        for word in self.words {
            word.store(0, Ordering::Relaxed);
        }
        self.words[GENERATION].store(generation, Ordering::Relaxed);
        self.words[HEARTBEAT].store(now, Ordering::Relaxed);
        self.words[STATE].store(SlotState::Booting as u64, Ordering::Release);
    }

    /// Master, after the reap: the slot is free again.
    pub(crate) fn release(&self) {
        self.words[PID].store(0, Ordering::Relaxed);
        self.words[STATE].store(SlotState::Free as u64, Ordering::Release);
    }

    pub(crate) fn set_pid(&self, pid: u32) {
        self.words[PID].store(u64::from(pid), Ordering::Release);
    }

    #[cfg(test)]
    pub(crate) fn generation(&self) -> u64 {
        self.words[GENERATION].load(Ordering::Relaxed)
    }

    pub(crate) fn state(&self) -> SlotState {
        SlotState::from_word(self.words[STATE].load(Ordering::Acquire))
    }

    pub(crate) fn set_state(&self, state: SlotState) {
        self.words[STATE].store(state as u64, Ordering::Release);
    }

    /// Worker: `ready()` was called at `now`.
    pub(crate) fn mark_ready(&self, now: u64) {
        self.words[READY_AT].store(now.max(1), Ordering::Release);
        if self.state() == SlotState::Booting {
            self.set_state(SlotState::Ready);
        }
    }

    /// Whether the worker ever called `ready()` (its state may have moved on since).
    pub(crate) fn has_booted(&self) -> bool {
        self.words[READY_AT].load(Ordering::Acquire) != 0
    }

    pub(crate) fn heartbeat(&self) -> u64 {
        self.words[HEARTBEAT].load(Ordering::Relaxed)
    }

    pub(crate) fn beat(&self, now: u64) {
        self.words[HEARTBEAT].store(now, Ordering::Relaxed);
    }

    pub(crate) fn requests(&self) -> u64 {
        self.words[REQUESTS].load(Ordering::Relaxed)
    }

    pub(crate) fn exit_reason(&self) -> ExitReason {
        ExitReason::from_word(self.words[EXIT_REASON].load(Ordering::Acquire))
    }

    /// Worker, on its way out: why, with a message for failures (truncated to MESSAGE_LEN).
    pub(crate) fn set_exit(&self, reason: ExitReason, message: &str) {
        write_text(
            &self.words[MESSAGE_BYTES],
            &self.words[MESSAGE..COUNTER_WORDS],
            message,
        );
        self.words[EXIT_REASON].store(reason as u64, Ordering::Release);
        self.set_state(SlotState::Exited);
    }

    /// Worker: adds `n` to generic counter `index` (ignored past [`COUNTERS`]).
    pub(crate) fn add_to_counter(&self, index: usize, n: u64) {
        if index < COUNTERS {
            self.words[COUNTER_WORDS + index].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The generic counters, in index order.
    pub(crate) fn counters(&self) -> [u64; COUNTERS] {
        std::array::from_fn(|i| self.words[COUNTER_WORDS + i].load(Ordering::Relaxed))
    }

    /// The message written by `set_exit` (empty when none).
    pub(crate) fn message(&self) -> String {
        read_text(
            &self.words[MESSAGE_BYTES],
            &self.words[MESSAGE..COUNTER_WORDS],
        )
    }

    /// Worker: task `task` started serving `label` at `now`. Tasks past the table's width are
    /// not tracked.
    pub(crate) fn task_started(&self, task: usize, label: &[&str], now: u64) {
        let Some(words) = self.task_words(task) else {
            return;
        };
        // A seqlock in miniature: zero the start time, write the label, publish the start
        // time. A reader that sees the same non-zero time before and after reading the label
        // read a whole one.
        words[TASK_STARTED].store(0, Ordering::Relaxed);
        fence(Ordering::Release);
        write_parts(&words[TASK_LABEL_BYTES], &words[TASK_LABEL..], label);
        words[TASK_STARTED].store(now.max(1), Ordering::Release);
    }

    /// Worker: task `task` is idle again; one more request served.
    pub(crate) fn task_finished(&self, task: usize) {
        if let Some(words) = self.task_words(task) {
            words[TASK_STARTED].store(0, Ordering::Release);
        }
        self.words[REQUESTS].fetch_add(1, Ordering::Relaxed);
    }

    /// The task running longest at `now`: its age in milliseconds and its label.
    pub(crate) fn longest_task(&self, now: u64) -> Option<(u64, String)> {
        (0..self.tasks)
            .filter_map(|task| self.read_task(task))
            .min_by_key(|(started, _)| *started)
            .map(|(started, label)| (now.saturating_sub(started), label))
    }

    /// Every task busy at `now`: its age in milliseconds and its label, longest first.
    pub(crate) fn busy_tasks(&self, now: u64) -> Vec<(u64, String)> {
        let mut busy: Vec<(u64, String)> = (0..self.tasks)
            .filter_map(|task| self.read_task(task))
            .map(|(started, label)| (now.saturating_sub(started), label))
            .collect();
        busy.sort_by_key(|(age, _)| std::cmp::Reverse(*age));
        busy
    }

    fn read_task(&self, task: usize) -> Option<(u64, String)> {
        let words = self.task_words(task)?;
        // A label torn by a concurrent rewrite is retried a few times, then shown as is: it is
        // a diagnostic, and the start time alone decides the timeout.
        let mut last = None;
        for _ in 0..4 {
            let started = words[TASK_STARTED].load(Ordering::Acquire);
            if started == 0 {
                return None;
            }
            let label = read_text(&words[TASK_LABEL_BYTES], &words[TASK_LABEL..]);
            fence(Ordering::Acquire);
            if words[TASK_STARTED].load(Ordering::Relaxed) == started {
                return Some((started, label));
            }
            last = Some((started, label));
        }
        last
    }

    fn task_words(&self, task: usize) -> Option<&[AtomicU64]> {
        if task >= self.tasks {
            return None;
        }
        let start = TASKS + task * TASK_WORDS;
        self.words.get(start..start + TASK_WORDS)
    }
}

/// Stores `text`, truncated to fit `words`, little-endian 8 bytes a word.
fn write_text(len: &AtomicU64, words: &[AtomicU64], text: &str) {
    write_parts(len, words, &[text]);
}

/// Stores `parts` joined by single spaces, truncated to fit `words`, without allocating.
fn write_parts(len: &AtomicU64, words: &[AtomicU64], parts: &[&str]) {
    let mut buf = [0u8; MESSAGE_LEN];
    let room = (words.len() * 8).min(buf.len());
    let mut used = 0;
    for (i, part) in parts.iter().enumerate() {
        let sep = if i == 0 { "" } else { " " };
        for piece in [sep, *part] {
            let piece = truncate_utf8(piece, room - used);
            buf[used..used + piece.len()].copy_from_slice(piece.as_bytes());
            used += piece.len();
        }
    }
    for (word, chunk) in words.iter().zip(buf[..room].chunks(8)) {
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        word.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
    }
    len.store(used as u64, Ordering::Release);
}

fn read_text(len: &AtomicU64, words: &[AtomicU64]) -> String {
    let len = usize::try_from(len.load(Ordering::Acquire))
        .unwrap_or(0)
        .min(words.len() * 8);
    let bytes: Vec<u8> = words
        .iter()
        .flat_map(|word| word.load(Ordering::Relaxed).to_le_bytes())
        .take(len)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_char_boundaries() {
        assert_eq!(truncate_utf8("abc", 5), "abc");
        assert_eq!(truncate_utf8("abcdef", 3), "abc");
        // "é" is two bytes: cutting inside it backs off to before it.
        assert_eq!(truncate_utf8("aé", 2), "a");
        assert_eq!(truncate_utf8("", 0), "");
    }

    #[test]
    fn slots_do_not_overlap() {
        let table = WorkerTable::local(3, 2);
        for i in 0..3 {
            table.slot(i).unwrap().claim(10 + i as u64, 5);
            table.slot(i).unwrap().set_pid(100 + i as u32);
            table.slot(i).unwrap().task_started(1, &["GET", "/x"], 7);
        }
        table
            .slot(1)
            .unwrap()
            .set_exit(ExitReason::BootFailed, "no database");
        for i in 0..3 {
            let slot = table.slot(i).unwrap();
            assert_eq!(slot.generation(), 10 + i as u64);
            assert_eq!(slot.longest_task(9), Some((2, "GET /x".to_string())));
        }
        assert_eq!(table.slot(1).unwrap().message(), "no database");
        assert_eq!(table.slot(0).unwrap().message(), "");
        assert_eq!(table.slot(0).unwrap().state(), SlotState::Booting);
        assert_eq!(table.slot(1).unwrap().state(), SlotState::Exited);
        assert!(table.slot(3).is_none());
    }

    #[test]
    fn labels_are_truncated_to_the_label_size() {
        let table = WorkerTable::local(1, 1);
        let slot = table.slot(0).unwrap();
        let long_path = format!("/{}", "é".repeat(100));
        slot.task_started(0, &["GET", &long_path], 1);
        let (_, label) = slot.longest_task(1).unwrap();
        assert!(label.len() <= LABEL_LEN && label.len() >= LABEL_LEN - 1);
        assert!(label.starts_with("GET /é"));
        assert!(!label.contains('\u{FFFD}'), "cut inside a char: {label:?}");
    }

    #[test]
    fn finished_tasks_count_requests_and_stop_being_stuck() {
        let table = WorkerTable::local(1, 2);
        let slot = table.slot(0).unwrap();
        slot.claim(1, 100);
        slot.task_started(0, &["GET /a"], 200);
        slot.task_started(1, &["POST /b"], 150);
        assert_eq!(slot.longest_task(1000), Some((850, "POST /b".to_string())));
        slot.task_finished(1);
        assert_eq!(slot.longest_task(1000), Some((800, "GET /a".to_string())));
        slot.task_finished(0);
        assert_eq!(slot.longest_task(1000), None);
        assert_eq!(slot.requests(), 2);
        // Out-of-range tasks are ignored but still counted as served.
        slot.task_started(9, &["GET /c"], 1);
        slot.task_finished(9);
        assert_eq!(slot.requests(), 3);
    }

    #[test]
    fn claim_resets_a_reused_slot() {
        let table = WorkerTable::local(1, 1);
        let slot = table.slot(0).unwrap();
        slot.claim(1, 1);
        slot.task_started(0, &["GET /old"], 2);
        slot.task_finished(0);
        slot.add_to_counter(3, 5);
        slot.add_to_counter(COUNTERS, 1);
        assert_eq!(slot.counters()[3], 5);
        slot.set_exit(ExitReason::Recycled, "a message as long as it may be");
        assert_eq!(
            slot.counters()[3],
            5,
            "the message does not spill into counters"
        );
        slot.claim(2, 50);
        assert_eq!(slot.requests(), 0);
        assert_eq!(slot.counters(), [0; COUNTERS]);
        assert_eq!(slot.exit_reason(), ExitReason::Unknown);
        assert_eq!(slot.heartbeat(), 50);
        assert_eq!(slot.state(), SlotState::Booting);
    }

    #[test]
    fn shared_table_is_zeroed_and_writable() {
        let table = WorkerTable::shared(4, 3).unwrap();
        let slot = table.slot(3).unwrap();
        assert_eq!(slot.state(), SlotState::Free);
        slot.claim(7, monotonic_ms());
        assert_eq!(slot.generation(), 7);
    }
}
