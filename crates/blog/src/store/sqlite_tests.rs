//! Tests of the SQLite store on real database files: counters, plans, migrations, locks.

use super::*;
use std::time::Duration;

fn draft(title: &str) -> Draft {
    Draft {
        title: title.to_string(),
        name: "ann".to_string(),
        markdown: "body".to_string(),
        html: "<p>body</p>".to_string(),
        description: "body".to_string(),
    }
}

#[test]
fn write_io_errors_are_write_refusals_but_read_errors_are_not() {
    let failure = |code| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
    let write = classify(failure(rusqlite::ffi::SQLITE_IOERR_WRITE));
    assert!(matches!(write, StoreError::Unwritable(_)), "{write:?}");
    let read = classify(failure(rusqlite::ffi::SQLITE_IOERR_READ));
    assert!(matches!(read, StoreError::Failed(_)), "{read:?}");
}

#[test]
fn stats_follow_creates_edits_and_deletes_but_not_views() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("b.db")).unwrap();
    let zero = store.stats().unwrap();
    assert_eq!(zero.total, 0);
    let id = store.create(&draft("one"), 100, None).unwrap();
    let one = store.stats().unwrap();
    assert_eq!(one.total, 1);
    assert!(one.generation > zero.generation);
    store.count_view(id).unwrap().unwrap();
    assert_eq!(
        store.stats().unwrap(),
        one,
        "a view must not bump the generation"
    );
    assert!(store.update(id, &draft("uno"), 200).unwrap());
    assert!(store.stats().unwrap().generation > one.generation);
    assert!(store.delete(id).unwrap());
    assert_eq!(store.stats().unwrap().total, 0);
    assert!(!store.delete(id).unwrap());
    assert!(!store.update(id, &draft("x"), 300).unwrap());
}

#[test]
fn list_queries_use_the_index_not_a_sort_of_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let _store = SqliteStore::open(&path).unwrap();
    let conn = Connection::open(&path).unwrap();
    let plan = |sql: &str| -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt.query_map([10], |r| r.get::<_, String>(3)).unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("; ")
    };
    let latest = plan(&latest_sql(5));
    assert!(
        latest.contains("SCAN posts USING COVERING INDEX posts_by_created_at"),
        "{latest}"
    );
    let popular = plan(&popular_sql(5));
    assert!(
        popular.contains("COVERING INDEX posts_by_created_at_and_views (created_at>?)"),
        "{popular}"
    );
}

#[test]
fn an_older_schema_is_migrated_forward_keeping_its_posts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let store = SqliteStore::open(&path).unwrap();
    let id = store.create(&draft("kept"), 100, None).unwrap();
    drop(store);
    // Make it look like a version 1 database.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP INDEX posts_by_created_at_and_views; DROP TABLE view_journals;
         DROP TABLE post_keys; DROP TABLE post_rate;
         PRAGMA user_version = 1",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.find(id).unwrap().unwrap().summary.title, "kept");
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 4);
    let index: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'posts_by_created_at_and_views'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, 1);
}

#[test]
fn a_missing_directory_or_a_corrupt_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope").join("b.db");
    let err = SqliteStore::open(&missing).err().unwrap();
    assert!(
        err.starts_with(&format!("cannot open {}", missing.display())),
        "{err}"
    );
    assert!(err.contains("does not exist"), "{err}");

    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![b'x'; 8192]).unwrap();
    let err = SqliteStore::open(&junk).err().unwrap();
    assert!(err.contains("not a database"), "{err}");
}

#[test]
fn a_held_write_lock_makes_writes_busy_but_reads_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let store = SqliteStore::open(&path).unwrap();
    let id = store.create(&draft("one"), 100, None).unwrap();
    let blocker = Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    let err = store.create(&draft("two"), 101, None).unwrap_err();
    assert!(matches!(err, StoreError::Busy(_)), "{err:?}");
    assert!(started.elapsed() >= schema::BUSY_TIMEOUT - Duration::from_millis(500));
    assert!(store.find(id).unwrap().is_some());
    blocker.execute_batch("ROLLBACK").unwrap();
    assert!(store.create(&draft("two"), 101, None).is_ok());
}

#[test]
fn the_background_thread_folds_the_wal_into_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let store = SqliteStore::open(&path).unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    let mut big = draft("big");
    big.html = "x".repeat(64 * 1024);
    for _ in 0..8 {
        store.create(&big, 100, None).unwrap();
    }
    // Commits never checkpoint by themselves, so the database file only grows once the
    // background thread has run.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&path).unwrap().len() < before + 8 * 64 * 1024 {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn edit_keys_are_stored_as_given_and_go_with_their_post() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("b.db")).unwrap();
    let hash = [7u8; 32];
    let keyed = store.create(&draft("keyed"), 100, Some(&hash)).unwrap();
    let keyless = store.create(&draft("adopted"), 100, None).unwrap();
    assert_eq!(store.edit_key(keyed).unwrap(), Some(Some(hash)));
    assert_eq!(store.edit_key(keyless).unwrap(), Some(None), "admin only");
    assert_eq!(store.edit_key(999).unwrap(), None, "no such post");
    assert!(store.delete(keyed).unwrap());
    assert_eq!(store.edit_key(keyed).unwrap(), None);
    let conn = Connection::open(dir.path().join("b.db")).unwrap();
    let left: i64 = conn
        .query_row("SELECT COUNT(*) FROM post_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0, "the key row is deleted with its post");
}

#[test]
fn the_post_bucket_is_shared_by_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let first = SqliteStore::open(&path).unwrap();
    let second = SqliteStore::open(&path).unwrap();
    assert_eq!(
        first.take_post_token("10.0.0.1", 1000.0, 2).unwrap(),
        Ok(())
    );
    assert_eq!(
        second.take_post_token("10.0.0.1", 1000.0, 2).unwrap(),
        Ok(())
    );
    assert!(
        first
            .take_post_token("10.0.0.1", 1000.0, 2)
            .unwrap()
            .is_err(),
        "two a minute, whichever worker counts them"
    );
    assert_eq!(
        second.take_post_token("10.0.0.2", 1000.0, 2).unwrap(),
        Ok(())
    );
    assert_eq!(
        first.take_post_token("10.0.0.1", 1030.0, 2).unwrap(),
        Ok(()),
        "a token back after 30 s"
    );
}
