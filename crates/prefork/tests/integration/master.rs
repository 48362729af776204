//! The supervisor as operators meet it: a real master (`prefork-demo`), real workers, real
//! signals. Each test owns a temp dir, an ephemeral port and its process tree.

use crate::support;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{children_of, is_running, read_pid, wait_until, Server, WAIT};

#[test]
fn runs_as_many_workers_as_asked_and_they_serve() {
    let server = Server::start(&["-w", "3"]);
    let workers = server.wait_for_workers("three", |w| w.len() == 3);
    let served = server.serving_pid();
    assert!(workers.contains(&served), "{served} not in {workers:?}");
    assert_eq!(read_pid(&server.pidfile), Some(server.pid));
    assert!(server.log().contains("Using worker: prefork (threads: 4)"));
    for pid in &workers {
        server.wait_for_log(&format!("Booting worker with pid: {pid}"));
    }
    assert_eq!(server.count_in_log("Booting worker with pid:"), 3);
}

#[test]
fn a_killed_worker_is_replaced_and_the_kill_is_reported() {
    let server = Server::start(&["-w", "2"]);
    let workers = server.wait_for_workers("two", |w| w.len() == 2);
    let victim = workers[0];
    kill(Pid::from_raw(victim), Signal::SIGKILL).unwrap();
    server.wait_for_workers("replaced", |w| w.len() == 2 && !w.contains(&victim));
    // Not our kill: only then may memory be suspected.
    server.wait_for_log(&format!(
        "Worker (pid {victim}) was killed by signal SIGKILL, not sent by the master: perhaps out of memory?"
    ));
    server.serving_pid();
}

#[test]
fn hup_replaces_every_worker_without_a_failed_request() {
    let server = Arc::new(Server::start(&["-w", "2"]));
    let old: HashSet<i32> = server
        .wait_for_workers("two", |w| w.len() == 2)
        .into_iter()
        .collect();
    server.serving_pid();

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let client = {
        let (server, stop, ok, failures, seen) = (
            Arc::clone(&server),
            Arc::clone(&stop),
            Arc::clone(&ok),
            Arc::clone(&failures),
            Arc::clone(&seen),
        );
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            while !stop.load(Ordering::Relaxed) && start.elapsed() < WAIT {
                match server.get("/") {
                    Ok(body) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        seen.lock().unwrap().insert(body.parse::<i32>().unwrap());
                    }
                    Err(e) => failures.lock().unwrap().push(e.to_string()),
                }
            }
        })
    };
    wait_until("requests before the reload", WAIT, || {
        (ok.load(Ordering::Relaxed) >= 20).then_some(())
    });
    server.signal(Signal::SIGHUP);
    server.wait_for_log("Hang up: Master");
    server.wait_for_log("Generation 2 ready: retiring 2 old workers");
    let new = server.wait_for_workers("a new generation of two", |w| {
        w.len() == 2 && w.iter().all(|pid| !old.contains(pid))
    });
    let after = ok.load(Ordering::Relaxed);
    wait_until("requests after the reload", WAIT, || {
        (ok.load(Ordering::Relaxed) >= after + 20).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    assert_eq!(
        *failures.lock().unwrap(),
        Vec::<String>::new(),
        "log:\n{}",
        server.log()
    );
    let seen = seen.lock().unwrap();
    assert!(
        new.iter().any(|pid| seen.contains(pid)),
        "new workers never served"
    );
}

#[test]
fn hup_with_a_failing_reload_keeps_the_workers() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("reload-fails");
    std::fs::write(&marker, "").unwrap();
    let server = Server::start_with_env(&["-w", "2"], &[("DEMO_RELOAD_FAIL_FILE", &marker)]);
    let old = server.wait_for_workers("two", |w| w.len() == 2);
    server.signal(Signal::SIGHUP);
    let line = server.wait_for_log("Reload failed, keeping the running configuration");
    assert!(line.contains("reload-fails exists"), "{line}");
    // The loop handled the signal and moved on: a later TTIN is answered, and still by the
    // original workers plus one.
    server.signal(Signal::SIGTTIN);
    let now = server.wait_for_workers("three", |w| w.len() == 3);
    assert!(
        old.iter().all(|pid| now.contains(pid)),
        "{old:?} vs {now:?}"
    );
    for pid in &now {
        server.wait_for_log(&format!("Booting worker with pid: {pid}"));
    }
    assert_eq!(server.count_in_log("Booting worker with pid:"), 3);
}

#[test]
fn hup_whose_workers_cannot_boot_keeps_the_old_generation() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("boot-fails");
    let server = Server::start_with_env(&["-w", "2"], &[("DEMO_BOOT_FAIL_FILE", &marker)]);
    let old = server.wait_for_workers("two", |w| w.len() == 2);
    server.serving_pid();
    std::fs::write(&marker, "").unwrap();
    server.signal(Signal::SIGHUP);
    let line = server.wait_for_log("Reload failed: worker (pid");
    assert!(line.contains("demo boot failure"), "{line}");
    assert!(line.contains("keeping generation 1"), "{line}");
    server.wait_for_workers("the old generation only", |w| w == old.as_slice());
    assert!(old.contains(&server.serving_pid()));
    assert!(!server.log().contains("Generation 2 ready"));
}

#[test]
fn term_stops_gracefully_and_cleans_up() {
    let mut server = Server::start(&["-w", "2"]);
    let workers = server.wait_for_workers("two", |w| w.len() == 2);
    server.serving_pid();
    server.signal(Signal::SIGTERM);
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
    assert!(!server.pidfile.exists(), "pidfile left behind");
    server.wait_for_log("Handling signal: term");
    server.wait_for_log("Shutting down: Master");
    for pid in workers {
        server.wait_for_log(&format!("Worker exiting (pid: {pid})"));
        assert!(!is_running(pid));
    }
    std::net::TcpListener::bind(("127.0.0.1", server.port)).expect("port still taken");
}

#[test]
fn term_kills_a_worker_that_outstays_the_graceful_timeout() {
    let mut server = Server::start(&["-w", "1", "--graceful-timeout", "1"]);
    let worker = server.serving_pid();
    let port = server.port;
    // Connected here, on the test's thread, so it is queued before any later request.
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let hung = std::thread::spawn(move || support::http_get(stream, "/hang"));
    // The worker accepts in queue order: once a later request is answered, the hung one was
    // accepted and holds a task.
    wait_until("the hung request to be accepted", WAIT, || {
        (server.get("/").ok()? == worker.to_string()).then_some(())
    });
    server.signal(Signal::SIGTERM);
    assert_eq!(server.wait_exit().code(), Some(0));
    let line = server.wait_for_log(&format!("Worker (pid {worker}) was killed"));
    assert!(line.contains("graceful timeout"), "{line}");
    assert!(hung.join().unwrap().is_err());
}

#[test]
fn int_stops_quickly_even_with_a_request_in_flight() {
    let mut server = Server::start(&["-w", "2", "--graceful-timeout", "60"]);
    server.wait_for_workers("two", |w| w.len() == 2);
    let port = server.port;
    // Connected here, on the test's thread, so it is queued before any later request.
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let hung = std::thread::spawn(move || support::http_get(stream, "/hang"));
    server.serving_pid();
    let start = std::time::Instant::now();
    server.signal(Signal::SIGINT);
    assert_eq!(server.wait_exit().code(), Some(0));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(!server.pidfile.exists());
    assert!(hung.join().unwrap().is_err());
}

#[test]
fn ttin_adds_a_worker_and_ttou_retires_an_old_one() {
    let server = Server::start(&["-w", "2"]);
    let first = server.wait_for_workers("two", |w| w.len() == 2);
    server.signal(Signal::SIGTTIN);
    let three = server.wait_for_workers("three", |w| w.len() == 3);
    let newest = *three.iter().find(|pid| !first.contains(pid)).unwrap();
    server.wait_for_log("Number of workers raised to 3");
    server.signal(Signal::SIGTTOU);
    let two = server.wait_for_workers("two again", |w| w.len() == 2);
    assert!(
        two.contains(&newest),
        "TTOU retired the newest worker: {two:?}"
    );
    let retired = first.iter().find(|pid| !two.contains(pid)).unwrap();
    server.wait_for_log(&format!("Worker (pid {retired}) exited cleanly"));
    // Never below one.
    server.signal(Signal::SIGTTOU);
    server.wait_for_workers("one", |w| w.len() == 1);
    server.signal(Signal::SIGTTOU);
    server.wait_for_log("TTOU refused: keeping at least one worker");
    assert_eq!(server.workers().len(), 1);
}

#[test]
fn killing_the_master_leaves_no_orphan_and_frees_the_port() {
    let mut server = Server::start(&["-w", "2"]);
    let workers = server.wait_for_workers("two", |w| w.len() == 2);
    server.serving_pid();
    server.signal(Signal::SIGKILL);
    server.wait_exit();
    wait_until(
        "workers to die with the master",
        Duration::from_secs(3),
        || workers.iter().all(|&pid| !is_running(pid)).then_some(()),
    );
    wait_until("the port to be free", Duration::from_secs(3), || {
        std::net::TcpListener::bind(("127.0.0.1", server.port)).ok()
    });
}

#[test]
fn a_worker_that_cannot_boot_at_start_stops_the_master_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("boot-fails");
    std::fs::write(&marker, "").unwrap();
    let mut server = Server::start_with_env(&["-w", "2"], &[("DEMO_BOOT_FAIL_FILE", &marker)]);
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(3), "log:\n{}", server.log());
    let line = server.wait_for_log("failed to boot: demo boot failure");
    assert!(line.contains("boot-fails exists"), "{line}");
    server.wait_for_log("No worker could boot: shutting down");
    assert!(!server.pidfile.exists());
}

#[test]
fn boot_failures_after_a_good_start_are_retried_with_growing_delays() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("boot-fails");
    let server = Server::start_with_env(&["-w", "1"], &[("DEMO_BOOT_FAIL_FILE", &marker)]);
    let worker = server.serving_pid();
    std::fs::write(&marker, "").unwrap();
    kill(Pid::from_raw(worker), Signal::SIGKILL).unwrap();
    server.wait_for_log("Booting the next worker in 0.4s");
    let log = server.log();
    let delays: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split("Booting the next worker in ").nth(1))
        .collect();
    assert_eq!(&delays[..3], ["0.1s", "0.2s", "0.4s"], "log:\n{log}");
    // One boot attempt per delay, never a loop.
    let failed = log.matches("failed to boot: demo boot failure").count();
    assert!(
        (3..=4).contains(&failed),
        "{failed} failed boots; log:\n{log}"
    );
    std::fs::remove_file(&marker).unwrap();
    let replacement = server.serving_pid();
    assert_ne!(replacement, worker);
    server.wait_for_log("Workers boot again");
    assert!(is_running(server.pid));
}

#[test]
fn a_hung_task_is_killed_naming_its_request_and_replaced() {
    let server = Server::start(&["-w", "1", "--timeout", "2"]);
    let worker = server.serving_pid();
    let port = server.port;
    // Connected here, on the test's thread, so it is queued before any later request.
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let hung = std::thread::spawn(move || support::http_get(stream, "/hang"));
    let line = server.wait_for_log(&format!("WORKER TIMEOUT (pid {worker})"));
    assert!(line.contains(" stuck for "), "{line}");
    assert!(line.ends_with("s on GET /hang"), "{line}");
    let line = server.wait_for_log(&format!(
        "Worker (pid {worker}) was killed after 2s timeout"
    ));
    assert!(line.contains("GET /hang"), "{line}");
    assert!(!line.contains("out of memory"), "{line}");
    server.wait_for_workers("a replacement", |w| w.len() == 1 && w[0] != worker);
    assert_ne!(server.serving_pid(), worker);
    assert!(hung.join().unwrap().is_err());
}

#[test]
fn workers_are_recycled_after_max_requests() {
    let server = Server::start(&["-w", "1", "--max-requests", "3"]);
    let first = server.serving_pid();
    let second = wait_until("a recycled worker", WAIT, || {
        let pid: i32 = server.get("/").ok()?.parse().ok()?;
        (pid != first).then_some(pid)
    });
    server.wait_for_log(&format!(
        "Worker (pid {first}) recycled after max requests (3 served)"
    ));
    assert!(children_of(server.pid).contains(&second) || !is_running(second));
}

#[test]
fn usr2_starts_a_new_master_that_takes_over() {
    let mut server = Server::start(&["-w", "1"]);
    let old_master = server.pid;
    let old_worker = server.serving_pid();
    server.signal(Signal::SIGUSR2);
    let oldbin = server.dir.path().join("server.pid.oldbin");
    let new_master = wait_until("the new master's pidfile", WAIT, || {
        let new = read_pid(&server.pidfile)?;
        (read_pid(&oldbin) == Some(old_master) && new != old_master).then_some(new)
    });
    server.also_kill.push(new_master);
    let new_workers = wait_until("the new master's worker", WAIT, || {
        let w = children_of(new_master);
        (w.len() == 1).then_some(w)
    });
    // Both masters serve the same socket now; the new one's worker answers eventually.
    wait_until("the new master's worker to serve", WAIT, || {
        let pid: i32 = server.get("/").ok()?.parse().ok()?;
        new_workers.contains(&pid).then_some(())
    });
    server.signal(Signal::SIGTERM);
    assert_eq!(server.wait_exit().code(), Some(0));
    assert!(!is_running(old_worker));
    assert!(!oldbin.exists(), "the old master left its .oldbin pidfile");
    for _ in 0..5 {
        let pid: i32 = server.get("/").unwrap().parse().unwrap();
        assert!(
            new_workers.contains(&pid),
            "{pid} is not the new master's worker"
        );
    }
    assert_eq!(read_pid(&server.pidfile), Some(new_master));
    kill(Pid::from_raw(new_master), Signal::SIGTERM).unwrap();
    wait_until("the new master to stop", WAIT, || {
        (!is_running(new_master)).then_some(())
    });
    // Gone: its pid may be reused, so the drop must not kill it any more.
    server.also_kill.clear();
    assert!(!server.pidfile.exists());
}

#[test]
fn unix_sockets_serve_and_are_removed_on_stop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.sock");
    let bind = format!("unix:{}", path.display());
    let mut server = Server::start(&["-w", "1", "--bind", &bind]);
    server.wait_for_log(&format!("Listening at: {bind} ("));
    let body = wait_until("an answer on the unix socket", WAIT, || {
        let stream = std::os::unix::net::UnixStream::connect(&path).ok()?;
        support::http_get(stream, "/").ok()
    });
    assert_eq!(server.workers(), vec![body.parse::<i32>().unwrap()]);
    server.signal(Signal::SIGTERM);
    assert_eq!(server.wait_exit().code(), Some(0));
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn single_process_mode_serves_in_the_master_and_stops_on_term() {
    let mut server = Server::start(&["--single"]);
    assert_eq!(server.serving_pid(), server.pid);
    assert!(server.workers().is_empty());
    server.wait_for_log("Using worker: single-process (threads: 4)");
    server.signal(Signal::SIGTERM);
    assert_eq!(server.wait_exit().code(), Some(0));
    assert!(!server.pidfile.exists());
}

#[test]
fn a_second_master_refuses_a_live_pidfile() {
    let first = Server::start(&["-w", "1"]);
    let log = first.dir.path().join("second.log");
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_prefork-demo"))
        .args(["--bind", "127.0.0.1:0", "--pid"])
        .arg(&first.pidfile)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut second = support::KillOnDrop(second);
    let status = wait_until("the second master to give up", WAIT, || {
        second.0.try_wait().unwrap()
    });
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("names a running process"), "{stderr}");
    assert_eq!(read_pid(&first.pidfile), Some(first.pid));
}

#[test]
fn systemd_hears_ready_reloading_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let next = || {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut server = Server::start_with_env(&["-w", "2"], &[("NOTIFY_SOCKET", &path)]);
    assert_eq!(next(), format!("MAINPID={}\nREADY=1\n", server.pid));
    assert_eq!(server.workers().len(), 2);
    server.signal(Signal::SIGHUP);
    assert_eq!(next(), "RELOADING=1\n");
    assert_eq!(next(), "READY=1\n");
    assert!(server.log().contains("Generation 2 ready"));
    server.signal(Signal::SIGTERM);
    assert_eq!(next(), "STOPPING=1\n");
    assert_eq!(server.wait_exit().code(), Some(0));
}
