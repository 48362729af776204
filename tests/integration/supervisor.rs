//! The master/worker supervisor through the real binary: worker counts, crash and hang
//! recovery, graceful reload and stop, TTIN/TTOU, binary upgrade, orphans, pidfile, boot failure.
//! Every client loop is bounded and talks to 127.0.0.1 only.

use crate::support;

use nix::sys::signal::Signal;
use std::time::{Duration, Instant};
use support::client_loop::{get_once, ClientLoop};
use support::{
    children, is_alive, wait_for_new_master, wait_until, KillOnDrop, Options, Server, PATIENCE,
};

fn prefork(workers: &str, extra: &[&str]) -> Server {
    let mut args = vec!["-w", workers];
    args.extend_from_slice(extra);
    let server = support::start(
        Options::default()
            .args(&args)
            .env("PYBLOGD_FAULT_ROUTES", "1"),
    );
    let n: usize = workers.parse().unwrap();
    wait_for_workers(&server, n);
    server
}

fn wait_for_workers(server: &Server, n: usize) -> Vec<i32> {
    let ok = wait_until(PATIENCE, || children(server.pid()).len() == n);
    assert!(
        ok,
        "expected {n} workers, have {:?}; log:\n{}",
        children(server.pid()),
        server.log_text()
    );
    children(server.pid())
}

fn kill(pid: i32, sig: Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
}

#[test]
fn worker_count_equals_w_and_single_process_has_none() {
    let server = prefork("3", &[]);
    assert_eq!(children(server.pid()).len(), 3);
    server.wait_log("Booting worker with pid", PATIENCE);
    drop(server);

    let single = support::start(Options::default().args(&["--single-process"]));
    assert_eq!(single.get("/").status, 200);
    assert!(children(single.pid()).is_empty());
}

#[test]
fn killed_worker_is_replaced_and_others_keep_serving() {
    let server = prefork("2", &[]);
    let before = children(server.pid());
    let victim = before[0];
    kill(victim, Signal::SIGKILL);
    let killed_at = Instant::now();
    // New connections go only to live workers: the loop must not see a failure.
    let clients = ClientLoop::start(server.addr, "/");
    let replaced = wait_until(Duration::from_secs(2), || {
        let now = children(server.pid());
        now.len() == 2 && !now.contains(&victim)
    });
    let took = killed_at.elapsed();
    wait_until(PATIENCE, || clients.ok() >= 20);
    let (ok, failed, errors) = clients.finish();
    assert!(
        replaced,
        "no replacement within 2 s ({took:?}); log:\n{}",
        server.log_text()
    );
    assert_eq!(failed, 0, "{errors:?}");
    assert!(ok >= 20);
    server.wait_log(&format!("pid {victim}"), PATIENCE);
}

#[test]
fn hup_replaces_every_worker_without_a_failed_request() {
    let server = prefork("2", &[]);
    let before = children(server.pid());
    let clients = ClientLoop::start(server.addr, "/");
    wait_until(PATIENCE, || clients.ok() >= 10);
    server.signal(Signal::SIGHUP);
    let replaced = wait_until(PATIENCE, || {
        let now = children(server.pid());
        now.len() == 2 && now.iter().all(|p| !before.contains(p))
    });
    let after_reload = clients.ok();
    wait_until(PATIENCE, || clients.ok() >= after_reload + 10);
    let (ok, failed, errors) = clients.finish();
    assert!(
        replaced,
        "workers {:?} -> {:?}; log:\n{}",
        before,
        children(server.pid()),
        server.log_text()
    );
    assert_eq!(failed, 0, "failed requests across a reload: {errors:?}");
    assert!(ok >= 20);
}

#[test]
fn hup_with_a_broken_config_keeps_the_old_workers() {
    let server = prefork("2", &[]);
    let before = children(server.pid());
    // Flags beat .env, so the broken value must be one no flag sets here.
    std::fs::write(server.path(".env"), "MODE=staging\n").unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_log("staging", PATIENCE);
    assert_eq!(server.get("/").status, 200);
    assert_eq!(
        children(server.pid()),
        before,
        "the running generation stays"
    );
    assert!(is_alive(server.pid()));
}

#[test]
fn hup_applies_a_changed_worker_count_from_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "WEB_CONCURRENCY=2\n").unwrap();
    let server = support::start_in(dir, Options::default());
    let before = wait_for_workers(&server, 2);
    std::fs::write(server.path(".env"), "WEB_CONCURRENCY=3\n").unwrap();
    server.signal(Signal::SIGHUP);
    // During the switch both generations are alive; wait for three workers all new.
    let ok = wait_until(PATIENCE, || {
        let now = children(server.pid());
        now.len() == 3 && now.iter().all(|p| !before.contains(p))
    });
    assert!(
        ok,
        "workers {:?}; log:\n{}",
        children(server.pid()),
        server.log_text()
    );
}

#[test]
fn term_lets_a_slow_request_finish_then_exits_zero() {
    let mut server = prefork("2", &["--pid", "pyblogd.pid"]);
    let pidfile = server.path("pyblogd.pid");
    assert!(wait_until(PATIENCE, || std::fs::read_to_string(&pidfile)
        .is_ok_and(|t| t.trim() == server.pid().to_string())));
    let addr = server.addr;
    let slow = std::thread::spawn(move || get_once(addr, "/__fault/slow?ms=2000"));
    // Let the request reach a worker: it is then marked busy, which TERM must respect.
    std::thread::sleep(Duration::from_millis(500));
    server.signal(Signal::SIGTERM);
    assert_eq!(
        slow.join().unwrap().unwrap(),
        200,
        "log:\n{}",
        server.log_text()
    );
    assert_eq!(
        server.wait_exit(PATIENCE),
        Some(0),
        "log:\n{}",
        server.log_text()
    );
    assert!(!pidfile.exists(), "pidfile removed on exit");
}

#[test]
fn ttin_and_ttou_change_the_count() {
    let server = prefork("2", &[]);
    server.signal(Signal::SIGTTIN);
    wait_for_workers(&server, 3);
    server.signal(Signal::SIGTTOU);
    wait_for_workers(&server, 2);
    server.signal(Signal::SIGTTOU);
    wait_for_workers(&server, 1);
    server.signal(Signal::SIGTTOU);
    // Never below one: give the master a few loop turns, then check.
    server.wait_log("Handling signal: ttou", PATIENCE);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(children(server.pid()).len(), 1);
    assert_eq!(server.get("/").status, 200);
}

#[test]
fn panic_is_a_500_and_no_worker_dies() {
    let server = prefork("2", &[]);
    let before = children(server.pid());
    for _ in 0..4 {
        assert_eq!(server.get("/__fault/panic").status, 500);
    }
    assert_eq!(server.get("/").status, 200);
    assert_eq!(children(server.pid()), before);
}

#[test]
fn hung_worker_is_killed_after_timeout_and_named() {
    let server = prefork("2", &["--timeout", "2"]);
    let before = children(server.pid());
    let addr = server.addr;
    std::thread::spawn(move || {
        let _ = get_once(addr, "/__fault/hang");
    });
    server.wait_log("WORKER TIMEOUT", PATIENCE);
    let log = server.log_text();
    let line = log.lines().find(|l| l.contains("WORKER TIMEOUT")).unwrap();
    assert!(line.contains("/__fault/hang"), "{line}");
    assert!(
        !log.contains("out of memory"),
        "our own kill is not blamed on OOM:\n{log}"
    );
    assert!(wait_until(PATIENCE, || {
        let now = children(server.pid());
        now.len() == 2 && now.iter().any(|p| !before.contains(p))
    }));
    assert_eq!(server.get("/").status, 200);
}

#[test]
fn aborted_worker_is_respawned() {
    let server = prefork("2", &[]);
    let before = children(server.pid());
    let _ = server.try_get("/__fault/abort");
    assert!(
        wait_until(PATIENCE, || {
            let now = children(server.pid());
            now.len() == 2 && now.iter().any(|p| !before.contains(p))
        }),
        "log:\n{}",
        server.log_text()
    );
    assert_eq!(server.get("/").status, 200);
}

#[test]
fn master_sigkill_leaves_no_orphan_and_frees_the_port() {
    let mut server = prefork("2", &[]);
    let workers = children(server.pid());
    server.signal(Signal::SIGKILL);
    let _ = server.wait_exit(PATIENCE);
    let gone = wait_until(Duration::from_secs(3), || {
        workers.iter().all(|p| !is_alive(*p))
    });
    assert!(gone, "workers outlived the master: {workers:?}");
    // Nothing may listen on the port any more. (Re-binding it is not a fair check while other
    // tests run: their client sockets may take the same number as an ephemeral local port.)
    let refused = wait_until(Duration::from_secs(3), || {
        matches!(
            std::net::TcpStream::connect(server.addr),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
        )
    });
    assert!(refused, "something still listens on {}", server.addr);
}

#[test]
fn pidfile_refuses_a_second_master() {
    let server = prefork("1", &["--pid", "pyblogd.pid"]);
    let pidfile = server.path("pyblogd.pid");
    assert!(wait_until(PATIENCE, || pidfile.exists()));
    let out = std::process::Command::new(support::binary())
        .current_dir(server.dir.path())
        .args(["--bind", "127.0.0.1:0", "--pid", "pyblogd.pid"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&server.pid().to_string()));
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        server.pid().to_string()
    );
}

#[test]
fn boot_failure_exits_non_zero_with_the_workers_message() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = std::process::Command::new(support::binary())
        .current_dir(dir.path())
        .args(["--bind", "127.0.0.1:0", "-w", "2"])
        .env("DATABASE_URI", "sqlite:////nonexistent-dir/sub/blog.db")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("/nonexistent-dir/sub/blog.db"), "{err}");
    assert!(started.elapsed() < PATIENCE, "no boot loop");
    let boots = err.matches("Booting worker").count();
    assert!(
        boots <= 4,
        "workers were forked in a loop ({boots}):\n{err}"
    );
}

#[test]
fn usr2_upgrade_serves_throughout() {
    let server = prefork("2", &["--pid", "pyblogd.pid"]);
    let pidfile = server.path("pyblogd.pid");
    let oldbin = server.path("pyblogd.pid.oldbin");
    let old_master = server.pid();
    assert!(wait_until(PATIENCE, || pidfile.exists()));
    let clients = ClientLoop::start(server.addr, "/");
    wait_until(PATIENCE, || clients.ok() >= 10);
    server.signal(Signal::SIGUSR2);
    let new_master = wait_for_new_master(&pidfile, old_master)
        .unwrap_or_else(|| panic!("log:\n{}", server.log_text()));
    // Kill the new master when the test ends, whatever happens.
    let _reap = KillOnDrop(new_master);
    assert!(
        wait_until(PATIENCE, || oldbin.exists()),
        "log:\n{}",
        server.log_text()
    );
    assert!(
        wait_until(PATIENCE, || children(new_master).len() == 2),
        "log:\n{}",
        server.log_text()
    );
    server.signal(Signal::SIGTERM);
    assert!(
        wait_until(PATIENCE, || !is_alive(old_master)),
        "old master exits on TERM"
    );
    let after = clients.ok();
    wait_until(PATIENCE, || clients.ok() >= after + 10);
    let (ok, failed, errors) = clients.finish();
    assert_eq!(failed, 0, "{errors:?}; log:\n{}", server.log_text());
    assert!(ok >= 20);
    assert!(is_alive(new_master));
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        new_master.to_string()
    );
}
