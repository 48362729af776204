//! Pages as a visitor and a crawler see them: meta tags, safety of rendered posts, static
//! files, template overrides, error pages and the fault routes.

use crate::support;

use blog::Mode;
use http::Handler;
use support::{body, request, Blog};

fn meta_content(html: &str, attr: &str, name: &str) -> Option<String> {
    let needle = format!("<meta {attr}=\"{name}\" content=\"");
    let start = html.find(&needle)? + needle.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

#[test]
fn every_page_has_a_title_and_a_real_description() {
    let blog = Blog::new();
    let id = blog.create(
        "Borrow checker tips",
        "ann",
        "Lifetimes are *regions* of code.",
    );
    for target in [
        "/".to_string(),
        "/posts".into(),
        format!("/posts/{id}"),
        "/new".into(),
        "/nope".into(),
    ] {
        let html = body(&blog.get(&target));
        assert!(
            html.contains("<title>") && !html.contains("<title></title>"),
            "{target}"
        );
        let description = meta_content(&html, "name", "description").unwrap_or_default();
        assert!(
            description.len() > 10,
            "{target}: description {description:?}"
        );
        assert!(
            meta_content(&html, "property", "og:title").is_some(),
            "{target}"
        );
        assert!(
            meta_content(&html, "name", "twitter:description").is_some(),
            "{target}"
        );
        assert!(
            !html.contains("rel=\"canonical\""),
            "no site_url, no absolute URLs: {target}"
        );
        assert!(
            meta_content(&html, "property", "og:url").is_none(),
            "{target}"
        );
    }
    let post = body(&blog.get(&format!("/posts/{id}")));
    assert!(
        post.contains("<title>Borrow checker tips · pyblogd</title>"),
        "{post}"
    );
    assert_eq!(
        meta_content(&post, "property", "og:description").as_deref(),
        Some("Lifetimes are regions of code.")
    );
    assert_eq!(
        meta_content(&post, "property", "og:type").as_deref(),
        Some("article")
    );
    assert_eq!(
        meta_content(&post, "name", "twitter:card").as_deref(),
        Some("summary")
    );
}

#[test]
fn site_url_adds_canonical_and_open_graph_urls() {
    let blog = Blog::with(|c| c.site_url = Some("https://blog.example/".into()));
    let id = blog.create("T", "n", "c");
    let html = body(&blog.get(&format!("/posts/{id}")));
    let url = format!("https://blog.example/posts/{id}");
    assert!(
        html.contains(&format!("<link rel=\"canonical\" href=\"{url}\">")),
        "{html}"
    );
    assert_eq!(meta_content(&html, "property", "og:url"), Some(url));
    assert_eq!(
        meta_content(&html, "property", "og:site_name").as_deref(),
        Some("pyblogd")
    );
    let home = body(&blog.get("/"));
    assert_eq!(
        meta_content(&home, "property", "og:type").as_deref(),
        Some("website")
    );
    assert!(home.contains("href=\"https://blog.example/\""), "{home}");
    // The Host header never leaks into URLs.
    let req = request("GET", "/", &[("Host", "evil.example")], vec![]);
    assert!(!body(&blog.app.handle(&req)).contains("evil.example"));
}

#[test]
fn the_og_description_is_the_first_160_characters_of_plain_text() {
    let blog = Blog::new();
    let content = format!("**Bold** start. {}", "lorem ipsum ".repeat(40));
    let id = blog.create("T", "n", &content);
    let html = body(&blog.get(&format!("/posts/{id}")));
    let description = meta_content(&html, "property", "og:description").unwrap();
    assert!(
        description.starts_with("Bold start. lorem"),
        "{description}"
    );
    assert!(description.chars().count() <= 160, "{description}");
}

#[test]
fn hostile_posts_are_inert_on_the_page() {
    let blog = Blog::new();
    let payloads = [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "<a href=\"&#106;avascript:alert(1)\">x</a>",
        "![x](data:image/png;base64,AAAA)",
        "<svg onload=alert(1)>",
        "<p style=\"color:red\">x</p>",
    ];
    for payload in payloads {
        let id = blog.create("<script>alert('t')</script>", "<b>n</b>", payload);
        let html = body(&blog.get(&format!("/posts/{id}")));
        let article = &html[html.find("<article").unwrap()..];
        let lower = article.to_ascii_lowercase();
        assert!(!lower.contains("<script"), "{payload}: {article}");
        assert!(
            !lower.contains("onerror") && !lower.contains("onload"),
            "{payload}"
        );
        assert!(
            !lower.contains("javascript:") || !lower.contains("href=\"javascript"),
            "{payload}"
        );
        assert!(!lower.contains("src=\"data:"), "{payload}");
        assert!(!lower.contains("style="), "{payload}");
        let csp = blog.get(&format!("/posts/{id}"));
        assert!(csp.header("Content-Security-Policy").is_some());
    }
}

#[test]
fn markdown_extensions_reach_the_page() {
    let blog = Blog::new();
    let id = blog.create(
        "Extensions",
        "n",
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n```rust\nfn main() {}\n```\n\n~~old~~\n\n\
         Note[^1].\n\n[^1]: Footnote.\n\n- [x] done\n\nHTML rocks.\n\n*[HTML]: HyperText Markup Language\n",
    );
    let html = body(&blog.get(&format!("/posts/{id}")));
    assert!(html.contains("<table>"));
    assert!(html.contains("<pre class=\"hl-code\">") && html.contains("class=\"hl-"));
    assert!(html.contains("<del>old</del>"));
    assert!(html.contains("class=\"footnote-reference\""));
    assert!(html.contains("type=\"checkbox\""));
    assert!(html.contains("<abbr title=\"HyperText Markup Language\">HTML</abbr>"));
}

#[test]
fn static_files_with_validators_head_and_no_traversal() {
    let blog = Blog::new();
    let home = body(&blog.get("/"));
    let at = home
        .find("/static/style.css?v=")
        .expect("versioned stylesheet link");
    let url = &home[at..at + "/static/style.css?v=".len() + 8];
    let res = blog.get(url);
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("Cache-Control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(res.header("Content-Type"), Some("text/css; charset=utf-8"));
    let etag = res.header("ETag").unwrap().to_string();
    let res = blog
        .app
        .handle(&request("GET", url, &[("If-None-Match", &etag)], vec![]));
    assert_eq!(res.status, 304);
    let res = blog
        .app
        .handle(&request("HEAD", "/static/favicon.svg", &[], vec![]));
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("Content-Type"),
        Some("image/svg+xml; charset=utf-8")
    );
    let res = blog
        .app
        .handle(&request("POST", "/static/style.css", &[], vec![]));
    assert_eq!(res.status, 405);
    for hostile in [
        "/static/../Cargo.toml",
        "/static/../../etc/passwd",
        "/static/..%2f..%2fetc%2fpasswd",
        "/static//etc/passwd",
        "/static/.hidden",
        "/static/..\\..\\etc\\passwd",
        "/static/",
    ] {
        assert_eq!(blog.get(hostile).status, 404, "{hostile}");
    }
}

#[test]
fn templates_and_static_files_are_overridden_from_directories() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    let statics = dir.path().join("static");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::create_dir_all(&statics).unwrap();
    std::fs::write(
        templates.join("error.html"),
        "custom error {{ status }} {{ static_url('style.css') }}",
    )
    .unwrap();
    std::fs::write(statics.join("style.css"), "body{}").unwrap();
    let blog = Blog::with(|c| {
        c.templates_dir = templates.clone();
        c.static_dir = statics.clone();
    });
    let html = body(&blog.get("/missing"));
    assert!(
        html.starts_with("custom error 404 /static/style.css?v="),
        "{html}"
    );
    assert_eq!(body(&blog.get("/static/style.css")), "body{}");
    assert!(
        body(&blog.get("/")).contains("Popular this week"),
        "others stay embedded"
    );
}

#[test]
fn development_mode_reloads_an_edited_template() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    let blog = Blog::with(|c| {
        c.mode = Mode::Development;
        c.templates_dir = templates.clone();
    });
    assert!(body(&blog.get("/missing")).contains("<!doctype html>"));
    std::fs::write(templates.join("error.html"), "edited {{ status }}").unwrap();
    assert_eq!(body(&blog.get("/missing")), "edited 404");
}

#[test]
fn a_broken_template_falls_back_to_a_plain_page() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("error.html"), "{{ 1 / 0 }}").unwrap();
    let blog = Blog::with(|c| c.templates_dir = dir.path().to_path_buf());
    let res = blog.get("/missing");
    assert_eq!(res.status, 404);
    assert!(
        body(&res).contains("<h1>404 Not Found</h1>"),
        "{}",
        body(&res)
    );
}

#[test]
fn panics_show_internals_only_in_development() {
    let req = request("GET", "/", &[], vec![]);
    let prod = Blog::new();
    let res = prod
        .app
        .panic_response(&req, "secret <detail>", "backtrace here");
    assert_eq!(res.status, 500);
    assert!(!body(&res).contains("secret"), "{}", body(&res));
    let dev = Blog::with(|c| c.mode = Mode::Development);
    let res = dev
        .app
        .panic_response(&req, "secret <detail>", "backtrace here");
    let html = body(&res);
    assert!(
        html.contains("secret &lt;detail&gt;") && html.contains("backtrace here"),
        "{html}"
    );
}

#[test]
fn protocol_errors_get_the_error_template() {
    let blog = Blog::new();
    for status in [400, 408, 413, 414, 431, 501, 505] {
        let res = blog.app.error_response(status, "bad thing");
        assert_eq!(res.status, status);
        let html = body(&res);
        assert!(html.contains(&format!("{status} · ")), "{html}");
        assert!(html.contains("bad thing"), "{html}");
    }
}

#[test]
fn fault_routes_exist_only_when_enabled() {
    let off = Blog::new();
    for path in [
        "/__fault/panic",
        "/__fault/slow",
        "/__fault/abort",
        "/__fault/hang",
    ] {
        assert_eq!(off.get(path).status, 404, "{path}");
    }
    let on = Blog::with(|c| c.fault_routes = true);
    let started = std::time::Instant::now();
    let res = on.get("/__fault/slow?ms=50");
    assert_eq!(res.status, 200);
    assert_eq!(body(&res), "slow ok");
    assert!(started.elapsed() >= std::time::Duration::from_millis(50));
    let panicked =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| on.get("/__fault/panic")));
    assert!(panicked.is_err());
}
