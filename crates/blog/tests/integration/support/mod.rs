//! Shared helpers for the blog's integration tests: an [`App`] on a fresh SQLite file in a
//! temp directory, and requests built the way the http crate hands them over.

use blog::{App, Config, DatabaseTarget, Mode};
use http::{Handler, Request, Response, Version};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// An app and the directory holding its database; the directory lives as long as this.
pub struct Blog {
    pub app: App,
    pub dir: tempfile::TempDir,
}

impl Blog {
    pub fn new() -> Blog {
        Blog::with(|_| {})
    }

    /// A blog whose config `adjust` may change before the app starts.
    pub fn with(adjust: impl FnOnce(&mut Config)) -> Blog {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_in(dir.path());
        adjust(&mut config);
        let app = App::new(config).unwrap();
        Blog { app, dir }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("blog.db")
    }

    pub fn get(&self, target: &str) -> Response {
        self.app.handle(&request("GET", target, &[], Vec::new()))
    }

    pub fn post(&self, target: &str, fields: &[(&str, &str)]) -> Response {
        self.app.handle(&form_request(target, fields))
    }

    /// Creates a post through the app and returns its id.
    pub fn create(&self, title: &str, name: &str, content: &str) -> i64 {
        let res = self.post(
            "/posts",
            &[("title", title), ("name", name), ("content", content)],
        );
        assert_eq!(res.status, 303, "create failed: {}", body(&res));
        let location = res.header("Location").unwrap();
        location.strip_prefix("/posts/").unwrap().parse().unwrap()
    }

    /// A raw connection to the same database, for setting up rows directly.
    pub fn sql(&self) -> r2d2_sqlite::rusqlite::Connection {
        let conn = r2d2_sqlite::rusqlite::Connection::open(self.db_path()).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        conn
    }
}

/// A config with the database in `dir` and no override directories.
pub fn config_in(dir: &Path) -> Config {
    Config {
        database: DatabaseTarget::Sqlite(dir.join("blog.db")),
        mode: Mode::Production,
        site_url: None,
        templates_dir: dir.join("no-templates"),
        static_dir: dir.join("no-static"),
        fault_routes: false,
    }
}

pub fn request(method: &str, target: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Request {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        target: target.to_string(),
        version: Version::Http11,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect(),
        body,
        peer: None,
    }
}

pub fn form_request(target: &str, fields: &[(&str, &str)]) -> Request {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    request(
        "POST",
        target,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.into_bytes(),
    )
}

/// `application/x-www-form-urlencoded` encoding, as a browser sends it.
pub fn urlencode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub fn body(res: &Response) -> String {
    String::from_utf8_lossy(res.body.as_bytes()).into_owned()
}

/// Polls `cond` every 20 ms until it holds; fails the test, naming `what`, after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "{what} not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
