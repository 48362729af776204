//! The blog in a real headless Chromium, driven over the DevTools protocol: a reader's flows
//! (`flows`), and every page's screenshots, axe-core audit and meta tags (`audit`).
//!
//! Chromium and axe-core come from `scripts/test` (apt's `chromium`, npm's `axe-core@4`).
//! Without them the tests skip with a printed line, but fail when `CI` is set: a CI run that
//! silently tested no browser would pass for the wrong reason.

mod audit;
mod chrome;
mod flows;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// One Chromium at a time: two browsers beside the other tests' servers would starve a
/// 2-core machine and turn generous timeouts into flaky ones.
static BROWSER_TURN: Mutex<()> = Mutex::new(());

/// Waits for this test's turn to run a browser; the turn ends when the guard drops.
pub fn browser_turn() -> MutexGuard<'static, ()> {
    BROWSER_TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where screenshots and the axe report go: `target/e2e/` of the workspace.
pub fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e");
    std::fs::create_dir_all(&dir).expect("create target/e2e");
    dir
}

/// The browser and the audit script a browser test needs.
pub struct Tools {
    pub chromium: PathBuf,
    /// The source of `axe.min.js`, injected into each audited page.
    pub axe_source: String,
}

/// Finds Chromium (`PYBLOGD_CHROMIUM`, else `chromium` on PATH) and axe-core
/// (`PYBLOGD_AXE`, else where `scripts/test` installs it). `None` means skip; under `CI`
/// a missing tool panics instead.
pub fn tools() -> Option<Tools> {
    let chromium = std::env::var_os("PYBLOGD_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| find_on_path(&["chromium", "chromium-browser", "google-chrome"]));
    let axe = std::env::var_os("PYBLOGD_AXE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/e2e/npm/node_modules/axe-core/axe.min.js")
        });
    let axe_source = std::fs::read_to_string(&axe).ok();
    match (chromium, axe_source) {
        (Some(chromium), Some(axe_source)) => Some(Tools {
            chromium,
            axe_source,
        }),
        (chromium, axe_source) => {
            let mut missing = Vec::new();
            if chromium.is_none() {
                missing.push(
                    "chromium (apt-get install chromium, or set PYBLOGD_CHROMIUM)".to_string(),
                );
            }
            if axe_source.is_none() {
                missing.push(format!(
                    "axe-core at {} (scripts/test installs it, or set PYBLOGD_AXE)",
                    axe.display()
                ));
            }
            let why = missing.join(" and ");
            let in_ci =
                std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
            assert!(!in_ci, "browser tests cannot run under CI without {why}");
            eprintln!("skipping browser test: missing {why}");
            None
        }
    }
}

fn find_on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A post with what readers look at most: a table and a highlighted code block whose
/// longest line is wider than a phone.
pub const RICH_POST: &str = "Tables and code, as a browser shows them.\n\n\
| Language | Typing | First release |\n|---|---|---:|\n| Rust | static | 2015 |\n| Python | dynamic | 1991 |\n\n\
```rust\n// Comments are the faintest colour of a theme.\nfn main() {\n    let greeting = \"a line long enough that a phone has to scroll it sideways, not wrap it\";\n    println!(\"{greeting}\");\n}\n```\n\n\
Some `inline code` and a [link](https://example.com/).";

/// Writes a post through the "New post" form and returns its path. The fields are filled by
/// script and the form submitted with its own button: posts that only fill pages need not
/// be typed, but still go through the form a reader uses (hidden fields and all).
pub fn write_post(page: &chrome::Page, title: &str, name: &str, content: &str) -> String {
    page.goto("/new");
    let fields = serde_json::json!({ "title": title, "name": name, "content": content });
    page.eval(&format!(
        "(() => {{ const f = {fields}; for (const k in f) document.getElementById(k).value = f[k]; }})()"
    ));
    page.click_and_wait("form.post-form button[type=submit]");
    let path = page.eval_string("location.pathname");
    assert!(
        path.strip_prefix("/posts/")
            .is_some_and(|id| id.parse::<u64>().is_ok()),
        "saving {title:?} led to {path}: {}",
        page.text("main")
    );
    path
}
