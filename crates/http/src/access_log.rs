//! One access-log line per response, Apache combined format plus the time taken.
//!
//! `127.0.0.1 - - [26/Nov/2026:02:11:18 +0000] "GET /p?q HTTP/1.1" 200 1234 "ref" "ua" 0.000321`
//! goes to the `pyblogd::access` target at info level, so operators can route or silence it.
//! Quoted fields are escaped (`\"`, `\\`, `\xHH`) so a client cannot forge log lines, and the
//! values of query parameters that carry secrets by convention (`key`, `token`, `password`)
//! are written as `[redacted]`: a log file is read by more people than the secret's owner.

use crate::date::ClfTime;
use crate::Request;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

const TARGET: &str = "pyblogd::access";

/// What one access-log line reports.
pub(crate) struct AccessEntry<'a> {
    /// The request, or `None` when it was refused before it could be read.
    pub request: Option<&'a Request>,
    /// The peer of a TCP connection (`None` on unix sockets).
    pub peer: Option<SocketAddr>,
    pub status: u16,
    /// Body bytes sent.
    pub bytes: usize,
    /// When the request was received.
    pub received: SystemTime,
    /// Time from a complete request to the response written.
    pub elapsed: Duration,
}

/// Logs `entry` (formatting only when the access target is enabled).
pub(crate) fn log_access(entry: &AccessEntry<'_>) {
    if log::log_enabled!(target: TARGET, log::Level::Info) {
        log::info!(target: TARGET, "{}", CombinedLine(entry));
    }
}

/// Formats an entry as the combined log line.
pub(crate) struct CombinedLine<'a>(pub &'a AccessEntry<'a>);

impl fmt::Display for CombinedLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        // The client as resolved (X-Forwarded-For from a trusted proxy), else the peer.
        match e.request.and_then(|r| r.client).or(e.peer.map(|p| p.ip())) {
            Some(client) => write!(f, "{client}")?,
            None => f.write_str("-")?,
        }
        write!(f, " - - [{}] \"", ClfTime(e.received))?;
        match e.request {
            Some(r) => write!(
                f,
                "{} {} {}",
                Escaped(r.method.as_bytes()),
                Redacted(r.target.as_str()),
                r.version.as_str()
            )?,
            None => f.write_str("-")?,
        }
        write!(f, "\" {} {} \"", e.status, e.bytes)?;
        quoted_header(f, e.request, "referer")?;
        f.write_str("\" \"")?;
        quoted_header(f, e.request, "user-agent")?;
        write!(
            f,
            "\" {}.{:06}",
            e.elapsed.as_secs(),
            e.elapsed.subsec_micros()
        )
    }
}

fn quoted_header(f: &mut fmt::Formatter<'_>, request: Option<&Request>, name: &str) -> fmt::Result {
    let value = request.and_then(|r| {
        r.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    });
    match value {
        Some(v) => write!(f, "{}", Escaped(v)),
        None => f.write_str("-"),
    }
}

/// Query parameters whose values never reach the log.
const SECRET_PARAMETERS: &[&str] = &["key", "token", "password"];

/// A request target, escaped, with the values of [`SECRET_PARAMETERS`] replaced.
struct Redacted<'a>(&'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some((path, query)) = self.0.split_once('?') else {
            return write!(f, "{}", Escaped(self.0.as_bytes()));
        };
        write!(f, "{}?", Escaped(path.as_bytes()))?;
        for (at, pair) in query.split('&').enumerate() {
            if at > 0 {
                f.write_str("&")?;
            }
            match pair.split_once('=') {
                Some((name, _))
                    if SECRET_PARAMETERS.contains(&name.to_ascii_lowercase().as_str()) =>
                {
                    write!(f, "{}=[redacted]", Escaped(name.as_bytes()))?
                }
                _ => write!(f, "{}", Escaped(pair.as_bytes()))?,
            }
        }
        Ok(())
    }
}

/// Bytes shown printable-ASCII only, with `"` and `\` escaped.
struct Escaped<'a>(&'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.split_inclusive(|&b| !is_plain(b)) {
            let (last, plain) = chunk.split_last().map_or((None, chunk), |(l, rest)| {
                if is_plain(*l) {
                    (None, chunk)
                } else {
                    (Some(*l), rest)
                }
            });
            // `plain` is printable ASCII, so it is valid UTF-8.
            f.write_str(std::str::from_utf8(plain).unwrap_or_default())?;
            match last {
                Some(b'"') => f.write_str("\\\"")?,
                Some(b'\\') => f.write_str("\\\\")?,
                Some(b) => write!(f, "\\x{b:02x}")?,
                None => {}
            }
        }
        Ok(())
    }
}

fn is_plain(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Version;
    use std::time::UNIX_EPOCH;

    fn request(headers: &[(&str, &[u8])]) -> Request {
        Request {
            method: "GET".into(),
            path: "/path".into(),
            query: "q".into(),
            target: "/path?q".into(),
            version: Version::Http11,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect(),
            body: Vec::new(),
            peer: None,
            client: None,
        }
    }

    fn line(entry: &AccessEntry<'_>) -> String {
        CombinedLine(entry).to_string()
    }

    #[test]
    fn formats_the_combined_line_with_duration() {
        let req = request(&[("Referer", b"http://r/"), ("User-Agent", b"curl/8")]);
        let entry = AccessEntry {
            request: Some(&req),
            peer: Some("127.0.0.1:5555".parse().unwrap()),
            status: 200,
            bytes: 1234,
            received: UNIX_EPOCH + Duration::from_secs(1_795_659_078),
            elapsed: Duration::from_micros(321),
        };
        assert_eq!(
            line(&entry),
            "127.0.0.1 - - [26/Nov/2026:02:11:18 +0000] \"GET /path?q HTTP/1.1\" 200 1234 \
             \"http://r/\" \"curl/8\" 0.000321"
        );
    }

    #[test]
    fn the_resolved_client_stands_before_the_peer() {
        let mut req = request(&[]);
        req.client = Some("203.0.113.9".parse().unwrap());
        let entry = AccessEntry {
            request: Some(&req),
            peer: Some("127.0.0.1:5555".parse().unwrap()),
            status: 200,
            bytes: 0,
            received: UNIX_EPOCH,
            elapsed: Duration::ZERO,
        };
        assert!(
            line(&entry).starts_with("203.0.113.9 - - ["),
            "{}",
            line(&entry)
        );
    }

    #[test]
    fn secrets_in_the_query_are_redacted() {
        let shown = |target: &str| Redacted(target).to_string();
        assert_eq!(
            shown("/posts/1/edit?key=abc123&x=1"),
            "/posts/1/edit?key=[redacted]&x=1"
        );
        assert_eq!(
            shown("/a?TOKEN=s&password=p&keys=k"),
            "/a?TOKEN=[redacted]&password=[redacted]&keys=k"
        );
        assert_eq!(shown("/plain"), "/plain");
        assert_eq!(shown("/q?key"), "/q?key");
        assert_eq!(shown("/q?a=\"b"), "/q?a=\\\"b");
    }

    #[test]
    fn dashes_for_missing_parts() {
        let entry = AccessEntry {
            request: None,
            peer: None,
            status: 400,
            bytes: 0,
            received: UNIX_EPOCH,
            elapsed: Duration::from_millis(1500),
        };
        assert_eq!(
            line(&entry),
            "- - - [01/Jan/1970:00:00:00 +0000] \"-\" 400 0 \"-\" \"-\" 1.500000"
        );
    }

    #[test]
    fn escapes_quotes_and_control_bytes() {
        let req = request(&[("user-agent", b"a\"b\\c\x01\xff")]);
        let entry = AccessEntry {
            request: Some(&req),
            peer: None,
            status: 200,
            bytes: 0,
            received: UNIX_EPOCH,
            elapsed: Duration::ZERO,
        };
        assert!(
            line(&entry).contains("\"a\\\"b\\\\c\\x01\\xff\""),
            "{}",
            line(&entry)
        );
    }
}
