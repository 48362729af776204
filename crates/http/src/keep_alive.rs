//! The one keep-alive decision: what becomes of a connection once a response is written.
//!
//! HTTP/1.1 keeps alive unless `Connection: close`; HTTP/1.0 closes unless
//! `Connection: keep-alive`; a draining server closes every connection it answers. The answer
//! is a [`Persistence`], which both the response head and the handler thread act on.

use crate::head::Version;
use crate::request::Request;

/// What happens to a connection after the response to its current request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Persistence {
    /// HTTP/1.1 keep-alive: no `Connection` header; the next request is read.
    KeepAlive,
    /// HTTP/1.0 keep-alive the client asked for: `Connection: keep-alive`, then as `KeepAlive`.
    KeepAliveHttp10,
    /// The client's own last request with nothing sent behind it: `Connection: close`, then
    /// the connection waits for the client to close its side (no RST, no linger).
    CloseAfterLast,
    /// The server ends the connection (a drain, a refused request, or bytes pipelined behind
    /// a client's close): `Connection: close`, shut the write side, discard what still comes.
    Linger,
}

impl Persistence {
    /// The `Connection` header value the response carries, if any.
    pub(crate) fn connection_header(self) -> Option<&'static str> {
        match self {
            Persistence::KeepAlive => None,
            Persistence::KeepAliveHttp10 => Some("keep-alive"),
            Persistence::CloseAfterLast | Persistence::Linger => Some("close"),
        }
    }
}

/// Decides what follows the response to `request`. `draining` is the server's own decision to
/// close; `pipelined` says bytes of a further request already wait in the connection's buffer.
pub(crate) fn after_response(request: &Request, draining: bool, pipelined: bool) -> Persistence {
    // The client's word that this is its last request is kept apart from our decision to
    // close (a drain), after which a client may still send requests we must not reset.
    if client_wants_close(request) {
        if pipelined {
            Persistence::Linger
        } else {
            Persistence::CloseAfterLast
        }
    } else if draining {
        Persistence::Linger
    } else if request.version == Version::Http10 {
        Persistence::KeepAliveHttp10
    } else {
        Persistence::KeepAlive
    }
}

/// Whether the client asked to close after this request, by its version and `Connection`.
fn client_wants_close(req: &Request) -> bool {
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
        assert!(!client_wants_close(&request(Version::Http11, &[])));
        assert!(client_wants_close(&request(Version::Http11, &["close"])));
        assert!(client_wants_close(&request(
            Version::Http11,
            &["Upgrade, CLOSE"]
        )));
        assert!(!client_wants_close(&request(
            Version::Http11,
            &["keep-alive"]
        )));
    }

    #[test]
    fn http10_closes_unless_keep_alive() {
        assert!(client_wants_close(&request(Version::Http10, &[])));
        assert!(!client_wants_close(&request(
            Version::Http10,
            &["Keep-Alive"]
        )));
        assert!(client_wants_close(&request(
            Version::Http10,
            &["keep-alive", "close"]
        )));
    }

    #[test]
    fn draining_always_closes() {
        assert_eq!(
            after_response(&request(Version::Http11, &["keep-alive"]), true, false),
            Persistence::Linger
        );
    }

    #[test]
    fn the_clients_last_request_closes_after_its_answer() {
        let last = request(Version::Http11, &["close"]);
        assert_eq!(
            after_response(&last, false, false),
            Persistence::CloseAfterLast
        );
        assert_eq!(
            after_response(&last, true, false),
            Persistence::CloseAfterLast
        );
        // Bytes pipelined behind a close must be discarded, not answered with an RST.
        assert_eq!(after_response(&last, false, true), Persistence::Linger);
    }

    #[test]
    fn keep_alive_is_announced_only_to_http10() {
        let http11 = request(Version::Http11, &[]);
        assert_eq!(after_response(&http11, false, true), Persistence::KeepAlive);
        let http10 = request(Version::Http10, &["keep-alive"]);
        assert_eq!(
            after_response(&http10, false, false),
            Persistence::KeepAliveHttp10
        );
        for persistence in [Persistence::CloseAfterLast, Persistence::Linger] {
            assert_eq!(persistence.connection_header(), Some("close"));
        }
        assert_eq!(Persistence::KeepAlive.connection_header(), None);
        assert_eq!(
            Persistence::KeepAliveHttp10.connection_header(),
            Some("keep-alive")
        );
    }
}
