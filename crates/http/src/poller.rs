//! The poller thread: accepts, reads requests without blocking, enforces deadlines, drains.
//!
//! It holds every connection not being served: new, still sending a head or body, idle
//! keep-alive, lingering after a last response. Each turn it rebuilds one poll(2) set, reads
//! what is ready, hands complete requests to the pool and closes what ran out of time, so a
//! slow client costs a descriptor and a buffer, never a handler thread.

use crate::connection::{Connection, OpenSlot, ReadEvent, Stream};
use crate::dispatch::{drain_wake_pipe, Dispatch, Job};
use crate::error::ProtocolError;
use crate::reader::{Phase, Progress};
use crate::{Listener, Request, ServeOutcome};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Longest sleep in poll(2): heartbeats must go out at least once a second.
const MAX_WAIT: Duration = Duration::from_millis(500);
/// Heartbeat period.
const HEARTBEAT: Duration = Duration::from_millis(250);
/// Poll timeout when the control gives no wake-up descriptor.
const STOP_CHECK: Duration = Duration::from_millis(200);
/// Pause in accepting after running out of descriptors, instead of spinning on EMFILE.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a connection may still complete a request head once a drain has begun.
const DRAIN_GRACE: Duration = Duration::from_secs(1);
/// Connections accepted per listener per turn, so one busy listener cannot starve the rest.
const ACCEPT_BATCH: usize = 64;

/// What to do with a connection after servicing it.
enum Action {
    Keep,
    Drop,
    Serve(Request),
    Reject(ProtocolError),
}

pub(crate) struct Poller<'a> {
    dispatch: &'a Dispatch,
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
    pub(crate) fn new(
        dispatch: &'a Dispatch,
        listeners: Vec<Listener>,
        wake_rx: UnixStream,
    ) -> Self {
        Poller {
            dispatch,
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
                self.dispatch.control.heartbeat();
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

    /// Starts a drain when asked; returns the outcome once the drain is over.
    fn check_drain(&mut self, now: Instant) -> Option<ServeOutcome> {
        let dispatch = self.dispatch;
        if self.drain_deadline.is_none() {
            if dispatch.control.should_stop() {
                dispatch.begin_drain(ServeOutcome::Stopped);
            }
            let outcome = dispatch.drain_outcome()?;
            self.start_drain(now);
            log::info!(
                "draining ({outcome:?}): {} connections open",
                dispatch.open.load(Ordering::Relaxed)
            );
        }
        let outcome = dispatch.drain_outcome()?;
        // Keep-alive connections close now; ones mid-request may finish; fresh ones get a
        // short grace for their first request; lingering ones run out.
        self.close_idle_keep_alive(now);
        if self.conns.is_empty() && dispatch.busy() == 0 {
            self.take_returned(now);
            if self.conns.is_empty() {
                return Some(outcome);
            }
        }
        if self.drain_deadline.is_some_and(|d| now >= d) {
            log::warn!(
                "graceful timeout: returning with {} requests in flight and {} connections waiting",
                dispatch.busy(),
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
        self.drain_deadline = Some(now + self.dispatch.config.graceful_timeout);
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
    fn apply_head_grace(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        if let Some(grace) = self.head_grace_until {
            if !conn.is_lingering() && conn.reader.phase() != Phase::Body {
                conn.deadline = conn.deadline.min(grace);
            }
        }
    }

    /// Takes connections back from the pool and parks them for their next request.
    fn take_returned(&mut self, now: Instant) {
        let first = self.conns.len();
        self.dispatch.take_returned(&mut self.conns);
        let config = &self.dispatch.config;
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
                    .dispatch
                    .submit(Job::Reject(conn, ProtocolError::HeadTimeout)),
                Phase::Body => self
                    .dispatch
                    .submit(Job::Reject(conn, ProtocolError::BodyTimeout)),
            }
        }
    }

    /// One poll(2) turn and the work it reports.
    fn poll_once(&mut self, now: Instant) -> io::Result<()> {
        let control = &self.dispatch.control;
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
        if stop_ready && !self.dispatch.control.should_stop() {
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
        let config = &self.dispatch.config;
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
                self.dispatch.submit(Job::Serve(conn, request));
            }
            Action::Reject(error) => {
                let conn = self.conns.swap_remove(i);
                self.dispatch.submit(Job::Reject(conn, error));
            }
        }
    }

    /// Accepts what is pending on listener `index`, then tries a first read on each new
    /// connection (the request often arrives with the handshake).
    fn accept(&mut self, index: usize, now: Instant) {
        let dispatch = self.dispatch;
        for _ in 0..ACCEPT_BATCH {
            let accepted = match &self.listeners[index] {
                Listener::Tcp(l) => l.accept().and_then(|(s, peer)| {
                    s.set_nodelay(true)?;
                    Ok((Stream::Tcp(s), Some(peer)))
                }),
                Listener::Unix(l) => l.accept().map(|(s, _)| (Stream::Unix(s), None)),
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if is_out_of_fds(&e) => {
                    if !self.out_of_fds {
                        log::warn!("accept failed, pausing accepts for {ACCEPT_BACKOFF:?}: {e}");
                        self.out_of_fds = true;
                    }
                    self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                    break;
                }
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    break;
                }
            };
            self.out_of_fds = false;
            if dispatch.open.load(Ordering::Relaxed) >= dispatch.config.max_connections {
                log::debug!(
                    "at max_connections ({}): closing a new connection",
                    dispatch.config.max_connections
                );
                continue;
            }
            if let Err(e) = stream_set_nonblocking(&stream) {
                log::debug!("dropping a new connection: {e}");
                continue;
            }
            let slot = OpenSlot::new(&dispatch.open);
            self.conns
                .push(Connection::new(stream, peer, slot, &dispatch.config));
            let last = self.conns.len() - 1;
            self.service(last, now);
        }
    }
}

fn stream_set_nonblocking(stream: &Stream) -> io::Result<()> {
    match stream {
        Stream::Tcp(s) => s.set_nonblocking(true),
        Stream::Unix(s) => s.set_nonblocking(true),
    }
}

/// The process or system is out of descriptors or memory: back off instead of spinning.
fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
    )
}

/// The failure concerns one aborted connection, not the listener.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    ) || e.raw_os_error() == Some(Errno::EPROTO as i32)
}
