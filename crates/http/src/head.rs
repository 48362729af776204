//! The request head: httparse for the syntax, then every HTTP/1.1 framing rule on top.
//!
//! httparse refuses whitespace before a colon, obs-fold and control bytes; this module adds the
//! limits, the version rule, Host, Content-Length, Transfer-Encoding and Expect. Line endings
//! are CRLF only: httparse would take bare LF, but a front proxy may not agree on where such a
//! head ends, so head, chunk lines and trailers all insist on CRLF alike.

use crate::config::Limits;
use crate::error::ProtocolError;
use crate::target::parse_target;
use std::mem::MaybeUninit;

/// Request lines are bounded even when `Limits::request_line` is 0 ("unlimited").
const UNLIMITED_LINE: usize = 64 * 1024;
/// Bytes allowed in a head beyond its line and fields, for separators and leading empty lines.
const HEAD_SLACK: usize = 4096;
/// httparse needs a slot per header; up to this many fields live on the stack.
const STACK_FIELDS: usize = 128;

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

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    None,
    Length(usize),
    Chunked,
}

/// A validated request head, owned (the read buffer moves on).
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub method: String,
    pub target: String,
    pub path: String,
    pub query: String,
    pub version: Version,
    pub headers: Vec<(String, Vec<u8>)>,
    pub framing: BodyFraming,
    /// `Expect: 100-continue` on HTTP/1.1.
    pub expects_continue: bool,
}

/// The longest request line accepted under `limits`.
fn line_limit(limits: &Limits) -> usize {
    if limits.request_line == 0 {
        UNLIMITED_LINE
    } else {
        limits.request_line
    }
}

/// The most bytes a head may take before it is refused as too large: a head that never ends
/// is bounded by its line limit, the field limits and some slack.
pub(crate) fn max_head_len(limits: &Limits) -> usize {
    let per_field = limits.request_field_size.saturating_add(4);
    line_limit(limits)
        .saturating_add(2)
        .saturating_add(limits.request_fields.saturating_mul(per_field))
        .saturating_add(HEAD_SLACK)
}

/// Whether `buf[from..]` may hold the end of a head (an empty line), so parsing is worth trying.
/// `from` lets a trickling client be scanned once per byte rather than once per read.
pub(crate) fn may_hold_head_end(buf: &[u8], from: usize) -> bool {
    let Some(tail) = buf.get(from.saturating_sub(2)..) else {
        return false;
    };
    let mut lines = tail.iter().enumerate().filter(|(_, &b)| b == b'\n');
    lines.any(|(at, _)| match tail.get(at + 1) {
        Some(b'\n') => true,
        Some(b'\r') => tail.get(at + 2) == Some(&b'\n'),
        _ => false,
    })
}

/// The checks that apply before a head is complete: a request line already past its limit
/// (414) or a head already past [`max_head_len`] (431), so a head that never ends is refused
/// as soon as it is known to be too large.
pub(crate) fn check_partial_head(buf: &[u8], limits: &Limits) -> Result<(), ProtocolError> {
    check_request_line(buf, line_limit(limits))?;
    if buf.len() > max_head_len(limits) {
        return Err(ProtocolError::HeadTooLarge);
    }
    Ok(())
}

/// Parses the head at the start of `buf`. `Ok(None)`: incomplete so far (and within limits).
/// On success also returns the head's length in bytes.
pub(crate) fn parse_head(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(Head, usize)>, ProtocolError> {
    check_request_line(buf, line_limit(limits))?;
    // Uninitialised slots: httparse writes each one before exposing it, and filling 128 empty
    // headers per request would cost more than parsing a typical head.
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_FIELDS];
    let mut heap;
    let slots = if limits.request_fields <= STACK_FIELDS {
        &mut stack[..limits.request_fields]
    } else {
        heap = Vec::with_capacity(limits.request_fields);
        heap.resize_with(limits.request_fields, MaybeUninit::uninit);
        &mut heap[..]
    };
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > max_head_len(limits) => {
            return Err(ProtocolError::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(syntax_error(e, buf)),
    };
    check_line_endings(&buf[..len])?;
    let method = req.method.ok_or(ProtocolError::BadRequestLine)?;
    let raw_target = req.path.ok_or(ProtocolError::BadRequestLine)?;
    let version = match req.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(ProtocolError::UnsupportedVersion),
    };
    let fields = check_fields(req.headers, version, limits)?;
    let target = parse_target(method, raw_target)?;
    let head = Head {
        method: method.to_string(),
        target: raw_target.to_string(),
        path: target.path,
        query: target.query,
        version,
        headers: req
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect(),
        framing: fields.framing,
        expects_continue: fields.expects_continue,
    };
    Ok(Some((head, len)))
}

/// 414 as soon as the request line is known to exceed `limit` (even before it ends).
fn check_request_line(buf: &[u8], limit: usize) -> Result<(), ProtocolError> {
    // httparse skips empty lines before the request line; measure the line itself.
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let line = &buf[start..];
    let scan = &line[..line.len().min(limit.saturating_add(2))];
    let len = match scan.iter().position(|&b| b == b'\n') {
        Some(nl) if nl > 0 && scan[nl - 1] == b'\r' => nl - 1,
        Some(nl) => nl,
        None if line.len() > limit.saturating_add(1) => {
            return Err(ProtocolError::RequestLineTooLong)
        }
        None => return Ok(()),
    };
    if len > limit {
        return Err(ProtocolError::RequestLineTooLong);
    }
    Ok(())
}

/// Maps an httparse syntax error to ours, telling an unsupported-but-well-formed version
/// (`HTTP/2.0`: 505) from garbage (400).
fn syntax_error(e: httparse::Error, buf: &[u8]) -> ProtocolError {
    match e {
        httparse::Error::HeaderName => ProtocolError::BadHeaderName,
        httparse::Error::HeaderValue if has_bare_cr(buf) => ProtocolError::BareLineEnding,
        httparse::Error::HeaderValue => ProtocolError::BadHeaderValue,
        httparse::Error::TooManyHeaders => ProtocolError::TooManyFields,
        httparse::Error::Version if is_well_formed_version(buf) => {
            ProtocolError::UnsupportedVersion
        }
        httparse::Error::Version => ProtocolError::BadVersion,
        httparse::Error::NewLine if has_bare_cr(buf) => ProtocolError::BareLineEnding,
        _ => ProtocolError::BadRequestLine,
    }
}

/// Whether the request line is `METHOD TARGET VERSION` with a version shaped
/// `HTTP/<digit>.<digit>` (a line with more parts is malformed, whatever it ends in).
fn is_well_formed_version(buf: &[u8]) -> bool {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let line = &buf[start..];
    let line = &line[..line
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(line.len())];
    let mut parts = line.split(|&b| b == b' ');
    let version = parts.nth(2).unwrap_or_default();
    parts.next().is_none()
        && matches!(version, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit())
}

fn has_bare_cr(buf: &[u8]) -> bool {
    buf.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n')
}

/// Every CR is followed by LF and every LF preceded by CR.
fn check_line_endings(head: &[u8]) -> Result<(), ProtocolError> {
    let mut prev = 0u8;
    for (i, &b) in head.iter().enumerate() {
        let bare_lf = b == b'\n' && prev != b'\r';
        let bare_cr = b == b'\r' && head.get(i + 1) != Some(&b'\n');
        if bare_lf || bare_cr {
            return Err(ProtocolError::BareLineEnding);
        }
        prev = b;
    }
    Ok(())
}

/// What the header fields say about the body and expectations.
struct FieldFacts {
    framing: BodyFraming,
    expects_continue: bool,
}

/// Applies the field rules: sizes, Host, Content-Length, Transfer-Encoding, Expect.
fn check_fields(
    headers: &[httparse::Header<'_>],
    version: Version,
    limits: &Limits,
) -> Result<FieldFacts, ProtocolError> {
    let mut hosts = 0;
    let mut content_types = 0;
    let mut content_length: Option<&[u8]> = None;
    let mut has_transfer_encoding = false;
    let mut expects_continue = false;
    for h in headers {
        if h.name.len() + h.value.len() > limits.request_field_size {
            return Err(ProtocolError::FieldTooLarge);
        }
        let name = h.name;
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("content-type") {
            content_types += 1;
        } else if name.eq_ignore_ascii_case("content-length") {
            if content_length.replace(h.value).is_some() {
                return Err(ProtocolError::DuplicateHeader("content-length"));
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            has_transfer_encoding = true;
        } else if name.eq_ignore_ascii_case("expect") {
            if h.value.eq_ignore_ascii_case(b"100-continue") {
                // RFC 9110 §10.1.1: a 100-continue from an HTTP/1.0 client is ignored.
                expects_continue = version == Version::Http11;
            } else {
                return Err(ProtocolError::UnsupportedExpectation);
            }
        }
    }
    if hosts > 1 {
        return Err(ProtocolError::DuplicateHeader("host"));
    }
    if hosts == 0 && version == Version::Http11 {
        return Err(ProtocolError::MissingHost);
    }
    if content_types > 1 {
        return Err(ProtocolError::DuplicateHeader("content-type"));
    }
    let framing = if has_transfer_encoding {
        if version == Version::Http10 {
            return Err(ProtocolError::TransferEncodingOnHttp10);
        }
        if content_length.is_some() {
            return Err(ProtocolError::LengthWithTransferEncoding);
        }
        check_transfer_codings(headers)?;
        BodyFraming::Chunked
    } else {
        match content_length {
            Some(value) => match parse_content_length(value)? {
                0 => BodyFraming::None,
                n => BodyFraming::Length(n),
            },
            None => BodyFraming::None,
        }
    };
    Ok(FieldFacts {
        framing,
        expects_continue,
    })
}

/// Content-Length is one or more ASCII digits, nothing else (no sign, no list, no spaces).
fn parse_content_length(value: &[u8]) -> Result<usize, ProtocolError> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(ProtocolError::BadContentLength);
    }
    value.iter().try_fold(0usize, |n, &d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(usize::from(d - b'0')))
            .ok_or(ProtocolError::BodyTooLarge)
    })
}

/// The only transfer coding served is a single `chunked`, last. Anything stacked or misplaced
/// is 400 (the length cannot be known); any other coding is 501 (we do not implement it).
fn check_transfer_codings(headers: &[httparse::Header<'_>]) -> Result<(), ProtocolError> {
    let mut chunked = 0;
    let mut chunked_is_last = false;
    let mut unknown = false;
    let values = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"));
    for h in values {
        for element in h.value.split(|&b| b == b',') {
            let coding = element.trim_ascii();
            let name = coding
                .split(|&b| b == b';')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
                return Err(ProtocolError::BadTransferEncoding);
            }
            chunked_is_last = name.eq_ignore_ascii_case(b"chunked");
            if chunked_is_last {
                chunked += 1;
            } else {
                unknown = true;
            }
        }
    }
    if chunked > 1 || (chunked == 1 && !chunked_is_last) {
        return Err(ProtocolError::BadTransferEncoding);
    }
    if unknown || chunked == 0 {
        return Err(ProtocolError::UnknownTransferCoding);
    }
    Ok(())
}

/// `tchar` from RFC 9110 §5.6.2.
pub(crate) fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;
