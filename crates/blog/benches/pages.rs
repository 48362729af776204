//! How long the app itself takes per page, without sockets: home, a list page and a post
//! view on a database of 200 posts (and 100k with `PYBLOGD_BENCH_POSTS=100000`), as served
//! (from the page cache, rendered once a second) and rendered every time (development mode);
//! and saving a post (Markdown, highlighting, sanitising, the insert).
//! Run with `cargo bench -p pyblogd-blog`; compare with `scripts/bench` for the whole server.

// A measurement harness, never run in production: a failed unwrap aborts the run, as it should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use blog::{App, Config, DatabaseTarget, Mode};
use criterion::{criterion_group, criterion_main, Criterion};
use http::{Handler, Request, Version};

fn request(method: &str, target: &str, body: &str) -> Request {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Request {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        target: target.into(),
        version: Version::Http11,
        // Our own page's POST: the origin and the double-submit CSRF cookie (and field).
        headers: vec![
            ("Host".into(), b"bench".to_vec()),
            ("Origin".into(), b"http://bench".to_vec()),
            ("Cookie".into(), b"pyblogd_csrf=00ff".to_vec()),
        ],
        body: body.as_bytes().to_vec(),
        peer: None,
        client: None,
    }
}

/// A post with a paragraph, a list, a fenced Rust block and a table, as a form body.
const POST_FORM: &str =
    "csrf_token=00ff&title=A+post+about+Rust&name=ann&content=Some+*text*+about+**servers**.%0A%0A\
- one%0A- two%0A%0A%60%60%60rust%0Afn+main()+%7B%0A++++let+x+%3D+vec!%5B1%2C+2%5D%3B%0A++++\
println!(%22%7B%3A%3F%7D%22%2C+x)%3B%0A%7D%0A%60%60%60%0A%0A%7C+a+%7C+b+%7C%0A%7C---%7C---%7C%0A\
%7C+1+%7C+2+%7C%0A";

fn open_app(dir: &std::path::Path, mode: Mode) -> App {
    App::new(Config {
        database: DatabaseTarget::Sqlite(dir.join("bench.db")),
        mode,
        site_url: Some("https://blog.example".into()),
        templates_dir: dir.join("none"),
        static_dir: dir.join("none"),
        fault_routes: false,
        admin_token: None,
        post_rate_limit: 0,
    })
    .unwrap()
}

fn pages(c: &mut Criterion) {
    let posts: usize = std::env::var("PYBLOGD_BENCH_POSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let app = open_app(dir.path(), Mode::Production);
    let content = POST_FORM;
    for _ in 0..posts.min(200) {
        assert_eq!(app.handle(&request("POST", "/posts", content)).status, 303);
    }
    if posts > 200 {
        let conn = r2d2_sqlite::rusqlite::Connection::open(dir.path().join("bench.db")).unwrap();
        conn.execute(
            "WITH RECURSIVE n(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM n WHERE value < ?1)
             INSERT INTO posts (created_at, updated_at, view_count, title, name, description,
                                markdown, html)
             SELECT p.created_at - n.value, p.updated_at, p.view_count, p.title, p.name,
                    p.description, p.markdown, p.html
             FROM posts p, n WHERE p.id = 1",
            [(posts - 200) as i64],
        )
        .unwrap();
    }
    let mut group = c.benchmark_group(format!("{posts} posts"));
    group.bench_function("home", |b| b.iter(|| app.handle(&request("GET", "/", ""))));
    group.bench_function("list page 3", |b| {
        b.iter(|| app.handle(&request("GET", "/posts?page=3", "")))
    });
    group.bench_function("post view", |b| {
        b.iter(|| app.handle(&request("GET", "/posts/100", "")))
    });
    group.bench_function("stylesheet", |b| {
        b.iter(|| app.handle(&request("GET", "/static/style.css", "")))
    });
    group.finish();

    // The same database, every page rendered each time: what a cache miss costs.
    let uncached = open_app(dir.path(), Mode::Development);
    let mut group = c.benchmark_group(format!("{posts} posts, rendered each time"));
    group.bench_function("home", |b| {
        b.iter(|| uncached.handle(&request("GET", "/", "")))
    });
    group.bench_function("list page 3", |b| {
        b.iter(|| uncached.handle(&request("GET", "/posts?page=3", "")))
    });
    group.bench_function("post view", |b| {
        b.iter(|| uncached.handle(&request("GET", "/posts/100", "")))
    });
    group.finish();

    let mut group = c.benchmark_group("saving");
    group.bench_function("create post (Markdown, highlight, sanitise, insert)", |b| {
        b.iter(|| {
            let reply = app.handle(&request("POST", "/posts", POST_FORM));
            assert_eq!(reply.status, 303);
        })
    });
    group.finish();
}

criterion_group!(benches, pages);
criterion_main!(benches);
