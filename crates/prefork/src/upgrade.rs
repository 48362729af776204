//! USR2: start a new master from the binary on disk and hand it the listening sockets.
//!
//! The old master forks, clears close-on-exec on its listeners in the child and execs its own
//! executable with the original arguments, plus `PYBLOGD_LISTEN_FDS` (which fds),
//! `PYBLOGD_UPGRADE_FROM` (its pid) and, when the sockets came from systemd,
//! `PYBLOGD_SERVE_PASSED_SOCKETS=1` (serve them all and ignore `--bind`, as this one did). The
//! new master adopts the sockets in `bind`, so the port never closes. What happens next is
//! the operator's call (see the crate docs).

use crate::bind::serving_passed_sockets;
use crate::protocol::{exit_code, ENV_LISTEN_FDS, ENV_SERVE_PASSED, ENV_UPGRADE_FROM};
use crate::signals::{BlockedSignals, SignalQueue};
use crate::sys::{fork_single_threaded, Forked};
use crate::{Error, Listener};
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::unistd::Pid;
use std::ffi::{CString, OsString};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// Environment variables never passed on: they described *our* start, not the new master's.
const NOT_INHERITED: [&str; 6] = [
    ENV_LISTEN_FDS,
    ENV_SERVE_PASSED,
    ENV_UPGRADE_FROM,
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
];

/// The pid of the master that started this one on USR2, from the environment (then removed).
pub(crate) fn predecessor_from_env() -> Option<Pid> {
    let value = std::env::var_os(ENV_UPGRADE_FROM)?;
    // The master is single-threaded when it starts, which is what remove_var asks.
    std::env::remove_var(ENV_UPGRADE_FROM);
    let pid: i32 = value.to_str()?.parse().ok()?;
    (pid > 0).then(|| Pid::from_raw(pid))
}

/// Everything `execve` needs, built before the fork.
struct Exec {
    program: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
}

impl Exec {
    fn prepare(listeners: &[Listener]) -> std::io::Result<Exec> {
        let program = CString::new(executable()?.into_os_string().into_vec())?;
        let argv = std::env::args_os()
            .map(|arg| CString::new(arg.into_vec()))
            .collect::<Result<Vec<_>, _>>()?;
        let fds: Vec<String> = listeners
            .iter()
            .map(|l| l.as_fd().as_raw_fd().to_string())
            .collect();
        let mut env = Vec::new();
        for (key, value) in std::env::vars_os() {
            if NOT_INHERITED.iter().any(|k| key.as_bytes() == k.as_bytes()) {
                continue;
            }
            let mut pair = key;
            pair.push("=");
            pair.push(value);
            env.push(CString::new(pair.into_vec())?);
        }
        env.push(CString::new(format!("{ENV_LISTEN_FDS}={}", fds.join(",")))?);
        if serving_passed_sockets() {
            env.push(CString::new(format!("{ENV_SERVE_PASSED}=1"))?);
        }
        env.push(CString::new(format!(
            "{ENV_UPGRADE_FROM}={}",
            std::process::id()
        ))?);
        Ok(Exec { program, argv, env })
    }
}

/// Our executable's path. When the binary was replaced on disk (the point of an upgrade),
/// Linux reports the old inode as `PATH (deleted)`; the new binary lives at `PATH`.
fn executable() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bytes = exe.as_os_str().as_bytes();
    Ok(match bytes.strip_suffix(b" (deleted)") {
        Some(stripped) => PathBuf::from(OsString::from_vec(stripped.to_vec())),
        None => exe,
    })
}

/// Forks and execs the new master; returns its pid.
pub(crate) fn spawn_new_master(
    listeners: &[Listener],
    signals: &mut SignalQueue,
) -> Result<Pid, Error> {
    let exec = Exec::prepare(listeners).map_err(|e| Error::io("preparing the upgrade", e))?;
    let _ = std::io::stdout().flush();
    let blocked = BlockedSignals::block_all().map_err(|e| Error::io("blocking signals", e))?;
    match fork_single_threaded().map_err(|e| Error::io("forking the new master", e))? {
        Forked::Parent(pid) => Ok(pid),
        Forked::Child => {
            signals.uninstall();
            for listener in listeners {
                // Only fails for a closed fd; exec then simply fails to pass that socket on.
                let _ = fcntl(listener, FcntlArg::F_SETFD(FdFlag::empty()));
            }
            drop(blocked);
            let err = match nix::unistd::execve(&exec.program, &exec.argv, &exec.env) {
                Err(err) => err,
                Ok(never) => match never {},
            };
            log::error!(
                "Cannot start the new master {}: {err}",
                exec.program.to_string_lossy()
            );
            signal_hook::low_level::exit(exit_code::EXEC_FAILED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_carries_listener_fds_and_our_pid() {
        let listener = Listener::Tcp(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
        let fd = listener.as_fd().as_raw_fd();
        let exec = Exec::prepare(std::slice::from_ref(&listener)).unwrap();
        let env: Vec<String> = exec
            .env
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        assert!(env.contains(&format!("{ENV_LISTEN_FDS}={fd}")));
        assert!(env.contains(&format!("{ENV_UPGRADE_FROM}={}", std::process::id())));
        assert_eq!(exec.argv.len(), std::env::args_os().count());
    }
}
