//! Bind addresses and listening sockets (contract; implementation to follow).

use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

/// A `--bind` value: `HOST:PORT`, `:PORT` (all interfaces), `[::1]:PORT`, `unix:PATH`, `fd://N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddress {
    Tcp(String),
    Unix(PathBuf),
    Fd(i32),
}

/// A bound, listening socket owned by the master and inherited by workers.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}
