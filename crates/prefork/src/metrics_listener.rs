//! The `--metrics-bind` listener: a deliberately tiny HTTP/1.0-style responder in the master.
//!
//! prefork knows no HTTP; this is the exception a scrape endpoint needs, kept to one fixed
//! exchange: read a request head (≤ 8 KiB, ≤ 5 s), answer `GET /metrics` (or `/`) with the
//! text, anything else 404, close. Every socket is non-blocking and polled with the signal
//! pipe, so a slow or silent scraper costs the master nothing but a descriptor until it
//! times out. It binds its own address, never the public listener.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

const MAX_HEAD: usize = 8 * 1024;
const CLIENT_DEADLINE: Duration = Duration::from_secs(5);
/// Scrapers waiting at once; more are refused (closed) until one finishes.
const MAX_CLIENTS: usize = 32;

struct Client {
    stream: TcpStream,
    head: Vec<u8>,
    since: Instant,
}

pub(crate) struct MetricsListener {
    listener: TcpListener,
    clients: Vec<Client>,
}

impl MetricsListener {
    pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<MetricsListener> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(MetricsListener {
            listener,
            clients: Vec::new(),
        })
    }

    pub(crate) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The listener and every waiting client, for the master's poll.
    pub(crate) fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        std::iter::once(self.listener.as_fd()).chain(self.clients.iter().map(|c| c.stream.as_fd()))
    }

    /// Accepts new scrapers, reads what arrived, answers every complete request with
    /// `text()` (built at most once per turn) and drops clients past their deadline.
    pub(crate) fn serve(&mut self, text: impl FnOnce() -> String) {
        self.accept();
        let mut text = Some(text);
        let mut body: Option<String> = None;
        let now = Instant::now();
        self.clients.retain_mut(|client| {
            match read_head(client) {
                Ok(false) => now.duration_since(client.since) < CLIENT_DEADLINE,
                Ok(true) => {
                    let wanted = matches!(request_path(&client.head), Some("/metrics" | "/"));
                    let response = if wanted {
                        let body = body.get_or_insert_with(|| text.take().map(|f| f()).unwrap_or_default());
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    } else {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
                    };
                    // Non-blocking: a few KiB fit the socket buffer; a client that cannot
                    // take them now is dropped rather than waited for.
                    if let Err(e) = client.stream.write_all(response.as_bytes()) {
                        log::debug!("Metrics client dropped: {e}");
                    }
                    false
                }
                Err(_) => false,
            }
        });
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if self.clients.len() >= MAX_CLIENTS || stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.clients.push(Client {
                        stream,
                        head: Vec::new(),
                        since: Instant::now(),
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    if e.kind() != ErrorKind::WouldBlock {
                        log::warn!("Metrics listener: {e}");
                    }
                    return;
                }
            }
        }
    }
}

/// Reads what is there; `Ok(true)` once the head is complete, `Err` when the client is gone
/// or sent too much.
fn read_head(client: &mut Client) -> std::io::Result<bool> {
    let mut buf = [0u8; 2048];
    loop {
        match client.stream.read(&mut buf) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                client.head.extend_from_slice(&buf[..n]);
                if client.head.windows(4).any(|w| w == b"\r\n\r\n") {
                    return Ok(true);
                }
                if client.head.len() > MAX_HEAD {
                    return Err(ErrorKind::InvalidData.into());
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The path of a `GET` request line, without its query.
fn request_path(head: &[u8]) -> Option<&str> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    if parts.next()? != "GET" {
        return None;
    }
    parts.next()?.split('?').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_recognised() {
        assert_eq!(
            request_path(b"GET /metrics HTTP/1.1\r\n\r\n"),
            Some("/metrics")
        );
        assert_eq!(
            request_path(b"GET /metrics?x=1 HTTP/1.1\r\n\r\n"),
            Some("/metrics")
        );
        assert_eq!(request_path(b"POST /metrics HTTP/1.1\r\n\r\n"), None);
        assert_eq!(request_path(b"\xff\r\n\r\n"), None);
    }
}
