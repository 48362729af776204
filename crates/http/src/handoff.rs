//! The hand-off between the poller and the handler threads, and the state they share.
//!
//! Requests go to the pool as [`Job`]s through a mutex-and-condvar queue; connections come back
//! through a vector plus one byte on a wake pipe, written only when the poller is not already
//! due to look, so a busy server skips a write(2) per request. Either side may start a drain
//! (a stop, or the request that reaches `max_requests`); the first reason wins.

use crate::config::{ServeOutcome, ServerConfig};
use crate::connection::Connection;
use crate::error::ProtocolError;
use crate::handler::{Control, Handler};
use crate::request::Request;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// Work for a handler thread; it owns the connection until it hands it back or closes it.
#[derive(Debug)]
pub(crate) enum Job {
    /// A complete request to answer with the application.
    Serve(Connection, Request),
    /// A request the server refuses: answer the error's status and close.
    Reject(Connection, ProtocolError),
}

const RUNNING: u8 = 0;
const STOPPING: u8 = 1;
const RECYCLING: u8 = 2;

/// Everything the poller and the handler threads share.
pub(crate) struct Handoff {
    pub config: ServerConfig,
    pub handler: Arc<dyn Handler>,
    pub control: Arc<dyn Control>,
    queue: Mutex<JobQueue>,
    job_ready: Condvar,
    returned: Mutex<Vec<Connection>>,
    wake_tx: UnixStream,
    wake_pending: AtomicBool,
    drain: AtomicU8,
    /// Requests answered by the application (for `max_requests`).
    served: AtomicU64,
    /// Jobs handed to the pool and not yet finished.
    busy: AtomicUsize,
    /// Connections open now, wherever they are (see `OpenSlot`).
    pub open: Arc<AtomicUsize>,
}

struct JobQueue {
    jobs: VecDeque<Job>,
    closed: bool,
}

/// A mutex poisoned by a panicking thread still guards consistent data here (every critical
/// section is a push or a take), so the lock is simply taken over.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Handoff {
    /// Shared state for one `serve` call; `wake_tx` is the write end of the poller's pipe.
    pub(crate) fn new(
        config: ServerConfig,
        handler: Arc<dyn Handler>,
        control: Arc<dyn Control>,
        wake_tx: UnixStream,
    ) -> Self {
        Handoff {
            config,
            handler,
            control,
            queue: Mutex::new(JobQueue {
                jobs: VecDeque::new(),
                closed: false,
            }),
            job_ready: Condvar::new(),
            returned: Mutex::new(Vec::new()),
            wake_tx,
            wake_pending: AtomicBool::new(false),
            drain: AtomicU8::new(RUNNING),
            served: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            open: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Queues a job for the pool (poller side).
    pub(crate) fn submit(&self, job: Job) {
        self.busy.fetch_add(1, Ordering::SeqCst);
        lock(&self.queue).jobs.push_back(job);
        self.job_ready.notify_one();
    }

    /// The next job, waiting for one; `None` once the queue is closed and empty.
    pub(crate) fn next_job(&self) -> Option<Job> {
        let mut queue = lock(&self.queue);
        loop {
            if let Some(job) = queue.jobs.pop_front() {
                return Some(job);
            }
            if queue.closed {
                return None;
            }
            queue = self
                .job_ready
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Marks a job finished (pool side), waking the poller if it waits for the pool to drain.
    pub(crate) fn finish_job(&self) {
        let left = self.busy.fetch_sub(1, Ordering::SeqCst) - 1;
        if left == 0 && self.is_draining() {
            self.wake();
        }
    }

    /// Jobs handed out and not finished.
    pub(crate) fn busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    /// Lets the handler threads exit once the queue is empty.
    pub(crate) fn close_queue(&self) {
        lock(&self.queue).closed = true;
        self.job_ready.notify_all();
    }

    /// Hands a connection back to the poller (pool side).
    pub(crate) fn give_back(&self, conn: Connection) {
        lock(&self.returned).push(conn);
        self.wake();
    }

    /// Takes the connections handed back since the last call (poller side). Call after
    /// draining the wake pipe: a hand-off after this clears `wake_pending` writes a new byte.
    pub(crate) fn take_returned(&self, into: &mut Vec<Connection>) {
        self.wake_pending.store(false, Ordering::SeqCst);
        into.append(&mut lock(&self.returned));
    }

    /// Makes the poller look at the shared state soon.
    pub(crate) fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::SeqCst) {
            // A full pipe already holds a wake-up, so WouldBlock is as good as success.
            let _ = (&self.wake_tx).write(&[1]);
        }
    }

    /// Counts one answered request; `true` when it reaches `max_requests`.
    pub(crate) fn count_served(&self) -> bool {
        let served = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        self.config.max_requests.is_some_and(|max| served >= max)
    }

    /// Starts draining for `outcome`, unless a drain already started.
    pub(crate) fn begin_drain(&self, outcome: ServeOutcome) {
        let code = match outcome {
            ServeOutcome::Stopped => STOPPING,
            ServeOutcome::Recycled => RECYCLING,
        };
        if self
            .drain
            .compare_exchange(RUNNING, code, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.wake();
        }
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.drain.load(Ordering::SeqCst) != RUNNING
    }

    /// Why the server is draining, if it is.
    pub(crate) fn drain_outcome(&self) -> Option<ServeOutcome> {
        match self.drain.load(Ordering::SeqCst) {
            STOPPING => Some(ServeOutcome::Stopped),
            RECYCLING => Some(ServeOutcome::Recycled),
            _ => None,
        }
    }
}

/// Empties the wake pipe's read end (non-blocking).
pub(crate) fn drain_wake_pipe(mut rx: &UnixStream) -> io::Result<()> {
    let mut sink = [0u8; 256];
    loop {
        match rx.read(&mut sink) {
            // Wake-ups are deduplicated, so one short read empties the pipe: skip the EAGAIN.
            Ok(n) if n < sink.len() => return Ok(()),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
