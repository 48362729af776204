//! Tests of static file serving: validators, caching headers, overrides.

use super::*;

fn get(query: &str, headers: &[(&str, &str)]) -> Request {
    Request {
        method: "GET".into(),
        path: "/static/x".into(),
        query: query.into(),
        target: "/static/x".into(),
        version: http::Version::Http11,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect(),
        body: Vec::new(),
        peer: None,
        client: None,
    }
}

fn embedded_only() -> Assets {
    Assets::new(Path::new("/nonexistent/pyblogd/static"), Mode::Production).unwrap()
}

#[test]
fn the_stylesheet_is_embedded_with_type_etag_and_version() {
    let assets = embedded_only();
    let res = assets
        .serve(&get("", &[]), "style.css")
        .expect("style.css is embedded");
    assert_eq!(res.status, 200);
    assert_eq!(res.header("Content-Type"), Some("text/css; charset=utf-8"));
    let etag = res.header("ETag").unwrap().to_string();
    assert!(etag.starts_with('"') && etag.len() == 18, "{etag}");
    assert_eq!(res.header("Cache-Control"), Some(CACHE_SHORT));
    assert!(res.header("Last-Modified").is_some());
    let url = assets.url("style.css");
    assert_eq!(url, format!("/static/style.css?v={}", &etag[1..9]));
    assert!(!res.body.as_bytes().is_empty());
}

#[test]
fn the_current_version_is_cached_for_a_year_a_stale_one_briefly() {
    let assets = embedded_only();
    let url = assets.url("style.css");
    let query = url.split_once('?').unwrap().1;
    let res = assets.serve(&get(query, &[]), "style.css").unwrap();
    assert_eq!(res.header("Cache-Control"), Some(CACHE_IMMUTABLE));
    let res = assets.serve(&get("v=00000000", &[]), "style.css").unwrap();
    assert_eq!(res.header("Cache-Control"), Some(CACHE_SHORT));
}

#[test]
fn conditional_requests_get_304() {
    let assets = embedded_only();
    let first = assets.serve(&get("", &[]), "style.css").unwrap();
    let etag = first.header("ETag").unwrap();
    let modified = first.header("Last-Modified").unwrap();

    let same = assets
        .serve(&get("", &[("If-None-Match", etag)]), "style.css")
        .unwrap();
    assert_eq!(same.status, 304);
    assert_eq!(same.header("ETag"), Some(etag));
    assert!(same.body.as_bytes().is_empty());
    let listed = format!("\"nope\", W/{etag}");
    let weak = assets
        .serve(&get("", &[("If-None-Match", &listed)]), "style.css")
        .unwrap();
    assert_eq!(weak.status, 304);
    let other = assets
        .serve(&get("", &[("If-None-Match", "\"nope\"")]), "style.css")
        .unwrap();
    assert_eq!(other.status, 200);
    // If-None-Match wins over If-Modified-Since.
    let both = [
        ("If-None-Match", "\"nope\""),
        ("If-Modified-Since", modified),
    ];
    assert_eq!(
        assets.serve(&get("", &both), "style.css").unwrap().status,
        200
    );

    let since = assets
        .serve(&get("", &[("If-Modified-Since", modified)]), "style.css")
        .unwrap();
    assert_eq!(since.status, 304);
    let old = "Thu, 01 Jan 1970 00:00:01 GMT";
    let stale = assets
        .serve(&get("", &[("If-Modified-Since", old)]), "style.css")
        .unwrap();
    assert_eq!(stale.status, 200);
    let junk = assets
        .serve(&get("", &[("If-Modified-Since", "yesterday")]), "style.css")
        .unwrap();
    assert_eq!(junk.status, 200);
}

#[test]
fn missing_and_hostile_paths_are_not_found() {
    let assets = embedded_only();
    for requested in [
        "nope.css",
        "../Cargo.toml",
        "..",
        "",
        ".hidden",
        "/etc/passwd",
    ] {
        assert!(
            assets.serve(&get("", &[]), requested).is_none(),
            "{requested:?}"
        );
    }
}

#[test]
fn an_override_directory_wins_per_file_and_is_read_once_in_production() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("style.css"), "body { color: red }").unwrap();
    std::fs::create_dir(dir.path().join("img")).unwrap();
    std::fs::write(dir.path().join("img/extra.txt"), "extra").unwrap();
    let assets = Assets::new(dir.path(), Mode::Production).unwrap();
    let res = assets.serve(&get("", &[]), "style.css").unwrap();
    assert_eq!(res.body.as_bytes(), b"body { color: red }");
    let extra = assets.serve(&get("", &[]), "img/extra.txt").unwrap();
    assert_eq!(
        extra.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    // Files not overridden fall back to the embedded ones.
    assert!(assets.serve(&get("", &[]), "highlight.css").is_some());
    // Production does not see later edits.
    std::fs::write(dir.path().join("style.css"), "changed").unwrap();
    let again = assets.serve(&get("", &[]), "style.css").unwrap();
    assert_eq!(again.body.as_bytes(), b"body { color: red }");
}

#[test]
fn development_re_reads_changed_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("style.css");
    std::fs::write(&file, "one").unwrap();
    let assets = Assets::new(dir.path(), Mode::Development).unwrap();
    let first_url = assets.url("style.css");
    assert_eq!(
        assets
            .serve(&get("", &[]), "style.css")
            .unwrap()
            .body
            .as_bytes(),
        b"one"
    );
    std::fs::write(&file, "two, longer").unwrap();
    assert_eq!(
        assets
            .serve(&get("", &[]), "style.css")
            .unwrap()
            .body
            .as_bytes(),
        b"two, longer"
    );
    assert_ne!(
        assets.url("style.css"),
        first_url,
        "the cache-buster follows the content"
    );
    std::fs::write(dir.path().join("new.js"), "x").unwrap();
    let js = assets.serve(&get("", &[]), "new.js").unwrap();
    assert_eq!(
        js.header("Content-Type"),
        Some("text/javascript; charset=utf-8")
    );
}

#[test]
fn a_symlink_out_of_the_override_directory_is_not_served() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        dir.path().join("leak.txt"),
    )
    .unwrap();
    for mode in [Mode::Production, Mode::Development] {
        let assets = Assets::new(dir.path(), mode).unwrap();
        assert!(
            assets.serve(&get("", &[]), "leak.txt").is_none(),
            "{mode:?}"
        );
    }
}
