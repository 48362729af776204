//! Nothing acknowledged is lost, nothing is stored twice: posts that got their 303 survive
//! `kill -9` of every process, and 500 posts created through reloads, worker-count changes and
//! a worker kill are each in the database exactly once, whole, in an intact file.
//!
//! The database lives in a directory the test owns, so a second server can be started on it
//! and the file can be read directly (rusqlite) after the servers are gone.

use crate::support;

use nix::sys::signal::Signal;
use r2d2_sqlite::rusqlite::Connection;
use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{children, wait_until, Options, Server, PATIENCE};

fn server_on(db: &Path, workers: &str) -> Server {
    let uri = format!("sqlite:///{}", db.display());
    let server = support::start(Options::default().args(&["-w", workers, "--database-uri", &uri]));
    let n: usize = workers.parse().expect("worker count");
    assert!(
        wait_until(PATIENCE, || children(server.pid()).len() == n),
        "workers never came up; log:\n{}",
        server.log_text()
    );
    server
}

fn content_for(title: &str) -> String {
    format!(
        "The body of **{title}**, stored whole or not at all.\n\n{}",
        "x".repeat(200)
    )
}

/// Creates a post on a fresh connection; `Ok(status)` or the I/O error that cut it off.
fn create(addr: SocketAddr, title: &str) -> std::io::Result<u16> {
    let content = content_for(title);
    let body = support::our_form(&[("title", title), ("name", "dur"), ("content", &content)]);
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "POST /posts HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        support::from_our_page("t"),
        body.len()
    )?;
    Ok(support::read_reply(&mut BufReader::new(s), false)?.status)
}

fn kill(pid: i32, signal: Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).expect("signal");
}

/// Every stored post by title: how many rows, and whether each is whole.
fn stored(db: &Path) -> BTreeMap<String, (usize, bool)> {
    let conn = Connection::open(db).expect("open the database");
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(integrity, "ok");
    let mut stmt = conn
        .prepare("SELECT title, markdown, html FROM posts")
        .expect("query");
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .expect("rows");
    let mut found = BTreeMap::new();
    for row in rows {
        let (title, markdown, html) = row.expect("row");
        let whole = markdown == content_for(&title) && html.contains("<strong>");
        let entry = found.entry(title).or_insert((0, true));
        entry.0 += 1;
        entry.1 &= whole;
    }
    found
}

#[test]
fn acknowledged_posts_survive_kill_9_of_workers_and_master() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("blog.db");
    let mut server = server_on(&db, "2");
    let titles: Vec<String> = (0..20).map(|i| format!("durable-{i}")).collect();
    for title in &titles {
        assert_eq!(create(server.addr, title).expect("create"), 303);
    }
    // Right after the last 303: every worker and the master die without a chance to flush.
    for worker in children(server.pid()) {
        kill(worker, Signal::SIGKILL);
    }
    kill(server.pid(), Signal::SIGKILL);
    assert!(
        server.wait_exit(PATIENCE).is_some(),
        "master survived SIGKILL"
    );
    drop(server);

    let found = stored(&db);
    for title in &titles {
        assert_eq!(found.get(title), Some(&(1, true)), "{title} after kill -9");
    }
    // And a new server on the same file serves them.
    let server = server_on(&db, "1");
    let list = server.get("/posts");
    assert_eq!(list.status, 200);
    assert!(list.text().contains("durable-19"), "{}", list.text());
}

/// A title sent and what came back: a status, or the I/O error that cut the request off.
type Outcome = (String, Result<u16, String>);

/// A paced load of posts from several clients until stopped; every title is unique and sent
/// once, never retried.
struct Writers {
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    progress: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Writers {
    /// Each client pauses `pace` between posts, so the load spans the operator actions.
    fn start(addr: SocketAddr, clients: usize, pace: Duration) -> Writers {
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let progress = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..clients)
            .map(|c| {
                let (outcomes, progress, stop) = (outcomes.clone(), progress.clone(), stop.clone());
                std::thread::spawn(move || {
                    // Bounded whatever happens to `stop`.
                    for i in 0..2_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let title = format!("load-{c}-{i}");
                        let outcome = create(addr, &title).map_err(|e| e.to_string());
                        outcomes.lock().expect("outcomes").push((title, outcome));
                        progress.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(pace);
                    }
                })
            })
            .collect();
        Writers {
            outcomes,
            progress,
            stop,
            threads,
        }
    }

    fn progress(&self) -> usize {
        self.progress.load(Ordering::Relaxed)
    }

    fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("writer thread");
        }
        let outcomes = self.outcomes.lock().expect("outcomes");
        outcomes.clone()
    }
}

/// An operator action on the master and the worker count it leaves once settled.
#[derive(Debug, Clone, Copy)]
enum Action {
    Reload,
    MoreWorkers,
    FewerWorkers,
    KillWorker,
}

/// Performs `action` and waits until the workers have settled after it. A reload re-reads
/// the configuration, so it also undoes TTIN/TTOU (as gunicorn's does): back to `configured`.
fn perform(server: &Server, action: Action, workers: &mut usize, configured: usize) {
    let master = server.pid();
    let before = children(master);
    match action {
        Action::Reload => {
            kill(master, Signal::SIGHUP);
            *workers = configured;
        }
        Action::MoreWorkers => {
            kill(master, Signal::SIGTTIN);
            *workers += 1;
        }
        Action::FewerWorkers => {
            kill(master, Signal::SIGTTOU);
            *workers -= 1;
        }
        Action::KillWorker => kill(before[0], Signal::SIGKILL),
    }
    let settled = wait_until(PATIENCE, || {
        let now = children(master);
        now.len() == *workers
            && match action {
                Action::Reload => now.iter().all(|w| !before.contains(w)),
                Action::KillWorker => !now.contains(&before[0]),
                Action::MoreWorkers | Action::FewerWorkers => true,
            }
    });
    assert!(
        settled,
        "{action:?} never settled: workers {before:?} -> {:?}; log:\n{}",
        children(master),
        server.log_text()
    );
}

#[test]
fn five_hundred_posts_through_reloads_and_a_kill_are_stored_exactly_once() {
    const CLIENTS: usize = 4;
    const POSTS: usize = 500;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("blog.db");
    let mut server = server_on(&db, "2");
    let master = server.pid();
    let started = Instant::now();
    let writers = Writers::start(server.addr, CLIENTS, Duration::from_millis(20));

    // Operator actions spread over the load, each waited out while the load goes on.
    let plan = [
        (40, Action::Reload),
        (110, Action::MoreWorkers),
        (180, Action::Reload),
        (250, Action::KillWorker),
        (320, Action::FewerWorkers),
        (390, Action::Reload),
    ];
    let mut workers = 2;
    for (at, action) in plan {
        let reached = wait_until(Duration::from_secs(60), || writers.progress() >= at);
        assert!(
            reached,
            "the load stalled before {action:?}; log:\n{}",
            server.log_text()
        );
        perform(&server, action, &mut workers, 2);
    }
    assert!(wait_until(Duration::from_secs(60), || writers.progress() >= POSTS));
    let outcomes = writers.finish();
    let took = started.elapsed();
    assert_eq!(server.get("/").status, 200);
    // Everything dies hard: what was acknowledged must already be on disk.
    for worker in children(master) {
        kill(worker, Signal::SIGKILL);
    }
    kill(master, Signal::SIGKILL);
    assert!(server.wait_exit(PATIENCE).is_some());

    let found = stored(&db);
    let mut acknowledged = 0;
    let mut unknown = Vec::new();
    for (title, outcome) in &outcomes {
        let rows = found.get(title).copied().unwrap_or((0, true));
        assert!(rows.1, "{title} is stored half-written");
        match outcome {
            Ok(303) => {
                acknowledged += 1;
                assert_eq!(
                    rows.0, 1,
                    "{title} got its 303 but is stored {} times",
                    rows.0
                );
            }
            other => {
                assert!(
                    rows.0 <= 1,
                    "{title} ({other:?}) is stored {} times",
                    rows.0
                );
                unknown.push(format!("{title}: {other:?} (stored {})", rows.0));
            }
        }
    }
    assert!(outcomes.len() >= POSTS);
    assert_eq!(
        found.len(),
        outcomes.len() - unknown.iter().filter(|u| u.ends_with("(stored 0)")).count()
    );
    eprintln!(
        "{} posts in {took:?} through 3 HUPs, TTIN, TTOU and a worker kill: {acknowledged} \
         acknowledged and stored once, {} stored in all, {} without a 303: {unknown:?}",
        outcomes.len(),
        found.len(),
        unknown.len()
    );
    // Only requests in flight on the killed worker may fail (each client has one at a time);
    // reloads and worker-count changes must not cost a single request.
    assert!(
        unknown.len() <= CLIENTS,
        "{} requests failed: {unknown:?}; log:\n{}",
        unknown.len(),
        server.log_text()
    );
}

/// `GET /posts/{id}` `n` times from `clients` threads, each on fresh connections; returns how
/// many were answered 200 (each of those is a view the server owes us).
fn view_many(addr: SocketAddr, id: i64, clients: usize, n: usize) -> usize {
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let mut ok = 0;
                for _ in 0..n / clients {
                    let status = (|| -> std::io::Result<u16> {
                        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
                        s.set_read_timeout(Some(Duration::from_secs(20)))?;
                        write!(
                            s,
                            "GET /posts/{id} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                        )?;
                        Ok(support::read_reply(&mut BufReader::new(s), false)?.status)
                    })();
                    if matches!(status, Ok(200)) {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("viewer thread"))
        .sum()
}

fn stored_views(db: &Path, id: i64) -> i64 {
    let conn = Connection::open(db).expect("open the database");
    conn.busy_timeout(PATIENCE).expect("busy timeout");
    conn.query_row("SELECT view_count FROM posts WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .expect("view_count")
}

/// Polls the stored count until it is `expected`; panics with what it was otherwise.
fn wait_for_views(db: &Path, id: i64, expected: usize, server: &Server) {
    let expected = i64::try_from(expected).expect("a small count");
    let mut stored = 0;
    let reached = wait_until(Duration::from_secs(15), || {
        stored = stored_views(db, id);
        stored == expected
    });
    assert!(
        reached,
        "{stored} views stored, {expected} answered 200; log:\n{}",
        server.log_text()
    );
}

#[test]
fn views_served_by_a_worker_killed_or_aborted_are_counted_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("blog.db");
    let uri = format!("sqlite:///{}", db.display());
    let mut server = support::start(
        Options::default()
            .args(&["-w", "2", "--database-uri", &uri])
            .env("PYBLOGD_FAULT_ROUTES", "1"),
    );
    let master = server.pid();
    assert!(wait_until(PATIENCE, || children(master).len() == 2));
    assert_eq!(create(server.addr, "viewed").expect("create"), 303);
    let id: i64 = Connection::open(&db)
        .expect("open")
        .query_row("SELECT id FROM posts WHERE title = 'viewed'", [], |r| {
            r.get(0)
        })
        .expect("the post");

    // Right after the last answer, one worker dies without a final flush: the views it has
    // not committed yet (up to 100 ms of them) exist only in its journal.
    let mut answered = view_many(server.addr, id, 4, 400);
    let victim = children(master)[0];
    kill(victim, Signal::SIGKILL);
    // Its sibling, or its replacement at start, counts them, once.
    wait_for_views(&db, id, answered, &server);

    // The same for a worker that aborts (SIGABRT, no destructors run): whichever worker
    // serves the fault route.
    answered += view_many(server.addr, id, 4, 400);
    let _ = server.try_get("/__fault/abort");
    wait_for_views(&db, id, answered, &server);
    assert!(
        wait_until(PATIENCE, || children(master).len() == 2),
        "workers were not replaced"
    );

    // Several flush and recovery periods later (recovery runs every 2 s), still exact.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(stored_views(&db, id), answered as i64);
    server.signal(Signal::SIGTERM);
    assert_eq!(server.wait_exit(PATIENCE), Some(0), "{}", server.log_text());
    assert_eq!(stored_views(&db, id), answered as i64);
    let journals = std::fs::read_dir(dir.path().join("blog.db.views"))
        .expect("the journal directory")
        .count();
    assert_eq!(journals, 0, "journals left after a graceful stop");
    let log = server.log_text();
    let recovered: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("from the journal of a stopped worker"))
        .collect();
    eprintln!(
        "{answered} views answered 200 through a SIGKILL and an abort, all stored once; \
         recovered from dead workers' journals: {recovered:?}"
    );
}
