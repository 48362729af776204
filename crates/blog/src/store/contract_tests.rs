//! The [`Store`] contract, run against both backends: SQLite always, PostgreSQL when
//! `PYBLOGD_TEST_POSTGRES` names a cluster (`scripts/test` starts one; under CI it must).
//!
//! Each check goes through the trait only, so a handler sees the same behaviour whichever
//! database is configured.

use super::*;
use crate::config::{DatabaseTarget, PostgresTarget};
use crate::security::Digest256;
use std::time::Duration;

fn draft(title: &str) -> Draft {
    Draft {
        title: title.to_string(),
        name: "ann".to_string(),
        markdown: format!("# {title}"),
        html: format!("<h1>{title}</h1>"),
        description: title.to_string(),
    }
}

/// A post as `import` takes it, with a chosen id, times and count.
fn imported(id: i64, created_at: i64, views: i64, html: &str) -> Post {
    Post {
        summary: PostSummary {
            id,
            title: format!("post {id}"),
            name: "bo".to_string(),
            description: format!("about {id}"),
            created_at,
            updated_at: created_at + 5,
            view_count: views,
        },
        markdown: format!("body of {id}"),
        html: html.to_string(),
    }
}

fn exercise(store: &dyn Store) {
    store.ping().expect("ping");
    let zero = store.stats().unwrap();
    assert_eq!(zero.total, 0);

    // Create, read, edit, delete.
    let id = store.create(&draft("one"), 100, None).unwrap();
    let post = store.find(id).unwrap().expect("created post");
    assert_eq!(post.summary.title, "one");
    assert_eq!(
        (post.summary.created_at, post.summary.updated_at),
        (100, 100)
    );
    assert_eq!(post.html, "<h1>one</h1>");
    let one = store.stats().unwrap();
    assert_eq!(one.total, 1);
    assert!(one.generation > zero.generation);

    // Views: each returns the count including itself, and none bumps the generation.
    for expected in 1..=3 {
        let counted = store.count_view(id).unwrap().expect("post exists");
        assert_eq!(counted.views, expected);
        assert_eq!(counted.generation, one.generation);
    }
    assert_eq!(store.count_view(id + 1000).unwrap(), None);
    assert_eq!(store.view_count(id + 1000).unwrap(), None);
    assert_eq!(
        store.stats().unwrap(),
        one,
        "views leave the generation alone"
    );

    assert!(store.update(id, &draft("uno"), 200).unwrap());
    let edited = store.find(id).unwrap().unwrap();
    assert_eq!(
        (edited.summary.created_at, edited.summary.updated_at),
        (100, 200)
    );
    assert_eq!(edited.summary.title, "uno");
    assert!(store.stats().unwrap().generation > one.generation);
    assert!(store.delete(id).unwrap());
    assert!(!store.delete(id).unwrap());
    assert!(!store.update(id, &draft("x"), 300).unwrap());
    assert_eq!(store.find(id).unwrap(), None);
    assert_eq!(store.stats().unwrap().total, 0);

    // Import keeps ids, times and counts; lists and popularity read them back.
    let posts = vec![
        imported(10, 1_000, 5, "<p>10</p>"),
        imported(11, 2_000, 50, "<p>11</p>"),
        imported(12, 3_000, 7, ""),
    ];
    store.import(&posts).unwrap();
    store.import(&posts).unwrap(); // idempotent
    assert_eq!(store.stats().unwrap().total, 3);
    assert_eq!(store.export(0, 100).unwrap(), posts);
    assert_eq!(store.export(10, 1).unwrap(), posts[1..2].to_vec());
    let latest: Vec<i64> = store.latest(0, 10).unwrap().iter().map(|p| p.id).collect();
    assert_eq!(latest, [12, 11, 10]);
    let page2: Vec<i64> = store.latest(1, 1).unwrap().iter().map(|p| p.id).collect();
    assert_eq!(page2, [11]);
    let popular: Vec<i64> = store
        .popular_since(1_500, 10)
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(popular, [11, 12], "most viewed first, older posts left out");
    assert_eq!(store.view_count(11).unwrap().map(|v| v.views), Some(50));

    // Posts without HTML (adopted ones) are rendered once.
    assert_eq!(
        store.unrendered(10).unwrap(),
        [(12, "body of 12".to_string())]
    );
    store.set_rendered(12, "<p>12</p>", "twelve").unwrap();
    store.set_rendered(12, "<p>again</p>", "again").unwrap();
    assert_eq!(store.find(12).unwrap().unwrap().html, "<p>12</p>");
    assert!(store.unrendered(10).unwrap().is_empty());

    // A post created after an import takes an id past the imported ones.
    let next = store.create(&draft("next"), 4_000, None).unwrap();
    assert!(next > 12, "id {next}");

    // Edit keys: only the hash is kept, a post without one is the admin's alone, and the
    // hash goes with its post.
    let hash: Digest256 = [7; 32];
    let keyed = store.create(&draft("keyed"), 4_001, Some(&hash)).unwrap();
    assert_eq!(store.edit_key(keyed).unwrap(), Some(Some(hash)));
    assert_eq!(
        store.edit_key(next).unwrap(),
        Some(None),
        "no key: admin only"
    );
    assert_eq!(store.edit_key(99_999).unwrap(), None, "no such post");
    let other: Digest256 = [9; 32];
    store.set_edit_key(next, Some(&other)).unwrap();
    assert_eq!(store.edit_key(next).unwrap(), Some(Some(other)));
    store.set_edit_key(next, None).unwrap();
    assert_eq!(store.edit_key(next).unwrap(), Some(None));
    assert!(store.delete(keyed).unwrap());
    assert_eq!(store.edit_key(keyed).unwrap(), None);

    // POST rate buckets: two a minute, then a wait; another address has its own bucket, and
    // a refill half a minute later gives one token back.
    assert_eq!(
        store.take_post_token("192.0.2.1", 10_000.0, 2).unwrap(),
        Ok(())
    );
    assert_eq!(
        store.take_post_token("192.0.2.1", 10_000.0, 2).unwrap(),
        Ok(())
    );
    let wait = store
        .take_post_token("192.0.2.1", 10_000.0, 2)
        .unwrap()
        .expect_err("the bucket is empty");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(30),
        "{wait:?}"
    );
    assert_eq!(
        store.take_post_token("192.0.2.2", 10_000.0, 2).unwrap(),
        Ok(())
    );
    assert_eq!(
        store.take_post_token("192.0.2.1", 10_030.0, 2).unwrap(),
        Ok(())
    );
}

#[test]
fn sqlite_keeps_the_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("contract.db")).unwrap();
    exercise(&store);
}

/// The test cluster's admin URI, or `None` outside CI when there is none.
fn postgres_admin() -> Option<String> {
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

/// A new empty database on the test cluster, as a target with the given statement timeout.
fn fresh_postgres(admin: &str, name: &str, statement_timeout: Duration) -> PostgresTarget {
    use r2d2_postgres::postgres::{Client, NoTls};
    let db = format!("pyblogd_unit_{name}_{}", std::process::id());
    let mut client = Client::connect(admin, NoTls).unwrap();
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .unwrap();
    client
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .unwrap();
    let (server, _) = admin.rsplit_once('/').unwrap();
    match DatabaseTarget::parse(&format!("{server}/{db}")).unwrap() {
        DatabaseTarget::Postgres(mut target) => {
            target.statement_timeout = statement_timeout;
            target
        }
        other => panic!("not postgres: {other:?}"),
    }
}

#[test]
fn postgres_keeps_the_store_contract() {
    let Some(admin) = postgres_admin() else {
        return;
    };
    let target = fresh_postgres(&admin, "contract", Duration::from_secs(10));
    let store = PostgresStore::open(&target).unwrap();
    exercise(&store);
    // Opening again finds the schema in place and migrates nothing.
    let again = PostgresStore::open(&target).unwrap();
    assert_eq!(again.stats().unwrap().total, 4);
}

#[test]
fn postgres_statement_timeout_is_a_busy_database_not_a_hang() {
    let Some(admin) = postgres_admin() else {
        return;
    };
    let target = fresh_postgres(&admin, "timeout", Duration::from_millis(200));
    let store = PostgresStore::open(&target).unwrap();
    let started = std::time::Instant::now();
    let slow = store.with(|client| client.simple_query("SELECT pg_sleep(5)").map(|_| ()));
    assert!(matches!(slow, Err(StoreError::Busy(_))), "{slow:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    store.ping().expect("the connection is still usable");
}
