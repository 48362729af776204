//! The blog on PostgreSQL through the real binary: two masters (standing in for two hosts)
//! on one database, exact views across both, one migration when both start at once, 503 and
//! recovery when the database goes away and comes back, `/healthz`, and `pyblogd migrate`.
//!
//! `scripts/test` starts a throwaway cluster and exports `PYBLOGD_TEST_POSTGRES` (an admin
//! URI); each test creates its own database there. Under CI a missing variable fails.

use crate::support;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use support::{Options, Reply, Server, PATIENCE};

use r2d2_postgres::postgres::{Client, NoTls};

/// Tests here start two servers at once and the harness admits two: one test at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The admin URI of the test cluster, or `None` (with a printed line) outside CI.
fn admin_uri() -> Option<String> {
    match std::env::var("PYBLOGD_TEST_POSTGRES") {
        Ok(uri) if !uri.is_empty() => Some(uri),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but PYBLOGD_TEST_POSTGRES is not: scripts/test starts PostgreSQL")
        }
        _ => {
            eprintln!("skipped: PYBLOGD_TEST_POSTGRES is not set (run scripts/test)");
            None
        }
    }
}

/// A new, empty database on the cluster at `admin`; returns its URI.
fn fresh_database(admin: &str, name: &str) -> String {
    let db = format!("pyblogd_{name}_{}", std::process::id());
    let mut client = Client::connect(admin, NoTls).expect("connect to the test cluster");
    // One statement per call: neither may run inside the implicit multi-statement block.
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .expect("drop a leftover test database");
    client
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .expect("create a test database");
    let (server, _) = admin.rsplit_once('/').expect("URI with a database");
    format!("{server}/{db}")
}

fn query_i64(uri: &str, sql: &str) -> i64 {
    let mut client = Client::connect(uri, NoTls).expect("connect");
    client.query_one(sql, &[]).expect(sql).get(0)
}

fn start_on(uri: &str, workers: &str, wait: bool) -> Server {
    let mut opts = Options::default()
        .args(&["-w", workers])
        .env("DATABASE_URI", uri);
    opts.wait_ready = wait;
    support::start(opts)
}

fn create(server: &Server, title: &str) -> u64 {
    let reply = server.post_form(
        "/posts",
        &[
            ("title", title),
            ("name", "ann"),
            ("content", "Hello **pg**"),
        ],
    );
    assert_eq!(reply.status, 303, "create: {}", reply.text());
    let location = reply.header("location").expect("Location");
    location.rsplit('/').next().unwrap().parse().unwrap()
}

fn get(addr: SocketAddr, path: &str) -> std::io::Result<Reply> {
    let mut s = TcpStream::connect_timeout(&addr, PATIENCE)?;
    s.set_read_timeout(Some(PATIENCE))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )?;
    support::read_reply(&mut BufReader::new(s), false)
}

#[test]
fn two_masters_share_one_database_and_count_views_exactly() {
    let Some(admin) = admin_uri() else { return };
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let uri = fresh_database(&admin, "two_masters");

    // Both first starts at the same moment, two workers each: four migrators race.
    let mut a = start_on(&uri, "2", false);
    let mut b = start_on(&uri, "2", false);
    for server in [&mut a, &mut b] {
        server.addr = server.wait_listening();
        server.wait_serving();
    }
    assert!(
        support::wait_until(PATIENCE, || get(a.addr, "/healthz")
            .is_ok_and(|r| r.status == 200)
            && get(b.addr, "/healthz").is_ok_and(|r| r.status == 200)),
        "both hosts healthy"
    );
    let migrated = a.log_text().matches("database schema migrated").count()
        + b.log_text().matches("database schema migrated").count();
    assert_eq!(
        migrated,
        1,
        "one migration in all:\n{}\n{}",
        a.log_text(),
        b.log_text()
    );
    // One row per schema version (posts; then edit keys and rate buckets), each applied once.
    assert_eq!(query_i64(&uri, "SELECT COUNT(*) FROM schema_migrations"), 2);

    let id = create(&a, "Written on A");
    let page = b.get(&format!("/posts/{id}"));
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Written on A"), "{}", page.text());
    assert_eq!(
        query_i64(
            &uri,
            &format!("SELECT view_count FROM posts WHERE id = {id}")
        ),
        1
    );

    // 200 views, half through each host, eight clients at once.
    let hosts = [a.addr, b.addr];
    let clients: Vec<_> = (0..8)
        .map(|n| {
            std::thread::spawn(move || {
                for i in 0..25 {
                    let host = hosts[(n + i) % 2];
                    let reply = get(host, &format!("/posts/{id}")).expect("view");
                    assert_eq!(reply.status, 200);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client thread");
    }
    let stored = query_i64(
        &uri,
        &format!("SELECT view_count FROM posts WHERE id = {id}"),
    );
    assert_eq!(stored, 201, "one view before, then exactly 200");
    let home = b.get("/").text();
    assert!(
        home.contains(">201 views<"),
        "B's home page shows them:\n{home}"
    );
}

#[test]
fn database_down_at_start_is_a_clear_error() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let uri = format!("postgres://pyblogd:secret@127.0.0.1:{port}/blog?connect_timeout=2");
    let mut server = start_on(&uri, "2", false);
    let code = server.wait_exit(PATIENCE);
    let log = server.log_text();
    assert!(
        matches!(code, Some(c) if c != 0),
        "exit {code:?}; log:\n{log}"
    );
    assert!(
        log.contains(&format!(
            "cannot open PostgreSQL pyblogd@127.0.0.1:{port}/blog"
        )),
        "{log}"
    );
    assert!(
        !log.contains("secret"),
        "the password stays out of logs:\n{log}"
    );
}

/// A cluster private to one test (so stopping it disturbs no other test), destroyed on drop.
struct PrivateCluster {
    dir: PathBuf,
    uri: String,
    _parent: tempfile::TempDir,
}

impl PrivateCluster {
    fn start() -> PrivateCluster {
        let parent = tempfile::tempdir().expect("temp dir");
        let dir = parent.path().join("cluster");
        let out = pg_cluster(&["start"], &dir);
        let uri = String::from_utf8_lossy(&out).trim().to_string();
        PrivateCluster {
            dir,
            uri,
            _parent: parent,
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = Command::new(cluster_script())
            .arg("destroy")
            .arg(&self.dir)
            .status();
    }
}

fn cluster_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lib/pg-cluster")
}

fn pg_cluster(action: &[&str], dir: &Path) -> Vec<u8> {
    let out = Command::new(cluster_script())
        .args(action)
        .arg(dir)
        .output()
        .expect("run scripts/lib/pg-cluster");
    assert!(
        out.status.success(),
        "pg-cluster {action:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn lost_database_gives_503_then_pages_come_back_by_themselves() {
    if admin_uri().is_none() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = PrivateCluster::start();
    let server = start_on(&cluster.uri, "2", true);
    let id = create(&server, "Survives");
    let path = format!("/posts/{id}");
    assert_eq!(server.get(&path).status, 200);
    assert_eq!(server.get("/healthz").status, 200);
    let workers = support::children(server.pid());

    pg_cluster(&["stop"], &cluster.dir);
    let mut refused = None;
    let down = support::wait_until(PATIENCE, || {
        let reply = server.get(&path);
        let is_503 = reply.status == 503;
        refused = Some(reply);
        is_503
    });
    let refused = refused.expect("a reply");
    assert!(down, "503 once the database is gone: {}", refused.status);
    assert_eq!(refused.header("retry-after"), Some("1"));
    let health = server.get("/healthz");
    assert_eq!(health.status, 503);
    assert_eq!(health.header("retry-after"), Some("1"));
    assert!(
        workers.iter().all(|&w| support::is_alive(w)),
        "a lost database costs pages, not workers"
    );

    // A worker lost meanwhile cannot boot without its database: its replacements fail and
    // are retried with backoff while the master and the other worker carry on.
    let (lost, survivor) = (workers[0], workers[1]);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(lost),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill a worker");
    server.wait_log("failed to boot", PATIENCE);
    assert!(support::is_alive(server.pid()), "{}", server.log_text());
    assert!(support::is_alive(survivor));

    pg_cluster(&["resume"], &cluster.dir);
    let back = support::wait_until(PATIENCE, || {
        server.get(&path).status == 200 && server.get("/healthz").status == 200
    });
    assert!(
        back,
        "pages come back without a restart; log:\n{}",
        server.log_text()
    );
    assert!(server.get(&path).text().contains("Survives"));
    assert!(
        support::is_alive(survivor),
        "the survivor served throughout"
    );
    let replaced = support::wait_until(PATIENCE, || {
        let now = support::children(server.pid());
        now.len() == 2 && !now.contains(&lost)
    });
    assert!(replaced, "a replacement booted once the database was back");
}

/// Every column of every post in a SQLite file, in id order.
fn sqlite_rows(path: &Path) -> Vec<Vec<String>> {
    let conn = r2d2_sqlite::rusqlite::Connection::open(path).expect("open sqlite");
    let mut stmt = conn
        .prepare(
            "SELECT id, created_at, updated_at, view_count, title, name, description,
                    markdown, html FROM posts ORDER BY id",
        )
        .expect("prepare");
    let rows = stmt
        .query_map([], |row| {
            (0..9)
                .map(|i| {
                    row.get::<_, r2d2_sqlite::rusqlite::types::Value>(i)
                        .map(|v| format!("{v:?}"))
                })
                .collect()
        })
        .expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

/// (post id, hex of the edit-key hash) of every keyed post in a SQLite file, by id.
fn sqlite_keys(path: &Path) -> Vec<(i64, String)> {
    let conn = r2d2_sqlite::rusqlite::Connection::open(path).expect("open sqlite");
    let mut stmt = conn
        .prepare("SELECT post_id, hex(key_hash) FROM post_keys ORDER BY post_id")
        .expect("prepare");
    let rows = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

fn migrate(from: &str, to: &str) -> String {
    let out = Command::new(support::binary())
        .args(["migrate", "--from", from, "--to", to])
        .env_remove("DATABASE_URI")
        .output()
        .expect("run pyblogd migrate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "migrate {from} → {to}: {text}");
    text
}

#[test]
fn migrate_round_trips_sqlite_to_postgres_to_sqlite() {
    let Some(admin) = admin_uri() else { return };
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let pg = fresh_database(&admin, "migrate");

    let mut server = support::start(Options::default());
    let ids: Vec<u64> = ["One", "Two", "Three"]
        .iter()
        .map(|t| create(&server, t))
        .collect();
    server.post_form(&format!("/posts/{}/delete", ids[1]), &[]);
    for _ in 0..3 {
        assert_eq!(server.get(&format!("/posts/{}", ids[2])).status, 200);
    }
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(server.wait_exit(PATIENCE), Some(0), "{}", server.log_text());
    let original = server.path("blog.db");
    let before = sqlite_rows(&original);
    assert_eq!(before.len(), 2);

    let from = format!("sqlite:///{}", original.display());
    let report = migrate(&from, &pg);
    assert!(report.contains("copied 2 posts (3 views)"), "{report}");
    // Idempotent: a second run changes nothing and verifies again.
    migrate(&from, &pg);
    assert_eq!(query_i64(&pg, "SELECT COUNT(*) FROM posts"), 2);

    let back_dir = tempfile::tempdir().expect("temp dir");
    let back = back_dir.path().join("back.db");
    migrate(&pg, &format!("sqlite:///{}", back.display()));
    assert_eq!(
        sqlite_rows(&back),
        before,
        "SQLite → Postgres → SQLite is exact"
    );
    // The authors' edit keys (their hashes) travel with the posts.
    let keys_before = sqlite_keys(&original);
    assert_eq!(keys_before.len(), 2, "both remaining posts have a key");
    assert_eq!(
        sqlite_keys(&back),
        keys_before,
        "edit keys survive the round trip"
    );

    // A post created on Postgres after the import gets a fresh id, not a taken one.
    let host = start_on(&pg, "1", true);
    let next = create(&host, "After the move");
    assert!(next > ids[2], "new id {next} after {}", ids[2]);
}
