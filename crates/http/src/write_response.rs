//! Writes a [`Response`]: the status line, the application's headers, the headers the server
//! alone owns, then the body, within one deadline.
//!
//! `Content-Length`, `Connection`, `Date`, `Server`, `Transfer-Encoding` and `Keep-Alive` set by
//! a handler are dropped, and a header that could split the response (CR, LF, NUL, a name that
//! is not a token) is dropped with a warning: the framing must be right whatever the app does.

use crate::connection::Connection;
use crate::date::append_http_date;
use crate::head::is_token;
use crate::keep_alive::Persistence;
use crate::response::Response;
use std::time::{Duration, Instant};

/// Bodies up to this size are copied behind the head so a response is one write(2); larger
/// ones go out with writev(2) from where they are.
const COPY_BODY_MAX: usize = 16 * 1024;

/// Headers only the server writes.
const FRAMING_HEADERS: &[&str] = &[
    "content-length",
    "connection",
    "date",
    "server",
    "transfer-encoding",
    "keep-alive",
];

/// Whether a response with `status` to a request (HEAD or not) carries its body.
fn sends_body(status: u16, head_request: bool) -> bool {
    !head_request && status != 204 && status != 304 && status >= 200
}

/// Writes head and body of `response` within `write_timeout`, using `out` as the head buffer;
/// the body bytes sent, or `None` when the client could not be written to.
pub(crate) fn write_response(
    conn: &Connection,
    response: &Response,
    persistence: Persistence,
    head_request: bool,
    out: &mut Vec<u8>,
    write_timeout: Duration,
) -> Option<usize> {
    out.clear();
    encode_head(out, response, persistence);
    let body = if sends_body(response.status, head_request) {
        response.body.as_bytes()
    } else {
        &[]
    };
    let deadline = Instant::now() + write_timeout;
    let result = if body.len() <= COPY_BODY_MAX {
        out.extend_from_slice(body);
        conn.write_all(&[out], deadline)
    } else {
        conn.write_all(&[out, body], deadline)
    };
    if out.capacity() > 4 * COPY_BODY_MAX {
        // One large header set should not pin memory in this thread forever.
        *out = Vec::with_capacity(1024);
    }
    match result {
        Ok(()) => Some(body.len()),
        Err(e) => {
            log::debug!("writing response failed: {e}");
            None
        }
    }
}

/// Appends the head of `resp` to `out`; the body (if [`sends_body`]) follows it on the wire.
/// A HEAD answer gets GET's head, Content-Length included; only its body is left out.
fn encode_head(out: &mut Vec<u8>, resp: &Response, persistence: Persistence) {
    out.extend_from_slice(b"HTTP/1.1 ");
    append_decimal(out, usize::from(resp.status));
    out.push(b' ');
    out.extend_from_slice(Response::reason(resp.status).as_bytes());
    out.extend_from_slice(b"\r\nServer: pyblogd\r\nDate: ");
    append_http_date(out);
    out.extend_from_slice(b"\r\n");
    // RFC 9110 §8.6: no Content-Length on 1xx/204; on 304 it would describe the selected
    // representation, which the server does not know, so it is left out there too.
    if resp.status >= 200 && resp.status != 204 && resp.status != 304 {
        out.extend_from_slice(b"Content-Length: ");
        append_decimal(out, resp.body.as_bytes().len());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(connection) = persistence.connection_header() {
        out.extend_from_slice(b"Connection: ");
        out.extend_from_slice(connection.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in &resp.headers {
        if FRAMING_HEADERS.iter().any(|f| name.eq_ignore_ascii_case(f)) {
            continue;
        }
        if !is_safe_header(name, value) {
            log::warn!("dropping unsafe response header {name:?}");
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A header is safe to write when its name is a token and its value has no control bytes
/// but HTAB (so it can neither end the line nor smuggle a second response).
fn is_safe_header(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(is_token)
        && value
            .bytes()
            .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Appends `n` in decimal without going through `fmt`.
pub(crate) fn append_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Body;

    /// `head_request` never changes the head (HEAD gets GET's headers); it stays in the
    /// signature so each call reads as the request it models.
    fn encode(resp: &Response, close: bool, keep_alive_10: bool, _head_request: bool) -> String {
        let mut out = Vec::new();
        let persistence = if close {
            Persistence::Linger
        } else if keep_alive_10 {
            Persistence::KeepAliveHttp10
        } else {
            Persistence::KeepAlive
        };
        encode_head(&mut out, resp, persistence);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn writes_status_framing_and_app_headers() {
        let resp = Response::text(200, "hello");
        let head = encode(&resp, false, false, false);
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\nServer: pyblogd\r\nDate: "),
            "{head}"
        );
        assert!(head.contains("\r\nContent-Length: 5\r\n"));
        assert!(head.contains("\r\nContent-Type: text/plain; charset=utf-8\r\n"));
        assert!(!head.contains("Connection"));
        assert!(head.ends_with("\r\n\r\n"));
    }

    #[test]
    fn ignores_framing_headers_set_by_the_app() {
        let resp = Response::new(200)
            .with_header("Content-Length", "999")
            .with_header("transfer-encoding", "chunked")
            .with_header("Connection", "keep-alive")
            .with_header("Server", "evil")
            .with_header("Date", "yesterday")
            .with_body(Body::Static(b"abc"));
        let head = encode(&resp, true, false, false);
        assert_eq!(head.matches("Content-Length").count(), 1);
        assert!(head.contains("Content-Length: 3\r\n"));
        assert!(head.contains("Connection: close\r\n"));
        assert!(!head.contains("chunked") && !head.contains("evil") && !head.contains("yesterday"));
    }

    #[test]
    fn drops_headers_that_could_split_the_response() {
        let resp = Response::new(200)
            .with_header("X-Evil", "a\r\nSet-Cookie: x=1")
            .with_header("Bad Name", "v")
            .with_header("X-Fine", "a\tb");
        let head = encode(&resp, false, false, false);
        assert!(!head.contains("Set-Cookie") && !head.contains("Bad Name"));
        assert!(head.contains("X-Fine: a\tb\r\n"));
    }

    #[test]
    fn head_keeps_length_and_204_304_have_none() {
        let resp = Response::text(200, "twelve bytes");
        assert!(encode(&resp, false, false, true).contains("Content-Length: 12\r\n"));
        assert!(!sends_body(200, true));
        for status in [204, 304] {
            let head = encode(&Response::new(status), false, false, false);
            assert!(!head.contains("Content-Length"), "{head}");
            assert!(!sends_body(status, false));
        }
    }

    #[test]
    fn http10_keep_alive_is_announced() {
        let head = encode(&Response::new(200), false, true, false);
        assert!(head.contains("Connection: keep-alive\r\n"));
    }

    #[test]
    fn decimal() {
        for n in [0usize, 7, 10, 1234, usize::MAX] {
            let mut out = Vec::new();
            append_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
