//! The poller's accept step: new connections from the listening sockets, with back-off.
//!
//! A batch per listener per turn, a pause instead of a spin when descriptors run out, errors
//! of one aborted connection skipped, and `max_connections` enforced by closing at once.

use super::Poller;
use crate::config::Listener;
use crate::connection::{Connection, OpenSlot, Stream};
use nix::errno::Errno;
use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Pause in accepting after running out of descriptors, instead of spinning on EMFILE.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Connections accepted per listener per turn, so one busy listener cannot starve the rest.
const ACCEPT_BATCH: usize = 64;

impl Poller<'_> {
    /// Accepts what is pending on listener `index`, then tries a first read on each new
    /// connection (the request often arrives with the handshake).
    pub(super) fn accept(&mut self, index: usize, now: Instant) {
        let handoff = self.handoff;
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
            if handoff.open.load(Ordering::Relaxed) >= handoff.config.max_connections {
                log::debug!(
                    "at max_connections ({}): closing a new connection",
                    handoff.config.max_connections
                );
                continue;
            }
            if let Err(e) = stream_set_nonblocking(&stream) {
                log::debug!("dropping a new connection: {e}");
                continue;
            }
            let slot = OpenSlot::new(&handoff.open);
            self.conns
                .push(Connection::new(stream, peer, slot, &handoff.config));
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
