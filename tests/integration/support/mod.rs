//! Shared test harness: starts the real `pyblogd` binary in a temp dir and talks raw TCP to it.
//!
//! Each [`Server`] runs in its own temporary working directory (so `blog.db`, `.env` and
//! override directories are private), binds `127.0.0.1:0`, and is found by reading its
//! `Listening at:` log line. Its stderr is captured for assertions on log lines. Dropping it
//! SIGKILLs the master it started (that one pid, not a process group) and reaps it; workers
//! follow because each asked for SIGKILL on its master's death (`PR_SET_PDEATHSIG`). A
//! semaphore bounds how many servers the test binary runs at once (2 cores), and
//! [`wait_until`] is the one way to wait: it polls, never sleeps as synchronisation.

pub mod client_loop;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Generous bound for anything a healthy server does on a busy machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

static SLOTS: Mutex<usize> = Mutex::new(0);
static SLOT_FREED: Condvar = Condvar::new();
const MAX_SERVERS: usize = 2;

/// A permit to run one server; released on drop.
pub struct Slot;

impl Slot {
    pub fn acquire() -> Slot {
        let mut used = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        while *used >= MAX_SERVERS {
            used = SLOT_FREED.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut used = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        *used -= 1;
        SLOT_FREED.notify_one();
    }
}

/// How to start a server.
pub struct Options {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Wait for a `Listening at:` line and a served request before returning.
    pub wait_ready: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            args: Vec::new(),
            env: Vec::new(),
            wait_ready: true,
        }
    }
}

impl Options {
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
}

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub log: Arc<Mutex<String>>,
    /// The cookies the server set on `post_form` replies (the author's edit keys), sent back
    /// by `post_form` and `get_as_author`; `get` stays an anonymous reader.
    pub jar: Mutex<Vec<(String, String)>>,
    /// The origin our pages post from: `--site-url`'s (or `SITE_URL`'s) when given, else
    /// `http://test`, the `Host` every helper request names.
    pub origin: String,
    _slot: Slot,
}

/// The origin of the `--site-url` flag or `SITE_URL` in `opts`, else `http://test`.
fn site_origin(opts: &Options) -> String {
    let flag = opts
        .args
        .iter()
        .position(|a| a == "--site-url")
        .and_then(|at| opts.args.get(at + 1));
    let env = opts
        .env
        .iter()
        .find(|(k, _)| k == "SITE_URL")
        .map(|(_, v)| v);
    match flag.or(env) {
        Some(url) => {
            let start = url.find("://").map_or(0, |at| at + 3);
            let end = url[start..].find('/').map_or(url.len(), |at| start + at);
            url[..end].to_string()
        }
        None => "http://test".to_string(),
    }
}

/// The CSRF token the test browser holds in its cookie and repeats in every form.
pub const CSRF: &str = "0123456789abcdef0123456789abcdef";

/// Headers of a POST sent from one of our own pages on `Host: host`: the `Origin` and the
/// CSRF cookie (each line ends in CRLF).
pub fn from_our_page(host: &str) -> String {
    format!("Origin: http://{host}\r\nCookie: pyblogd_csrf={CSRF}\r\n")
}

/// A form body as our own pages send it: the CSRF token first, then `fields`.
pub fn our_form(fields: &[(&str, &str)]) -> String {
    let rest = encode_form(fields);
    if rest.is_empty() {
        format!("csrf_token={CSRF}")
    } else {
        format!("csrf_token={CSRF}&{rest}")
    }
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_pyblogd")
}

/// Starts `pyblogd` with `--bind 127.0.0.1:0` unless the args bind elsewhere.
pub fn start(opts: Options) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    start_in(dir, opts)
}

/// Like [`start`], in a directory the test prepared (e.g. with a `.env` or `templates/`).
pub fn start_in(dir: tempfile::TempDir, opts: Options) -> Server {
    let slot = Slot::acquire();
    let (child, log) = spawn(dir.path(), &opts);
    ready(child, log, dir, slot, &opts)
}

/// Wraps a spawned server and, unless told not to, waits until it listens and serves.
fn ready(
    child: Child,
    log: Arc<Mutex<String>>,
    dir: tempfile::TempDir,
    slot: Slot,
    opts: &Options,
) -> Server {
    let mut server = Server {
        child,
        addr: "127.0.0.1:1".parse().expect("addr"),
        dir,
        log,
        jar: Mutex::new(Vec::new()),
        origin: site_origin(opts),
        _slot: slot,
    };
    if opts.wait_ready {
        server.addr = server.wait_listening();
        server.wait_serving();
    }
    server
}

/// Spawns the binary in `dir` and captures its stderr (and stdout) into a shared string.
pub fn spawn(dir: &Path, opts: &Options) -> (Child, Arc<Mutex<String>>) {
    spawn_via(&[], dir, opts)
}

/// As [`spawn`], through `wrapper` (a command that execs its arguments) when it is not empty.
fn spawn_via(wrapper: &[&str], dir: &Path, opts: &Options) -> (Child, Arc<Mutex<String>>) {
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(binary());
            cmd
        }
        None => Command::new(binary()),
    };
    cmd.current_dir(dir)
        .env_remove("PORT")
        .env_remove("WEB_CONCURRENCY")
        .env_remove("MODE")
        .env_remove("DATABASE_URI")
        .env_remove("SITE_URL")
        .env_remove("ADMIN_TOKEN")
        .env_remove("FORWARDED_ALLOW_IPS")
        // Suites create many posts from 127.0.0.1; the limit has tests of its own, which
        // set it again (an `Options::env` entry comes later and wins).
        .env("POST_RATE_LIMIT", "0")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !opts.args.iter().any(|a| a == "--bind" || a == "-b") {
        cmd.args(["--bind", "127.0.0.1:0"]);
    }
    cmd.args(&opts.args);
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn pyblogd");
    let log = Arc::new(Mutex::new(String::new()));
    if let Some(stderr) = child.stderr.take() {
        collect(stderr, log.clone());
    }
    if let Some(stdout) = child.stdout.take() {
        collect(stdout, log.clone());
    }
    (child, log)
}

fn collect(stream: impl Read + Send + 'static, log: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let reader = BufReader::new(stream);
        for line in reader.split(b'\n') {
            let Ok(line) = line else { break };
            let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
            log.push_str(&String::from_utf8_lossy(&line));
            log.push('\n');
        }
    });
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Server {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until the log contains `needle`; panics with the log if it never does.
    pub fn wait_log(&self, needle: &str, limit: Duration) {
        if !wait_until(limit, || self.log_text().contains(needle)) {
            panic!("log never showed {needle:?}; log:\n{}", self.log_text());
        }
    }

    /// Waits for the `Listening at:` line only (workers may still be booting) and returns
    /// the address; [`start`] does this and more unless told not to wait.
    pub fn wait_listening(&mut self) -> SocketAddr {
        let mut found = None;
        let ok = wait_until(PATIENCE, || {
            let text = self.log_text();
            found = text
                .lines()
                .filter_map(|l| l.split("Listening at: http://").nth(1))
                .filter_map(|rest| rest.split_whitespace().next())
                .find_map(|a| a.parse::<SocketAddr>().ok());
            found.is_some() || matches!(self.child.try_wait(), Ok(Some(_)))
        });
        match found {
            Some(addr) if ok => addr,
            _ => panic!(
                "server did not report a listening address; log:\n{}",
                self.log_text()
            ),
        }
    }

    /// Waits until a real request is answered (workers are up).
    pub fn wait_serving(&self) {
        let ok = wait_until(
            PATIENCE,
            || matches!(self.try_get("/static/style.css"), Ok(r) if r.status > 0),
        );
        assert!(ok, "server never answered; log:\n{}", self.log_text());
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect_timeout(&self.addr, PATIENCE).expect("connect");
        s.set_read_timeout(Some(PATIENCE)).expect("timeout");
        s.set_write_timeout(Some(PATIENCE)).expect("timeout");
        s
    }

    /// One request on a fresh connection; `Connection: close`.
    pub fn try_get(&self, path: &str) -> std::io::Result<Reply> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(PATIENCE))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )?;
        read_reply(&mut BufReader::new(s), false)
    }

    pub fn get(&self, path: &str) -> Reply {
        self.try_get(path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}; log:\n{}", self.log_text()))
    }

    /// POSTs a urlencoded form on a fresh connection, as a browser on one of our pages does:
    /// `Origin`, the CSRF cookie and field, and the cookies the server set before (edit keys).
    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body = our_form(fields);
        let mut s = self.connect();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nOrigin: {}\r\nCookie: {}={CSRF}{}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            self.origin,
            self.csrf_cookie(),
            self.jar_cookies(),
            body.len()
        )
        .expect("write");
        let reply = read_reply(&mut BufReader::new(s), false).expect("reply");
        self.keep_cookies(&reply);
        reply
    }

    /// Sends one request with exactly these `headers` (each `Name: value`) besides `Host:
    /// test` and `Connection: close`, and for a POST the form's type and length; the jar is
    /// not used, so each test states every cookie and origin it sends.
    pub fn send(&self, method: &str, path: &str, headers: &[&str], body: &str) -> Reply {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        for h in headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        if method == "POST" {
            head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        head.push_str(body);
        let raw = self.raw(head.as_bytes());
        read_reply(&mut BufReader::new(&raw[..]), false)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}: {}", String::from_utf8_lossy(&raw)))
    }

    /// A GET sending the cookies `post_form` collected: the post's author reading or editing.
    pub fn get_as_author(&self, path: &str) -> Reply {
        let mut s = self.connect();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nCookie: {}={CSRF}{}\r\n\r\n",
            self.csrf_cookie(),
            self.jar_cookies()
        )
        .expect("write");
        let reply = read_reply(&mut BufReader::new(s), false).expect("reply");
        self.keep_cookies(&reply);
        reply
    }

    /// The CSRF cookie's name: on an https site only the `__Host-` one counts.
    fn csrf_cookie(&self) -> &'static str {
        if self.origin.starts_with("https://") {
            "__Host-pyblogd_csrf"
        } else {
            "pyblogd_csrf"
        }
    }

    /// `; name=value` for each cookie in the jar.
    fn jar_cookies(&self) -> String {
        let jar = self.jar.lock().unwrap_or_else(|e| e.into_inner());
        jar.iter().map(|(n, v)| format!("; {n}={v}")).collect()
    }

    /// Stores each `Set-Cookie` of `reply`; one with `Max-Age=0` removes its cookie.
    fn keep_cookies(&self, reply: &Reply) {
        let mut jar = self.jar.lock().unwrap_or_else(|e| e.into_inner());
        for (name, value) in &reply.headers {
            if !name.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let pair = value.split(';').next().unwrap_or_default();
            let Some((n, v)) = pair.split_once('=') else {
                continue;
            };
            jar.retain(|(kept, _)| kept != n);
            if !value.contains("Max-Age=0") {
                jar.push((n.to_string(), v.to_string()));
            }
        }
    }

    /// Sends raw bytes on a fresh connection and reads until the server closes (bounded).
    pub fn raw(&self, bytes: &[u8]) -> Vec<u8> {
        let mut s = self.connect();
        s.write_all(bytes).expect("write");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).expect("signal");
    }

    /// Waits for the process to exit and returns its status code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let mut code = None;
        wait_until(limit, || match self.child.try_wait() {
            Ok(Some(status)) => {
                code = Some(status.code().unwrap_or(-1));
                true
            }
            _ => false,
        });
        code
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.pid());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// Every `Set-Cookie` value, in order.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one response (status line, headers, Content-Length or chunked body, or to EOF).
pub fn read_reply(r: &mut impl BufRead, head_only: bool) -> std::io::Result<Reply> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            return Err(std::io::Error::other("eof in headers"));
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(reply);
    }
    if let Some(len) = reply.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| std::io::Error::other("bad length"))?;
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        reply.body = body;
    } else if reply
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16)
                .map_err(|_| std::io::Error::other("bad chunk"))?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            reply.body.extend_from_slice(&chunk[..n]);
        }
    } else {
        r.read_to_end(&mut reply.body)?;
    }
    Ok(reply)
}

pub fn encode_form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Child pids of `pid`, from /proc.
pub fn children(pid: i32) -> Vec<i32> {
    let mut kids = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return kids;
    };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            kids.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    kids.sort_unstable();
    kids
}

pub fn is_alive(pid: i32) -> bool {
    // A zombie still exists in /proc but is dead for our purposes.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Starts `pyblogd` through `wrapper`, a command that sets something up and then execs its
/// arguments (e.g. `sh -c 'ulimit -n 128 && exec "$0" "$@"'`), so the server inherits what the
/// wrapper set and keeps the wrapper's pid. Otherwise as [`start`].
pub fn start_wrapped(wrapper: &[&str], opts: Options) -> Server {
    assert!(!wrapper.is_empty(), "a wrapper command");
    let dir = tempfile::tempdir().expect("temp dir");
    let slot = Slot::acquire();
    let (child, log) = spawn_via(wrapper, dir.path(), &opts);
    ready(child, log, dir, slot, &opts)
}

/// CPU time (user + system, all threads) a process has used so far, from /proc/PID/stat.
pub fn cpu_time(pid: i32) -> Option<Duration> {
    /// /proc reports clock ticks of USER_HZ, which Linux fixes at 100 for user space.
    const TICKS_PER_SECOND: u64 = 100;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

/// Raises this test process's open-file limit to its hard limit (tests that hold many
/// connections need more than the usual 1024) and returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

/// The pid the pidfile names once it names a master other than `old` (a USR2 successor), or
/// `None` if none shows within [`PATIENCE`].
pub fn wait_for_new_master(pidfile: &Path, old: i32) -> Option<i32> {
    let mut new_master = 0;
    let handed_over = wait_until(PATIENCE, || {
        new_master = std::fs::read_to_string(pidfile)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        new_master != 0 && new_master != old
    });
    handed_over.then_some(new_master)
}

/// A master the harness did not start (a USR2 successor, not our child): dropping this sends
/// it SIGKILL, that pid only, without reaping it (its parent does). Its workers die with it
/// through `PR_SET_PDEATHSIG`, so a failing test leaves nothing running.
pub struct KillOnDrop(pub i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
}
