//! Syntax highlighting of fenced code blocks with syntect, as CSS classes (`hl-…`), on one
//! thread per worker.
//!
//! Classes rather than inline colours: the sanitiser forbids `style`, and one committed
//! stylesheet (`static/highlight.css`, see [`stylesheet`]) gives light and dark themes. The
//! thread and the syntax definitions start with the first highlighted block, since only
//! saving a post needs them. One thread, because syntect's pure-Rust regex engine keeps a
//! match cache per pattern for every thread that runs it (1–2 MB per language and thread, on
//! top of the 7–10 MB its compiled patterns take): handler threads highlighting in turn each
//! grew their own copy. Saves are rare next to reads, so queueing their blocks costs little.

use crate::escape::escape_html;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::OnceLock;
use syntect::html::{ClassStyle, ClassedHTMLGenerator};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

/// Every class syntect emits starts with this prefix; the sanitiser keeps only those.
pub(crate) const CLASS_PREFIX: &str = "hl-";
const CLASS_STYLE: ClassStyle = ClassStyle::SpacedPrefixed {
    prefix: CLASS_PREFIX,
};

/// Turns code into highlighted HTML by handing it to the highlighting thread.
#[derive(Default)]
pub(crate) struct Highlighter {
    /// The highlighting thread's queue, once started (`None`: it could not be started). The
    /// thread ends when this, its only sender, is dropped with the highlighter.
    jobs: OnceLock<Option<Sender<Job>>>,
}

/// One block to highlight, and where its HTML goes (`None`: show it as plain code).
struct Job {
    lang: String,
    code: String,
    reply: SyncSender<Option<String>>,
}

impl Highlighter {
    /// A complete `<pre><code>` block. `lang` is the fence's first word; an unknown or empty
    /// one (or a grammar that fails) yields plain escaped code.
    pub fn block(&self, lang: &str, code: &str) -> String {
        let highlighted = if lang.is_empty() {
            None
        } else {
            self.classed(lang, code)
        };
        match highlighted {
            Some(spans) => {
                format!("<pre class=\"{CLASS_PREFIX}code\"><code>{spans}</code></pre>\n")
            }
            None => format!("<pre><code>{}</code></pre>\n", escape_html(code)),
        }
    }

    fn classed(&self, lang: &str, code: &str) -> Option<String> {
        let jobs = self.jobs.get_or_init(start).as_ref()?;
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Job {
            lang: lang.to_string(),
            code: code.to_string(),
            reply,
        };
        // Either fails only if the thread is gone, which `serve` never lets a job cause.
        jobs.send(job).ok()?;
        answer.recv().ok().flatten()
    }
}

fn start() -> Option<Sender<Job>> {
    let (jobs, queue) = mpsc::channel();
    match std::thread::Builder::new()
        .name("highlighter".into())
        .spawn(move || serve(&queue))
    {
        Ok(_) => Some(jobs),
        Err(err) => {
            log::warn!("cannot start the highlighting thread, code stays plain: {err}");
            None
        }
    }
}

/// The highlighting thread: answers jobs until the highlighter is dropped.
fn serve(queue: &Receiver<Job>) {
    let mut syntaxes: Option<SyntaxSet> = None;
    for job in queue {
        let syntaxes = syntaxes.get_or_insert_with(SyntaxSet::load_defaults_newlines);
        // A grammar bug must not take the save down: fall back to plain code.
        let html = catch_unwind(AssertUnwindSafe(|| classed(syntaxes, &job.lang, &job.code)))
            .unwrap_or(None);
        // The saving thread waits for this answer; if it went away, nobody needs it.
        let _ = job.reply.send(html);
    }
}

fn classed(syntaxes: &SyntaxSet, lang: &str, code: &str) -> Option<String> {
    let syntax = syntaxes.find_syntax_by_token(lang)?;
    let mut generator = ClassedHTMLGenerator::new_with_class_style(syntax, syntaxes, CLASS_STYLE);
    for line in LinesWithEndings::from(code) {
        if let Err(err) = generator.parse_html_for_line_which_includes_newline(line) {
            log::warn!("highlighting {lang} failed, showing plain code: {err}");
            return None;
        }
    }
    Some(generator.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use syntect::highlighting::ThemeSet;
    use syntect::html::css_for_theme_with_class_style;

    const LIGHT_THEME: &str = "InspiredGitHub";
    const DARK_THEME: &str = "base16-ocean.dark";

    /// The stylesheet for the `hl-` classes: a light theme, and a dark one under
    /// `prefers-color-scheme: dark`. Committed as `static/highlight.css`; a test keeps it current.
    fn stylesheet() -> Result<String, String> {
        let themes = ThemeSet::load_defaults();
        let css = |name: &str| -> Result<String, String> {
            let theme = themes
                .themes
                .get(name)
                .ok_or_else(|| format!("syntect has no theme {name:?}"))?;
            css_for_theme_with_class_style(theme, CLASS_STYLE).map_err(|e| e.to_string())
        };
        let light = css(LIGHT_THEME)?;
        let dark = css(DARK_THEME)?;
        let mut out = String::from(
            "/* Syntax highlighting for fenced code (classes emitted by syntect).\n   \
             Generated by the pyblogd-blog test `highlight_css_is_current`; \
             regenerate with PYBLOGD_BLESS=1. */\n",
        );
        // Each theme in its own media block: rules of one theme for scopes the other does
        // not colour would otherwise leak across (dark text on the dark background).
        for (query, css) in [("light", &light), ("dark", &dark)] {
            out.push_str(&format!("@media (prefers-color-scheme: {query}) {{\n"));
            for line in css.lines() {
                if !line.is_empty() {
                    out.push_str("  ");
                }
                out.push_str(line);
                out.push('\n');
            }
            out.push_str("}\n");
        }
        Ok(out)
    }

    #[test]
    fn known_languages_get_classes_and_unknown_ones_plain_code() {
        let hl = Highlighter::default();
        let rust = hl.block("rust", "fn main() { let x = \"<b>\"; }\n");
        assert!(rust.starts_with("<pre class=\"hl-code\"><code>"), "{rust}");
        assert!(rust.contains("class=\"hl-"), "{rust}");
        assert!(rust.contains("&lt;b&gt;"), "{rust}");
        let unknown = hl.block("no-such-language", "<script>\n");
        assert_eq!(unknown, "<pre><code>&lt;script&gt;\n</code></pre>\n");
        assert_eq!(hl.block("", "x\n"), "<pre><code>x\n</code></pre>\n");
    }

    #[test]
    fn blocks_from_many_threads_all_come_back_highlighted() {
        let hl = Highlighter::default();
        std::thread::scope(|scope| {
            for n in 0..8 {
                let hl = &hl;
                scope.spawn(move || {
                    let code = format!("let n = {n};\n");
                    let out = hl.block(if n % 2 == 0 { "rust" } else { "js" }, &code);
                    assert!(out.starts_with("<pre class=\"hl-code\">"), "{out}");
                    assert!(out.contains(&n.to_string()), "{out}");
                });
            }
        });
    }

    /// `static/highlight.css` must match what the themes generate.
    #[test]
    fn highlight_css_is_current() {
        let generated = stylesheet().unwrap();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../static/highlight.css");
        if std::env::var_os("PYBLOGD_BLESS").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "static/highlight.css is stale: run PYBLOGD_BLESS=1 cargo test -p pyblogd-blog highlight_css"
        );
    }
}
