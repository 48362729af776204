//! The poller thread's loop: reads requests without blocking and enforces deadlines.
//!
//! It holds every connection not being served: new, still sending a head or body, idle
//! keep-alive, lingering after a last response. Each turn it rebuilds one poll(2) set, reads
//! what is ready, hands complete requests to the pool and closes what ran out of time, so a
//! slow client costs a descriptor and a buffer, never a handler thread. Accepting new
//! connections (`accept`) and winding down on a stop (`drain`) are its two submodules.

mod accept;
mod drain;

use crate::config::{Listener, ServeOutcome};
use crate::connection::{Connection, ReadEvent};
use crate::error::ProtocolError;
use crate::handoff::{drain_wake_pipe, Handoff, Job};
use crate::reader::{Phase, Progress};
use crate::request::Request;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Longest sleep in poll(2): heartbeats must go out at least once a second.
const MAX_WAIT: Duration = Duration::from_millis(500);
/// Heartbeat period.
const HEARTBEAT: Duration = Duration::from_millis(250);
/// Poll timeout when the control gives no wake-up descriptor.
const STOP_CHECK: Duration = Duration::from_millis(200);

/// What to do with a connection after servicing it.
enum Action {
    Keep,
    Drop,
    Serve(Request),
    Reject(ProtocolError),
}

pub(crate) struct Poller<'a> {
    handoff: &'a Handoff,
    listeners: Vec<Listener>,
    conns: Vec<Connection>,
    wake_rx: UnixStream,
    accept_paused_until: Option<Instant>,
    /// Set while an EMFILE episode is on, so it is logged once.
    out_of_fds: bool,
    /// The stop descriptor polled readable without a stop; ignore it until then.
    stop_fd_quiet_until: Option<Instant>,
    last_heartbeat: Option<Instant>,
    drain_deadline: Option<Instant>,
    /// During a drain, when connections still without a complete head are closed.
    head_grace_until: Option<Instant>,
    /// Scratch lists of readable connections and listeners, kept to avoid allocating per turn.
    ready_conns: Vec<usize>,
    ready_listeners: Vec<usize>,
}

impl<'a> Poller<'a> {
    pub(crate) fn new(handoff: &'a Handoff, listeners: Vec<Listener>, wake_rx: UnixStream) -> Self {
        Poller {
            handoff,
            listeners,
            conns: Vec::new(),
            wake_rx,
            accept_paused_until: None,
            out_of_fds: false,
            stop_fd_quiet_until: None,
            last_heartbeat: None,
            drain_deadline: None,
            head_grace_until: None,
            ready_conns: Vec::new(),
            ready_listeners: Vec::new(),
        }
    }

    /// Runs until a drain completes or runs out of time.
    pub(crate) fn run(mut self) -> io::Result<ServeOutcome> {
        loop {
            let now = Instant::now();
            if self
                .last_heartbeat
                .is_none_or(|t| now.duration_since(t) >= HEARTBEAT)
            {
                self.handoff.control.heartbeat();
                self.last_heartbeat = Some(now);
            }
            self.take_returned(now);
            if let Some(outcome) = self.check_drain(now) {
                return Ok(outcome);
            }
            self.expire(now);
            self.poll_once(now)?;
        }
    }

    /// Takes connections back from the pool and parks them for their next request.
    fn take_returned(&mut self, now: Instant) {
        let first = self.conns.len();
        self.handoff.take_returned(&mut self.conns);
        let config = &self.handoff.config;
        let mut i = first;
        while i < self.conns.len() {
            let conn = &mut self.conns[i];
            if !conn.is_lingering() {
                conn.park_idle(now, config);
                if conn.reader.take_continue_due() && !conn.send_continue() {
                    self.conns.swap_remove(i);
                    continue;
                }
            }
            self.apply_head_grace(i);
            i += 1;
        }
    }

    /// Closes connections past their deadline: silently when idle or lingering, with 408
    /// when a request was under way.
    fn expire(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.conns.len() {
            if self.conns[i].deadline > now {
                i += 1;
                continue;
            }
            let conn = self.conns.swap_remove(i);
            match conn.reader.phase() {
                _ if conn.is_lingering() => {}
                Phase::Idle => {}
                Phase::Head => self
                    .handoff
                    .submit(Job::Reject(conn, ProtocolError::HeadTimeout)),
                Phase::Body => self
                    .handoff
                    .submit(Job::Reject(conn, ProtocolError::BodyTimeout)),
            }
        }
    }

    /// One poll(2) turn and the work it reports.
    fn poll_once(&mut self, now: Instant) -> io::Result<()> {
        let control = &self.handoff.control;
        let stop_fd = control
            .wake_fd()
            .filter(|_| self.drain_deadline.is_none())
            .filter(|_| self.stop_fd_quiet_until.is_none_or(|t| now >= t));
        let mut timeout = if stop_fd.is_some() {
            MAX_WAIT
        } else {
            STOP_CHECK
        };
        let accepting =
            self.drain_deadline.is_none() && self.accept_paused_until.is_none_or(|t| now >= t);
        if let Some(until) = self.accept_paused_until.filter(|_| !accepting) {
            timeout = timeout.min(until - now);
        }
        for deadline in [self.drain_deadline]
            .into_iter()
            .flatten()
            .chain(self.conns.iter().map(|c| c.deadline))
        {
            timeout = timeout.min(deadline.saturating_duration_since(now));
        }

        let listener_count = if accepting { self.listeners.len() } else { 0 };
        let mut fds = Vec::with_capacity(2 + listener_count + self.conns.len());
        fds.push(PollFd::new(self.wake_rx.as_fd(), PollFlags::POLLIN));
        let has_stop_fd = stop_fd.is_some();
        if let Some(fd) = stop_fd {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        for listener in &self.listeners[..listener_count] {
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
        }
        for conn in &self.conns {
            fds.push(PollFd::new(conn.stream.as_fd(), PollFlags::POLLIN));
        }
        // Round up so a deadline a few microseconds away does not spin with a 0 ms timeout.
        let millis = u16::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(u16::MAX);
        match poll(&mut fds, millis) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(()),
            Err(e) => return Err(io::Error::other(format!("poll failed: {e}"))),
        }
        // poll(2) may have slept: deadlines set from here on count from now, not from before.
        let now = Instant::now();
        let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
        let wake_ready = ready(&fds[0]);
        let stop_ready = has_stop_fd && ready(&fds[1]);
        let first_listener = 1 + usize::from(has_stop_fd);
        let first_conn = first_listener + listener_count;
        let mut ready_conns = std::mem::take(&mut self.ready_conns);
        ready_conns.clear();
        ready_conns.extend((0..self.conns.len()).filter(|&i| ready(&fds[first_conn + i])));
        let mut ready_listeners = std::mem::take(&mut self.ready_listeners);
        ready_listeners.clear();
        ready_listeners.extend((0..listener_count).filter(|&i| ready(&fds[first_listener + i])));
        drop(fds);

        if wake_ready {
            drain_wake_pipe(&self.wake_rx)?;
        }
        if stop_ready && !self.handoff.control.should_stop() {
            // The descriptor is readable but no stop is asked: do not spin on it.
            self.stop_fd_quiet_until = Some(now + STOP_CHECK);
        }
        // Highest index first: servicing may swap-remove a connection, which only moves one
        // from the end, whose turn is already over.
        for &i in ready_conns.iter().rev() {
            self.service(i, now);
        }
        self.ready_conns = ready_conns;
        for &i in &ready_listeners {
            self.accept(i, now);
        }
        self.ready_listeners = ready_listeners;
        Ok(())
    }

    /// Reads from connection `i` and acts on what arrived.
    fn service(&mut self, i: usize, now: Instant) {
        let action = self.read_and_advance(i, now);
        self.act(i, action);
    }

    fn read_and_advance(&mut self, i: usize, now: Instant) -> Action {
        let config = &self.handoff.config;
        let conn = &mut self.conns[i];
        match conn.read_ready(&config.limits) {
            ReadEvent::Closed if conn.is_lingering() || conn.reader.is_empty() => {
                return Action::Drop
            }
            ReadEvent::Closed => return Action::Reject(ProtocolError::Incomplete),
            ReadEvent::Full => return Action::Reject(ProtocolError::HeadTooLarge),
            ReadEvent::Data if conn.is_lingering() => return Action::Keep,
            ReadEvent::Data => {}
        }
        match conn.reader.advance(&config.limits) {
            Progress::Complete(head, body) => {
                Action::Serve(Request::from_head(head, body, conn.peer))
            }
            Progress::Failed(error) => Action::Reject(error),
            Progress::NeedMore => {
                conn.refresh_deadline(now, config);
                if conn.reader.take_continue_due() && !conn.send_continue() {
                    return Action::Drop;
                }
                self.apply_head_grace(i);
                Action::Keep
            }
        }
    }

    /// Applies `action` to connection `i` (which may move it out of the poll set).
    fn act(&mut self, i: usize, action: Action) {
        match action {
            Action::Keep => {}
            Action::Drop => drop(self.conns.swap_remove(i)),
            Action::Serve(request) => {
                let conn = self.conns.swap_remove(i);
                self.handoff.submit(Job::Serve(conn, request));
            }
            Action::Reject(error) => {
                let conn = self.conns.swap_remove(i);
                self.handoff.submit(Job::Reject(conn, error));
            }
        }
    }
}
