//! A reader's flows in Chromium against `pyblogd -w 2`: write a post through the nav and the
//! form, see it rendered, get field messages for an invalid form with the input kept, edit,
//! delete through the confirmation dialog, and walk the pagination. One server and one
//! browser for the whole walk; any console error, failed load or CSP violation fails it.

use super::chrome::Chrome;
use super::{browser_turn, tools, write_post, RICH_POST};
use crate::support::{self, Options};

#[test]
fn a_reader_writes_edits_deletes_and_pages_through_posts_in_chromium() {
    let Some(tools) = tools() else { return };
    let _turn = browser_turn();
    let server = support::start(Options::default().args(&["-w", "2"]));
    let chrome = Chrome::launch(&tools.chromium);
    let page = chrome.page(format!("http://{}", server.addr));

    // Home → "New post" through the navigation.
    page.goto("/");
    page.assert_clean("home", None);
    page.click_and_wait("header nav a.nav-new");
    assert_eq!(page.eval_string("location.pathname"), "/new");
    assert_eq!(page.text("h1"), "New post");

    // Fill the form and submit: the rendered post has highlighted code and a table.
    page.type_into("#title", "Tables and code in a browser");
    page.type_into("#name", "e2e");
    page.type_into("#content", RICH_POST);
    page.click_and_wait("form.post-form button[type=submit]");
    let post = page.eval_string("location.pathname");
    assert!(post.starts_with("/posts/"), "submitting led to {post}");
    assert_eq!(page.text("article h1"), "Tables and code in a browser");
    let token_colours = page.eval(
        "new Set([...document.querySelectorAll('.prose pre span')].map((s) => getComputedStyle(s).color)).size",
    );
    assert!(
        token_colours.as_u64().is_some_and(|n| n >= 3),
        "the code block is highlighted in several colours, got {token_colours}"
    );
    assert_eq!(
        page.eval("[...document.querySelectorAll('.prose table th')].map((th) => th.textContent)"),
        serde_json::json!(["Language", "Typing", "First release"])
    );
    assert_eq!(page.text(".prose table tbody tr td"), "Rust");
    page.assert_clean("new post", None);

    // An invalid form: each field's message, and everything typed still there.
    page.click_and_wait("header nav a.nav-new");
    page.type_into("#title", "   ");
    page.type_into("#name", "kept");
    page.type_into("#content", "Typed text survives\na failed submit.");
    page.click_and_wait("form.post-form button[type=submit]");
    assert_eq!(page.text("#title-error"), "Title is required.");
    assert!(
        page.eval_bool("document.querySelector('#title').getAttribute('aria-invalid') === 'true'")
    );
    assert!(page.eval_bool(
        "document.querySelector('#title').getAttribute('aria-describedby').includes('title-error')"
    ));
    assert_eq!(
        page.eval_string("document.querySelector('#name').value"),
        "kept"
    );
    assert_eq!(
        page.eval_string("document.querySelector('#content').value"),
        "Typed text survives\na failed submit."
    );
    assert!(page.text("[role=alert]").contains("Please fix the fields"));
    page.assert_clean("invalid form", Some("/posts"));

    // Edit the post from its page, in the same browser that wrote it.
    page.goto(&post);
    page.click_and_wait(".post-actions a[href$='/edit']");
    assert_eq!(
        page.eval_string("document.querySelector('#title').value"),
        "Tables and code in a browser"
    );
    page.type_into("#title", "Tables and code, edited");
    page.click_and_wait("form.post-form button[type=submit]");
    assert_eq!(page.eval_string("location.pathname"), post);
    assert_eq!(page.text("article h1"), "Tables and code, edited");
    assert!(page.text(".post-header .byline").contains("edited"));
    page.assert_clean("edit", None);

    // Delete through the confirmation dialog app.js opens (no page load in between).
    page.click(".post-actions a[data-opens-dialog]");
    page.wait_for("document.getElementById('confirm-delete').open");
    assert_eq!(
        page.eval_string("location.pathname"),
        post,
        "the dialog opens in place"
    );
    page.click_and_wait("#confirm-delete button.danger");
    assert_eq!(page.eval_string("location.pathname"), "/posts");
    page.assert_clean("delete", None);
    page.goto(&post);
    assert!(
        page.text("h1").starts_with("404"),
        "deleted post: {}",
        page.text("h1")
    );
    page.assert_clean("deleted post", Some(&post));

    // Pagination: 11 posts are three pages of 5, newest first; walk there and back.
    for i in 1..=11 {
        write_post(
            &page,
            &format!("Paged post {i:02}"),
            "pager",
            "A post to fill pages.",
        );
    }
    page.goto("/posts");
    assert_eq!(page.text(".page-of"), "Page 1 of 3");
    assert_eq!(page.text(".post-card-title"), "Paged post 11");
    page.click_and_wait("a[rel=next]");
    assert_eq!(page.text(".page-of"), "Page 2 of 3");
    assert_eq!(page.text(".post-card-title"), "Paged post 06");
    page.click_and_wait("a[rel=next]");
    assert_eq!(page.text(".page-of"), "Page 3 of 3");
    assert_eq!(page.text(".post-card-title"), "Paged post 01");
    assert!(
        page.eval_bool("document.querySelector('a[rel=next]') === null"),
        "no next on the last page"
    );
    page.click_and_wait("a[rel=prev]");
    assert_eq!(page.text(".page-of"), "Page 2 of 3");
    page.click_and_wait("a[rel=prev]");
    assert_eq!(
        page.eval_string("location.pathname + location.search"),
        "/posts"
    );
    page.assert_clean("pagination", None);
}
