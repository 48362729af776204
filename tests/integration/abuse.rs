//! Abuse limits through the real binary: the POST rate limit per client address, shared by
//! workers, and the client address itself (`X-Forwarded-For` only from trusted proxies), as
//! the rate limit counts it and the access log prints it, at any `--log-level`.

use crate::support;

use std::io::BufReader;
use support::{Options, Reply, Server, CSRF};

/// Headers of a POST from our own page: Origin and the CSRF cookie.
fn ours() -> Vec<String> {
    vec![
        "Origin: http://test".to_string(),
        format!("Cookie: pyblogd_csrf={CSRF}"),
    ]
}

fn refs(headers: &[String]) -> Vec<&str> {
    headers.iter().map(String::as_str).collect()
}

/// Rows in the posts table, read from the database file itself.
fn post_count(server: &Server) -> i64 {
    let conn = r2d2_sqlite::rusqlite::Connection::open(server.path("blog.db")).expect("open db");
    conn.query_row("SELECT COUNT(*) FROM posts", [], |r| r.get(0))
        .expect("count")
}

/// A new-post form body titled `title`.
fn post_body(title: &str) -> String {
    support::our_form(&[("title", title), ("name", "bot"), ("content", "kept text")])
}

/// POSTs a new post as `client` behind the local proxy (`X-Forwarded-For`).
fn post_as(server: &Server, client: &str, title: &str) -> Reply {
    let xff = format!("X-Forwarded-For: {client}");
    let mut headers = ours();
    headers.push(xff);
    server.send("POST", "/posts", &refs(&headers), &post_body(title))
}

#[test]
fn a_post_flood_is_429_with_the_input_kept_while_others_still_post() {
    let server = support::start(
        Options::default()
            .args(&["-w", "2", "--access-logfile", "-"])
            .env("POST_RATE_LIMIT", "3"),
    );
    // Behind the default trusted proxy (127.0.0.1), the client is the forwarded address.
    let statuses: Vec<u16> = (0..3)
        .map(|n| post_as(&server, "203.0.113.7", &format!("Flood {n}")).status)
        .collect();
    assert_eq!(
        statuses,
        [303, 303, 303],
        "the burst, whichever worker answers"
    );
    let before = post_count(&server);
    for _ in 0..4 {
        let reply = post_as(&server, "203.0.113.7", "One too many");
        assert_eq!(reply.status, 429, "{}", reply.text());
        let retry: u64 = reply
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .expect("Retry-After seconds");
        assert!((1..=20).contains(&retry), "one token every 20 s: {retry}");
        let html = reply.text();
        assert!(
            html.contains("One too many") && html.contains("kept text"),
            "{html}"
        );
        assert!(html.contains("Too many posts from your address"), "{html}");
    }
    assert_eq!(post_count(&server), before, "a refused POST writes no post");
    // A client lying about its address is still counted as what the proxy saw.
    let spoofed = post_as(&server, "198.51.100.99, 203.0.113.7", "Spoofed");
    assert_eq!(spoofed.status, 429);
    // Another address, and the proxy host itself, still post.
    assert_eq!(
        post_as(&server, "198.51.100.20", "Someone else").status,
        303
    );
    let direct = server.send("POST", "/posts", &refs(&ours()), &post_body("Direct"));
    assert_eq!(direct.status, 303);
    let log = server.log_text();
    assert!(
        log.contains("POST rate limit reached by 203.0.113.7"),
        "{log}"
    );
}

#[test]
fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    // The loopback peer is not a trusted proxy here, so X-Forwarded-For is the client's say.
    let server = support::start(
        Options::default()
            .args(&["--single-process", "--forwarded-allow-ips", "10.9.9.9"])
            .args(&["--access-logfile", "-"])
            .env("POST_RATE_LIMIT", "2"),
    );
    assert_eq!(post_as(&server, "203.0.113.1", "A").status, 303);
    assert_eq!(post_as(&server, "203.0.113.2", "B").status, 303);
    let reply = post_as(&server, "203.0.113.3", "C");
    assert_eq!(reply.status, 429, "all three came from 127.0.0.1");
    let mut s = server.connect();
    std::io::Write::write_all(
        &mut s,
        b"GET /?untrusted HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n\r\n",
    )
    .expect("write");
    support::read_reply(&mut BufReader::new(s), false).expect("reply");
    server.wait_log("GET /?untrusted", std::time::Duration::from_secs(10));
    let log = server.log_text();
    let line = log.lines().find(|l| l.contains("GET /?untrusted")).unwrap();
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
}

/// One GET over the unix socket at `sock`, retried until the server answers.
fn get_over_unix(sock: &std::path::Path, request: &[u8]) -> Option<Reply> {
    let mut reply = None;
    support::wait_until(support::PATIENCE, || {
        let Ok(mut s) = std::os::unix::net::UnixStream::connect(sock) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(support::PATIENCE));
        if std::io::Write::write_all(&mut s, request).is_err() {
            return false;
        }
        reply = support::read_reply(&mut BufReader::new(s), false).ok();
        reply.is_some()
    });
    reply
}

#[test]
fn the_access_log_names_the_forwarded_client_at_any_log_level() {
    // `--log-level error` hides the "Listening at" line the harness waits for, so this server
    // listens on a unix socket, behind a proxy trusted with `*` (a unix peer has no address).
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("pyblogd.sock");
    let access = dir.path().join("access.log");
    let args = [
        "--single-process".to_string(),
        "--bind".to_string(),
        format!("unix:{}", sock.display()),
        "--forwarded-allow-ips".to_string(),
        "*".to_string(),
        "--access-logfile".to_string(),
        access.display().to_string(),
        "--log-level".to_string(),
        "error".to_string(),
    ];
    let server = support::start_in(
        dir,
        Options {
            args: args.to_vec(),
            env: vec![],
            wait_ready: false,
        },
    );
    let reply = get_over_unix(
        &sock,
        b"GET /?forwarded HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n\r\n",
    )
    .unwrap_or_else(|| panic!("no reply; log:\n{}", server.log_text()));
    assert_eq!(reply.status, 200);
    let mut line = None;
    support::wait_until(support::PATIENCE, || {
        let text = std::fs::read_to_string(&access).unwrap_or_default();
        line = text
            .lines()
            .find(|l| l.contains("GET /?forwarded"))
            .map(str::to_string);
        line.is_some()
    });
    let line = line.unwrap_or_else(|| panic!("no access line; log:\n{}", server.log_text()));
    assert!(line.starts_with("203.0.113.9 - - ["), "{line}");
    let log = server.log_text();
    assert!(
        !log.contains("[INFO]"),
        "the error log keeps its level: {log}"
    );
}

/// Flags, environment, and the word the one-line error must contain.
type BadCase<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

/// `pyblogd --check-config` with `args` and `env`, in a fresh directory.
fn check_config(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = std::process::Command::new(support::binary());
    cmd.current_dir(dir.path())
        .arg("--check-config")
        .args(args)
        .env_remove("ADMIN_TOKEN")
        .env_remove("POST_RATE_LIMIT")
        .env_remove("FORWARDED_ALLOW_IPS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run pyblogd --check-config")
}

#[test]
fn the_settings_are_checked_and_the_admin_token_never_printed() {
    let out = check_config(&[], &[]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("admin-token: unset (no admin)"), "{text}");
    assert!(
        text.contains("post-rate-limit: 10 per minute per address"),
        "{text}"
    );
    assert!(
        text.contains("forwarded-allow-ips: 127.0.0.1,::1"),
        "{text}"
    );

    let token = "a-very-secret-admin-token";
    let out = check_config(
        &["--post-rate-limit", "0", "--forwarded-allow-ips", "*"],
        &[("ADMIN_TOKEN", token)],
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("admin-token: set") && !text.contains(token),
        "{text}"
    );
    assert!(text.contains("post-rate-limit: off"), "{text}");
    assert!(text.contains("forwarded-allow-ips: *"), "{text}");

    let bad: &[BadCase] = &[
        (&["--post-rate-limit", "lots"], &[], "post-rate-limit"),
        (&[], &[("POST_RATE_LIMIT", "-1")], "POST_RATE_LIMIT"),
        (
            &["--forwarded-allow-ips", "10.0.0.0/8"],
            &[],
            "forwarded-allow-ips",
        ),
        (&[], &[("ADMIN_TOKEN", "short")], "ADMIN_TOKEN"),
    ];
    for (args, env, needle) in bad {
        let out = check_config(args, env);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{needle} in {err}");
        assert!(!err.contains("short\""), "the token is not echoed: {err}");
    }
}
