//! Posts through `App::handle`: the create/view/edit/delete round trip, validation, ids,
//! pagination, popular-this-week and exact view counting.

use crate::support;

use std::sync::Arc;
use std::time::Duration;
use support::{body, Blog};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn create_view_edit_delete_round_trip() {
    let blog = Blog::new();
    let res = blog.post(
        "/posts",
        &[
            ("title", "  Hello, world  "),
            ("name", "ann"),
            ("content", "# Hi\n\nFirst *post*."),
        ],
    );
    assert_eq!(res.status, 303);
    let location = res.header("Location").unwrap().to_string();
    assert!(location.starts_with("/posts/"), "{location}");

    let page = blog.get(&location);
    assert_eq!(page.status, 200);
    let html = body(&page);
    assert!(
        html.contains("<h1>Hello, world</h1>"),
        "title is trimmed and shown"
    );
    assert!(html.contains("<em>post</em>"), "Markdown is rendered");
    assert!(html.contains("1 view"), "the view is counted");
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );

    let edit = blog.get(&format!("{location}/edit"));
    assert_eq!(edit.status, 200);
    assert!(
        body(&edit).contains("First *post*."),
        "the form holds the Markdown source"
    );

    let id: i64 = location.rsplit('/').next().unwrap().parse().unwrap();
    blog.sql()
        .execute(
            "UPDATE posts SET created_at = created_at - 100, updated_at = updated_at - 100",
            [],
        )
        .unwrap();
    let res = blog.post(
        &format!("{location}/edit/"),
        &[
            ("title", "Changed"),
            ("name", "bob"),
            ("content", "New ~~text~~."),
        ],
    );
    assert_eq!(res.status, 303);
    assert_eq!(res.header("Location"), Some(location.as_str()));
    let html = body(&blog.get(&location));
    assert!(
        html.contains("<h1>Changed</h1>") && html.contains("<del>text</del>"),
        "{html}"
    );
    assert!(html.contains("bob") && html.contains("edited"), "{html}");
    let (created, updated): (i64, i64) = blog
        .sql()
        .query_row(
            "SELECT created_at, updated_at FROM posts WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        updated >= created + 100,
        "edit keeps created_at and moves updated_at"
    );

    let confirm = blog.get(&format!("{location}/delete"));
    assert_eq!(confirm.status, 200, "the no-JavaScript confirmation page");
    assert!(body(&confirm).contains("method=\"post\" action=\"/posts/"));

    let res = blog.post(&format!("{location}/delete"), &[]);
    assert_eq!(res.status, 303);
    assert_eq!(res.header("Location"), Some("/posts"));
    assert_eq!(blog.get(&location).status, 404);
    assert_eq!(blog.post(&format!("{location}/delete"), &[]).status, 404);
    assert_eq!(blog.get(&format!("{location}/edit")).status, 404);
}

#[test]
fn the_post_page_offers_a_dialog_and_a_no_script_fallback() {
    let blog = Blog::new();
    let id = blog.create("T", "n", "c");
    let html = body(&blog.get(&format!("/posts/{id}")));
    assert!(html.contains("<dialog id=\"confirm-delete\""), "{html}");
    assert!(
        html.contains(&format!("href=\"/posts/{id}/delete\" data-opens-dialog")),
        "{html}"
    );
    assert!(
        html.contains(&format!("action=\"/posts/{id}/delete\"")),
        "{html}"
    );
}

fn field_error(html: &str, field: &str) -> bool {
    html.contains(&format!("id=\"{field}-error\""))
        && html.contains(&format!("aria-describedby=\"{field}-hint {field}-error\""))
}

#[test]
fn each_validation_rule_answers_422_with_the_input_kept() {
    let blog = Blog::new();
    let long_title = "t".repeat(101);
    let cases: Vec<([(&str, String); 3], &str)> = vec![
        (
            [
                ("title", String::new()),
                ("name", "ann".into()),
                ("content", "c".into()),
            ],
            "title",
        ),
        (
            [
                ("title", "   ".into()),
                ("name", "ann".into()),
                ("content", "c".into()),
            ],
            "title",
        ),
        (
            [
                ("title", long_title.clone()),
                ("name", "ann".into()),
                ("content", "c".into()),
            ],
            "title",
        ),
        (
            [
                ("title", "t".into()),
                ("name", "".into()),
                ("content", "c".into()),
            ],
            "name",
        ),
        (
            [
                ("title", "t".into()),
                ("name", "😀😀😀😀😀😀😀😀😀".into()),
                ("content", "c".into()),
            ],
            "name",
        ),
        (
            [
                ("title", "t".into()),
                ("name", "ninechars".into()),
                ("content", "c".into()),
            ],
            "name",
        ),
        (
            [
                ("title", "t".into()),
                ("name", "n".into()),
                ("content", " \n ".into()),
            ],
            "content",
        ),
        (
            [
                ("title", "t".into()),
                ("name", "n".into()),
                ("content", "字".repeat(14_001)),
            ],
            "content",
        ),
    ];
    for (fields, bad) in cases {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for target in [
            "/posts".to_string(),
            format!("/posts/{}/edit", blog.create("x", "y", "z")),
        ] {
            let res = blog.post(&target, &pairs);
            assert_eq!(res.status, 422, "{bad} via {target}");
            let html = body(&res);
            assert!(field_error(&html, bad), "message beside {bad}: {html}");
            for other in ["title", "name", "content"].iter().filter(|f| **f != bad) {
                assert!(!field_error(&html, other), "{other} is valid");
            }
            // Everything typed comes back (escaped).
            let (_, typed) = fields.iter().find(|(k, _)| *k == bad).unwrap();
            if !typed.trim().is_empty() {
                assert!(html.contains(typed.as_str()), "{bad} kept");
            }
        }
    }
    let html = body(&blog.post(
        "/posts",
        &[("title", "<b>\"x\"</b>"), ("name", ""), ("content", "c")],
    ));
    assert!(
        html.contains("value=\"&lt;b&gt;&quot;x&quot;&lt;/b&gt;\""),
        "{html}"
    );
}

#[test]
fn unicode_limits_are_characters() {
    let blog = Blog::new();
    blog.create(&"é".repeat(100), "名前名前名前名前", "c");
    blog.create("t", "😀😀😀😀😀😀😀😀", &"字".repeat(14_000));
    let res = blog.post(
        "/posts",
        &[
            ("title", "t"),
            ("name", "名前名前名前名前名"),
            ("content", "c"),
        ],
    );
    assert_eq!(res.status, 422);
}

#[test]
fn bad_form_encoding_is_400() {
    let blog = Blog::new();
    let req = support::request(
        "POST",
        "/posts",
        &[],
        b"title=%zz&name=a&content=b".to_vec(),
    );
    let res = http::Handler::handle(&blog.app, &req);
    assert_eq!(res.status, 400);
    let req = support::request(
        "POST",
        "/posts",
        &[],
        b"title=%FF%FE&name=a&content=b".to_vec(),
    );
    assert_eq!(http::Handler::handle(&blog.app, &req).status, 400);
}

#[test]
fn missing_or_strange_ids_are_404_never_500() {
    let blog = Blog::new();
    for path in [
        "/posts/1",
        "/posts/0",
        "/posts/abc",
        "/posts/-5",
        "/posts/99999999999999999999999999",
        "/posts/9223372036854775807",
        "/posts/1/edit",
        "/posts/1/delete",
        "/nowhere",
    ] {
        let res = blog.get(path);
        assert_eq!(res.status, 404, "{path}");
        assert!(body(&res).contains("404"), "{path} has an error page");
    }
    let res = blog.post(
        "/posts/9223372036854775807/edit",
        &[("title", "t"), ("name", "n"), ("content", "c")],
    );
    assert_eq!(res.status, 404);
}

#[test]
fn wrong_methods_are_405_with_allow() {
    let blog = Blog::new();
    let res = http::Handler::handle(
        &blog.app,
        &support::request("DELETE", "/posts", &[], vec![]),
    );
    assert_eq!(res.status, 405);
    assert_eq!(res.header("Allow"), Some("GET, HEAD, POST"));
    let res = blog.post("/", &[]);
    assert_eq!(res.status, 405);
    assert_eq!(res.header("Allow"), Some("GET, HEAD"));
}

#[test]
fn pagination_edges() {
    let blog = Blog::new();
    let empty = blog.get("/posts");
    assert_eq!(empty.status, 200, "page 1 of an empty blog is a page");
    assert!(body(&empty).contains("No posts yet"));
    assert_eq!(blog.get("/posts?page=2").status, 404);

    for i in 1..=11 {
        blog.create(&format!("Post number {i:02}"), "n", "c");
    }
    let titles = |target: &str| -> Vec<String> {
        let html = body(&blog.get(target));
        html.match_indices("Post number ")
            .map(|(at, _)| html[at + 12..at + 14].to_string())
            .collect()
    };
    assert_eq!(
        titles("/posts"),
        ["11", "10", "09", "08", "07"],
        "newest first, 5 per page"
    );
    assert_eq!(titles("/posts?page=2"), ["06", "05", "04", "03", "02"]);
    assert_eq!(titles("/posts?page=3"), ["01"]);
    assert_eq!(blog.get("/posts?page=4").status, 404, "past the last page");
    for odd in ["abc", "0", "-1", "1.5", "", "%20"] {
        assert_eq!(
            titles(&format!("/posts?page={odd}"))[0],
            "11",
            "page={odd} → page 1"
        );
    }
    assert_eq!(blog.get("/posts?page=99999999999999999999999").status, 404);

    let first = body(&blog.get("/posts"));
    assert!(first.contains("href=\"/posts?page=2\"") && !first.contains("rel=\"prev\""));
    let middle = body(&blog.get("/posts?page=2"));
    assert!(middle.contains("rel=\"prev\" href=\"/posts\"") && middle.contains("?page=3"));
    let last = body(&blog.get("/posts?page=3"));
    assert!(last.contains("rel=\"prev\"") && !last.contains("rel=\"next\""));
    assert!(last.contains("Page 3 of 3"));
}

#[test]
fn popular_this_week_orders_by_views_within_seven_days() {
    let blog = Blog::new();
    let conn = blog.sql();
    let day = 86_400;
    let now = now();
    for (title, age, views) in [
        ("Fresh and loved", day, 50),
        ("Old and loved", 8 * day, 1_000),
        ("Edge of the week", 7 * day - 60, 40),
        ("Fresh and quiet", 60, 1),
        ("Yesterday", day, 30),
        ("Two days", 2 * day, 20),
        ("Three days", 3 * day, 10),
    ] {
        conn.execute(
            "INSERT INTO posts (created_at, updated_at, view_count, title, name, description,
                                markdown, html)
             VALUES (?1, ?1, ?2, ?3, 'n', '', 'm', '<p>m</p>')",
            r2d2_sqlite::rusqlite::params![now - age, views, title],
        )
        .unwrap();
    }
    let html = body(&blog.get("/"));
    let popular_start = html.find("Popular this week").unwrap();
    let latest_start = html.find("Latest posts").unwrap();
    let popular = &html[popular_start..latest_start];
    let order: Vec<usize> = [
        "Fresh and loved",
        "Edge of the week",
        "Yesterday",
        "Two days",
        "Three days",
    ]
    .iter()
    .map(|t| {
        popular
            .find(t)
            .unwrap_or_else(|| panic!("{t} missing: {popular}"))
    })
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "most viewed first: {popular}"
    );
    assert!(
        !popular.contains("Old and loved"),
        "older than 7 days is out"
    );
    assert!(!popular.contains("Fresh and quiet"), "only the top 5");
    assert!(popular.contains("50 views") && popular.contains("10 views"));
    let latest = &html[latest_start..];
    assert!(latest.find("Fresh and quiet").unwrap() < latest.find("Yesterday").unwrap());
}

#[test]
fn two_hundred_views_from_eight_threads_count_exactly() {
    let blog = Arc::new(Blog::new());
    let id = blog.create("Counted", "n", "c");
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let blog = Arc::clone(&blog);
            std::thread::spawn(move || {
                for _ in 0..25 {
                    assert_eq!(blog.get(&format!("/posts/{id}")).status, 200);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // The page includes every view at once, the reader's own too.
    assert!(body(&blog.get(&format!("/posts/{id}"))).contains("201 views"));
    // The database has them within a flush period, each once.
    let views = |blog: &Blog| -> i64 {
        blog.sql()
            .query_row("SELECT view_count FROM posts WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap()
    };
    support::wait_until("views committed", Duration::from_secs(10), || {
        views(&blog) == 201
    });
    // Stopping the app (its final flush) counts nothing twice.
    let Ok(Blog { app, dir, .. }) = Arc::try_unwrap(blog) else {
        panic!("the threads still hold the blog");
    };
    drop(app);
    let conn = r2d2_sqlite::rusqlite::Connection::open(dir.path().join("blog.db")).unwrap();
    let count: i64 = conn
        .query_row("SELECT view_count FROM posts WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(count, 201);
}

#[test]
fn head_is_answered_like_get() {
    let blog = Blog::new();
    let id = blog.create("T", "n", "c");
    for target in [
        "/".to_string(),
        "/posts".into(),
        format!("/posts/{id}"),
        "/new".into(),
    ] {
        let res = http::Handler::handle(&blog.app, &support::request("HEAD", &target, &[], vec![]));
        assert_eq!(res.status, 200, "{target}");
    }
}

#[test]
fn cached_pages_show_new_and_deleted_posts_at_once() {
    let blog = Blog::new();
    assert!(body(&blog.get("/")).contains("Nothing here yet"));
    assert!(body(&blog.get("/posts")).contains("No posts yet"));
    let id = blog.create("Fresh news", "n", "c");
    assert!(
        body(&blog.get("/")).contains("Fresh news"),
        "home is not stale after a create"
    );
    assert!(
        body(&blog.get("/posts")).contains("Fresh news"),
        "list is not stale either"
    );
    // A write by another worker (here: another connection) is seen as well.
    blog.sql()
        .execute(
            "UPDATE posts SET title = 'Edited elsewhere' WHERE id = ?1",
            [id],
        )
        .unwrap();
    assert!(body(&blog.get("/posts")).contains("Edited elsewhere"));
    assert_eq!(blog.post(&format!("/posts/{id}/delete"), &[]).status, 303);
    assert!(!body(&blog.get("/")).contains("Edited elsewhere"));
    assert!(!body(&blog.get("/posts")).contains("Edited elsewhere"));
}
