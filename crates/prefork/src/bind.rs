//! Opening the listening sockets, or taking over the ones this process inherited.
//!
//! The master binds before it forks, so every worker shares the same accept queues. Sockets
//! handed in by systemd (`LISTEN_FDS`) or by the master that started us on USR2
//! (`PYBLOGD_LISTEN_FDS`) are adopted instead of bound again: that is what keeps the port open
//! across a binary upgrade or a socket-activated restart.

use crate::protocol::{ENV_LISTEN_FDS, ENV_SERVE_PASSED};
use crate::sys::adopt_inherited_socket;
use crate::{BindAddress, Error, Listener};
use socket2::{Domain, SockAddr, Socket, Type};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::RawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether this process serves sockets that were handed to it to serve as they are (by
/// systemd, or by a USR2 predecessor that got them from systemd). Set once, by [`bind`].
static SERVING_PASSED_SOCKETS: AtomicBool = AtomicBool::new(false);

/// `true` when [`bind`] adopted sockets to serve as they are, ignoring `--bind`: a USR2
/// successor must do the same (see [`ENV_SERVE_PASSED`]).
pub(crate) fn serving_passed_sockets() -> bool {
    SERVING_PASSED_SOCKETS.load(Ordering::Relaxed)
}

/// Mode of a Unix socket we create: owner and group may connect. A reverse proxy reaches it by
/// sharing the socket's group, the usual arrangement; the world may not.
const UNIX_SOCKET_MODE: u32 = 0o660;

/// Opens (or adopts) one listener per requested address and logs `Listening at:` for each.
///
/// - systemd socket activation (`LISTEN_PID` = our pid, `LISTEN_FDS` = n): the n sockets from
///   fd 3 are served and `addrs` is ignored, as gunicorn does; requested addresses that none of
///   them matches are logged. `LISTEN_PID`/`LISTEN_FDS`/`LISTEN_FDNAMES` are then removed from
///   the environment so workers and re-executed masters do not misread them.
/// - USR2 upgrade (`PYBLOGD_LISTEN_FDS=3,4`): each requested address takes the inherited socket
///   bound to it (same IP and port, any port when the request says 0; same path for `unix:`),
///   others are bound afresh, and inherited sockets nobody asked for any more are closed.
///   When the old master served systemd's sockets (`PYBLOGD_SERVE_PASSED_SOCKETS=1`), the new
///   one serves all of them and ignores `addrs`, as the old one did.
/// - TCP: `SO_REUSEADDR`; a name is resolved and the first address that binds wins (IPv4
///   first); `[::]` is dual-stack unless `0.0.0.0` on the same port is requested as well.
/// - `unix:PATH`: an existing file there is removed only if it is a socket nobody answers on;
///   the new socket gets mode 0660.
/// - `fd://N`: descriptor N must be an open socket; it is used as is.
pub fn bind(addrs: &[BindAddress], backlog: i32) -> Result<Vec<Listener>, Error> {
    let mut listeners = Vec::new();
    let systemd = systemd_fds()?;
    let upgrade = upgrade_fds()?;
    let (passed, why_ignored) = if !systemd.is_empty() {
        (systemd, "systemd passed the sockets to serve")
    } else if upgrade.serve_all {
        let why = "serving the sockets systemd passed to the old master";
        (upgrade.fds.clone(), why)
    } else {
        (Vec::new(), "")
    };
    if !passed.is_empty() {
        for fd in passed {
            listeners.push(adopt(fd)?);
        }
        for addr in addrs {
            if !matches!(addr, BindAddress::Fd(_))
                && !listeners
                    .iter()
                    .any(|l| serves(l, addr, &resolve_quiet(addr)))
            {
                log::info!("Ignoring bind {addr}: {why_ignored}");
            }
        }
        SERVING_PASSED_SOCKETS.store(true, Ordering::Relaxed);
    } else {
        let mut inherited = upgrade
            .fds
            .into_iter()
            .map(adopt)
            .collect::<Result<Vec<_>, _>>()?;
        for addr in addrs {
            let listener = match addr {
                BindAddress::Fd(fd) => adopt(*fd)?,
                _ => {
                    let resolved = resolve(addr)?;
                    match inherited.iter().position(|l| serves(l, addr, &resolved)) {
                        Some(i) => inherited.swap_remove(i),
                        None => open(addr, &resolved, addrs, backlog)?,
                    }
                }
            };
            listeners.push(listener);
        }
        for stale in inherited {
            log::info!(
                "Closing inherited socket {}: no longer bound",
                stale.local_addr_string()
            );
        }
    }
    let pid = std::process::id();
    for listener in &listeners {
        log::info!("Listening at: {} ({pid})", listener.url());
    }
    Ok(listeners)
}

/// The descriptors systemd passed us, and the variables that named them removed.
fn systemd_fds() -> Result<Vec<RawFd>, Error> {
    let fds = sd_notify::listen_fds().map_err(|e| Error::Io {
        context: "reading LISTEN_FDS".to_string(),
        cause: e,
    });
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        if std::env::var_os(var).is_some() {
            // The master is single-threaded while it binds, which is what remove_var asks.
            std::env::remove_var(var);
        }
    }
    Ok(fds?.collect())
}

/// The sockets a USR2 predecessor passed on.
struct Upgrade {
    fds: Vec<RawFd>,
    /// Serve them all, ignoring `--bind`: they came from systemd.
    serve_all: bool,
}

/// The descriptors our USR2 parent passed, and the variables that named them removed.
fn upgrade_fds() -> Result<Upgrade, Error> {
    let serve_all = std::env::var_os(ENV_SERVE_PASSED).is_some_and(|v| v == "1");
    if std::env::var_os(ENV_SERVE_PASSED).is_some() {
        // The master is single-threaded while it binds, which is what remove_var asks.
        std::env::remove_var(ENV_SERVE_PASSED);
    }
    let Some(value) = std::env::var_os(ENV_LISTEN_FDS) else {
        return Ok(Upgrade {
            fds: Vec::new(),
            serve_all: false,
        });
    };
    std::env::remove_var(ENV_LISTEN_FDS);
    let value = value.to_string_lossy().into_owned();
    let mut fds: Vec<RawFd> = Vec::new();
    for part in value.split(',').filter(|p| !p.is_empty()) {
        let fd = part
            .trim()
            .parse()
            .map_err(|_| Error::BadAddress(format!("{ENV_LISTEN_FDS}={value}")))?;
        if !fds.contains(&fd) {
            fds.push(fd);
        }
    }
    Ok(Upgrade { fds, serve_all })
}

/// An inherited socket as a [`Listener`]; it must already be listening.
fn adopt(fd: RawFd) -> Result<Listener, Error> {
    let name = format!("fd://{fd}");
    let fail = |source| Error::Bind {
        addr: name.clone(),
        cause: source,
    };
    let socket = adopt_inherited_socket(fd).map_err(fail)?;
    if !socket.is_listener().map_err(fail)? {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the socket is not listening",
        )));
    }
    // Inherited sockets may come without close-on-exec; we set it so only USR2 passes them on.
    socket.set_cloexec(true).map_err(fail)?;
    let domain = socket.domain().map_err(fail)?;
    let owned = std::os::fd::OwnedFd::from(socket);
    Ok(if domain == Domain::UNIX {
        Listener::Unix(owned.into())
    } else {
        Listener::Tcp(owned.into())
    })
}

/// The socket addresses a TCP bind stands for, IPv4 first (empty for `unix:`/`fd://`).
fn resolve(addr: &BindAddress) -> Result<Vec<SocketAddr>, Error> {
    let BindAddress::Tcp(text) = addr else {
        return Ok(Vec::new());
    };
    let mut resolved: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| Error::Bind {
            addr: text.clone(),
            cause: e,
        })?
        .collect();
    resolved.sort_by_key(|a| a.is_ipv6());
    resolved.dedup();
    if resolved.is_empty() {
        return Err(Error::Bind {
            addr: text.clone(),
            cause: std::io::Error::new(std::io::ErrorKind::NotFound, "no address found"),
        });
    }
    Ok(resolved)
}

fn resolve_quiet(addr: &BindAddress) -> Vec<SocketAddr> {
    resolve(addr).unwrap_or_default()
}

/// Whether `listener` already is the socket `addr` asks for.
fn serves(listener: &Listener, addr: &BindAddress, resolved: &[SocketAddr]) -> bool {
    match (listener, addr) {
        (Listener::Tcp(_), BindAddress::Tcp(_)) => listener.tcp_addr().is_some_and(|have| {
            resolved.iter().any(|want| {
                want.ip() == have.ip() && (want.port() == have.port() || want.port() == 0)
            })
        }),
        (Listener::Unix(_), BindAddress::Unix(path)) => {
            listener.unix_path().as_deref() == Some(path)
        }
        _ => false,
    }
}

/// Binds a fresh socket for `addr`.
fn open(
    addr: &BindAddress,
    resolved: &[SocketAddr],
    all: &[BindAddress],
    backlog: i32,
) -> Result<Listener, Error> {
    match addr {
        BindAddress::Unix(path) => open_unix(path, backlog),
        _ => {
            let mut last = None;
            for candidate in resolved {
                match open_tcp(*candidate, all, backlog) {
                    Ok(listener) => return Ok(listener),
                    Err(e) => last = Some(e),
                }
            }
            Err(Error::Bind {
                addr: addr.to_string(),
                cause: last.unwrap_or_else(|| std::io::Error::other("no address to bind")),
            })
        }
    }
}

fn open_tcp(addr: SocketAddr, all: &[BindAddress], backlog: i32) -> std::io::Result<Listener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if let IpAddr::V6(ip) = addr.ip() {
        // `[::]` alone also serves IPv4 (one socket for both); next to an explicit `0.0.0.0`
        // on the same port it must not, or the two binds collide.
        let v4_too = all.iter().any(|other| {
            resolve_quiet(other)
                .iter()
                .any(|o| o.is_ipv4() && o.ip().is_unspecified() && o.port() == addr.port())
        });
        socket.set_only_v6(!ip.is_unspecified() || v4_too)?;
    }
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(backlog)?;
    Ok(Listener::Tcp(std::os::fd::OwnedFd::from(socket).into()))
}

fn open_unix(path: &Path, backlog: i32) -> Result<Listener, Error> {
    let fail = |source| Error::Bind {
        addr: format!("unix:{}", path.display()),
        cause: source,
    };
    remove_stale_socket(path).map_err(fail)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(fail)?;
    socket
        .bind(&SockAddr::unix(path).map_err(fail)?)
        .map_err(fail)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(UNIX_SOCKET_MODE))
        .map_err(fail)?;
    socket.listen(backlog).map_err(fail)?;
    Ok(Listener::Unix(std::os::fd::OwnedFd::from(socket).into()))
}

/// Removes a socket file left by a dead server. Refuses to touch anything else: a regular
/// file at that path, or a socket some process still answers on.
fn remove_stale_socket(path: &Path) -> std::io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "the path exists and is not a socket",
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "another process is listening on this socket",
        )),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            log::info!("Removing stale socket {}", path.display());
            std::fs::remove_file(path)
        }
        Err(e) => Err(e),
    }
}

/// Unix socket paths among `listeners`, for unlinking at exit.
pub(crate) fn unix_paths(listeners: &[Listener]) -> Vec<PathBuf> {
    listeners.iter().filter_map(Listener::unix_path).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn binds_tcp_and_reports_the_port() {
        let addr = BindAddress::parse("127.0.0.1:0").unwrap();
        let listeners = bind(&[addr], 16).unwrap();
        let port = listeners[0].tcp_addr().unwrap().port();
        assert_ne!(port, 0);
        std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    }

    #[test]
    fn stale_unix_socket_is_replaced_but_live_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.sock");
        drop(UnixListener::bind(&path).unwrap()); // leaves the file, nobody listening
        let addr = BindAddress::Unix(path.clone());
        let listeners = bind(std::slice::from_ref(&addr), 16).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, UNIX_SOCKET_MODE);
        UnixStream::connect(&path).unwrap();
        // While it listens, a second bind must refuse rather than steal the path.
        let err = bind(&[addr], 16).unwrap_err();
        assert!(err.to_string().contains("another process"), "{err}");
        drop(listeners);
    }

    #[test]
    fn refuses_to_remove_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.txt");
        std::fs::write(&path, "keep me").unwrap();
        assert!(bind(&[BindAddress::Unix(path.clone())], 16).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
    }

    #[test]
    fn inherited_sockets_match_by_address() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        let listener = Listener::Tcp(tcp);
        let exact = BindAddress::Tcp(format!("127.0.0.1:{port}"));
        let any_port = BindAddress::Tcp("127.0.0.1:0".to_string());
        let other = BindAddress::Tcp("127.0.0.2:0".to_string());
        for (addr, want) in [(exact, true), (any_port, true), (other, false)] {
            assert_eq!(serves(&listener, &addr, &resolve(&addr).unwrap()), want);
        }
    }
}
