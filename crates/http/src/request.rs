//! A parsed HTTP request as the application sees it.
//!
//! By the time a [`Request`] exists its head has been validated, its path percent-decoded and
//! checked (UTF-8, no NUL, no `..` escaping the root) and its body fully read and de-chunked,
//! so handlers never do I/O or protocol work.

use crate::head::{Head, Version};
use std::net::{IpAddr, SocketAddr};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_line_for_logs() {
        let r = Request {
            method: "GET".into(),
            path: "/".into(),
            query: String::new(),
            target: "/".into(),
            version: Version::Http10,
            headers: Vec::new(),
            body: Vec::new(),
            peer: None,
            client: None,
        };
        assert_eq!(r.line().to_string(), "GET / HTTP/1.0");
    }
}
