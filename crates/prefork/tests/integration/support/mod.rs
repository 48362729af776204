//! Drives `prefork-demo` as a real process tree: start it in a temp dir, read its log, list its
//! workers from /proc, send signals, make requests. Every wait polls with a deadline through
//! [`wait_until`]. Dropping a [`Server`] SIGKILLs each master it knows (the one it started and
//! any it was told of, e.g. a USR2 successor) and, first, every worker /proc lists as that
//! master's child, one pid at a time: no process group is involved.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Upper bound for every wait: generous, a loaded 2-core CI machine must never hit it.
pub const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

/// Polls `f` until it returns `Some`, or panics with `what` after `limit`.
pub fn wait_until<T>(what: &str, limit: Duration, f: impl FnMut() -> Option<T>) -> T {
    wait_until_explained(what, limit, f, String::new)
}

/// The harness's one polling loop: as [`wait_until`], and a failure also prints `explain()`
/// (e.g. the server's log), computed only then.
fn wait_until_explained<T>(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> Option<T>,
    explain: impl Fn() -> String,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}{}",
            explain()
        );
        std::thread::sleep(POLL);
    }
}

pub struct Server {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    pub pidfile: PathBuf,
    pub port: u16,
    pub pid: i32,
    /// Other masters to kill on drop (a USR2 successor is not our child).
    pub also_kill: Vec<i32>,
}

impl Server {
    /// Starts the demo on `127.0.0.1:0` with a pidfile, plus `args`; waits for its listener.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &Path)]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("server.log");
        let pidfile = dir.path().join("server.pid");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_prefork-demo"))
            .args(["--bind", "127.0.0.1:0", "--pid"])
            .arg(&pidfile)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v.as_os_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn prefork-demo");
        let pid = child.id() as i32;
        let mut server = Server {
            child: Some(child),
            dir,
            log,
            pidfile,
            port: 0,
            pid,
            also_kill: Vec::new(),
        };
        // The supervisor is up (pidfile written, signal handlers in place) once it names its
        // worker type; a signal sent before that would meet the default actions.
        server.wait_for_log("Using worker:");
        let line = server.wait_for_log("Listening at: http://127.0.0.1:");
        server.port = line
            .rsplit("127.0.0.1:")
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        server
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The first log line containing `needle`, once there is one.
    pub fn wait_for_log(&self, needle: &str) -> String {
        wait_until_explained(
            &format!("a log line with {needle:?}"),
            WAIT,
            || {
                let log = self.log();
                let line = log.lines().find(|l| l.contains(needle));
                line.map(str::to_string)
            },
            || format!("; log:\n{}", self.log()),
        )
    }

    pub fn count_in_log(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// Live (non-zombie) children of the master: its workers.
    pub fn workers(&self) -> Vec<i32> {
        children_of(self.pid)
    }

    /// Waits until the worker list satisfies `ok`; returns it.
    pub fn wait_for_workers(&self, what: &str, ok: impl Fn(&[i32]) -> bool) -> Vec<i32> {
        wait_until_explained(
            &format!("workers to become {what}"),
            WAIT,
            || Some(self.workers()).filter(|workers| ok(workers)),
            || format!(": {:?}; log:\n{}", self.workers(), self.log()),
        )
    }

    /// `GET path`; the body (the serving worker's pid).
    pub fn get(&self, path: &str) -> std::io::Result<String> {
        let stream = TcpStream::connect_timeout(
            &([127, 0, 0, 1], self.port).into(),
            Duration::from_secs(5),
        )?;
        http_get(stream, path)
    }

    /// The pid of the worker that served a `GET /`, once one does.
    pub fn serving_pid(&self) -> i32 {
        wait_until("a response", WAIT, || {
            self.get("/").ok().and_then(|body| body.parse().ok())
        })
    }

    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid), signal).expect("signal the master");
    }

    /// Waits for the master to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("master still ours");
        let status = wait_until("the master to exit", WAIT, || {
            child.try_wait().expect("try_wait")
        });
        self.child = None;
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let mut masters: Vec<i32> = self
            .also_kill
            .iter()
            .copied()
            .filter(|&pid| is_running(pid))
            .collect();
        if self.child.is_some() {
            masters.push(self.pid);
        }
        for master in masters {
            for worker in children_of(master) {
                let _ = kill(Pid::from_raw(worker), Signal::SIGKILL);
            }
            let _ = kill(Pid::from_raw(master), Signal::SIGKILL);
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

/// A child process the test spawned itself (e.g. a second server), SIGKILLed and reaped when
/// the test ends, however it ends.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `GET path` on `stream` and returns the body of a 200 response.
pub fn http_get<S: Read + Write>(mut stream: S, path: &str) -> std::io::Result<String> {
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    match response.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200 ") => Ok(body.to_string()),
        _ => Err(std::io::Error::other(format!("bad response {response:?}"))),
    }
}

/// `/proc/<pid>/stat` fields after the command name: state is [0], ppid [1].
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Whether `pid` still runs (a zombie does not: it holds no sockets).
pub fn is_running(pid: i32) -> bool {
    stat_fields(pid).is_some_and(|f| f[0] != "Z" && f[0] != "X")
}

pub fn children_of(parent: i32) -> Vec<i32> {
    let mut children: Vec<i32> = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .filter(|&pid| {
                    stat_fields(pid)
                        .is_some_and(|f| f[1] == parent.to_string() && f[0] != "Z" && f[0] != "X")
                })
                .collect()
        })
        .unwrap_or_default();
    children.sort_unstable();
    children
}

pub fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
