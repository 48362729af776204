//! The pidfile (`--pid`): written atomically, never stolen from a live process, removed only
//! while it still names us. During a USR2 upgrade the old master moves it to `PIDFILE.oldbin`
//! and the new master writes `PIDFILE`, as unicorn and nginx do.

use crate::Error;
use nix::errno::Errno;
use nix::unistd::Pid;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A pidfile this process wrote.
#[derive(Debug)]
pub(crate) struct Pidfile {
    /// Where operators look: the `--pid` path.
    path: PathBuf,
    /// Where our pid is now: `path`, or `path.oldbin` while an upgrade runs.
    current: PathBuf,
    pid: u32,
}

impl Pidfile {
    /// Writes our pid to `path` (temp file + rename). Refuses when the file names a running
    /// process other than us and `predecessor` (the master that started us on USR2).
    pub(crate) fn create(path: &Path, predecessor: Option<Pid>) -> Result<Pidfile, Error> {
        let pid = std::process::id();
        if let Some(other) = read_pid(path) {
            let ours = other == pid || Some(other) == predecessor.map(pid_u32);
            if !ours && is_alive(other) {
                return Err(Error::PidfileInUse {
                    path: path.to_path_buf(),
                    pid: other,
                });
            }
        }
        write_atomically(path, pid).map_err(|source| Error::Io {
            context: format!("writing pidfile {}", path.display()),
            cause: source,
        })?;
        Ok(Pidfile {
            path: path.to_path_buf(),
            current: path.to_path_buf(),
            pid,
        })
    }

    /// USR2: moves our pidfile to `PIDFILE.oldbin`, leaving `PIDFILE` to the new master.
    pub(crate) fn move_aside(&mut self) -> std::io::Result<()> {
        let oldbin = oldbin_path(&self.path);
        std::fs::rename(&self.current, &oldbin)?;
        self.current = oldbin;
        Ok(())
    }

    /// The new master is gone: our pid goes back to `PIDFILE`.
    pub(crate) fn move_back(&mut self) -> std::io::Result<()> {
        if self.current != self.path {
            std::fs::rename(&self.current, &self.path)?;
            self.current = self.path.clone();
        }
        Ok(())
    }

    /// Where our pid is written now.
    pub(crate) fn current(&self) -> &Path {
        &self.current
    }

    /// Removes the file if it still names us (a new master may have replaced it).
    pub(crate) fn remove(&self) {
        if read_pid(&self.current) == Some(self.pid) {
            if let Err(e) = std::fs::remove_file(&self.current) {
                log::warn!("Cannot remove pidfile {}: {e}", self.current.display());
            }
        }
    }
}

fn pid_u32(pid: Pid) -> u32 {
    u32::try_from(pid.as_raw()).unwrap_or(0)
}

pub(crate) fn oldbin_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".oldbin");
    PathBuf::from(name)
}

/// The pid in `path`, if it holds one.
pub(crate) fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether process `pid` runs. One we may not signal still runs; a zombie does not (it holds
/// no socket and will never serve again, it only waits for its parent to reap it).
pub(crate) fn is_running(pid: Pid) -> bool {
    if pid.as_raw() <= 0 || matches!(nix::sys::signal::kill(pid, None), Err(Errno::ESRCH)) {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X"))
}

fn is_alive(pid: u32) -> bool {
    i32::try_from(pid).is_ok_and(|raw| is_running(Pid::from_raw(raw)))
}

fn write_atomically(path: &Path, pid: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let temp = dir.join(format!(".{}.{pid}.tmp", name.as_deref().unwrap_or("pid")));
    let result = std::fs::File::create(&temp)
        .and_then(|mut file| writeln!(file, "{pid}"))
        .and_then(|()| std::fs::rename(&temp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_reads_and_removes_our_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.pid");
        let file = Pidfile::create(&path, None).unwrap();
        assert_eq!(read_pid(&path), Some(std::process::id()));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp file left"
        );
        file.remove();
        assert!(!path.exists());
    }

    #[test]
    fn refuses_a_live_process_but_replaces_a_dead_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.pid");
        std::fs::write(&path, "1\n").unwrap(); // init is always alive
        let err = Pidfile::create(&path, None).unwrap_err();
        assert!(err.to_string().contains("running process"), "{err}");
        // ...unless it is the master that started us on USR2.
        Pidfile::create(&path, Some(Pid::from_raw(1))).unwrap();
        // A pid that cannot exist (above pid_max) is stale.
        std::fs::write(&path, "2147483647\n").unwrap();
        Pidfile::create(&path, None).unwrap();
        assert_eq!(read_pid(&path), Some(std::process::id()));
    }

    #[test]
    fn never_removes_someone_elses_pidfile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.pid");
        let file = Pidfile::create(&path, None).unwrap();
        std::fs::write(&path, "1\n").unwrap();
        file.remove();
        assert_eq!(read_pid(&path), Some(1));
    }

    #[test]
    fn moves_aside_for_an_upgrade_and_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.pid");
        let mut file = Pidfile::create(&path, None).unwrap();
        file.move_aside().unwrap();
        assert!(!path.exists());
        assert_eq!(read_pid(&oldbin_path(&path)), Some(std::process::id()));
        file.move_back().unwrap();
        assert_eq!(read_pid(&path), Some(std::process::id()));
        assert!(!oldbin_path(&path).exists());
    }
}
