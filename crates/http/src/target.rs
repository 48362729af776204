//! The request target: which forms are accepted and how the path is decoded.
//!
//! Origin-form is the normal case; absolute-form is reduced to its path (RFC 9112); `*` only
//! with OPTIONS, answered by the server. The path is percent-decoded *before* dot-segments are
//! resolved, so `%2e%2e` cannot sneak past the `..` check; `..` above `/` is refused rather
//! than clamped, because a client that sends one is probing, not browsing.

use crate::error::ProtocolError;
use crate::form::percent_byte;

/// A request target split into its decoded path and raw query.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// The percent-decoded, dot-resolved path (starts with `/`, or is `*`).
    pub path: String,
    /// The raw query after `?` (empty when absent).
    pub query: String,
}

/// Splits and decodes `raw` (the target exactly as sent) for a request with `method`.
pub(crate) fn parse_target(method: &str, raw: &str) -> Result<Target, ProtocolError> {
    if raw == "*" {
        return if method == "OPTIONS" {
            Ok(Target {
                path: "*".to_string(),
                query: String::new(),
            })
        } else {
            Err(ProtocolError::BadTarget)
        };
    }
    // A fragment is never part of a request target (RFC 9112 §3.2).
    if raw.contains('#') {
        return Err(ProtocolError::BadTarget);
    }
    let origin = if raw.starts_with('/') {
        raw
    } else {
        absolute_form_path(raw)?
    };
    let (path, query) = match origin.find('?') {
        Some(q) => (&origin[..q], &origin[q + 1..]),
        None => (origin, ""),
    };
    Ok(Target {
        path: decode_path(path)?,
        query: query.to_string(),
    })
}

/// The path-and-query part of an absolute-form target (`http://host[:port]/p?q` → `/p?q`).
fn absolute_form_path(raw: &str) -> Result<&str, ProtocolError> {
    let scheme_end = raw.find("://").ok_or(ProtocolError::BadTarget)?;
    let scheme = &raw[..scheme_end];
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(ProtocolError::BadTarget);
    }
    let rest = &raw[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    // userinfo is forbidden in http(s) URIs (RFC 9110 §4.2.4); an empty host is meaningless.
    if authority.is_empty() || authority.contains('@') {
        return Err(ProtocolError::BadTarget);
    }
    // An empty path (`http://host` or `http://host?q`) means `/`; `decode_path` adds it.
    Ok(&rest[authority_end..])
}

/// Percent-decodes `raw` and resolves `.`/`..` segments; rejects bad escapes, NUL, non-UTF-8
/// and `..` escaping the root.
pub(crate) fn decode_path(raw: &str) -> Result<String, ProtocolError> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len() + 1);
    if bytes.first() != Some(&b'/') {
        decoded.push(b'/');
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = if bytes[i] == b'%' {
            let b = percent_byte(bytes, i).ok_or(ProtocolError::BadPath)?;
            i += 2;
            b
        } else {
            bytes[i]
        };
        if b == 0 {
            return Err(ProtocolError::BadPath);
        }
        decoded.push(b);
        i += 1;
    }
    let decoded = String::from_utf8(decoded).map_err(|_| ProtocolError::BadPath)?;
    if !decoded.split('/').any(|s| s == "." || s == "..") {
        return Ok(decoded);
    }
    resolve_dot_segments(&decoded)
}

/// Resolves `.` and `..` in an absolute path; `..` above the root is an error. A path that
/// ends in a dot-segment names a directory, so it keeps a trailing `/`.
fn resolve_dot_segments(path: &str) -> Result<String, ProtocolError> {
    let mut kept: Vec<&str> = Vec::new();
    let mut segments = path.split('/').skip(1).peekable();
    let mut trailing_slash = false;
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            "." => trailing_slash = last,
            ".." => {
                kept.pop().ok_or(ProtocolError::BadPath)?;
                trailing_slash = last;
            }
            s => {
                kept.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &kept {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(raw: &str) -> Result<String, ProtocolError> {
        parse_target("GET", raw).map(|t| t.path)
    }

    #[test]
    fn origin_form_splits_query_raw() {
        let t = parse_target("GET", "/a%20b/c?x=%41&y=1+2").unwrap();
        assert_eq!(t.path, "/a b/c");
        assert_eq!(t.query, "x=%41&y=1+2");
        assert_eq!(parse_target("GET", "/?").unwrap().query, "");
    }

    #[test]
    fn decodes_utf8_and_reserved_escapes() {
        assert_eq!(path("/caf%C3%A9").unwrap(), "/café");
        assert_eq!(path("/a%2Fb").unwrap(), "/a/b");
        assert_eq!(path("/%3F").unwrap(), "/?");
    }

    #[test]
    fn rejects_bad_escapes_nul_and_non_utf8() {
        for bad in ["/%", "/%4", "/%zz", "/a%00b", "/%ff", "/%c3", "/%C3%28"] {
            assert_eq!(path(bad), Err(ProtocolError::BadPath), "{bad}");
        }
    }

    #[test]
    fn resolves_dot_segments_inside_the_root() {
        assert_eq!(path("/a/./b").unwrap(), "/a/b");
        assert_eq!(path("/a/b/../c").unwrap(), "/a/c");
        assert_eq!(path("/a/..").unwrap(), "/");
        assert_eq!(path("/a/b/..").unwrap(), "/a/");
        assert_eq!(path("/a/.").unwrap(), "/a/");
        assert_eq!(path("/.").unwrap(), "/");
        assert_eq!(path("/a/%2e%2E/b").unwrap(), "/b");
        assert_eq!(path("/a//b/").unwrap(), "/a//b/");
        assert_eq!(path("/a..b/.c").unwrap(), "/a..b/.c");
    }

    #[test]
    fn rejects_dot_segments_escaping_the_root() {
        for bad in [
            "/..",
            "/../etc/passwd",
            "/a/../..",
            "/%2e%2e/x",
            "/a/%2e%2e%2f%2e%2e/x",
            "/.%2e",
        ] {
            assert_eq!(path(bad), Err(ProtocolError::BadPath), "{bad}");
        }
    }

    #[test]
    fn absolute_form_uses_its_path() {
        let t = parse_target("GET", "http://example.com:8080/p/q?x=1").unwrap();
        assert_eq!((t.path.as_str(), t.query.as_str()), ("/p/q", "x=1"));
        assert_eq!(path("HTTPS://example.com").unwrap(), "/");
        assert_eq!(parse_target("GET", "http://h?x").unwrap().query, "x");
    }

    #[test]
    fn rejects_other_forms() {
        for bad in [
            "example.com:443",
            "ftp://h/x",
            "http:///x",
            "http://u@h/x",
            "a/b",
            "/a#frag",
            "",
        ] {
            assert_eq!(
                parse_target("GET", bad),
                Err(ProtocolError::BadTarget),
                "{bad}"
            );
        }
    }

    #[test]
    fn asterisk_only_with_options() {
        assert_eq!(parse_target("OPTIONS", "*").unwrap().path, "*");
        assert_eq!(parse_target("GET", "*"), Err(ProtocolError::BadTarget));
    }
}
