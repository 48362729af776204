//! The blog through the real binary and a real SQLite file: the create → view → edit → delete
//! round trip, validation, pagination, exact view counts under concurrency across workers,
//! sanitising, meta tags, static files, template overrides and durability across restarts.

use crate::support;

use std::io::{BufReader, Write};
use std::time::Duration;
use support::{Options, Reply, Server, PATIENCE};

fn blog(extra: &[&str]) -> Server {
    let mut args = vec!["--single-process"];
    args.extend_from_slice(extra);
    support::start(Options::default().args(&args))
}

fn create(server: &Server, title: &str, name: &str, content: &str) -> u64 {
    let reply = server.post_form(
        "/posts",
        &[("title", title), ("name", name), ("content", content)],
    );
    assert_eq!(reply.status, 303, "create {title}: {}", reply.text());
    post_id(&reply)
}

fn post_id(reply: &Reply) -> u64 {
    let location = reply.header("location").expect("Location header");
    location
        .rsplit('/')
        .next()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("unexpected Location {location}"))
}

#[test]
fn create_view_edit_delete_round_trip() {
    let server = blog(&[]);
    let id = create(&server, "First post", "ann", "Hello **world**");
    let page = server.get(&format!("/posts/{id}"));
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("First post"));
    assert!(html.contains("<strong>world</strong>"), "{html}");
    assert!(html.contains("ann"));

    let form = server.get_as_author(&format!("/posts/{id}/edit"));
    assert_eq!(form.status, 200);
    assert!(
        form.text().contains("Hello **world**"),
        "the edit form holds the Markdown"
    );

    let reply = server.post_form(
        &format!("/posts/{id}/edit"),
        &[
            ("title", "First post, edited"),
            ("name", "ann"),
            ("content", "Changed"),
        ],
    );
    assert_eq!(reply.status, 303);
    let html = server.get(&format!("/posts/{id}/")).text();
    assert!(html.contains("First post, edited"));
    assert!(html.contains("Changed"));

    let reply = server.post_form(&format!("/posts/{id}/delete"), &[]);
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("location"), Some("/posts"));
    assert_eq!(server.get(&format!("/posts/{id}")).status, 404);
    assert!(!server.get("/posts").text().contains("First post, edited"));
}

#[test]
fn validation_keeps_input_and_counts_characters() {
    let server = blog(&[]);
    // Eight emoji are eight characters (32 bytes): a valid name.
    let id = create(&server, "Unicode", "😀😀😀😀😀😀😀😀", "ok");
    assert!(server
        .get(&format!("/posts/{id}"))
        .text()
        .contains("😀😀😀😀😀😀😀😀"));

    let cases: &[(&str, &str, &str)] = &[
        ("", "ann", "content"),
        (&"t".repeat(101), "ann", "content"),
        ("Title", "", "content"),
        ("Title", "ninechars", "content"),
        ("Title", "😀😀😀😀😀😀😀😀😀", "content"),
        ("Title", "ann", "   "),
    ];
    for (title, name, content) in cases {
        let reply = server.post_form(
            "/posts",
            &[("title", title), ("name", name), ("content", content)],
        );
        assert_eq!(reply.status, 422, "{title:?} {name:?} {content:?}");
        let html = reply.text();
        for kept in [title, name] {
            if !kept.trim().is_empty() {
                assert!(html.contains(*kept), "input {kept:?} kept in the form");
            }
        }
    }
    let long = "x".repeat(14_001);
    let reply = server.post_form(
        "/posts",
        &[("title", "Long"), ("name", "ann"), ("content", &long)],
    );
    assert_eq!(reply.status, 422);
    let exact = "y".repeat(14_000);
    create(&server, "Exactly long", "ann", &exact);
}

#[test]
fn ids_that_are_not_posts_are_404() {
    let server = blog(&[]);
    for path in [
        "/posts/abc",
        "/posts/0",
        "/posts/99999999999999999999999",
        "/posts/-1",
        "/posts/12/edit",
        "/nope",
    ] {
        assert_eq!(server.get(path).status, 404, "{path}");
    }
    let reply = server.post_form("/posts/5/delete", &[]);
    assert_eq!(reply.status, 404);
    let reply = server.raw(b"DELETE /posts HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 405"), "{text}");
    assert!(text.to_ascii_lowercase().contains("\r\nallow:"), "{text}");
}

#[test]
fn pagination_edges() {
    let server = blog(&[]);
    for i in 1..=11 {
        create(&server, &format!("Post number {i:02}"), "pg", "body");
    }
    let first = server.get("/posts").text();
    assert!(first.contains("Post number 11") && first.contains("Post number 07"));
    assert!(
        !first.contains("Post number 06"),
        "5 per page, newest first"
    );
    let third = server.get("/posts?page=3").text();
    assert!(third.contains("Post number 01") && !third.contains("Post number 02"));
    assert_eq!(
        server.get("/posts?page=4").status,
        404,
        "past the last page"
    );
    for bad in ["abc", "0", "-2", ""] {
        let page = server.get(&format!("/posts?page={bad}"));
        assert_eq!(page.status, 200, "page={bad}");
        assert!(
            page.text().contains("Post number 11"),
            "page={bad} falls back to page 1"
        );
    }
}

/// The view count stored for post `id`, read from the database file directly.
fn stored_views(server: &Server, id: u64) -> i64 {
    let conn = r2d2_sqlite::rusqlite::Connection::open(server.path("blog.db")).expect("open");
    conn.busy_timeout(PATIENCE).expect("busy timeout");
    conn.query_row(
        "SELECT view_count FROM posts WHERE id = ?1",
        [id as i64],
        |r| r.get(0),
    )
    .expect("view_count")
}

/// `clients` threads each read post `id` `each` times, every read on its own connection, and
/// every answer must be 200.
fn read_from_many_clients(server: &Server, id: u64, clients: usize, each: usize) {
    let addr = server.addr;
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..each {
                    let mut s = std::net::TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(PATIENCE)).unwrap();
                    write!(
                        s,
                        "GET /posts/{id} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                    )
                    .unwrap();
                    let r = support::read_reply(&mut BufReader::new(s), false).unwrap();
                    assert_eq!(r.status, 200);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn view_counts_are_exact_across_workers() {
    let mut server = support::start(Options::default().args(&["-w", "4"]));
    let id = create(&server, "Counted", "cnt", "count me");
    read_from_many_clients(&server, id, 8, 25);
    // Each worker journals its views and commits them every 100 ms; the home page is
    // rendered again at most a second after a commit.
    let mut home = String::new();
    let shown = support::wait_until(Duration::from_secs(10), || {
        home = server.get("/").text();
        home.contains(">200 views<")
    });
    assert!(shown, "200 views plus none from the home page:\n{home}");
    assert_eq!(stored_views(&server, id), 200);
    // Several flush periods later, nothing was counted twice.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(stored_views(&server, id), 200);
    // Nor by the workers' final flushes at a graceful stop, which remove their journals.
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(server.wait_exit(PATIENCE), Some(0), "{}", server.log_text());
    assert_eq!(stored_views(&server, id), 200);
    let journals = std::fs::read_dir(server.path("blog.db.views"))
        .expect("the journal directory")
        .count();
    assert_eq!(journals, 0, "journals left after a graceful stop");
}

/// The first count the home page's "Popular this week" shows.
fn popular_views(home: &str) -> Option<u64> {
    let popular = &home[home.find("Popular this week")?..];
    let end = popular.find(" view")?;
    let start = popular[..end].rfind('>')? + 1;
    popular[start..end].trim().parse().ok()
}

/// The timing of issue 17: a burst of views right after start, while workers are still
/// booting, then nothing but home-page reads (so a worker that took views may serve
/// nothing more). Every view must reach every page within the documented bound: a flush
/// (100 ms) plus the page cache's second, with slack for a busy machine.
#[test]
fn views_taken_while_workers_boot_show_on_the_home_page_within_the_bound() {
    let mut server = support::start(Options {
        wait_ready: false,
        ..Options::default().args(&["-w", "4"])
    });
    server.addr = server.wait_listening();
    let id = create(
        &server,
        "Read at once",
        "burst",
        "read me as soon as you can",
    );
    read_from_many_clients(&server, id, 50, 4);
    let burst_done = std::time::Instant::now();
    let mut home = String::new();
    let shown = support::wait_until(Duration::from_secs(10), || {
        home = server.get("/").text();
        popular_views(&home) == Some(200)
    });
    assert!(
        shown,
        "the home page shows {:?} views of 200, {:?} after the burst; log:\n{}",
        popular_views(&home),
        burst_done.elapsed(),
        server.log_text()
    );
    assert_eq!(stored_views(&server, id), 200);
    // A view refused by a busy database is served uncounted, with a warning: none may be.
    assert!(
        !server.log_text().contains("not counted"),
        "{}",
        server.log_text()
    );
}

/// The text of the byline's view count on a post page.
fn shown_views(html: &str) -> &str {
    let start = html.find("<span class=\"views\">").expect("a view count") + 20;
    let end = html[start..].find("</span>").expect("its end") + start;
    &html[start..end]
}

#[test]
fn a_post_page_shows_each_readers_own_view_and_every_edit_at_once() {
    let server = blog(&[]);
    let id = create(&server, "Spliced", "spl", "Read me");
    let path = format!("/posts/{id}");
    // Rendered pages are reused for a second, but each reader sees their own view.
    assert_eq!(shown_views(&server.get(&path).text()), "1 view");
    for seen in 2..=5 {
        assert_eq!(
            shown_views(&server.get(&path).text()),
            format!("{seen} views")
        );
    }
    // HEAD reads the post without counting a view.
    let head = server
        .raw(format!("HEAD {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes());
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    assert_eq!(shown_views(&server.get(&path).text()), "6 views");

    let reply = server.post_form(
        &format!("{path}/edit"),
        &[
            ("title", "Spliced, edited"),
            ("name", "spl"),
            ("content", "Changed"),
        ],
    );
    assert_eq!(reply.status, 303);
    let html = server.get(&path).text();
    assert!(
        html.contains("Spliced, edited") && html.contains("Changed"),
        "{html}"
    );
    assert!(
        !html.contains("Read me"),
        "a page cached before the edit: {html}"
    );
    assert_eq!(shown_views(&html), "7 views");

    assert_eq!(server.post_form(&format!("{path}/delete"), &[]).status, 303);
    assert_eq!(server.get(&path).status, 404);
}

#[test]
fn a_post_whose_text_holds_the_page_caches_marker_still_counts_right() {
    let server = blog(&[]);
    // The marker a cached post page uses for its view count, written by an author.
    let content = "before \u{e000}pyblogd-hole\u{e000} after";
    let id = create(&server, "Marker", "mrk", content);
    for seen in 1..=3 {
        let html = server.get(&format!("/posts/{id}")).text();
        let views = if seen == 1 {
            "1 view".to_string()
        } else {
            format!("{seen} views")
        };
        assert_eq!(shown_views(&html), views);
        assert!(
            html.contains(content),
            "the text is shown as written: {html}"
        );
    }
}

#[test]
fn popular_this_week_orders_by_views() {
    let server = blog(&[]);
    let a = create(&server, "Seldom read", "pop", "a");
    let b = create(&server, "Often read", "pop", "b");
    for _ in 0..3 {
        server.get(&format!("/posts/{b}"));
    }
    server.get(&format!("/posts/{a}"));
    // Views reach the database within a flush period (100 ms), the home page within a second.
    let mut home = String::new();
    let shown = support::wait_until(Duration::from_secs(10), || {
        home = server.get("/").text();
        home.contains("3 views") && home.contains("1 view")
    });
    assert!(shown, "{home}");
    let often = home.find("Often read").expect("listed");
    let seldom = home.find("Seldom read").expect("listed");
    assert!(often < seldom, "most viewed first");
}

#[test]
fn markdown_extensions_render_and_script_never_reaches_the_page() {
    let server = blog(&[]);
    let md = "| a | b |\n|---|---|\n| 1 | 2 |\n\n```rust\nfn main() { let x = 1; }\n```\n\n~~gone~~\n\n- [x] done\n\nThe HTML spec[^1].\n\n[^1]: A footnote.\n\n*[HTML]: HyperText Markup Language\n\n<script>alert(1)</script>\n[click](javascript:alert(1)) <img src=x onerror=alert(1)> <a href=\"data:text/html,x\">d</a> <p style=\"color:red\">s</p>";
    let id = create(&server, "Extensions", "md", md);
    let html = server.get(&format!("/posts/{id}")).text();
    assert!(html.contains("<table>"), "table");
    assert!(html.contains("<del>gone</del>"), "strikethrough");
    assert!(html.contains("type=\"checkbox\""), "task list");
    assert!(
        html.contains("<abbr title=\"HyperText Markup Language\">HTML</abbr>"),
        "abbr"
    );
    assert!(html.contains("hl-"), "highlighted code classes");
    assert!(html.contains("A footnote."), "footnote");
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script>alert"), "script stripped");
    assert!(!lower.contains("javascript:"), "javascript: URL stripped");
    assert!(!lower.contains("onerror"), "event handler stripped");
    assert!(!lower.contains("data:text/html"), "data: URL stripped");
    assert!(!lower.contains("color:red"), "style stripped");
}

#[test]
fn meta_tags_are_present_with_content() {
    let server = blog(&["--site-url", "https://blog.example"]);
    let id = create(
        &server,
        "Meta tags",
        "og",
        "A post about **meta** tags and their content.",
    );
    let html = server.get(&format!("/posts/{id}")).text();
    assert!(html.contains("<title>Meta tags"), "{html}");
    assert!(
        html.contains("name=\"description\" content=\"A post about meta tags"),
        "{html}"
    );
    assert!(html.contains("property=\"og:title\" content=\"Meta tags\""));
    assert!(html.contains("property=\"og:type\" content=\"article\""));
    assert!(html.contains(&format!(
        "property=\"og:url\" content=\"https://blog.example/posts/{id}\""
    )));
    assert!(html.contains(&format!(
        "rel=\"canonical\" href=\"https://blog.example/posts/{id}\""
    )));
    assert!(html.contains("name=\"twitter:card\""));

    // Without SITE_URL no absolute URL is guessed, even from a Host header.
    let plain = blog(&[]);
    let id = create(&plain, "No site", "og", "text");
    let html = plain.get(&format!("/posts/{id}")).text();
    assert!(!html.contains("og:url") && !html.contains("rel=\"canonical\""));
    assert!(html.contains("og:title"));
}

#[test]
fn static_files_cache_and_refuse_traversal() {
    let server = blog(&[]);
    let css = server.get("/static/style.css");
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    let etag = css.header("etag").expect("ETag").to_string();
    assert!(css.header("last-modified").is_some());
    let raw = server.raw(format!("GET /static/style.css HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n").as_bytes());
    assert!(String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 304"));
    for path in [
        "/static/../Cargo.toml",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2fetc/passwd",
        "/static//etc/passwd",
        "/static/nope.css",
    ] {
        let status = server.get(path).status;
        assert!(status == 404 || status == 400, "{path} -> {status}");
    }
    let home = server.get("/").text();
    assert!(
        home.contains("/static/style.css?v="),
        "cache-busted URL in pages"
    );
}

#[test]
fn templates_directory_overrides_embedded_ones() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates/layout.html"
    ))
    .unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    std::fs::write(
        dir.path().join("templates/layout.html"),
        embedded.replacen("<body", "<body data-overridden=\"yes\"", 1),
    )
    .unwrap();
    let server = support::start_in(dir, Options::default().args(&["--single-process"]));
    assert!(server.get("/").text().contains("data-overridden=\"yes\""));
}

#[test]
fn fresh_database_is_created_and_posts_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data.db");
    let uri = format!("sqlite:///{}", "data.db");
    let mut server = support::start_in(
        dir,
        Options::default().args(&["-w", "2", "--database-uri", &uri]),
    );
    assert!(db.exists(), "created on first run");
    let id = create(&server, "Durable", "dur", "still here");
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(server.wait_exit(PATIENCE), Some(0));
    let dir = std::mem::replace(&mut server.dir, tempfile::tempdir().unwrap());
    drop(server);
    let again = support::start_in(
        dir,
        Options::default().args(&["-w", "2", "--database-uri", &uri]),
    );
    let html = again.get(&format!("/posts/{id}")).text();
    assert!(html.contains("still here"));
}
