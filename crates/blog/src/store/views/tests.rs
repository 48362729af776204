//! The view journal against real SQLite files: exact counts under concurrency, journals of
//! dead workers applied exactly once (by racing recoverers too), torn tails, recorded offsets,
//! every crash point of a cleanup, journals started over, and the direct fallback.

use super::journal::{HEADER, MAGIC};
use super::*;
use crate::store::schema;
use crate::store::{SqliteStore, Store};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;

/// A migrated database with posts 1..=`posts`.
fn database(posts: i64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let mut conn = connect(&path);
    schema::migrate(&mut conn).unwrap();
    for id in 1..=posts {
        conn.execute(
            "INSERT INTO posts (id, created_at, updated_at, title, name, description, markdown,
                                html)
             VALUES (?1, 0, 0, 't', 'n', '', '', '<p></p>')",
            [id],
        )
        .unwrap();
    }
    (dir, path)
}

fn connect(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    schema::configure(&conn).unwrap();
    conn
}

fn counter(path: &Path) -> ViewCounter {
    ViewCounter::open(path, Arc::new(Mutex::new(())))
}

/// What a worker starting now does: recovers dead journals; then it exits cleanly.
fn recover_once(db: &Path, conn: &Connection) -> u64 {
    let views = counter(db);
    let counted = views.recover(conn);
    views.retire(conn);
    counted
}

fn views_of(conn: &Connection, id: i64) -> i64 {
    conn.query_row("SELECT view_count FROM posts WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .unwrap()
}

fn journal_rows(conn: &Connection) -> i64 {
    conn.query_row("SELECT COUNT(*) FROM view_journals", [], |r| r.get(0))
        .unwrap()
}

fn files(db: &Path) -> Vec<PathBuf> {
    Orphan::candidates(&journal_dir(db)).unwrap()
}

/// Writes a journal by hand, as a worker that died would have left it.
fn write_journal(db: &Path, name: &str, base: u64, records: &[i64], tail: &[u8]) -> PathBuf {
    let dir = journal_dir(db);
    std::fs::create_dir_all(&dir).unwrap();
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&base.to_le_bytes());
    for id in records {
        bytes.extend_from_slice(&id.to_le_bytes());
    }
    bytes.extend_from_slice(tail);
    let path = dir.join(format!("{name}.log"));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn set_applied(conn: &Connection, name: &str, applied: i64) {
    conn.execute(
        "INSERT INTO view_journals (name, applied_offset) VALUES (?1, ?2)",
        r2d2_sqlite::rusqlite::params![name, applied],
    )
    .unwrap();
}

#[test]
fn views_from_many_threads_are_committed_exactly_once() {
    let (_dir, db) = database(3);
    let views = Arc::new(counter(&db));
    let recording = Arc::new(AtomicBool::new(true));
    let flusher = {
        let (views, recording) = (Arc::clone(&views), Arc::clone(&recording));
        let conn = connect(&db);
        std::thread::spawn(move || {
            while recording.load(Ordering::Relaxed) {
                views.flush(&conn).unwrap();
            }
        })
    };
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let views = Arc::clone(&views);
            std::thread::spawn(move || {
                for i in 0..500 {
                    assert!(views.record(1 + i % 3).is_some());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    recording.store(false, Ordering::Relaxed);
    flusher.join().unwrap();
    let conn = connect(&db);
    views.flush(&conn).unwrap();
    assert_eq!(
        [1, 2, 3].map(|id| views_of(&conn, id)),
        [8 * 167, 8 * 167, 8 * 166]
    );
    let applied = ledger::applied_offset(&conn, views.journal_name().unwrap()).unwrap();
    assert_eq!(applied, 4000 * 8, "the offset covers every record");
    assert_eq!(views.flush(&conn).unwrap(), 0, "nothing left to commit");
}

#[test]
fn a_page_shows_each_of_its_readers_views_once_across_flushes() {
    let (dir, db) = database(1);
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    let flushing = Arc::new(AtomicBool::new(true));
    let flusher = {
        let (store, flushing) = (Arc::clone(&store), Arc::clone(&flushing));
        std::thread::spawn(move || {
            while flushing.load(Ordering::Relaxed) {
                store.flush_views().unwrap();
            }
        })
    };
    for seen in 1..=1000 {
        let count = store.count_view(1).unwrap().unwrap();
        assert_eq!(count.views, seen, "the page a reader gets");
    }
    flushing.store(false, Ordering::Relaxed);
    flusher.join().unwrap();
    assert_eq!(store.count_view(1001).unwrap(), None, "a missing post");
    drop(store);
    // The final flush committed everything and removed the journal and its row.
    let conn = connect(&db);
    assert_eq!(views_of(&conn, 1), 1000);
    assert!(files(&db).is_empty(), "{:?}", files(&db));
    assert_eq!(journal_rows(&conn), 0);
    drop(dir);
}

#[test]
fn a_dead_workers_journal_is_applied_once_by_racing_recoverers() {
    let (_dir, db) = database(2);
    let conn = connect(&db);
    let dead = counter(&db);
    for id in [1; 30].iter().chain(&[2; 20]) {
        dead.record(*id).unwrap();
    }
    assert_eq!(dead.flush(&conn).unwrap(), 50);
    for _ in 0..25 {
        dead.record(1).unwrap();
    }
    // Killed: 25 views only in the journal, its lock released by the kernel.
    dead.abandon();
    drop(dead);
    assert_eq!((views_of(&conn, 1), views_of(&conn, 2)), (30, 20));

    let start = Arc::new(Barrier::new(4));
    let recoverers: Vec<_> = (0..4)
        .map(|_| {
            let (db, start) = (db.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                let (conn, views) = (connect(&db), counter(&db));
                start.wait();
                let counted = views.recover(&conn);
                views.retire(&conn);
                counted
            })
        })
        .collect();
    let counted: u64 = recoverers.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(
        counted, 25,
        "one recoverer counted the dead journal's unapplied views"
    );
    assert_eq!((views_of(&conn, 1), views_of(&conn, 2)), (55, 20));
    assert_eq!(
        recover_once(&db, &conn),
        0,
        "recovering again counts nothing"
    );
    assert_eq!((views_of(&conn, 1), views_of(&conn, 2)), (55, 20));
    assert!(files(&db).is_empty(), "{:?}", files(&db));
    assert_eq!(journal_rows(&conn), 0);
}

#[test]
fn a_torn_tail_is_ignored_and_the_applied_offset_is_honoured() {
    let (_dir, db) = database(2);
    let conn = connect(&db);
    // Two records already counted; a partial record at the end (the write that was cut off).
    write_journal(&db, "4242-1-0", 0, &[1, 1, 2, 2, 2], &[7, 0, 0]);
    set_applied(&conn, "4242-1-0", 16);
    assert_eq!(recover_once(&db, &conn), 3);
    assert_eq!((views_of(&conn, 1), views_of(&conn, 2)), (0, 3));
    assert!(files(&db).is_empty());
    assert_eq!(journal_rows(&conn), 0);
}

#[test]
fn no_crash_point_of_a_cleanup_counts_anything_twice() {
    let (_dir, db) = database(1);
    let conn = connect(&db);
    // Died right after committing everything (file whole, row at its end).
    write_journal(&db, "1-1-0", 0, &[1, 1], &[]);
    set_applied(&conn, "1-1-0", 16);
    // Died after emptying the file, before deleting the row.
    write_journal(&db, "1-2-0", 16, &[], &[]);
    set_applied(&conn, "1-2-0", 16);
    // Died after deleting the row, before removing the emptied file.
    write_journal(&db, "1-3-0", 40, &[], &[]);
    // Died while a staged file was being written.
    let staged = journal_dir(&db).join("1-4-0.new");
    std::fs::write(&staged, MAGIC).unwrap();
    // A journal started over at offset 24, counted up to 32.
    write_journal(&db, "1-5-0", 24, &[1, 1, 1], &[]);
    set_applied(&conn, "1-5-0", 32);

    assert_eq!(recover_once(&db, &conn), 2, "only 1-5-0's last two records");
    assert_eq!(views_of(&conn, 1), 2);
    assert!(files(&db).is_empty(), "{:?}", files(&db));
    assert_eq!(journal_rows(&conn), 0);
}

#[test]
fn a_long_journal_starts_over_and_a_crash_after_loses_nothing() {
    let (_dir, db) = database(2);
    let gate = Arc::new(Mutex::new(()));
    // Started over whenever it holds 8 records or more.
    let views = Arc::new(ViewCounter::with_restart_at(&db, gate, 64));
    let recording = Arc::new(AtomicBool::new(true));
    let flusher = {
        let (views, recording) = (Arc::clone(&views), Arc::clone(&recording));
        let conn = connect(&db);
        std::thread::spawn(move || {
            while recording.load(Ordering::Relaxed) {
                views.flush(&conn).unwrap();
            }
        })
    };
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let views = Arc::clone(&views);
            std::thread::spawn(move || {
                for _ in 0..300 {
                    views.record(1 + t % 2).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    recording.store(false, Ordering::Relaxed);
    flusher.join().unwrap();
    // The flusher may have lost every race with the writers on a busy machine: one flush
    // with nothing recording makes the start-over deterministic.
    views.flush(&connect(&db)).unwrap();
    let journal = files(&db).pop().unwrap();
    let length = std::fs::metadata(&journal).unwrap().len();
    assert!(length < HEADER + 1200 * 8, "started over: {length} bytes");
    // Pending views at the crash are recovered from the restarted file.
    for _ in 0..5 {
        views.record(2).unwrap();
    }
    views.abandon();
    drop(views);
    let conn = connect(&db);
    recover_once(&db, &conn);
    assert_eq!((views_of(&conn, 1), views_of(&conn, 2)), (600, 605));
}

#[test]
fn without_a_journal_every_view_is_its_own_committed_update() {
    let (_dir, db) = database(1);
    // A file where the journal directory should be: creating the journal fails.
    std::fs::write(journal_dir(&db), b"in the way").unwrap();
    let store = SqliteStore::open(&db).unwrap();
    assert_eq!(store.count_view(1).unwrap().unwrap().views, 1);
    assert_eq!(store.count_view(1).unwrap().unwrap().views, 2);
    assert_eq!(views_of(&connect(&db), 1), 2, "committed before the page");
}

#[test]
fn views_of_a_killed_worker_are_counted_by_a_live_sibling_within_seconds() {
    let (_dir, db) = database(1);
    let sibling = SqliteStore::open(&db).unwrap();
    let killed = SqliteStore::open(&db).unwrap();
    for seen in 1..=10 {
        assert_eq!(killed.count_view(1).unwrap().unwrap().views, seen);
    }
    // No final flush: whatever the upkeep thread had not committed is only in the journal.
    killed.abandon_views();
    drop(killed);
    let conn = connect(&db);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // Counted (by the sibling, or by the upkeep thread before the kill), and the dead
    // journal removed: only the sibling's own is left.
    while views_of(&conn, 1) != 10 || files(&db).len() != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "not recovered in 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(sibling);
    assert_eq!(views_of(&conn, 1), 10);
    assert!(files(&db).is_empty());
}

#[test]
fn a_batch_that_landed_although_its_commit_failed_is_not_counted_again() {
    let (_dir, db) = database(1);
    let conn = connect(&db);
    let views = counter(&db);
    for _ in 0..10 {
        views.record(1).unwrap();
    }
    assert_eq!(views.flush(&conn).unwrap(), 10);
    for _ in 0..5 {
        views.record(1).unwrap();
    }
    // A commit that lands although its caller hears of an error: here, the same batch
    // committed behind the counter's back, which still believes offset 80.
    let name = views.journal_name().unwrap().to_string();
    let landed = ledger::apply(&conn, &name, &Counts::from([(1, 5)]), (80, 120)).unwrap();
    assert_eq!(landed, ledger::Applied::Done);
    for _ in 0..2 {
        views.record(1).unwrap();
    }
    assert_eq!(
        views.flush(&conn).unwrap(),
        0,
        "the batch from 80 is refused"
    );
    assert_eq!(views_of(&conn, 1), 15);
    assert_eq!(
        views.flush(&conn).unwrap(),
        2,
        "resumed from the journal after 120"
    );
    assert_eq!(views_of(&conn, 1), 17);
    let stale = ledger::apply(&conn, &name, &Counts::from([(1, 1)]), (80, 88)).unwrap();
    assert_eq!(stale, ledger::Applied::Elsewhere(136));
    assert_eq!(views_of(&conn, 1), 17, "a refused batch changes nothing");
    views.retire(&conn);
    assert!(files(&db).is_empty());
}
