//! Authorship, admin, CSRF, security headers and the POST rate limit, through the real binary.
//!
//! Each test is an attack or a legitimate use sent as raw bytes on 127.0.0.1, and each refusal
//! is checked twice: the status and page, then the state read back (the post unchanged, no
//! row written). The test "browser" here builds its own headers, so a missing Origin, token
//! or cookie is exactly what each case leaves out.

mod support;

use std::io::BufReader;
use support::{Options, Reply, Server, CSRF};

/// An admin token long enough for the server to accept it.
const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

fn server(extra_env: &[(&str, &str)]) -> Server {
    let mut opts = Options::default().args(&["--single-process"]);
    for (k, v) in extra_env {
        opts = opts.env(k, v);
    }
    support::start(opts)
}

/// Sends one request with `headers` (each `Name: value`) and `body`; `Connection: close`.
fn send(server: &Server, method: &str, path: &str, headers: &[&str], body: &str) -> Reply {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    if method == "POST" {
        head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    head.push_str(body);
    let raw = server.raw(head.as_bytes());
    support::read_reply(&mut BufReader::new(&raw[..]), false)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}: {}", String::from_utf8_lossy(&raw)))
}

/// Headers of a POST from our own page: Origin and the CSRF cookie, plus `cookies`.
fn ours(cookies: &str) -> Vec<String> {
    vec![
        "Origin: http://test".to_string(),
        format!("Cookie: pyblogd_csrf={CSRF}{cookies}"),
    ]
}

fn refs(headers: &[String]) -> Vec<&str> {
    headers.iter().map(String::as_str).collect()
}

/// Creates a post anonymously; returns its id and the edit key the reply's cookie carries.
fn create(server: &Server, title: &str) -> (u64, String) {
    let body = support::our_form(&[("title", title), ("name", "ann"), ("content", "Original")]);
    let reply = send(server, "POST", "/posts", &refs(&ours("")), &body);
    assert_eq!(reply.status, 303, "{}", reply.text());
    let id: u64 = reply
        .header("location")
        .and_then(|l| l.strip_prefix("/posts/"))
        .and_then(|id| id.parse().ok())
        .expect("Location /posts/ID");
    let name = format!("pyblogd_key_{id}=");
    let cookie = set_cookies(&reply)
        .into_iter()
        .find(|c| c.starts_with(&name))
        .expect("an edit-key cookie");
    for attribute in [
        &format!("Path=/posts/{id}"),
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    let key = cookie[name.len()..].split(';').next().unwrap().to_string();
    assert!(key.len() >= 32, "128 bits or more: {key}");
    (id, key)
}

fn set_cookies(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.clone())
        .collect()
}

fn edit_body(title: &str) -> String {
    support::our_form(&[
        ("title", title),
        ("name", "mallory"),
        ("content", "Defaced"),
    ])
}

#[test]
fn editing_and_deleting_take_the_posts_key() {
    let server = server(&[]);
    let (id, key) = create(&server, "Mine");
    let (other, _) = create(&server, "Someone else's");
    let post = format!("/posts/{id}");

    // No key: the forms and the actions are refused, and the post is as it was.
    assert_eq!(server.get(&format!("{post}/edit")).status, 403);
    assert_eq!(server.get(&format!("{post}/delete")).status, 403);
    let reply = send(
        &server,
        "POST",
        &format!("{post}/edit"),
        &refs(&ours("")),
        &edit_body("Defaced"),
    );
    assert_eq!(reply.status, 403);
    assert!(reply.text().contains("Only the author"), "{}", reply.text());
    let reply = send(
        &server,
        "POST",
        &format!("{post}/delete"),
        &refs(&ours("")),
        &support::our_form(&[]),
    );
    assert_eq!(reply.status, 403);
    let page = server.get(&post);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Mine") && !page.text().contains("Defaced"));

    // Another post's key, or a wrong one, opens nothing.
    let wrong = format!("; pyblogd_key_{id}={}", "0".repeat(32));
    let reply = send(
        &server,
        "POST",
        &format!("{post}/edit"),
        &refs(&ours(&wrong)),
        &edit_body("Defaced"),
    );
    assert_eq!(reply.status, 403);
    let borrowed = format!("; pyblogd_key_{other}={key}");
    let reply = send(
        &server,
        "POST",
        &format!("/posts/{other}/delete"),
        &refs(&ours(&borrowed)),
        &support::our_form(&[]),
    );
    assert_eq!(reply.status, 403, "a key opens only its own post");
    assert_eq!(server.get(&format!("/posts/{other}")).status, 200);

    // The key cookie opens the edit form and the edit.
    let cookie = format!("; pyblogd_key_{id}={key}");
    let form = send(
        &server,
        "GET",
        &format!("{post}/edit"),
        &refs(&ours(&cookie)),
        "",
    );
    assert_eq!(form.status, 200);
    assert_eq!(form.header("cache-control"), Some("private, no-store"));
    assert!(form
        .text()
        .contains(&format!("name=\"csrf_token\" value=\"{CSRF}\"")));
    let reply = send(
        &server,
        "POST",
        &format!("{post}/edit"),
        &refs(&ours(&cookie)),
        &edit_body("Edited by me"),
    );
    assert_eq!(reply.status, 303, "{}", reply.text());
    assert!(server.get(&post).text().contains("Edited by me"));

    // The key link, in a browser without the cookie: sets it and drops the key from the URL.
    let reply = send(&server, "GET", &format!("{post}/edit?key={key}"), &[], "");
    assert_eq!(reply.status, 303);
    assert_eq!(
        reply.header("location"),
        Some(format!("{post}/edit").as_str())
    );
    let set = set_cookies(&reply);
    assert!(
        set.iter()
            .any(|c| c.starts_with(&format!("pyblogd_key_{id}={key};"))),
        "{set:?}"
    );
    let reply = send(
        &server,
        "GET",
        &format!("{post}/edit?key={}", "f".repeat(32)),
        &[],
        "",
    );
    assert_eq!(reply.status, 403, "a wrong key link");
    assert!(set_cookies(&reply).is_empty());

    // And with the key, delete.
    let reply = send(
        &server,
        "POST",
        &format!("{post}/delete"),
        &refs(&ours(&cookie)),
        &support::our_form(&[]),
    );
    assert_eq!(reply.status, 303);
    assert_eq!(server.get(&post).status, 404);
}

#[test]
fn only_the_author_sees_the_buttons_and_the_key_link_shows_once() {
    let server = server(&[]);
    let (id, key) = create(&server, "Buttons");
    let post = format!("/posts/{id}");
    let public = server.get(&post).text();
    assert!(!public.contains(&format!("{post}/edit")), "{public}");
    assert!(!public.contains("confirm-delete"), "{public}");
    assert!(!public.contains(&key));

    // Right after the create, the author's browser carries the key and the one-time flag.
    let cookies = format!("; pyblogd_key_{id}={key}; pyblogd_show_key=1");
    let first = send(&server, "GET", &post, &refs(&ours(&cookies)), "");
    assert_eq!(first.status, 200);
    let html = first.text();
    assert!(html.contains(&format!("{post}/edit?key={key}")), "{html}");
    assert!(html.contains("Keep this link to edit later"));
    assert_eq!(first.header("cache-control"), Some("private, no-store"));
    assert!(set_cookies(&first)
        .iter()
        .any(|c| c.starts_with("pyblogd_show_key=;") && c.contains("Max-Age=0")));
    // The author's page has the buttons and the dialog, whose form carries the token; the
    // dialog works under the CSP: no inline script, app.js opens it.
    assert!(html.contains(&format!("href=\"{post}/edit\"")));
    assert!(html.contains("data-opens-dialog=\"confirm-delete\""));
    assert!(html.contains(&format!(
        "<input type=\"hidden\" name=\"csrf_token\" value=\"{CSRF}\">"
    )));
    assert!(html.contains("/static/app.js"));

    let again = send(
        &server,
        "GET",
        &post,
        &refs(&ours(&format!("; pyblogd_key_{id}={key}"))),
        "",
    );
    assert!(!again.text().contains(&key), "shown once");
    assert!(again.text().contains("confirm-delete"));
    // The public page, read again after the author's, never carries the key.
    assert!(!server.get(&post).text().contains(&key));
}

#[test]
fn the_admin_changes_any_post_and_a_wrong_token_is_403() {
    let server = server(&[("ADMIN_TOKEN", ADMIN_TOKEN)]);
    let (id, _) = create(&server, "Anyone's");
    let form = send(&server, "GET", "/admin/login", &refs(&ours("")), "");
    assert_eq!(form.status, 200);
    assert!(form.text().contains("name=\"token\""));

    let wrong = support::our_form(&[("token", "test-admin-token-0123456788")]);
    let reply = send(&server, "POST", "/admin/login", &refs(&ours("")), &wrong);
    assert_eq!(reply.status, 403);
    assert!(set_cookies(&reply)
        .iter()
        .all(|c| !c.starts_with("pyblogd_admin")));
    let empty = support::our_form(&[("token", "")]);
    assert_eq!(
        send(&server, "POST", "/admin/login", &refs(&ours("")), &empty).status,
        403
    );

    let right = support::our_form(&[("token", ADMIN_TOKEN)]);
    let reply = send(&server, "POST", "/admin/login", &refs(&ours("")), &right);
    assert_eq!(reply.status, 303);
    let session = set_cookies(&reply)
        .into_iter()
        .find(|c| c.starts_with("pyblogd_admin="))
        .expect("an admin cookie");
    assert!(
        !session.contains(ADMIN_TOKEN),
        "the cookie is not the token: {session}"
    );
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
    let session = format!("; {}", session.split(';').next().unwrap());
    // A forged session cookie (the token itself) is nobody.
    let forged = format!("; pyblogd_admin={ADMIN_TOKEN}");
    let reply = send(
        &server,
        "POST",
        &format!("/posts/{id}/edit"),
        &refs(&ours(&forged)),
        &edit_body("Forged"),
    );
    assert_eq!(reply.status, 403);

    let reply = send(
        &server,
        "POST",
        &format!("/posts/{id}/edit"),
        &refs(&ours(&session)),
        &edit_body("Moderated"),
    );
    assert_eq!(reply.status, 303);
    assert!(server
        .get(&format!("/posts/{id}"))
        .text()
        .contains("Moderated"));
    let reply = send(
        &server,
        "POST",
        &format!("/posts/{id}/delete"),
        &refs(&ours(&session)),
        &support::our_form(&[]),
    );
    assert_eq!(reply.status, 303);
    assert_eq!(server.get(&format!("/posts/{id}")).status, 404);

    let out = send(
        &server,
        "POST",
        "/admin/logout",
        &refs(&ours(&session)),
        &support::our_form(&[]),
    );
    assert_eq!(out.status, 303);
    assert!(set_cookies(&out)
        .iter()
        .any(|c| c.starts_with("pyblogd_admin=;") && c.contains("Max-Age=0")));
}

#[test]
fn without_admin_token_there_is_no_admin() {
    let server = server(&[]);
    assert_eq!(server.get("/admin/login").status, 404);
    let body = support::our_form(&[("token", "")]);
    assert_eq!(
        send(&server, "POST", "/admin/login", &refs(&ours("")), &body).status,
        404
    );
}

/// Rows in the posts table, read from the database file itself.
fn post_count(server: &Server) -> i64 {
    let conn = r2d2_sqlite::rusqlite::Connection::open(server.path("blog.db")).expect("open db");
    conn.query_row("SELECT COUNT(*) FROM posts", [], |r| r.get(0))
        .expect("count")
}

#[test]
fn forged_posts_are_403_and_write_nothing() {
    let server = server(&[]);
    let (id, key) = create(&server, "Target");
    let before = post_count(&server);
    let body = support::our_form(&[("title", "Forged"), ("name", "eve"), ("content", "x")]);
    let cookie = format!("Cookie: pyblogd_csrf={CSRF}");
    let author = format!("Cookie: pyblogd_csrf={CSRF}; pyblogd_key_{id}={key}");
    let cases: Vec<(&str, String, Vec<&str>, String)> = vec![
        (
            "cross-origin",
            "/posts".into(),
            vec!["Origin: http://evil.example", &cookie],
            body.clone(),
        ),
        (
            "origin null",
            "/posts".into(),
            vec!["Origin: null", &cookie],
            body.clone(),
        ),
        (
            "cross-origin referer",
            "/posts".into(),
            vec!["Referer: http://evil.example/test", &cookie],
            body.clone(),
        ),
        (
            "no origin or referer",
            "/posts".into(),
            vec![&cookie],
            body.clone(),
        ),
        (
            "no token field",
            "/posts".into(),
            vec!["Origin: http://test", &cookie],
            support::encode_form(&[("title", "Forged"), ("name", "eve"), ("content", "x")]),
        ),
        (
            "no token cookie",
            "/posts".into(),
            vec!["Origin: http://test"],
            body.clone(),
        ),
        (
            "token mismatch",
            "/posts".into(),
            vec!["Origin: http://test", "Cookie: pyblogd_csrf=0000"],
            body.clone(),
        ),
        // The author's own key does not help a page on another site.
        (
            "cross-origin edit by the author's browser",
            format!("/posts/{id}/edit"),
            vec!["Origin: http://evil.example", &author],
            edit_body("Forged"),
        ),
        (
            "cross-origin delete by the author's browser",
            format!("/posts/{id}/delete"),
            vec!["Origin: http://evil.example", &author],
            support::our_form(&[]),
        ),
    ];
    for (what, path, headers, body) in &cases {
        let reply = send(&server, "POST", path, headers, body);
        assert_eq!(reply.status, 403, "{what}: {}", reply.text());
        assert!(
            reply.text().contains("nothing was changed"),
            "{what}: {}",
            reply.text()
        );
    }
    assert_eq!(post_count(&server), before, "nothing written");
    let page = server.get(&format!("/posts/{id}")).text();
    assert!(page.contains("Target") && !page.contains("Forged"));

    // The same-origin Referer stands in for a missing Origin.
    let reply = send(
        &server,
        "POST",
        "/posts",
        &["Referer: http://test/new", &cookie],
        &body,
    );
    assert_eq!(reply.status, 303, "{}", reply.text());
}

#[test]
fn with_site_url_only_its_origin_may_post() {
    let server = server(&[("SITE_URL", "https://blog.example")]);
    let body = support::our_form(&[("title", "T"), ("name", "n"), ("content", "c")]);
    let cookie = format!("Cookie: __Host-pyblogd_csrf={CSRF}");
    // The request's own Host does not count once SITE_URL names the site.
    let reply = send(
        &server,
        "POST",
        "/posts",
        &["Origin: http://test", &cookie],
        &body,
    );
    assert_eq!(reply.status, 403);
    let reply = send(
        &server,
        "POST",
        "/posts",
        &["Origin: https://blog.example", &cookie],
        &body,
    );
    assert_eq!(reply.status, 303, "{}", reply.text());
    let key_cookie = set_cookies(&reply)
        .into_iter()
        .find(|c| c.starts_with("pyblogd_key_"))
        .unwrap();
    assert!(key_cookie.ends_with("; Secure"), "{key_cookie}");
    let page = server.get("/");
    assert_eq!(
        page.header("strict-transport-security"),
        Some("max-age=31536000")
    );
    let form = server.get("/new");
    let set = set_cookies(&form);
    assert!(
        set.iter().any(|c| c.starts_with("__Host-pyblogd_csrf=")
            && c.contains("Path=/")
            && c.contains("Secure")),
        "{set:?}"
    );
}

fn assert_hardened(what: &str, reply: &Reply) {
    // The key link's redirect sends no Referer at all: its own URL holds the key.
    let referrer = if what == "key-link redirect" {
        "no-referrer"
    } else {
        "strict-origin-when-cross-origin"
    };
    let csp = reply
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP in {:?}", reply.headers));
    for needed in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(needed), "{what}: {needed} in {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: {csp}"
    );
    assert_eq!(
        reply.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(reply.header("referrer-policy"), Some(referrer), "{what}");
    assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        reply.header("strict-transport-security"),
        None,
        "{what}: http site, no HSTS"
    );
}

#[test]
fn every_response_carries_the_security_headers() {
    let server = server(&[]);
    let (id, key) = create(&server, "Headers");
    let author = format!("; pyblogd_key_{id}={key}");
    let pages = [
        ("home", server.get("/")),
        ("list", server.get("/posts")),
        ("post", server.get(&format!("/posts/{id}"))),
        (
            "author's post",
            send(
                &server,
                "GET",
                &format!("/posts/{id}"),
                &refs(&ours(&author)),
                "",
            ),
        ),
        ("new form", server.get("/new")),
        (
            "edit form",
            send(
                &server,
                "GET",
                &format!("/posts/{id}/edit"),
                &refs(&ours(&author)),
                "",
            ),
        ),
        (
            "delete page",
            send(
                &server,
                "GET",
                &format!("/posts/{id}/delete"),
                &refs(&ours(&author)),
                "",
            ),
        ),
        ("404", server.get("/nope")),
        ("403", server.get(&format!("/posts/{id}/edit"))),
        ("405", send(&server, "PUT", "/", &[], "")),
    ];
    for (what, reply) in &pages {
        assert_hardened(what, reply);
        let html = reply.text();
        // No inline script, handler or style for the CSP to block: scripts come from /static.
        for script in html.split("<script").skip(1) {
            assert!(
                script.trim_start().starts_with("src=\"/static/"),
                "{what}: inline <script{script}"
            );
        }
        let lower = html.to_ascii_lowercase();
        for needle in [
            " onclick=",
            " onload=",
            " onsubmit=",
            " style=\"",
            "<style",
            "javascript:",
        ] {
            assert!(!lower.contains(needle), "{what}: {needle} in {html}");
        }
    }
    let others = [
        ("stylesheet", server.get("/static/style.css")),
        ("script", server.get("/static/app.js")),
        (
            "key-link redirect",
            send(
                &server,
                "GET",
                &format!("/posts/{id}/edit?key={key}"),
                &[],
                "",
            ),
        ),
        ("400", {
            let raw = server.raw(b"GARBAGE\r\n\r\n");
            support::read_reply(&mut BufReader::new(&raw[..]), false).expect("a 400")
        }),
    ];
    for (what, reply) in &others {
        assert_hardened(what, reply);
    }
    assert_eq!(others[2].1.status, 303);
    let body = support::our_form(&[("title", "T"), ("name", "n"), ("content", "c")]);
    let created = send(&server, "POST", "/posts", &refs(&ours("")), &body);
    assert_eq!(created.status, 303);
    assert_hardened("create redirect", &created);
    assert_eq!(others[3].1.status, 400);
    // The delete dialog's script is a static file the CSP allows.
    assert!(others[1].1.text().contains("showModal"));
}

/// A new-post form body titled `title`.
fn post_body(title: &str) -> String {
    support::our_form(&[("title", title), ("name", "bot"), ("content", "kept text")])
}

/// POSTs a new post as `client` behind the local proxy (`X-Forwarded-For`).
fn post_as(server: &Server, client: &str, title: &str) -> Reply {
    let xff = format!("X-Forwarded-For: {client}");
    let mut headers = ours("");
    headers.push(xff);
    send(server, "POST", "/posts", &refs(&headers), &post_body(title))
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
    let direct = send(
        &server,
        "POST",
        "/posts",
        &refs(&ours("")),
        &post_body("Direct"),
    );
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
