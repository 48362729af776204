//! The database as an operator meets it: created on first run, shared by workers that start
//! together, clear errors when it cannot be opened, 503 when it is locked.

use crate::support;

use blog::{App, DatabaseTarget, Error};
use std::sync::{Arc, Barrier};
use support::{body, config_in, Blog};

#[test]
fn a_fresh_database_is_created_with_its_schema_on_first_run() {
    let blog = Blog::new();
    assert!(blog.db_path().is_file());
    let conn = blog.sql();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 4, "version 4 added edit keys and POST buckets");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('posts')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for column in [
        "id",
        "title",
        "name",
        "markdown",
        "html",
        "created_at",
        "updated_at",
        "view_count",
    ] {
        assert!(
            columns.iter().any(|c| c == column),
            "{column} in {columns:?}"
        );
    }
    assert_eq!(blog.get("/").status, 200);
}

#[test]
fn apps_started_together_on_one_new_file_all_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let start = Arc::new(Barrier::new(4));
    let apps: Vec<App> = (0..4)
        .map(|_| {
            let start = Arc::clone(&start);
            let config = config_in(&path);
            std::thread::spawn(move || {
                start.wait();
                App::new(config)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    let form = [("title", "shared"), ("name", "n"), ("content", "c")];
    let res = http::Handler::handle(&apps[0], &support::form_request("/posts", &form));
    assert_eq!(res.status, 303);
    let location = res.header("Location").unwrap();
    for app in &apps {
        let page = http::Handler::handle(app, &support::request("GET", location, &[], vec![]));
        assert_eq!(page.status, 200);
    }
    // Each view is journaled by its app; stopping the apps commits them all, once.
    drop(apps);
    let views = total_views(&path.join("blog.db"));
    assert_eq!(views, 4);
    let journals = std::fs::read_dir(path.join("blog.db.views"))
        .unwrap()
        .count();
    assert_eq!(journals, 0, "every app removed its view journal at exit");
}

fn total_views(path: &std::path::Path) -> i64 {
    let conn = r2d2_sqlite::rusqlite::Connection::open(path).unwrap();
    conn.query_row("SELECT SUM(view_count) FROM posts", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn unusable_databases_fail_to_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    let missing = dir.path().join("no/such/dir/blog.db");
    config.database = DatabaseTarget::Sqlite(missing.clone());
    match App::new(config.clone()) {
        Err(Error::Database(message)) => {
            assert!(
                message.starts_with(&format!("cannot open {}", missing.display())),
                "{message}"
            );
        }
        other => panic!("expected a database error, got {:?}", other.err()),
    }
    let corrupt = dir.path().join("corrupt.db");
    std::fs::write(
        &corrupt,
        b"this is not an SQLite database, just some text".repeat(200),
    )
    .unwrap();
    config.database = DatabaseTarget::Sqlite(corrupt.clone());
    match App::new(config) {
        Err(Error::Database(message)) => {
            assert!(
                message.contains(&corrupt.display().to_string()),
                "{message}"
            );
            assert!(message.contains("not a database"), "{message}");
        }
        other => panic!("expected a database error, got {:?}", other.err()),
    }
}

#[test]
fn a_relative_path_is_relative_to_the_working_directory() {
    assert_eq!(
        DatabaseTarget::parse("sqlite:///data/blog.db").unwrap(),
        DatabaseTarget::Sqlite("data/blog.db".into())
    );
    assert!(matches!(
        DatabaseTarget::parse("postgresql://localhost/blog"),
        Ok(DatabaseTarget::Postgres(_))
    ));
    assert!(DatabaseTarget::parse("mysql://localhost/blog").is_err());
}

#[test]
fn a_locked_database_answers_503_keeps_the_form_and_still_serves_reads() {
    let blog = Arc::new(Blog::new());
    let id = blog.create("Readable", "n", "c");
    let blocker = blog.sql();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let writer = {
        let blog = Arc::clone(&blog);
        std::thread::spawn(move || {
            blog.post(
                "/posts",
                &[
                    ("title", "Kept title"),
                    ("name", "n"),
                    ("content", "Kept body"),
                ],
            )
        })
    };
    let reader = {
        let blog = Arc::clone(&blog);
        std::thread::spawn(move || blog.get(&format!("/posts/{id}")))
    };
    let res = writer.join().unwrap();
    assert_eq!(res.status, 503);
    assert_eq!(res.header("Retry-After"), Some("1"));
    let html = body(&res);
    assert!(
        html.contains("value=\"Kept title\"") && html.contains("Kept body"),
        "{html}"
    );
    let page = reader.join().unwrap();
    assert_eq!(
        page.status, 200,
        "a view that cannot be counted is still served"
    );
    assert!(body(&page).contains("Readable"));
    blocker.execute_batch("ROLLBACK").unwrap();

    // Deleting while locked is a 503 page too.
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let res = blog.post(&format!("/posts/{id}/delete"), &[]);
    assert_eq!(res.status, 503);
    assert_eq!(res.header("Retry-After"), Some("1"));
    blocker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(blog.get(&format!("/posts/{id}")).status, 200);
}

#[test]
fn a_database_of_the_original_pyproject_is_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blog.db");
    let conn = r2d2_sqlite::rusqlite::Connection::open(&path).unwrap();
    // The table SQLAlchemy created for the original's `Post` model.
    conn.execute_batch(
        "CREATE TABLE posts (
             id INTEGER NOT NULL, created_at DATETIME NOT NULL, view_count INTEGER NOT NULL,
             title VARCHAR(100) NOT NULL, name VARCHAR(100) NOT NULL, content TEXT NOT NULL,
             markdown TEXT NOT NULL, PRIMARY KEY (id));
         INSERT INTO posts VALUES (3, '2021-08-14 10:20:30.123456', 42, 'Old post', 'srikar',
             '<p>old html</p>', '# Hello

```python
print(1)
```
');
         INSERT INTO posts VALUES (7, '2021-09-01 08:00:00.000000', 5, 'Second', 'sv',
             '<p>b</p>', 'Plain <script>alert(1)</script> text');",
    )
    .unwrap();
    drop(conn);

    let blog = Blog::with(|c| c.database = DatabaseTarget::Sqlite(path.clone()));
    let page = blog.get("/posts/3");
    assert_eq!(page.status, 200, "old links keep working");
    let html = body(&page);
    assert!(
        html.contains("<h1>Old post</h1>") && html.contains("srikar"),
        "{html}"
    );
    assert!(
        html.contains("pre class=\"hl-code\""),
        "re-rendered with highlighting: {html}"
    );
    assert!(html.contains("43 views"), "views carried over: {html}");
    assert!(
        html.contains("datetime=\"2021-08-14T10:20:30Z\""),
        "created time kept: {html}"
    );
    assert!(!body(&blog.get("/posts/7")).contains("<script>alert"));
    assert!(body(&blog.get("/posts")).contains("2 posts"));
    let id = blog.create("New", "n", "c");
    assert_eq!(id, 8, "ids continue after the adopted ones");
    let backup: i64 = r2d2_sqlite::rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM legacy_posts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(backup, 2, "the original table is kept as a backup");
}

/// Writes a view journal as a worker killed with views not yet committed leaves it: a header
/// (magic, offset of the first record) and one post id per view, the last one cut short.
fn dead_workers_journal(dir: &std::path::Path, id: i64, views: usize) {
    let journals = dir.join("blog.db.views");
    std::fs::create_dir_all(&journals).unwrap();
    let mut bytes = b"pbviews1".to_vec();
    bytes.extend_from_slice(&0u64.to_le_bytes());
    for _ in 0..views {
        bytes.extend_from_slice(&id.to_le_bytes());
    }
    bytes.extend_from_slice(&id.to_le_bytes()[..5]);
    std::fs::write(journals.join("4000000-1-0.log"), bytes).unwrap();
}

#[test]
fn a_dead_workers_view_journal_is_counted_once_by_apps_starting_together() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(config_in(dir.path())).unwrap();
    let form = [("title", "counted"), ("name", "n"), ("content", "c")];
    let res = http::Handler::handle(&app, &support::form_request("/posts", &form));
    let id: i64 = res.header("Location").unwrap()["/posts/".len()..]
        .parse()
        .unwrap();
    drop(app);
    dead_workers_journal(dir.path(), id, 7);

    let start = Arc::new(Barrier::new(3));
    let apps: Vec<App> = (0..3)
        .map(|_| {
            let (start, config) = (Arc::clone(&start), config_in(dir.path()));
            std::thread::spawn(move || {
                start.wait();
                App::new(config)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    let db = dir.path().join("blog.db");
    assert_eq!(
        total_views(&db),
        7,
        "counted at start, once, torn record ignored"
    );
    let page = http::Handler::handle(
        &apps[1],
        &support::request("GET", &format!("/posts/{id}"), &[], vec![]),
    );
    assert!(body(&page).contains("8 views"), "{}", body(&page));
    drop(apps);
    assert_eq!(total_views(&db), 8);
    let left = std::fs::read_dir(dir.path().join("blog.db.views"))
        .unwrap()
        .count();
    assert_eq!(left, 0, "the dead journal and every app's own are gone");
}
