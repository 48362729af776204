//! Shared helpers for the blog's integration tests: an [`App`] on a fresh SQLite file in a
//! temp directory, and requests built the way the http crate hands them over. [`Blog`] acts
//! as one browser: it keeps the cookies the app sets (edit keys) and sends every POST from
//! our own origin with the double-submit CSRF token, as our pages do.

use blog::{App, Config, DatabaseTarget, Mode};
use http::{Handler, Request, Response, Version};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The Host every test request names, and the origin our own pages post from.
pub const HOST: &str = "blog.test";
pub const ORIGIN: &str = "http://blog.test";
/// A CSRF token the test browser holds in its cookie and repeats in each form.
pub const CSRF: &str = "0123456789abcdef0123456789abcdef";

/// An app and the directory holding its database; the directory lives as long as this.
pub struct Blog {
    pub app: App,
    pub dir: tempfile::TempDir,
    /// Cookies the app set (name, value), sent back on every request like a browser would.
    pub jar: Mutex<Vec<(String, String)>>,
    /// The origin our pages post from: `SITE_URL`'s when set, else [`ORIGIN`].
    pub origin: String,
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
        let origin = match &config.site_url {
            // Scheme and authority: up to the first slash after `://`.
            Some(url) => {
                let authority_end = url[8..].find('/').map_or(url.len(), |at| at + 8);
                url[..authority_end].to_string()
            }
            None => ORIGIN.to_string(),
        };
        let app = App::new(config).unwrap();
        Blog {
            app,
            dir,
            jar: Mutex::new(Vec::new()),
            origin,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("blog.db")
    }

    pub fn get(&self, target: &str) -> Response {
        self.send("GET", target, &[], Vec::new())
    }

    /// POSTs a form from our own page: Origin, CSRF cookie and field, and the jar's cookies.
    pub fn post(&self, target: &str, fields: &[(&str, &str)]) -> Response {
        let body = format!("csrf_token={CSRF}&{}", encode(fields));
        let typed = [("Content-Type", "application/x-www-form-urlencoded")];
        self.send("POST", target, &typed, body.into_bytes())
    }

    /// Sends a request as this browser: Host, Origin (for POST), the CSRF cookie and every
    /// cookie in the jar; records the cookies the response sets.
    pub fn send(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Response {
        // On https the app only trusts the `__Host-` cookie, which a subdomain cannot plant.
        let csrf_cookie = if self.origin.starts_with("https://") {
            "__Host-pyblogd_csrf"
        } else {
            "pyblogd_csrf"
        };
        let mut cookie = format!("{csrf_cookie}={CSRF}");
        for (name, value) in self.jar.lock().unwrap().iter() {
            cookie.push_str(&format!("; {name}={value}"));
        }
        let mut all = vec![("Host", HOST), ("Cookie", cookie.as_str())];
        if method == "POST" {
            all.push(("Origin", self.origin.as_str()));
        }
        all.extend_from_slice(headers);
        let res = self.app.handle(&request(method, target, &all, body));
        self.keep_cookies(&res);
        res
    }

    /// Stores each `Set-Cookie` of `res` (a `Max-Age=0` one removes the cookie).
    pub fn keep_cookies(&self, res: &Response) {
        let mut jar = self.jar.lock().unwrap();
        for (name, value) in res.headers.iter() {
            if !name.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let pair = value.split(';').next().unwrap();
            let (n, v) = pair.split_once('=').unwrap();
            jar.retain(|(kept, _)| kept != n);
            if !value.contains("Max-Age=0") {
                jar.push((n.to_string(), v.to_string()));
            }
        }
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
        admin_token: None,
        // The tests create many posts from one "address"; the limit has tests of its own.
        post_rate_limit: 0,
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
        client: None,
    }
}

/// A form POSTed from one of our pages by a browser holding the CSRF cookie (but no other).
pub fn form_request(target: &str, fields: &[(&str, &str)]) -> Request {
    let body = format!("csrf_token={CSRF}&{}", encode(fields));
    let cookie = format!("pyblogd_csrf={CSRF}");
    request(
        "POST",
        target,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Host", HOST),
            ("Origin", ORIGIN),
            ("Cookie", &cookie),
        ],
        body.into_bytes(),
    )
}

/// `k=v&k=v`, urlencoded.
pub fn encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
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
