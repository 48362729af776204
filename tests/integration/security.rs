//! Authorship, admin, CSRF and security headers, through the real binary (`abuse.rs` has
//! the POST rate limit and the client address behind proxies).
//!
//! Each test is an attack or a legitimate use sent as raw bytes on 127.0.0.1, and each refusal
//! is checked twice: the status and page, then the state read back (the post unchanged, no
//! row written). The test "browser" here builds its own headers, so a missing Origin, token
//! or cookie is exactly what each case leaves out.

use crate::support;

use std::io::BufReader;
use support::{Options, Reply, Server, CSRF};

/// An admin token long enough for the server to accept it.
const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

fn server(extra_env: &[(&str, &str)]) -> Server {
    let mut opts = Options::default().args(&["--single-process", "--access-logfile", "-"]);
    for (k, v) in extra_env {
        opts = opts.env(k, v);
    }
    support::start(opts)
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
    let reply = server.send("POST", "/posts", &refs(&ours("")), &body);
    assert_eq!(reply.status, 303, "{}", reply.text());
    let id: u64 = reply
        .header("location")
        .and_then(|l| l.strip_prefix("/posts/"))
        .and_then(|id| id.parse().ok())
        .expect("Location /posts/ID");
    let name = format!("pyblogd_key_{id}=");
    let cookie = reply
        .set_cookies()
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
    let refused = server.get(&format!("{post}/edit"));
    assert_eq!(refused.status, 403);
    assert!(
        refused.text().contains("open the post on this site"),
        "says what an author who just followed their link from elsewhere should do: {}",
        refused.text()
    );
    assert_eq!(server.get(&format!("{post}/delete")).status, 403);
    let reply = server.send(
        "POST",
        &format!("{post}/edit"),
        &refs(&ours("")),
        &edit_body("Defaced"),
    );
    assert_eq!(reply.status, 403);
    assert!(reply.text().contains("Only the author"), "{}", reply.text());
    let reply = server.send(
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
    let reply = server.send(
        "POST",
        &format!("{post}/edit"),
        &refs(&ours(&wrong)),
        &edit_body("Defaced"),
    );
    assert_eq!(reply.status, 403);
    let borrowed = format!("; pyblogd_key_{other}={key}");
    let reply = server.send(
        "POST",
        &format!("/posts/{other}/delete"),
        &refs(&ours(&borrowed)),
        &support::our_form(&[]),
    );
    assert_eq!(reply.status, 403, "a key opens only its own post");
    assert_eq!(server.get(&format!("/posts/{other}")).status, 200);

    // The key cookie opens the edit form and the edit.
    let cookie = format!("; pyblogd_key_{id}={key}");
    let form = server.send("GET", &format!("{post}/edit"), &refs(&ours(&cookie)), "");
    assert_eq!(form.status, 200);
    assert_eq!(form.header("cache-control"), Some("private, no-store"));
    assert!(form
        .text()
        .contains(&format!("name=\"csrf_token\" value=\"{CSRF}\"")));
    let reply = server.send(
        "POST",
        &format!("{post}/edit"),
        &refs(&ours(&cookie)),
        &edit_body("Edited by me"),
    );
    assert_eq!(reply.status, 303, "{}", reply.text());
    assert!(server.get(&post).text().contains("Edited by me"));

    // The key link, in a browser without the cookie: sets it and drops the key from the URL.
    let reply = server.send("GET", &format!("{post}/edit?key={key}"), &[], "");
    assert_eq!(reply.status, 303);
    assert_eq!(
        reply.header("location"),
        Some(format!("{post}/edit").as_str())
    );
    let set = reply.set_cookies();
    assert!(
        set.iter()
            .any(|c| c.starts_with(&format!("pyblogd_key_{id}={key};"))),
        "{set:?}"
    );
    // The key never reaches the logs, not even through the link's request line.
    server.wait_log(
        &format!("GET {post}/edit?key=[redacted] HTTP/1.1"),
        std::time::Duration::from_secs(10),
    );
    assert!(!server.log_text().contains(&key), "{}", server.log_text());
    let reply = server.send(
        "GET",
        &format!("{post}/edit?key={}", "f".repeat(32)),
        &[],
        "",
    );
    assert_eq!(reply.status, 403, "a wrong key link");
    assert!(reply.set_cookies().is_empty());

    // And with the key, delete.
    let reply = server.send(
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
    let first = server.send("GET", &post, &refs(&ours(&cookies)), "");
    assert_eq!(first.status, 200);
    let html = first.text();
    assert!(html.contains(&format!("{post}/edit?key={key}")), "{html}");
    assert!(html.contains("Keep this link to edit later"));
    assert_eq!(first.header("cache-control"), Some("private, no-store"));
    assert!(first
        .set_cookies()
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

    let again = server.send(
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
    let form = server.send("GET", "/admin/login", &refs(&ours("")), "");
    assert_eq!(form.status, 200);
    assert!(form.text().contains("name=\"token\""));

    let wrong = support::our_form(&[("token", "test-admin-token-0123456788")]);
    let reply = server.send("POST", "/admin/login", &refs(&ours("")), &wrong);
    assert_eq!(reply.status, 403);
    assert!(reply
        .set_cookies()
        .iter()
        .all(|c| !c.starts_with("pyblogd_admin")));
    let empty = support::our_form(&[("token", "")]);
    assert_eq!(
        server
            .send("POST", "/admin/login", &refs(&ours("")), &empty)
            .status,
        403
    );

    let right = support::our_form(&[("token", ADMIN_TOKEN)]);
    let reply = server.send("POST", "/admin/login", &refs(&ours("")), &right);
    assert_eq!(reply.status, 303);
    let session = reply
        .set_cookies()
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
    let reply = server.send(
        "POST",
        &format!("/posts/{id}/edit"),
        &refs(&ours(&forged)),
        &edit_body("Forged"),
    );
    assert_eq!(reply.status, 403);

    let reply = server.send(
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
    let reply = server.send(
        "POST",
        &format!("/posts/{id}/delete"),
        &refs(&ours(&session)),
        &support::our_form(&[]),
    );
    assert_eq!(reply.status, 303);
    assert_eq!(server.get(&format!("/posts/{id}")).status, 404);

    let out = server.send(
        "POST",
        "/admin/logout",
        &refs(&ours(&session)),
        &support::our_form(&[]),
    );
    assert_eq!(out.status, 303);
    assert!(out
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("pyblogd_admin=;") && c.contains("Max-Age=0")));
}

#[test]
fn without_admin_token_there_is_no_admin() {
    let server = server(&[]);
    assert_eq!(server.get("/admin/login").status, 404);
    let body = support::our_form(&[("token", "")]);
    assert_eq!(
        server
            .send("POST", "/admin/login", &refs(&ours("")), &body)
            .status,
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
        let reply = server.send("POST", path, headers, body);
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
    let reply = server.send(
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
    let reply = server.send("POST", "/posts", &["Origin: http://test", &cookie], &body);
    assert_eq!(reply.status, 403);
    let reply = server.send(
        "POST",
        "/posts",
        &["Origin: https://blog.example", &cookie],
        &body,
    );
    assert_eq!(reply.status, 303, "{}", reply.text());
    let key_cookie = reply
        .set_cookies()
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
    let set = form.set_cookies();
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
            server.send("GET", &format!("/posts/{id}"), &refs(&ours(&author)), ""),
        ),
        ("new form", server.get("/new")),
        (
            "edit form",
            server.send(
                "GET",
                &format!("/posts/{id}/edit"),
                &refs(&ours(&author)),
                "",
            ),
        ),
        (
            "delete page",
            server.send(
                "GET",
                &format!("/posts/{id}/delete"),
                &refs(&ours(&author)),
                "",
            ),
        ),
        ("404", server.get("/nope")),
        ("403", server.get(&format!("/posts/{id}/edit"))),
        ("405", server.send("PUT", "/", &[], "")),
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
            server.send("GET", &format!("/posts/{id}/edit?key={key}"), &[], ""),
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
    let created = server.send("POST", "/posts", &refs(&ours("")), &body);
    assert_eq!(created.status, 303);
    assert_hardened("create redirect", &created);
    assert_eq!(others[3].1.status, 400);
    // The delete dialog's script is a static file the CSP allows.
    assert!(others[1].1.text().contains("showModal"));
}
