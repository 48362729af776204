//! A response as the application builds it.
//!
//! Handlers set status, content headers and body. The server owns the framing headers (see
//! `write_response`): it adds `Content-Length`, `Date`, `Server` and `Connection`, drops the
//! body for HEAD/204/304, and ignores those headers (and `Transfer-Encoding`, `Keep-Alive`)
//! when a handler sets them.

use std::sync::Arc;

/// A response body: owned, shared (cached files and pages) or static (embedded assets).
#[derive(Debug, Clone)]
pub enum Body {
    Owned(Vec<u8>),
    Shared(Arc<[u8]>),
    Static(&'static [u8]),
}

impl Body {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Body::Owned(v) => v,
            Body::Shared(a) => a,
            Body::Static(s) => s,
        }
    }
}

/// Status, headers and body of one response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    /// An empty response with this status.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Owned(Vec::new()),
        }
    }

    /// An HTML page (`text/html; charset=utf-8`).
    pub fn html(status: u16, body: impl Into<String>) -> Self {
        Response::new(status)
            .with_header("Content-Type", "text/html; charset=utf-8")
            .with_body(Body::Owned(body.into().into_bytes()))
    }

    /// A plain-text message (`text/plain; charset=utf-8`).
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response::new(status)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(Body::Owned(body.into().into_bytes()))
    }

    /// A redirect (e.g. 303 after a POST) to `location`.
    pub fn redirect(status: u16, location: &str) -> Self {
        Response::new(status).with_header("Location", location)
    }

    /// Adds a header; builder style.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Replaces the body; builder style.
    pub fn with_body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The standard reason phrase for `status`.
    pub fn reason(status: u16) -> &'static str {
        match status {
            100 => "Continue",
            200 => "OK",
            201 => "Created",
            204 => "No Content",
            301 => "Moved Permanently",
            302 => "Found",
            303 => "See Other",
            304 => "Not Modified",
            307 => "Temporary Redirect",
            308 => "Permanent Redirect",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            411 => "Length Required",
            413 => "Content Too Large",
            414 => "URI Too Long",
            415 => "Unsupported Media Type",
            417 => "Expectation Failed",
            422 => "Unprocessable Content",
            429 => "Too Many Requests",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            505 => "HTTP Version Not Supported",
            _ => "Unknown",
        }
    }
}
