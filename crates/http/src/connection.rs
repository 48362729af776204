//! One client connection: its socket, its request reader, its deadline and its I/O.
//!
//! Sockets stay non-blocking for their whole life. The poller reads when poll(2) says so; a
//! handler thread writes a response in a loop that waits for POLLOUT against one deadline for
//! the whole response (a stricter bound than a per-call SO_SNDTIMEO, and no fcntl flips per
//! request). A connection's count in the server's open total is released when it is dropped.

use crate::config::{Limits, ServerConfig};
use crate::reader::{Phase, RequestReader};
use nix::poll::{poll, PollFd, PollFlags};
use nix::sys::socket::{sendmsg, MsgFlags, SockaddrStorage};
use std::io::{self, IoSlice, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most bytes discarded from a client after the final response, before closing.
const LINGER_BYTES: usize = 64 * 1024;
/// Longest wait for the client to go quiet after the final response.
pub(crate) const LINGER_TIME: Duration = Duration::from_secs(1);

/// Slices handed to one writev(2).
const MAX_PARTS: usize = 4;

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// An accepted socket of either family.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Unix(s) => (&*s).read(buf),
        }
    }

    /// writev(2) as sendmsg(2) with MSG_NOSIGNAL: a peer that went away must cost an EPIPE,
    /// never a SIGPIPE, whatever signal dispositions the embedding process has set.
    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let fd = self.as_fd().as_raw_fd();
        sendmsg::<SockaddrStorage>(fd, bufs, &[], MsgFlags::MSG_NOSIGNAL, None)
            .map_err(io::Error::from)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

/// Holds one unit of the server's open-connection count until dropped.
#[derive(Debug)]
pub(crate) struct OpenSlot(Arc<AtomicUsize>);

impl OpenSlot {
    pub(crate) fn new(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        OpenSlot(Arc::clone(open))
    }
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What one read from a readable connection produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadEvent {
    /// Bytes arrived (or a spurious wake-up): run the reader.
    Data,
    /// The peer closed its side, or the socket failed.
    Closed,
    /// The read buffer is at its limit (the request is too large).
    Full,
}

/// A client connection, owned by the poller or by one handler thread at a time.
#[derive(Debug)]
pub(crate) struct Connection {
    pub stream: Stream,
    pub peer: Option<SocketAddr>,
    pub reader: RequestReader,
    /// When the current wait (idle, head, body or linger) runs out.
    pub deadline: Instant,
    /// The reader phase the deadline was set for.
    deadline_phase: Phase,
    /// `Some(bytes left to discard)` once the final response is sent and the write side shut.
    linger: Option<usize>,
    /// Requests answered on this connection.
    pub served: u64,
    _slot: OpenSlot,
}

impl Connection {
    /// A freshly accepted connection, allowed `header_timeout` to send its first request.
    pub(crate) fn new(
        stream: Stream,
        peer: Option<SocketAddr>,
        slot: OpenSlot,
        config: &ServerConfig,
    ) -> Self {
        Connection {
            stream,
            peer,
            reader: RequestReader::new(),
            deadline: Instant::now() + config.header_timeout,
            deadline_phase: Phase::Idle,
            linger: None,
            served: 0,
            _slot: slot,
        }
    }

    /// Reads once (non-blocking) into the reader.
    pub(crate) fn read_ready(&mut self, limits: &Limits) -> ReadEvent {
        if let Some(left) = self.linger {
            return self.discard(left);
        }
        let Some(space) = self.reader.space(limits) else {
            return ReadEvent::Full;
        };
        match self.stream.read(space) {
            Ok(0) => ReadEvent::Closed,
            Ok(n) => {
                self.reader.filled(n);
                ReadEvent::Data
            }
            Err(e) if is_transient(&e) => ReadEvent::Data,
            Err(_) => ReadEvent::Closed,
        }
    }

    /// Restarts the deadline if the reader entered a new phase (first byte of a head, or head
    /// complete and body pending). Idle deadlines are set by [`park_idle`](Self::park_idle).
    pub(crate) fn refresh_deadline(&mut self, now: Instant, config: &ServerConfig) {
        let phase = self.reader.phase();
        if phase == self.deadline_phase {
            return;
        }
        self.deadline_phase = phase;
        self.deadline = now
            + match phase {
                Phase::Idle => config.keep_alive,
                Phase::Head => config.header_timeout,
                Phase::Body => config.body_timeout,
            };
    }

    /// Sets the deadline for waiting on the next request after a response.
    pub(crate) fn park_idle(&mut self, now: Instant, config: &ServerConfig) {
        self.reader.release_spare();
        self.deadline_phase = Phase::Idle;
        self.deadline = now + config.keep_alive;
        self.refresh_deadline(now, config);
    }

    /// Whether the connection is only waiting to be closed gracefully.
    pub(crate) fn is_lingering(&self) -> bool {
        self.linger.is_some()
    }

    /// Sends `100 Continue` without blocking. `false`: the client is not reading (its socket
    /// buffer is full), so the connection should be dropped.
    pub(crate) fn send_continue(&self) -> bool {
        matches!(self.stream.write_vectored(&[IoSlice::new(CONTINUE)]), Ok(n) if n == CONTINUE.len())
    }

    /// Writes `parts` (at most [`MAX_PARTS`] per system call) in full, waiting for the socket to drain until `deadline`.
    pub(crate) fn write_all(&self, parts: &[&[u8]], deadline: Instant) -> io::Result<()> {
        let mut part = 0;
        let mut offset = 0;
        while part < parts.len() {
            if parts[part].len() == offset {
                part += 1;
                offset = 0;
                continue;
            }
            let mut slices = [IoSlice::new(&[]); MAX_PARTS];
            let mut count = 0;
            let pending =
                std::iter::once(&parts[part][offset..]).chain(parts[part + 1..].iter().copied());
            for (slot, bytes) in slices.iter_mut().zip(pending) {
                *slot = IoSlice::new(bytes);
                count += 1;
            }
            match self.stream.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(mut n) => {
                    while part < parts.len() && n >= parts[part].len() - offset {
                        n -= parts[part].len() - offset;
                        part += 1;
                        offset = 0;
                    }
                    offset += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait_writable(deadline)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn wait_writable(&self, deadline: Instant) -> io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out"));
        }
        let millis = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.stream.as_fd(), PollFlags::POLLOUT)];
        match poll(&mut fds, millis) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// After the final response: shut the write side so the client sees EOF, and discard what
    /// it still sends for a moment, so closing does not RST away the response. Returns `false`
    /// when the connection can be dropped at once.
    pub(crate) fn start_linger(&mut self) -> bool {
        self.linger_unless(false)
    }

    /// As [`start_linger`](Self::start_linger) for a client that announced its last request
    /// (`Connection: close`, or HTTP/1.0 without keep-alive) and sent nothing after it: when
    /// nothing more has arrived either, the connection is closed at once. With nothing unread,
    /// the close sends a FIN, not a reset, and a linger would only cost a trip through the
    /// poller per request. Bytes that did arrive after all are discarded by a linger as usual.
    pub(crate) fn finish_after_last_request(&mut self) -> bool {
        self.linger_unless(true)
    }

    fn linger_unless(&mut self, quiet_client_is_done: bool) -> bool {
        if self.stream.shutdown_write().is_err() {
            return false;
        }
        self.deadline = Instant::now() + LINGER_TIME;
        self.linger = Some(LINGER_BYTES);
        let event = self.discard(LINGER_BYTES);
        let nothing_arrived = self.linger == Some(LINGER_BYTES);
        event == ReadEvent::Data && !(quiet_client_is_done && nothing_arrived)
    }

    /// Reads and drops what the client sends; `Closed` once it is done or the budget is spent.
    fn discard(&mut self, mut left: usize) -> ReadEvent {
        let mut sink = [0u8; 4096];
        loop {
            match self.stream.read(&mut sink) {
                Ok(0) => return ReadEvent::Closed,
                Ok(n) if n >= left => return ReadEvent::Closed,
                Ok(n) => left -= n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.linger = Some(left);
                    return ReadEvent::Data;
                }
                Err(_) => return ReadEvent::Closed,
            }
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}
