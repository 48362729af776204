//! Bind addresses as operators write them, and the listening sockets the master hands down.
//!
//! `--bind` accepts gunicorn's forms (`HOST:PORT`, `:PORT`, `[::1]:PORT`, `unix:PATH`,
//! `fd://N`); parsing only checks the shape, binding (in `bind`) resolves and opens them.

use crate::Error;
use std::net::{Ipv6Addr, SocketAddr, TcpListener};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// A `--bind` value: `HOST:PORT`, `:PORT` (all interfaces), `[::1]:PORT`, `unix:PATH`, `fd://N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddress {
    /// `host:port` as written, host possibly a name (`localhost`) or a bracketed IPv6 literal;
    /// `:PORT` is stored as `0.0.0.0:PORT`.
    Tcp(String),
    /// A Unix stream socket path.
    Unix(PathBuf),
    /// An already listening socket inherited as this descriptor number.
    Fd(i32),
}

impl BindAddress {
    /// Parses one `--bind` value.
    ///
    /// Accepted: `HOST:PORT` (`127.0.0.1:8000`, `localhost:8000`, `example.org:80`), `:PORT`
    /// (every IPv4 interface, `0.0.0.0`), `[IPV6]:PORT` (`[::1]:8000`, `[::]:8000`),
    /// `unix:PATH` or `unix://PATH`, and `fd://N` for a descriptor the process inherited.
    /// Ports are 0–65535; 0 asks the kernel for a free one (logged by [`crate::bind`]).
    pub fn parse(s: &str) -> Result<BindAddress, Error> {
        let bad = || Error::BadAddress(s.to_string());
        if let Some(path) = s
            .strip_prefix("unix://")
            .or_else(|| s.strip_prefix("unix:"))
        {
            if path.is_empty() || path.contains('\0') {
                return Err(bad());
            }
            return Ok(BindAddress::Unix(PathBuf::from(path)));
        }
        if let Some(fd) = s.strip_prefix("fd://") {
            let fd: i32 = fd.parse().map_err(|_| bad())?;
            if fd < 0 || fd.to_string() != s["fd://".len()..] {
                return Err(bad());
            }
            return Ok(BindAddress::Fd(fd));
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        port.parse::<u16>().map_err(|_| bad())?;
        if host.is_empty() {
            return Ok(BindAddress::Tcp(format!("0.0.0.0:{port}")));
        }
        if let Some(inner) = host.strip_prefix('[') {
            let literal = inner.strip_suffix(']').ok_or_else(bad)?;
            literal.parse::<Ipv6Addr>().map_err(|_| bad())?;
        } else if host.contains(':') || !host.bytes().all(is_host_byte) {
            // An unbracketed IPv6 literal is ambiguous (`::1:80`); names are plain DNS labels.
            return Err(bad());
        }
        Ok(BindAddress::Tcp(s.to_string()))
    }
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_'
}

impl std::fmt::Display for BindAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindAddress::Tcp(addr) => f.write_str(addr),
            BindAddress::Unix(path) => write!(f, "unix:{}", path.display()),
            BindAddress::Fd(fd) => write!(f, "fd://{fd}"),
        }
    }
}

impl std::str::FromStr for BindAddress {
    type Err = Error;
    fn from_str(s: &str) -> Result<BindAddress, Error> {
        BindAddress::parse(s)
    }
}

/// A bound, listening socket owned by the master and inherited by workers.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    /// The bound address as operators read it: `127.0.0.1:8000`, `[::1]:8000`, `unix:/path`.
    pub fn local_addr_string(&self) -> String {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(addr) => addr.to_string(),
                Err(e) => format!("(unknown address: {e})"),
            },
            Listener::Unix(_) => match self.unix_path() {
                Some(path) => format!("unix:{}", path.display()),
                None => "unix:(unnamed)".to_string(),
            },
        }
    }

    /// What the `Listening at:` line shows: `http://127.0.0.1:8000`, or `unix:/path`.
    pub fn url(&self) -> String {
        match self {
            Listener::Tcp(_) => format!("http://{}", self.local_addr_string()),
            Listener::Unix(_) => self.local_addr_string(),
        }
    }

    /// The TCP address, if this is a TCP listener that knows it.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(_) => None,
        }
    }

    /// The socket's path, if this is a Unix listener bound to one.
    pub fn unix_path(&self) -> Option<PathBuf> {
        match self {
            Listener::Unix(l) => l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(Path::to_path_buf)),
            Listener::Tcp(_) => None,
        }
    }

    /// A second handle on the same socket (`dup(2)`).
    pub fn try_clone(&self) -> std::io::Result<Listener> {
        Ok(match self {
            Listener::Tcp(l) => Listener::Tcp(l.try_clone()?),
            Listener::Unix(l) => Listener::Unix(l.try_clone()?),
        })
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l) => l.as_fd(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(s: &str) -> BindAddress {
        BindAddress::Tcp(s.to_string())
    }

    #[test]
    fn parses_every_documented_form() {
        let ok = [
            ("127.0.0.1:8000", tcp("127.0.0.1:8000")),
            (":8000", tcp("0.0.0.0:8000")),
            ("[::1]:8000", tcp("[::1]:8000")),
            ("[::]:80", tcp("[::]:80")),
            ("localhost:0", tcp("localhost:0")),
            ("my-host.example:65535", tcp("my-host.example:65535")),
            (
                "unix:/run/pyblogd.sock",
                BindAddress::Unix("/run/pyblogd.sock".into()),
            ),
            (
                "unix:///tmp/a.sock",
                BindAddress::Unix("/tmp/a.sock".into()),
            ),
            ("unix:rel.sock", BindAddress::Unix("rel.sock".into())),
            ("fd://3", BindAddress::Fd(3)),
        ];
        for (input, want) in ok {
            assert_eq!(BindAddress::parse(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn rejects_malformed_addresses() {
        for input in [
            "",
            "8000",
            "127.0.0.1",
            "127.0.0.1:",
            ":",
            "127.0.0.1:65536",
            "127.0.0.1:-1",
            "127.0.0.1:+80",
            "127.0.0.1:8o",
            "::1:8000",
            "[::1:8000",
            "[nope]:80",
            "bad host:80",
            "unix:",
            "unix://",
            "fd://",
            "fd://-1",
            "fd://x",
            "fd://03",
        ] {
            assert!(BindAddress::parse(input).is_err(), "{input:?} was accepted");
        }
    }

    #[test]
    fn display_round_trips() {
        for input in ["127.0.0.1:80", "[::1]:1", "unix:/tmp/x.sock", "fd://5"] {
            let parsed = BindAddress::parse(input).unwrap();
            assert_eq!(parsed.to_string(), input);
            assert_eq!(BindAddress::parse(&parsed.to_string()).unwrap(), parsed);
        }
    }

    #[test]
    fn listener_names_its_address() {
        let l = Listener::Tcp(TcpListener::bind("127.0.0.1:0").unwrap());
        let port = l.tcp_addr().unwrap().port();
        assert_eq!(l.local_addr_string(), format!("127.0.0.1:{port}"));
        assert_eq!(l.url(), format!("http://127.0.0.1:{port}"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let u = Listener::Unix(UnixListener::bind(&path).unwrap());
        assert_eq!(u.local_addr_string(), format!("unix:{}", path.display()));
        assert_eq!(u.unix_path(), Some(path));
    }
}
