//! Who the client is behind a proxy: `X-Forwarded-For`, honoured only from trusted peers.
//!
//! gunicorn's `--forwarded-allow-ips` semantics: the TCP peer's address must be in the list
//! (default `127.0.0.1,::1`, `*` trusts every peer) for the header to count at all. The client
//! is then the right-most `X-Forwarded-For` entry that is not itself a trusted proxy, so a
//! client cannot pick its own address by sending the header: the proxy appends the address it
//! saw, and everything left of that is the client's own say. Unix-socket peers have no address
//! and are trusted only with `*`. The result feeds the access log and the application (rate
//! limits), never authentication.

use crate::Request;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The peers whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardedAllow {
    /// `*`: every peer, unix sockets included.
    Any,
    /// These addresses only.
    Ips(Vec<IpAddr>),
}

impl Default for ForwardedAllow {
    /// gunicorn's default: a proxy on the same host.
    fn default() -> Self {
        ForwardedAllow::Ips(vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ])
    }
}

impl ForwardedAllow {
    /// Parses `*` or a comma-separated list of IP addresses (an empty list trusts no one).
    pub fn parse(text: &str) -> Result<ForwardedAllow, String> {
        let text = text.trim();
        if text == "*" {
            return Ok(ForwardedAllow::Any);
        }
        let mut ips = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let ip = item
                .parse::<IpAddr>()
                .map_err(|_| format!("{item:?} is not an IP address (use addresses or *)"))?;
            ips.push(ip);
        }
        Ok(ForwardedAllow::Ips(ips))
    }

    /// Whether a peer (`None`: a unix socket) may speak for its clients.
    pub fn trusts(&self, peer: Option<IpAddr>) -> bool {
        match (self, peer) {
            (ForwardedAllow::Any, _) => true,
            (ForwardedAllow::Ips(ips), Some(ip)) => ips.contains(&canonical(ip)),
            (ForwardedAllow::Ips(_), None) => false,
        }
    }
}

/// The client address of `req` under `allow`: from `X-Forwarded-For` when the peer is
/// trusted, else the peer's own address (`None` on a unix socket without a usable header).
pub(crate) fn client_of(req: &Request, allow: &ForwardedAllow) -> Option<IpAddr> {
    let peer = req.peer.map(|p| canonical(p.ip()));
    if !allow.trusts(peer) {
        return peer;
    }
    // Every X-Forwarded-For field, in order, as one list (RFC 9110 §5.3).
    let hops: Vec<&str> = req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for"))
        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // An entry that is no address (`unknown`, garbage) ends the chain: nothing left of
        // it can be checked, so the last address reached is the answer.
        let Some(ip) = parse_hop(hop) else { break };
        client = Some(ip);
        if !allow.trusts(Some(ip)) {
            break;
        }
    }
    client
}

/// An X-Forwarded-For entry: `1.2.3.4`, `1.2.3.4:5678`, `::1` or `[::1]:80`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

/// IPv4 peers on a dual-stack socket arrive as `::ffff:a.b.c.d`; compare them as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Version;

    fn req(peer: Option<&str>, xff: &[&str]) -> Request {
        Request {
            method: "GET".into(),
            path: "/".into(),
            query: String::new(),
            target: "/".into(),
            version: Version::Http11,
            headers: xff
                .iter()
                .map(|v| ("X-Forwarded-For".to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: Vec::new(),
            peer: peer.map(|p| p.parse().unwrap()),
            client: None,
        }
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn parses_gunicorns_forms() {
        assert_eq!(ForwardedAllow::parse("*"), Ok(ForwardedAllow::Any));
        assert_eq!(
            ForwardedAllow::parse(" 10.0.0.1, ::1 "),
            Ok(ForwardedAllow::Ips(vec![
                "10.0.0.1".parse().unwrap(),
                "::1".parse().unwrap()
            ]))
        );
        assert_eq!(ForwardedAllow::parse(""), Ok(ForwardedAllow::Ips(vec![])));
        assert!(ForwardedAllow::parse("10.0.0.0/8").is_err());
        assert!(ForwardedAllow::parse("proxy.local").is_err());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let allow = ForwardedAllow::default();
        let r = req(Some("198.51.100.9:4000"), &["203.0.113.7"]);
        assert_eq!(client_of(&r, &allow), ip("198.51.100.9"));
    }

    #[test]
    fn a_trusted_proxy_names_the_right_most_untrusted_hop() {
        let allow = ForwardedAllow::default();
        let one = req(Some("127.0.0.1:4000"), &["203.0.113.7"]);
        assert_eq!(client_of(&one, &allow), ip("203.0.113.7"));
        // The client prepended a lie; the proxy appended what it saw.
        let spoof = req(Some("127.0.0.1:4000"), &["1.1.1.1, 203.0.113.7"]);
        assert_eq!(client_of(&spoof, &allow), ip("203.0.113.7"));
        // Two fields are one list; trusted hops on the right are skipped.
        let chain = req(Some("127.0.0.1:4000"), &["1.1.1.1", "203.0.113.7:555, ::1"]);
        assert_eq!(client_of(&chain, &allow), ip("203.0.113.7"));
        let none = req(Some("[::1]:4000"), &[]);
        assert_eq!(client_of(&none, &allow), ip("::1"));
        let junk = req(Some("127.0.0.1:4000"), &["203.0.113.7, unknown"]);
        assert_eq!(
            client_of(&junk, &allow),
            ip("127.0.0.1"),
            "garbage stops the walk"
        );
    }

    #[test]
    fn any_trusts_every_hop_and_unix_sockets() {
        let chain = req(Some("10.0.0.2:1"), &["1.1.1.1, 203.0.113.7"]);
        assert_eq!(client_of(&chain, &ForwardedAllow::Any), ip("1.1.1.1"));
        let unix = req(None, &["203.0.113.7"]);
        assert_eq!(client_of(&unix, &ForwardedAllow::Any), ip("203.0.113.7"));
        assert_eq!(client_of(&unix, &ForwardedAllow::default()), None);
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_entries() {
        let allow = ForwardedAllow::default();
        let mapped = req(Some("[::ffff:127.0.0.1]:4000"), &["203.0.113.7"]);
        assert_eq!(client_of(&mapped, &allow), ip("203.0.113.7"));
    }
}
