//! `prefork-demo`: a tiny server on the supervisor, for this crate's integration tests and for
//! trying signals by hand. It answers every request with the worker's pid, by hand-written
//! HTTP/1.1 (the crate knows nothing of HTTP); `GET /hang` blocks its task forever.
//!
//! `prefork-demo [--bind ADDR]… [-w N] [--threads N] [--timeout S] [--graceful-timeout S]
//! [--max-requests N] [--pid PATH] [--single]`. `DEMO_RELOAD_FAIL_FILE` / `DEMO_BOOT_FAIL_FILE`:
//! while that file exists, HUP's reload / a worker's boot fails.

use prefork::{BindAddress, BootError, Listener, Service, Settings, WorkerContext};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        // One write per line, so lines from several processes do not interleave.
        let line = format!(
            "[{}] [{}] {}\n",
            std::process::id(),
            record.level(),
            record.args()
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
    fn flush(&self) {}
}

struct Demo {
    settings: Settings,
    reload_fail: Option<PathBuf>,
    boot_fail: Option<PathBuf>,
}

impl Service for Demo {
    fn settings(&self) -> Settings {
        self.settings.clone()
    }

    fn reload(&mut self) -> Result<(), String> {
        match &self.reload_fail {
            Some(path) if path.exists() => Err(format!("{} exists", path.display())),
            _ => Ok(()),
        }
    }

    fn reopen_logs(&self) {
        log::info!("Reopening logs");
    }

    fn boot_worker(&self, ctx: WorkerContext) -> Result<(), BootError> {
        if let Some(path) = self.boot_fail.as_ref().filter(|p| p.exists()) {
            return Err(BootError(format!(
                "demo boot failure: {} exists",
                path.display()
            )));
        }
        serve(ctx, self.settings.threads).map_err(|e| BootError(e.to_string()))
    }
}

/// Accepts on every listener, one thread per connection, at most `threads` at once.
fn serve(ctx: WorkerContext, threads: usize) -> std::io::Result<()> {
    for listener in &ctx.listeners {
        match listener {
            Listener::Tcp(l) => l.set_nonblocking(true)?,
            Listener::Unix(l) => l.set_nonblocking(true)?,
        }
    }
    let monitor = &ctx.monitor;
    monitor.ready();
    let free_tasks = Mutex::new((0..threads).rev().collect::<Vec<usize>>());
    let mut accepted = 0u64;
    std::thread::scope(|scope| -> std::io::Result<()> {
        while !monitor.should_stop() && !matches!(ctx.max_requests, Some(max) if accepted >= max) {
            monitor.heartbeat();
            let mut fds: Vec<nix::poll::PollFd<'_>> = ctx
                .listeners
                .iter()
                .map(|l| nix::poll::PollFd::new(l.as_fd(), nix::poll::PollFlags::POLLIN))
                .collect();
            if let Some(wake) = monitor.wake_fd() {
                fds.push(nix::poll::PollFd::new(wake, nix::poll::PollFlags::POLLIN));
            }
            match nix::poll::poll(&mut fds, 500u16) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            for listener in &ctx.listeners {
                let stream: Box<dyn Conn> = match listener {
                    Listener::Tcp(l) => match l.accept() {
                        Ok((s, _)) => Box::new(s),
                        Err(_) => continue,
                    },
                    Listener::Unix(l) => match l.accept() {
                        Ok((s, _)) => Box::new(s),
                        Err(_) => continue,
                    },
                };
                accepted += 1;
                let task = free_tasks
                    .lock()
                    .map_err(|_| std::io::Error::other("poisoned"))?
                    .pop();
                let free_tasks = &free_tasks;
                scope.spawn(move || match task {
                    Some(task) => {
                        handle(stream, task, monitor);
                        if let Ok(mut free) = free_tasks.lock() {
                            free.push(task);
                        }
                    }
                    None => busy(stream),
                });
            }
        }
        Ok(())
    })
}

trait Conn: Read + Write + Send {
    fn set_blocking_with_timeout(&self) -> std::io::Result<()>;
}

impl Conn for std::net::TcpStream {
    fn set_blocking_with_timeout(&self) -> std::io::Result<()> {
        self.set_nonblocking(false)?;
        self.set_read_timeout(Some(Duration::from_secs(5)))
    }
}

impl Conn for std::os::unix::net::UnixStream {
    fn set_blocking_with_timeout(&self) -> std::io::Result<()> {
        self.set_nonblocking(false)?;
        self.set_read_timeout(Some(Duration::from_secs(5)))
    }
}

/// Reads the request head; `None` if the client went away first.
fn read_head(stream: &mut dyn Conn) -> Option<String> {
    stream.set_blocking_with_timeout().ok()?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        match stream.read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn respond(stream: &mut dyn Conn, status: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

fn handle(mut stream: Box<dyn Conn>, task: usize, monitor: &prefork::Monitor) {
    let Some(head) = read_head(stream.as_mut()) else {
        return;
    };
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or("?");
    let path = words.next().unwrap_or("?");
    monitor.task_started_parts(task, &[method, path]);
    if path == "/hang" {
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    }
    respond(stream.as_mut(), "200 OK", &monitor.pid().to_string());
    monitor.task_finished(task);
}

/// Every task is busy: answer 503 (after reading the request, so closing sends no reset).
fn busy(mut stream: Box<dyn Conn>) {
    if read_head(stream.as_mut()).is_some() {
        respond(stream.as_mut(), "503 Service Unavailable", "busy");
    }
}

fn parse_args() -> Result<(Settings, Vec<BindAddress>, bool), String> {
    let mut settings = Settings {
        workers: 1,
        threads: 4,
        timeout: Some(Duration::from_secs(30)),
        graceful_timeout: Duration::from_secs(10),
        max_requests: None,
        max_requests_jitter: 0,
        pidfile: None,
        proc_name: "prefork-demo".to_string(),
        metrics_bind: None,
        counters: Vec::new(),
    };
    let mut binds = Vec::new();
    let mut single = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--single" {
            single = true;
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--bind" | "-b" => binds.push(BindAddress::parse(&value).map_err(|e| e.to_string())?),
            "--workers" | "-w" => settings.workers = number()? as usize,
            "--threads" => settings.threads = number()? as usize,
            "--timeout" => {
                settings.timeout = Some(number()?).filter(|&s| s > 0).map(Duration::from_secs)
            }
            "--graceful-timeout" => settings.graceful_timeout = Duration::from_secs(number()?),
            "--max-requests" => settings.max_requests = Some(number()?),
            "--pid" => settings.pidfile = Some(PathBuf::from(value)),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if binds.is_empty() {
        binds.push(BindAddress::parse("127.0.0.1:8000").map_err(|e| e.to_string())?);
    }
    Ok((settings, binds, single))
}

fn main() {
    if let Err(e) = log::set_logger(&StderrLogger) {
        eprintln!("prefork-demo: installing the logger: {e}");
        std::process::exit(1);
    }
    log::set_max_level(log::LevelFilter::Info);
    let (settings, binds, single) = match parse_args() {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("prefork-demo: {e}");
            std::process::exit(2);
        }
    };
    let demo = Demo {
        settings,
        reload_fail: std::env::var_os("DEMO_RELOAD_FAIL_FILE").map(PathBuf::from),
        boot_fail: std::env::var_os("DEMO_BOOT_FAIL_FILE").map(PathBuf::from),
    };
    let result = prefork::bind(&binds, 64).and_then(|listeners| {
        if single {
            prefork::run_single(demo, listeners)
        } else {
            prefork::run(demo, listeners)
        }
    });
    match result {
        Ok(status) => std::process::exit(status),
        Err(e) => {
            log::error!("{e}");
            std::process::exit(1);
        }
    }
}
