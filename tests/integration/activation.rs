//! systemd socket activation through the real binary: the master adopts the socket passed
//! as fd 3 (`LISTEN_PID`/`LISTEN_FDS`), ignores `--bind`, hides the variables from workers,
//! and keeps serving that socket across HUP and USR2; a `LISTEN_PID` that is not ours is
//! ignored. The test plays systemd: it binds 127.0.0.1:0 itself and execs the server through
//! a shell that puts the socket on fd 3, so the server keeps the pid `LISTEN_PID` names.

use crate::support;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::signal::Signal;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use support::client_loop::ClientLoop;
use support::{
    children, is_alive, wait_for_new_master, wait_until, KillOnDrop, Options, Server, PATIENCE,
};

/// Set for the server so the environment reader can prove it found the live environment.
const PROBE: &str = "PYBLOGD_ACTIVATION_PROBE";

/// Serialises spawning: while the test's listener lacks close-on-exec, any other child this
/// process spawned would inherit it too and keep the port open behind the server's back.
static SPAWNING: Mutex<()> = Mutex::new(());

/// Who `LISTEN_PID` names.
#[derive(Clone, Copy)]
enum ListenPid {
    /// The server itself (`$$` of the shell that execs it): real socket activation.
    Server,
    /// The test process (`$PPID`): variables meant for someone else.
    Parent,
}

/// Binds 127.0.0.1:0 and starts `pyblogd` with that socket as fd 3 and `LISTEN_FDS=1`.
/// Returns without waiting for readiness; `server.addr` is the passed socket's address.
fn start_activated(listen_pid: ListenPid, args: &[&str]) -> Server {
    let _spawning = SPAWNING.lock().unwrap_or_else(|e| e.into_inner());
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    fcntl(&listener, FcntlArg::F_SETFD(FdFlag::empty())).expect("clear FD_CLOEXEC");
    let fd = listener.as_raw_fd();
    // bash, not sh: dash rejects redirections of fds above 9, and ours may well be above 9.
    let hand_over = if fd == 3 {
        String::new()
    } else {
        format!(" 3<&{fd} {fd}<&-")
    };
    let pid = match listen_pid {
        ListenPid::Server => "$$",
        ListenPid::Parent => "$PPID",
    };
    let script = format!(r#"export LISTEN_PID={pid} LISTEN_FDS=1; exec "$0" "$@"{hand_over}"#);
    let opts = Options {
        wait_ready: false,
        ..Options::default()
    };
    let mut server =
        support::start_wrapped(&["bash", "-c", &script], opts.args(args).env(PROBE, "1"));
    // spawn() returns once bash runs, so the socket is the server's alone from here on.
    drop(listener);
    server.addr = addr;
    server
}

/// Addresses the process `pid` logged `Listening at:` for.
fn listening(server: &Server, pid: i32) -> Vec<SocketAddr> {
    lines_of(server, pid)
        .iter()
        .filter_map(|l| l.split("Listening at: http://").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(|a| a.parse().ok())
        .collect()
}

/// The log lines written by process `pid`.
fn lines_of(server: &Server, pid: i32) -> Vec<String> {
    let tag = format!("[{pid}] [");
    server
        .log_text()
        .lines()
        .filter(|l| l.contains(&tag))
        .map(str::to_string)
        .collect()
}

fn wait_for_workers(server: &Server, master: i32, n: usize) -> Vec<i32> {
    let ok = wait_until(PATIENCE, || children(master).len() == n);
    assert!(
        ok,
        "expected {n} workers of {master}; log:\n{}",
        server.log_text()
    );
    children(master)
}

/// The environment block `execve` gave `pid`. proc(5): later unsetenv calls do not show here.
fn initial_environment(pid: i32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("read environ");
    raw.split(|&b| b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// The environment `pid` sees now, read from its memory.
///
/// glibc's unsetenv removes entries from the `environ` array in place, and that array is the
/// one execve laid out on the stack after argv (argc sits at the stack start /proc/PID/stat
/// reports) until a setenv grows it into the heap. An entry missing from the stack array was
/// therefore removed while it was the live one. Reading /proc/PID/mem needs ptrace rights
/// over `pid`, which a test has over its own descendants.
fn live_environment(pid: i32) -> Vec<String> {
    const WORD: usize = std::mem::size_of::<usize>();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    // Field 28 (startstack); fields after the command name start at field 3.
    let start: u64 = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(25))
        .and_then(|f| f.parse().ok())
        .filter(|&a| a != 0)
        .unwrap_or_else(|| panic!("no stack start for {pid}: {stat}"));
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("open /proc/PID/mem");
    let word = |at: u64| {
        let mut buf = [0u8; WORD];
        mem.read_exact_at(&mut buf, at).expect("read a word");
        usize::from_ne_bytes(buf) as u64
    };
    let string = |mut at: u64| {
        let mut out = Vec::new();
        while out.len() < 64 * 1024 {
            let mut chunk = [0u8; 64];
            // A short read means the string ends near the top of the stack mapping.
            let n = mem.read_at(&mut chunk, at).expect("read a string");
            assert!(n > 0, "unterminated string in {pid}'s environment");
            if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..end]);
                break;
            }
            out.extend_from_slice(&chunk[..n]);
            at += n as u64;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    let argc = word(start);
    let mut entry = start + (argc + 2) * WORD as u64;
    let mut env = Vec::new();
    for _ in 0..10_000 {
        let pointer = word(entry);
        if pointer == 0 {
            return env;
        }
        env.push(string(pointer));
        entry += WORD as u64;
    }
    panic!("{pid}'s environment has no end");
}

fn has_var(env: &[String], name: &str) -> bool {
    env.iter().any(|v| v.starts_with(&format!("{name}=")))
}

/// `pid` runs with the probe but without the systemd variables.
fn assert_sees_no_systemd_variables(pid: i32) {
    let env = live_environment(pid);
    assert!(has_var(&env, PROBE), "{pid}: environment misread: {env:?}");
    for var in ["LISTEN_PID", "LISTEN_FDS"] {
        assert!(!has_var(&env, var), "{pid} still sees {var}: {env:?}");
    }
}

#[test]
fn adopts_the_passed_socket_ignores_bind_and_hides_the_variables_from_workers() {
    // Held for the whole test: had the server tried to bind it, it would have failed to start.
    let decoy = TcpListener::bind("127.0.0.1:0").expect("bind decoy");
    let decoy_addr = decoy.local_addr().expect("decoy addr").to_string();
    let server = start_activated(ListenPid::Server, &["-w", "2", "--bind", &decoy_addr]);
    let pid = server.pid();
    server.wait_log(
        &format!("Listening at: http://{} ({pid})", server.addr),
        PATIENCE,
    );
    server.wait_log(
        &format!("Ignoring bind {decoy_addr}: systemd passed the sockets to serve"),
        PATIENCE,
    );
    server.wait_serving();
    let reply = server.get("/");
    assert_eq!(reply.status, 200, "log:\n{}", server.log_text());
    assert_eq!(listening(&server, pid), vec![server.addr]);

    let workers = wait_for_workers(&server, pid, 2);
    for worker in workers.into_iter().chain([pid]) {
        // The variables were really handed over at exec; the master removed them since.
        let initial = initial_environment(worker);
        assert!(
            initial.contains(&format!("LISTEN_PID={pid}")),
            "{initial:?}"
        );
        assert!(initial.contains(&"LISTEN_FDS=1".to_string()), "{initial:?}");
        assert_sees_no_systemd_variables(worker);
    }
    drop(decoy);
}

#[test]
fn hup_serves_on_the_same_passed_socket_without_a_refused_connection() {
    let server = start_activated(ListenPid::Server, &["-w", "2"]);
    let pid = server.pid();
    server.wait_serving();
    let old = wait_for_workers(&server, pid, 2);
    let clients = ClientLoop::start(server.addr, "/");
    clients.wait_for_more(10, &server);

    server.signal(Signal::SIGHUP);
    let replaced = wait_until(PATIENCE, || {
        let now = children(pid);
        now.len() == 2 && now.iter().all(|w| !old.contains(w))
    });
    assert!(
        replaced,
        "workers not replaced; log:\n{}",
        server.log_text()
    );
    clients.wait_for_more(10, &server);
    let (ok, _, errors) = clients.finish();
    assert!(errors.is_empty(), "{errors:?}; log:\n{}", server.log_text());
    assert!(ok >= 20);

    assert_eq!(listening(&server, pid), vec![server.addr], "no new socket");
    for worker in children(pid) {
        assert_sees_no_systemd_variables(worker);
    }
}

/// USR2 under socket activation: the new master must take over the passed socket, whatever
/// `--bind` says, must not act on the systemd variables, and the port answers throughout.
fn usr2_keeps_the_passed_socket(extra: &[&str]) {
    let mut args = vec!["-w", "2", "--pid", "pyblogd.pid"];
    args.extend_from_slice(extra);
    let server = start_activated(ListenPid::Server, &args);
    let old_master = server.pid();
    let pidfile = server.path("pyblogd.pid");
    server.wait_serving();
    wait_for_workers(&server, old_master, 2);
    assert!(wait_until(PATIENCE, || pidfile.exists()), "no pidfile");
    let clients = ClientLoop::start(server.addr, "/");
    clients.wait_for_more(10, &server);

    server.signal(Signal::SIGUSR2);
    let new_master = wait_for_new_master(&pidfile, old_master)
        .unwrap_or_else(|| panic!("no new master; log:\n{}", server.log_text()));
    // The new master is not the harness's child: kill it when the test ends, whatever happens.
    let _reap = KillOnDrop(new_master);
    let new_workers = wait_for_workers(&server, new_master, 2);
    assert_eq!(
        listening(&server, new_master),
        vec![server.addr],
        "the new master serves the passed socket, nothing else; log:\n{}",
        server.log_text()
    );
    let misread: Vec<String> = lines_of(&server, new_master)
        .into_iter()
        .filter(|l| {
            l.contains("systemd passed the sockets to serve")
                || l.contains("Closing inherited socket")
        })
        .collect();
    assert!(misread.is_empty(), "{misread:?}");
    for pid in new_workers.into_iter().chain([new_master]) {
        // Fresh exec: here the initial environment is what the new master was given.
        let env = initial_environment(pid);
        assert!(
            !has_var(&env, "LISTEN_PID") && !has_var(&env, "LISTEN_FDS"),
            "{env:?}"
        );
    }

    server.signal(Signal::SIGTERM);
    assert!(
        wait_until(PATIENCE, || !is_alive(old_master)),
        "old master exits on TERM"
    );
    clients.wait_for_more(10, &server);
    let (ok, _, errors) = clients.finish();
    assert!(errors.is_empty(), "{errors:?}; log:\n{}", server.log_text());
    assert!(ok >= 30);
    assert!(is_alive(new_master));
}

#[test]
fn usr2_new_master_adopts_the_passed_socket() {
    // The harness's `--bind 127.0.0.1:0` matches the passed socket (any port on 127.0.0.1).
    usr2_keeps_the_passed_socket(&[]);
}

#[test]
fn usr2_new_master_adopts_the_passed_socket_when_bind_names_another_port() {
    // Held, as systemd would hold its socket: binding it instead is an error, not a pass.
    let decoy = TcpListener::bind("127.0.0.1:0").expect("bind decoy");
    let decoy_addr = decoy.local_addr().expect("decoy addr").to_string();
    usr2_keeps_the_passed_socket(&["--bind", &decoy_addr]);
    drop(decoy);
}

#[test]
fn listen_pid_of_another_process_is_ignored_and_bind_is_used() {
    let mut server = start_activated(ListenPid::Parent, &["-w", "1"]);
    let pid = server.pid();
    let passed = server.addr;
    let mut addrs = Vec::new();
    let found = wait_until(PATIENCE, || {
        addrs = listening(&server, pid);
        !addrs.is_empty()
    });
    assert!(found, "no Listening at: line; log:\n{}", server.log_text());
    assert_eq!(addrs.len(), 1, "log:\n{}", server.log_text());
    assert_eq!(addrs[0].ip(), passed.ip());
    assert_ne!(
        addrs[0], passed,
        "adopted a socket meant for another process"
    );
    server.addr = addrs[0];
    server.wait_serving();
    assert_eq!(server.get("/").status, 200);
}
