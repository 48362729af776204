//! Every page of the blog in Chromium, looked at: full-page screenshots at a phone (390 px)
//! and a desktop (1280 px) width in light and dark schemes under `target/e2e/`, no horizontal
//! overflow, code that scrolls in its own box, axe-core with no serious or critical
//! violation in either scheme, labelled fields, visible keyboard focus, and the meta tags a
//! link preview reads. The axe findings of every page go to `target/e2e/axe-results.txt`.

use super::chrome::{Chrome, Page, Scheme};
use super::{browser_turn, output_dir, tools, write_post, RICH_POST};
use crate::support::{self, Options};

use serde_json::Value;
use std::fmt::Write as _;

const WIDTHS: [u32; 2] = [390, 1280];

/// Runs axe-core on the page as it is rendered now; returns one line per violation.
fn axe(page: &Page, axe_source: &str) -> Vec<(String, String)> {
    if !page.eval_bool("typeof window.axe === 'object'") {
        page.tab
            .evaluate(axe_source, false)
            .expect("inject axe-core");
    }
    let violations = page.eval(
        "axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => \
         ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) })))",
    );
    let Value::Array(violations) = violations else {
        panic!("axe returned {violations}")
    };
    violations
        .iter()
        .map(|v| {
            let impact = v["impact"].as_str().unwrap_or("none").to_string();
            (impact, format!("{} on {}", v["id"], v["nodes"]))
        })
        .collect()
}

/// What one page's audit found, for the report file and the final assertion.
#[derive(Default)]
struct Findings {
    report: String,
    failures: Vec<String>,
}

impl Findings {
    /// Screenshots `name` in every width and scheme, checks its layout, and runs axe in
    /// both schemes (colour contrast differs) at the desktop width.
    /// `status_for` names the document path that answered with an error status on purpose.
    fn look_at(&mut self, page: &Page, name: &str, axe_source: &str, status_for: Option<&str>) {
        // The screenshots show the page as it loads, not the focus a previous step left.
        page.eval("document.activeElement && document.activeElement.blur()");
        for scheme in Scheme::ALL {
            page.set_scheme(scheme);
            for width in WIDTHS {
                page.set_width(width);
                let (overflow, height) = page.overflow_and_height();
                if overflow != 0 {
                    self.failures.push(format!(
                        "{name} at {width}px {}: the page scrolls sideways by {overflow}px",
                        scheme.name()
                    ));
                }
                let file = output_dir().join(format!("{name}-{width}-{}.png", scheme.name()));
                page.screenshot(width, height, &file);
            }
            // WIDTHS ends with the desktop width: axe audits what a desktop shows.
            let violations = axe(page, axe_source);
            let _ = writeln!(
                self.report,
                "{name} ({}): {} violation(s){}",
                scheme.name(),
                violations.len(),
                violations
                    .iter()
                    .map(|(impact, what)| format!("\n  [{impact}] {what}"))
                    .collect::<String>()
            );
            self.failures.extend(
                violations
                    .into_iter()
                    .filter(|(impact, _)| impact == "serious" || impact == "critical")
                    .map(|(impact, what)| {
                        format!("axe {name} {}: [{impact}] {what}", scheme.name())
                    }),
            );
        }
        page.assert_clean(name, status_for);
    }
}

/// Every form control on the page has a label.
fn assert_fields_labelled(page: &Page, step: &str) {
    let unlabelled = page.eval(
        "[...document.querySelectorAll('input:not([type=hidden]), textarea, select')] \
         .filter((el) => el.labels.length === 0).map((el) => el.name || el.id)",
    );
    assert_eq!(
        unlabelled,
        Value::Array(vec![]),
        "{step}: fields without a label"
    );
    assert!(page.eval_bool("document.querySelectorAll('textarea, input[type=text]').length >= 3"));
}

/// Tabs through the first `stops` focusable elements; each shows a visible focus outline.
fn assert_focus_visible(page: &Page, stops: usize, step: &str) {
    for stop in 1..=stops {
        page.tab.press_key("Tab").expect("press Tab");
        let focus = page.eval(
            "(() => { const el = document.activeElement; const s = getComputedStyle(el); \
             return { what: el.outerHTML.slice(0, 80), visible: el.matches(':focus-visible'), \
             outline: s.outlineStyle, width: parseFloat(s.outlineWidth) }; })()",
        );
        assert!(
            focus["what"]
                .as_str()
                .is_some_and(|w| !w.starts_with("<body")),
            "{step}: Tab stop {stop} focused nothing"
        );
        assert!(
            focus["visible"] == Value::Bool(true)
                && focus["outline"] != "none"
                && focus["width"].as_f64().is_some_and(|w| w >= 2.0),
            "{step}: Tab stop {stop} has no visible focus: {focus}"
        );
    }
}

fn meta(page: &Page, selector: &str) -> String {
    page.eval_string(&format!(
        "(document.querySelector({}) || {{ content: '<missing>' }}).content",
        serde_json::to_string(selector).expect("json")
    ))
}

#[test]
fn every_page_reads_well_passes_axe_and_shows_its_meta_tags_in_chromium() {
    let Some(tools) = tools() else { return };
    let _turn = browser_turn();
    // The database lives apart from the server's directory: the meta tags are read at the
    // end from a second server on the same posts, published under a public SITE_URL. (With
    // SITE_URL set, only that origin may POST, so the browser writes through the first.)
    let data = tempfile::tempdir().expect("database dir");
    let database = format!("sqlite:///{}", data.path().join("blog.db").display());
    let server = support::start(Options::default().args(&["-w", "2", "--database-uri", &database]));
    let chrome = Chrome::launch(&tools.chromium);
    let page = chrome.page(format!("http://{}", server.addr));
    let mut findings = Findings::default();

    for i in 1..=5 {
        write_post(
            &page,
            &format!("An earlier post, number {i}"),
            "early",
            "Filling the list.",
        );
    }
    let post = write_post(&page, "Tables and code on every screen", "audit", RICH_POST);
    page.assert_clean("writing posts", None);

    page.goto("/");
    page.emulate(1280, Scheme::Light);
    assert_focus_visible(&page, 4, "home");
    findings.look_at(&page, "home", &tools.axe_source, None);

    page.goto("/posts");
    findings.look_at(&page, "list", &tools.axe_source, None);

    page.goto(&post);
    // On a phone the long code line scrolls inside its block, not the page.
    page.emulate(390, Scheme::Light);
    assert!(
        page.eval_bool(
            "(() => { const pre = document.querySelector('.prose pre'); \
             return getComputedStyle(pre).overflowX === 'auto' && pre.scrollWidth > pre.clientWidth; })()"
        ),
        "the code block scrolls horizontally at 390px"
    );
    findings.look_at(&page, "post", &tools.axe_source, None);

    // The delete confirmation, as the dialog app.js opens and as the page without JavaScript.
    page.emulate(1280, Scheme::Light);
    page.click(".post-actions a[data-opens-dialog]");
    page.wait_for("document.getElementById('confirm-delete').open");
    findings.look_at(&page, "delete-dialog", &tools.axe_source, None);
    page.goto(&format!("{post}/delete"));
    findings.look_at(&page, "delete-page", &tools.axe_source, None);

    page.goto("/new");
    assert_fields_labelled(&page, "new post form");
    page.emulate(1280, Scheme::Light);
    // Skip link, brand, two nav links, then the first field.
    assert_focus_visible(&page, 5, "new post form");
    findings.look_at(&page, "form", &tools.axe_source, None);

    page.type_into("#name", "kept");
    page.click_and_wait("form.post-form button[type=submit]");
    assert!(page.eval_bool("document.querySelectorAll('.field-error').length === 2"));
    assert_fields_labelled(&page, "form with errors");
    findings.look_at(&page, "form-errors", &tools.axe_source, Some("/posts"));

    page.goto(&format!("{post}/edit"));
    assert_fields_labelled(&page, "edit form");
    findings.look_at(&page, "edit", &tools.axe_source, None);

    page.goto("/posts/999999");
    assert!(page.text("h1").starts_with("404"));
    findings.look_at(&page, "error", &tools.axe_source, Some("/posts/999999"));

    // Meta tags as a browser (and a link preview) reads them from the DOM, on the same
    // post served under its public address.
    drop(server);
    let public = support::start(Options::default().args(&[
        "-w",
        "2",
        "--database-uri",
        &database,
        "--site-url",
        "https://blog.example",
    ]));
    let page = chrome.page(format!("http://{}", public.addr));
    page.goto(&post);
    let url = format!("https://blog.example{post}");
    assert_eq!(
        meta(&page, "meta[property='og:title']"),
        "Tables and code on every screen"
    );
    assert_eq!(meta(&page, "meta[property='og:type']"), "article");
    assert_eq!(meta(&page, "meta[property='og:url']"), url);
    assert_eq!(meta(&page, "meta[property='og:site_name']"), "pyblogd");
    assert!(meta(&page, "meta[property='og:description']")
        .starts_with("Tables and code, as a browser shows them."));
    assert_eq!(meta(&page, "meta[name='twitter:card']"), "summary");
    assert_eq!(
        meta(&page, "meta[name='twitter:title']"),
        "Tables and code on every screen"
    );
    assert_eq!(
        meta(&page, "meta[name='twitter:description']"),
        meta(&page, "meta[property='og:description']")
    );
    assert_eq!(
        meta(&page, "meta[name='description']"),
        meta(&page, "meta[property='og:description']")
    );
    assert_eq!(
        page.eval_string("document.querySelector('link[rel=canonical]').href"),
        url
    );
    assert!(page
        .eval_string("document.title")
        .starts_with("Tables and code on every screen"));
    page.assert_clean("post under SITE_URL", None);

    let report_path = output_dir().join("axe-results.txt");
    std::fs::write(&report_path, &findings.report).expect("write axe report");
    eprintln!(
        "axe-core results (also in {}):\n{}",
        report_path.display(),
        findings.report
    );
    assert!(
        findings.failures.is_empty(),
        "the pages fail the audit:\n{}",
        findings.failures.join("\n")
    );
}
