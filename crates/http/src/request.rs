//! A parsed HTTP request as the application sees it.
//!
//! By the time a [`Request`] exists its head has been validated, its path percent-decoded and
//! checked (UTF-8, no NUL, no `..` escaping the root) and its body fully read and de-chunked,
//! so handlers never do I/O or protocol work.

use std::net::SocketAddr;

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
