//! Database faults through the real binary: a write lock held by another process, a full disk,
//! a disk gone read-only under a running server, and unusable database files at start.
//!
//! Writes that cannot happen answer 503 with `Retry-After` and the form input kept; reads go
//! on. The disk faults need real filesystems: a small tmpfs (full disk) and an ext4 image on
//! a loop device forced read-only the way the kernel does on an I/O error (errors=remount-ro).
//! Both need root; where mounting is refused the test says so on stderr and proves nothing.

use crate::support;

use r2d2_sqlite::rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{children, wait_until, Options, Reply, Server, PATIENCE};

/// How long a read may take while writes are refused (a functional bound).
const PROMPT: Duration = Duration::from_secs(3);

fn create(server: &Server, title: &str, content: &str) -> Reply {
    server.post_form(
        "/posts",
        &[("title", title), ("name", "ann"), ("content", content)],
    )
}

fn post_id(reply: &Reply) -> i64 {
    reply
        .header("location")
        .and_then(|l| l.strip_prefix("/posts/"))
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no post location in {reply:?}"))
}

/// A refused write: 503, a retry hint, and the visitor's input still in the form.
fn assert_refused_with_form_kept(reply: &Reply, title: &str) {
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(reply.header("retry-after").is_some(), "{:?}", reply.headers);
    assert!(
        reply.text().contains(&format!("value=\"{title}\"")),
        "the title is not kept: {}",
        reply.text()
    );
}

/// Times a GET that must succeed.
fn timed_get(server: &Server, path: &str) -> Duration {
    let started = Instant::now();
    let reply = server.get(path);
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.text());
    started.elapsed()
}

fn database_uri(path: &Path) -> String {
    format!("sqlite:///{}", path.display())
}

fn open_db(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("open the database");
    conn.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    conn
}

fn integrity(path: &Path) -> String {
    open_db(path)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check")
}

#[test]
fn a_held_write_lock_answers_503_with_the_form_kept_while_reads_go_on() {
    let server = support::start(Options::default().args(&["-w", "2"]));
    let id = post_id(&create(&server, "Before the lock", "readable"));
    let blocker = open_db(&server.path("blog.db"));
    // In WAL mode EXCLUSIVE is the same lock as IMMEDIATE: writers wait, readers do not.
    blocker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");

    let writer = {
        let addr = server.addr;
        std::thread::spawn(move || {
            let started = Instant::now();
            let reply = post_form_to(addr, "Kept title", "Kept body");
            (reply, started.elapsed())
        })
    };
    // While the post waits on the lock, pages that only read are served promptly.
    let list = timed_get(&server, "/");
    let style = timed_get(&server, "/static/style.css");
    // A post page counts a view (a write): it waits out the busy timeout, then is served
    // uncounted.
    let page = timed_get(&server, &format!("/posts/{id}"));
    let (reply, waited) = writer.join().expect("writer thread");
    eprintln!(
        "under a held write lock: POST answered {} after {waited:?}; GET / {list:?}, \
         static {style:?}, post page {page:?}",
        reply.status
    );
    assert_refused_with_form_kept(&reply, "Kept title");
    assert!(reply.text().contains("Kept body"), "{}", reply.text());
    assert!(
        waited >= Duration::from_secs(4),
        "answered before the busy timeout: {waited:?}"
    );
    assert!(list < PROMPT && style < PROMPT, "reads were held up");
    assert!(page < Duration::from_secs(15), "post page took {page:?}");

    blocker.execute_batch("ROLLBACK").expect("release the lock");
    assert_eq!(create(&server, "After the lock", "ok").status, 303);
    let titles: Vec<String> = {
        let conn = open_db(&server.path("blog.db"));
        let mut stmt = conn.prepare("SELECT title FROM posts ORDER BY id").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    assert_eq!(titles, ["Before the lock", "After the lock"]);
}

/// POSTs the new-post form from another thread (the harness's `post_form` needs `&Server`).
fn post_form_to(addr: std::net::SocketAddr, title: &str, content: &str) -> Reply {
    use std::io::{BufReader, Write};
    let body = support::our_form(&[("title", title), ("name", "ann"), ("content", content)]);
    let mut s = std::net::TcpStream::connect_timeout(&addr, PATIENCE).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    write!(
        s,
        "POST /posts HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        support::from_our_page("t"),
        body.len()
    )
    .expect("write");
    support::read_reply(&mut BufReader::new(s), false).expect("reply")
}

/// A filesystem mounted for one test; unmounted lazily on drop (after the server is gone).
struct Mount {
    dir: tempfile::TempDir,
    _image_dir: Option<tempfile::TempDir>,
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Mount {
    fn tmpfs(size: &str) -> Result<Mount, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let target = dir.path().to_str().ok_or("non-UTF-8 temp path")?;
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                target,
            ],
        )?;
        Ok(Mount {
            dir,
            _image_dir: None,
        })
    }

    /// An ext4 image on a loop device that turns read-only on its first error, as a real disk
    /// mounted `errors=remount-ro` does.
    fn ext4(megabytes: u32) -> Result<Mount, String> {
        let image_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let image = image_dir.path().join("disk.img");
        let file = std::fs::File::create(&image).map_err(|e| e.to_string())?;
        file.set_len(u64::from(megabytes) << 20)
            .map_err(|e| e.to_string())?;
        let image = image.to_str().ok_or("non-UTF-8 temp path")?;
        run("mkfs.ext4", &["-q", "-F", image])?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let target = dir.path().to_str().ok_or("non-UTF-8 temp path")?;
        run("mount", &["-o", "loop,errors=remount-ro", image, target])?;
        Ok(Mount {
            dir,
            _image_dir: Some(image_dir),
        })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The block device name (`loop3`) this mount sits on, from /proc/mounts.
    fn device(&self) -> Option<String> {
        let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
        let target = self.path().to_str()?;
        let line = mounts
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(target))?;
        let device = line.split_whitespace().next()?;
        Some(Path::new(device).file_name()?.to_str()?.to_string())
    }

    /// Makes ext4 record an error now, which (with errors=remount-ro) turns it read-only
    /// under every open file: writes through existing descriptors fail with EROFS.
    fn fail_to_read_only(&self) -> Result<(), String> {
        let device = self.device().ok_or("mount not found in /proc/mounts")?;
        std::fs::write(
            format!("/sys/fs/ext4/{device}/trigger_fs_error"),
            "pyblogd db_faults test",
        )
        .map_err(|e| format!("trigger_fs_error: {e}"))?;
        let probe = self.path().join("probe");
        let read_only = wait_until(Duration::from_secs(5), || {
            std::fs::write(&probe, b"x").is_err_and(|e| e.raw_os_error() == Some(30))
        });
        read_only.then_some(()).ok_or("still writable".to_string())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // Lazy: a process still holding a file here cannot make the unmount fail.
        if let Some(target) = self.path().to_str() {
            let _ = run("umount", &["-l", target]);
        }
    }
}

/// Mounting needs root; say so loudly instead of failing where it is not allowed.
fn skip(what: &str, why: &str) {
    eprintln!("SKIPPED {what}: cannot set up the filesystem ({why}); nothing proven here");
}

/// Fills the filesystem holding `dir` to the last byte.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    for chunk in [1 << 16, 4096, 512, 1] {
        let block = vec![0u8; chunk];
        // Bounded: a tmpfs of a few MiB fills in well under 10^5 writes of any size.
        for _ in 0..100_000 {
            if file.write_all(&block).is_err() {
                break;
            }
        }
    }
    let _ = file.sync_all();
    path
}

#[test]
fn a_full_disk_answers_503_on_writes_while_reads_go_on() {
    let mount = match Mount::tmpfs("2m") {
        Ok(m) => m,
        Err(e) => return skip("full disk", &e),
    };
    let db = mount.path().join("blog.db");
    let server =
        support::start(Options::default().args(&["-w", "2", "--database-uri", &database_uri(&db)]));
    let id = post_id(&create(&server, "Written before", "fits"));
    let filler = fill(mount.path());

    let big = "Too big for the disk. ".repeat(600);
    let reply = create(&server, "Kept on a full disk", &big);
    assert_refused_with_form_kept(&reply, "Kept on a full disk");
    let page = timed_get(&server, &format!("/posts/{id}"));
    let list = timed_get(&server, "/");
    eprintln!(
        "full disk: POST {}, post page {page:?}, GET / {list:?}",
        reply.status
    );
    assert!(page < PROMPT && list < PROMPT, "reads were held up");
    assert!(server
        .get(&format!("/posts/{id}"))
        .text()
        .contains("Written before"));

    std::fs::remove_file(&filler).expect("free the disk");
    assert_eq!(create(&server, "Written after", &big).status, 303);
    assert_eq!(integrity(&db), "ok");
    let count: i64 = open_db(&db)
        .query_row("SELECT COUNT(*) FROM posts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 2, "the refused post must not have been stored");
}

#[test]
fn a_disk_gone_read_only_answers_503_on_writes_while_reads_go_on() {
    let mount = match Mount::ext4(16) {
        Ok(m) => m,
        Err(e) => return skip("read-only disk", &e),
    };
    let db = mount.path().join("blog.db");
    let server =
        support::start(Options::default().args(&["-w", "2", "--database-uri", &database_uri(&db)]));
    let workers = children(server.pid());
    let id = post_id(&create(&server, "Written before", "while writable"));
    assert_eq!(server.get(&format!("/posts/{id}")).status, 200);
    if let Err(e) = mount.fail_to_read_only() {
        return skip("read-only disk", &e);
    }

    let reply = create(&server, "Kept on a read-only disk", "no room");
    assert_refused_with_form_kept(&reply, "Kept on a read-only disk");
    let edit = server.post_form(
        &format!("/posts/{id}/edit"),
        &[("title", "Edited"), ("name", "ann"), ("content", "x")],
    );
    assert_eq!(edit.status, 503, "{}", edit.text());
    let delete = server.post_form(&format!("/posts/{id}/delete"), &[]);
    assert_eq!(delete.status, 503, "{}", delete.text());
    let page = timed_get(&server, &format!("/posts/{id}"));
    let list = timed_get(&server, "/");
    eprintln!(
        "read-only disk: POST {}, post page {page:?}, GET / {list:?}",
        reply.status
    );
    assert!(page < PROMPT && list < PROMPT, "reads were held up");
    assert!(server
        .get(&format!("/posts/{id}"))
        .text()
        .contains("Written before"));
    assert_eq!(children(server.pid()), workers, "a worker died");
}

/// Starts a server that is expected to refuse to start; returns its exit code and log.
fn failed_start(dir: tempfile::TempDir, args: &[&str]) -> (Option<i32>, String) {
    let mut opts = Options::default().args(&["-w", "2"]).args(args);
    opts.wait_ready = false;
    let mut server = support::start_in(dir, opts);
    let code = server.wait_exit(PATIENCE);
    (code, server.log_text())
}

fn assert_clear_start_failure(what: &str, code: Option<i32>, log: &str, needle: &str) {
    assert!(
        matches!(code, Some(c) if c != 0),
        "{what}: exit {code:?}; log:\n{log}"
    );
    assert!(log.contains(needle), "{what}: no {needle:?} in log:\n{log}");
    let boots = log.matches("Booting worker").count();
    assert!(
        boots <= 2,
        "{what}: {boots} workers booted (a fork loop?); log:\n{log}"
    );
}

#[test]
fn unusable_database_files_stop_the_server_at_start() {
    // Garbage where the database should be.
    let dir = tempfile::tempdir().unwrap();
    let garbage = b"not an SQLite database, only text\n".repeat(300);
    std::fs::write(dir.path().join("blog.db"), &garbage).unwrap();
    let (code, log) = failed_start(dir, &[]);
    assert_clear_start_failure("garbage", code, &log, "not a database");
    assert!(log.contains("blog.db"), "the log names the file:\n{log}");

    // A real database cut short (its header promises pages that are not there).
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join("whole.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE filler (x); INSERT INTO filler VALUES (randomblob(100000));",
        )
        .unwrap();
    }
    let whole = std::fs::read(dir.path().join("whole.db")).unwrap();
    std::fs::write(dir.path().join("blog.db"), &whole[..whole.len() / 3]).unwrap();
    let (code, log) = failed_start(dir, &[]);
    assert_clear_start_failure("truncated", code, &log, "blog.db");

    // The database's directory does not exist.
    let (code, log) = failed_start(
        tempfile::tempdir().unwrap(),
        &[
            "--database-uri",
            "sqlite:////nonexistent-pyblogd-dir/blog.db",
        ],
    );
    assert_clear_start_failure("missing directory", code, &log, "does not exist");

    // A directory where the file should be.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("blog.db")).unwrap();
    let (code, log) = failed_start(dir, &[]);
    assert_clear_start_failure("directory", code, &log, "blog.db");
}

#[test]
fn a_missing_database_file_is_created_on_first_start() {
    let server = support::start(Options::default().args(&["-w", "2"]));
    assert!(server.path("blog.db").exists());
    assert_eq!(create(&server, "First", "post").status, 303);
    assert_eq!(integrity(&server.path("blog.db")), "ok");
}
