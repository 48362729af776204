//! How long the app itself takes per page, without sockets: home, a list page and a post
//! view on a database of 200 posts (and 100k with `PYBLOGD_BENCH_POSTS=100000`).
//! Run with `cargo bench -p pyblogd-blog`; compare with `scripts/bench` for the whole server.

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
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
        peer: None,
    }
}

fn pages(c: &mut Criterion) {
    let posts: usize = std::env::var("PYBLOGD_BENCH_POSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(Config {
        database: DatabaseTarget::Sqlite(dir.path().join("bench.db")),
        mode: Mode::Production,
        site_url: Some("https://blog.example".into()),
        templates_dir: dir.path().join("none"),
        static_dir: dir.path().join("none"),
        fault_routes: false,
    })
    .unwrap();
    let content = "title=A+post+about+Rust&name=ann&content=Some+*text*%0A%0A%60%60%60rust%0Afn+main()+%7B%7D%0A%60%60%60";
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
}

criterion_group!(benches, pages);
criterion_main!(benches);
