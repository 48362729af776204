//! Who may change a post, through `App::handle`: posts adopted from the original PyProject
//! have no edit key, so only the admin may change them; the public post page never offers
//! Edit or Delete to anyone else.

use crate::support;

use blog::DatabaseTarget;
use support::{body, Blog};

const ADMIN_TOKEN: &str = "authorship-admin-token";

/// A database of the original PyProject with one post, id 3.
fn pyproject_database(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("pyproject.db");
    let conn = r2d2_sqlite::rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE posts (
             id INTEGER NOT NULL, created_at DATETIME NOT NULL, view_count INTEGER NOT NULL,
             title VARCHAR(100) NOT NULL, name VARCHAR(100) NOT NULL, content TEXT NOT NULL,
             markdown TEXT NOT NULL, PRIMARY KEY (id));
         INSERT INTO posts VALUES (3, '2021-08-14 10:20:30.123456', 42, 'Old post', 'srikar',
             '<p>old</p>', 'Old *text*');",
    )
    .unwrap();
    path
}

#[test]
fn adopted_posts_are_changed_by_the_admin_only() {
    let source = tempfile::tempdir().unwrap();
    let path = pyproject_database(source.path());
    let blog = Blog::with(|c| {
        c.database = DatabaseTarget::Sqlite(path.clone());
        c.admin_token = Some(ADMIN_TOKEN.to_string());
    });
    let edit = [("title", "Defaced"), ("name", "eve"), ("content", "x")];
    assert_eq!(blog.get("/posts/3/edit").status, 403);
    assert_eq!(blog.post("/posts/3/edit", &edit).status, 403);
    assert_eq!(blog.post("/posts/3/delete", &[]).status, 403);
    assert!(body(&blog.get("/posts/3")).contains("Old post"));
    assert!(!body(&blog.get("/posts/3")).contains("/posts/3/edit"));

    // A wrong token leaves the browser without a session.
    let wrong = blog.post("/admin/login", &[("token", "authorship-admin-tokeN")]);
    assert_eq!(wrong.status, 403);
    assert_eq!(blog.post("/posts/3/edit", &edit).status, 403);

    let login = blog.post("/admin/login", &[("token", ADMIN_TOKEN)]);
    assert_eq!(login.status, 303, "{}", body(&login));
    let page = body(&blog.get("/posts/3"));
    assert!(
        page.contains("href=\"/posts/3/edit\""),
        "the admin sees Edit: {page}"
    );
    let moderated = [("title", "Moderated"), ("name", "admin"), ("content", "ok")];
    assert_eq!(blog.post("/posts/3/edit", &moderated).status, 303);
    assert!(body(&blog.get("/posts/3")).contains("Moderated"));

    // Signing out ends it.
    assert_eq!(blog.post("/admin/logout", &[]).status, 303);
    assert_eq!(blog.post("/posts/3/delete", &[]).status, 403);
}

#[test]
fn a_create_hands_its_browser_the_key_and_no_one_else() {
    let blog = Blog::new();
    let id = blog.create("Mine", "ann", "text");
    let key_cookie = format!("pyblogd_key_{id}");
    assert!(
        blog.jar
            .lock()
            .unwrap()
            .iter()
            .any(|(n, _)| *n == key_cookie),
        "the author's browser holds the key"
    );
    let stranger = Blog {
        app: blog::App::new(support::config_in(blog.dir.path())).unwrap(),
        dir: tempfile::tempdir().unwrap(),
        jar: Default::default(),
        origin: support::ORIGIN.to_string(),
    };
    assert_eq!(
        stranger.post(&format!("/posts/{id}/delete"), &[]).status,
        403
    );
    assert_eq!(blog.post(&format!("/posts/{id}/delete"), &[]).status, 303);
}
