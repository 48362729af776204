//! A parsed HTTP request as the application sees it.
//!
//! By the time a [`Request`] exists its head has been validated, its path percent-decoded and
//! checked (UTF-8, no NUL, no `..` escaping the root) and its body fully read and de-chunked,
//! so handlers never do I/O or protocol work.

use crate::head::Head;
use std::net::{IpAddr, SocketAddr};

/// The protocol version of a request: only HTTP/1.0 and HTTP/1.1 are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    /// The version as it appears on the wire, e.g. `HTTP/1.1`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// One request, head and body.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method token as sent (case-sensitive), e.g. `GET`.
    pub method: String,
    /// The percent-decoded path, always starting with `/`.
    pub path: String,
    /// The raw query string after `?`, not decoded (empty when absent).
    pub query: String,
    /// The request target exactly as sent (for access logs).
    pub target: String,
    pub version: Version,
    /// Header fields in the order received; names as sent, compare case-insensitively.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The de-chunked body (empty when none).
    pub body: Vec<u8>,
    /// The peer address for TCP connections; `None` on unix sockets.
    pub peer: Option<SocketAddr>,
    /// The client's address: the peer's, or from `X-Forwarded-For` when the peer is a trusted
    /// proxy (`ServerConfig::forwarded_allow_ips`); `None` when unknown (a unix socket).
    pub client: Option<IpAddr>,
}

impl Request {
    /// The first header with this name (case-insensitive), if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// Decoded query-string pairs; malformed encoding is an error (the server answers 400).
    pub fn query_pairs(&self) -> Result<Vec<(String, String)>, crate::form::FormError> {
        crate::form::parse_urlencoded(self.query.as_bytes())
    }

    /// Decoded `application/x-www-form-urlencoded` body pairs.
    pub fn form(&self) -> Result<Vec<(String, String)>, crate::form::FormError> {
        crate::form::parse_urlencoded(&self.body)
    }
}

impl Request {
    /// Assembles the request from its validated head, its complete body and the peer.
    pub(crate) fn from_head(head: Head, body: Vec<u8>, peer: Option<SocketAddr>) -> Self {
        Request {
            method: head.method,
            path: head.path,
            query: head.query,
            target: head.target,
            version: head.version,
            headers: head.headers,
            body,
            peer,
            // The server resolves X-Forwarded-For before the handler sees the request.
            client: peer.map(|p| p.ip()),
        }
    }

    /// The request line as sent, minus the CRLF (for logs).
    pub(crate) fn line(&self) -> RequestLine<'_> {
        RequestLine(self)
    }
}

/// Displays `METHOD target VERSION` without allocating.
pub(crate) struct RequestLine<'a>(&'a Request);

impl std::fmt::Display for RequestLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.0;
        write!(f, "{} {} {}", r.method, r.target, r.version.as_str())
    }
}

/// The one keep-alive decision: whether the connection closes after answering `req`.
///
/// HTTP/1.1 keeps alive unless `Connection: close`; HTTP/1.0 closes unless
/// `Connection: keep-alive`; a draining server closes every connection it answers.
pub(crate) fn wants_close(req: &Request, draining: bool) -> bool {
    if draining {
        return true;
    }
    let mut close = false;
    let mut keep_alive = false;
    let options = req
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"));
    for (_, value) in options {
        for option in value.split(|&b| b == b',') {
            let option = option.trim_ascii();
            close |= option.eq_ignore_ascii_case(b"close");
            keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
        }
    }
    match req.version {
        Version::Http11 => close,
        Version::Http10 => close || !keep_alive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: Version, connection: &[&str]) -> Request {
        Request {
            method: "GET".into(),
            path: "/".into(),
            query: String::new(),
            target: "/".into(),
            version,
            headers: connection
                .iter()
                .map(|v| ("Connection".to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: Vec::new(),
            peer: None,
            client: None,
        }
    }

    #[test]
    fn http11_keeps_alive_unless_close() {
        assert!(!wants_close(&request(Version::Http11, &[]), false));
        assert!(wants_close(&request(Version::Http11, &["close"]), false));
        assert!(wants_close(
            &request(Version::Http11, &["Upgrade, CLOSE"]),
            false
        ));
        assert!(!wants_close(
            &request(Version::Http11, &["keep-alive"]),
            false
        ));
    }

    #[test]
    fn http10_closes_unless_keep_alive() {
        assert!(wants_close(&request(Version::Http10, &[]), false));
        assert!(!wants_close(
            &request(Version::Http10, &["Keep-Alive"]),
            false
        ));
        assert!(wants_close(
            &request(Version::Http10, &["keep-alive", "close"]),
            false
        ));
    }

    #[test]
    fn draining_always_closes() {
        assert!(wants_close(
            &request(Version::Http11, &["keep-alive"]),
            true
        ));
    }

    #[test]
    fn request_line_for_logs() {
        let r = request(Version::Http10, &[]);
        assert_eq!(r.line().to_string(), "GET / HTTP/1.0");
    }
}
