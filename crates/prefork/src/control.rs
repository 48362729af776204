//! The master's Unix control socket (`PIDFILE.ctl`): answers `pyblogd status` without blocking.
//!
//! The listener is non-blocking and polled with the signal pipe, so a client wakes the master
//! at once; each accepted client gets one JSON [`Status`] written without waiting and is
//! closed. A client that does not read cannot stall the loop: if its socket buffer is full the
//! write fails with `WouldBlock` and the client is dropped.

use crate::status::Status;
use std::io::{ErrorKind, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// Most clients answered per turn, so a flood of connections cannot keep the master from its
/// other work; the rest wait in the backlog for the next turn.
const MAX_CLIENTS_PER_TURN: usize = 16;

/// The bound control socket; removes its file on drop while the file is still ours.
pub(crate) struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    /// Inode of the socket file we created: a successor master (USR2) binds the same path
    /// anew, and our drop must not remove its socket.
    inode: u64,
}

impl ControlSocket {
    /// Binds `path`, replacing a socket file left there (by a dead master, or by the master
    /// that started us on USR2, which hands the path over as it hands over the pidfile).
    /// Refuses to replace anything that is not a socket. Mode 0600: the status names
    /// requests in flight, which only the operator who runs the server should read.
    pub(crate) fn bind(path: &Path) -> std::io::Result<ControlSocket> {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
            Ok(_) => {
                return Err(std::io::Error::new(
                    ErrorKind::AlreadyExists,
                    "exists and is not a socket",
                ))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let inode = std::fs::metadata(path)?.ino();
        Ok(ControlSocket {
            listener,
            path: path.to_path_buf(),
            inode,
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Answers every waiting client (up to a limit) with `status()`, computed once per turn
    /// and only when someone asked.
    pub(crate) fn answer(&self, status: impl FnOnce() -> Status) {
        let mut status = Some(status);
        let mut answer: Option<Vec<u8>> = None;
        for _ in 0..MAX_CLIENTS_PER_TURN {
            let mut client = match self.listener.accept() {
                Ok((client, _)) => client,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("Control socket {}: {e}", self.path.display());
                    return;
                }
            };
            if answer.is_none() {
                answer = status.take().map(|make| match serde_json::to_vec(&make()) {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        log::error!("Cannot encode the status: {e}");
                        Vec::new()
                    }
                });
            }
            let bytes = answer.as_deref().unwrap_or_default();
            // Non-blocking: a snapshot fits in the socket buffer unless the table is huge;
            // a client that cannot take it now gets a short answer and a parse error, never
            // a master that waits for it.
            if let Err(e) = client
                .set_nonblocking(true)
                .and_then(|()| client.write_all(bytes))
            {
                log::debug!("Control client dropped: {e}");
            }
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let still_ours = std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.inode);
        if still_ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
