//! The template environment: one per worker, templates embedded, overridable from a directory.
//!
//! Production compiles every template once at start: the file in `Config.templates_dir` when
//! there is one, else the embedded copy; a syntax error stops the worker from booting.
//! Development loads through a loader whose up-to-date check compares the file's mtime, so an
//! edited (or newly added, or deleted) override shows on the next request without a restart.
//! Auto-escaping is on for every `.html` template.

use crate::assets::Assets;
use crate::escape::write_escaped;
use crate::{clock, Mode};
use minijinja::{AutoEscape, Environment, ErrorKind, TemplateSource, UndefinedBehavior, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// The templates compiled into the binary, by name.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "layout.html",
        include_str!("../../../templates/layout.html"),
    ),
    (
        "macros.html",
        include_str!("../../../templates/macros.html"),
    ),
    ("home.html", include_str!("../../../templates/home.html")),
    ("list.html", include_str!("../../../templates/list.html")),
    ("post.html", include_str!("../../../templates/post.html")),
    ("form.html", include_str!("../../../templates/form.html")),
    ("admin.html", include_str!("../../../templates/admin.html")),
    (
        "confirm_delete.html",
        include_str!("../../../templates/confirm_delete.html"),
    ),
    ("error.html", include_str!("../../../templates/error.html")),
];

pub(crate) struct Renderer {
    env: Environment<'static>,
}

impl Renderer {
    pub fn new(
        dir: &Path,
        mode: Mode,
        site_url: Option<&str>,
        assets: Arc<Assets>,
    ) -> Result<Renderer, String> {
        let mut env = Environment::new();
        // `meta.title` on a context without `meta` renders empty instead of failing the
        // page: overridden templates and error pages stay forgiving.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_formatter(format_value);
        env.add_filter("ago", |ts: i64| clock::ago(ts, clock::now()));
        env.add_filter("isotime", clock::iso);
        env.add_filter("exacttime", clock::exact);
        env.add_function("static_url", move |name: &str| assets.url(name));
        env.add_global("site_url", Value::from(site_url.map(str::to_string)));
        env.add_global("development", mode == Mode::Development);

        match mode {
            Mode::Production => {
                for (name, source) in sources(dir)? {
                    env.add_template_owned(name.clone(), source)
                        .map_err(|e| format!("{name}: {e:#}"))?;
                }
            }
            Mode::Development => {
                let root = dir.to_path_buf();
                env.set_loader(move |name| load(&root, name));
                env.set_auto_reload(true);
                // Surface syntax errors at start in development too.
                for (name, _) in EMBEDDED {
                    env.get_template(name)
                        .map_err(|e| format!("{name}: {e:#}"))?;
                }
            }
        }
        Ok(Renderer { env })
    }

    pub fn render(&self, name: &str, context: Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(context)
    }
}

/// Escapes strings like minijinja does, except that `/` stays `/`: URLs and paths in
/// attributes (canonical links, `og:url`, asset links) read as themselves in the page source.
fn format_value(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    match value.as_str() {
        Some(text) if matches!(state.auto_escape(), AutoEscape::Html) && !value.is_safe() => {
            write_escaped(out, text).map_err(minijinja::Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// Every template for production: embedded ones (each overridden by a file of the same name)
/// plus any other `.html` file in the directory, so overrides may add their own partials.
fn sources(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let mut found: Vec<(String, String)> = Vec::new();
    for (name, source) in EMBEDDED {
        let file = dir.join(name);
        let source = if file.is_file() {
            read(&file)?
        } else {
            (*source).to_string()
        };
        found.push((name.to_string(), source));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let known = EMBEDDED.iter().any(|(n, _)| *n == name);
            if name.ends_with(".html") && !name.starts_with('.') && !known {
                found.push((name, read(&entry.path())?));
            }
        }
    }
    Ok(found)
}

fn read(file: &Path) -> Result<String, String> {
    std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
}

/// The development loader: the override file if present, else the embedded template, each
/// tagged with the file's mtime at load so a change (or the file appearing) reloads it.
fn load(root: &Path, name: &str) -> Result<Option<TemplateSource>, minijinja::Error> {
    if name
        .split('/')
        .any(|part| part.is_empty() || part.starts_with('.'))
    {
        return Ok(None);
    }
    let file: PathBuf = root.join(name);
    let seen = modified(&file);
    let source = if seen.is_some() {
        std::fs::read_to_string(&file).map_err(|e| {
            minijinja::Error::new(
                ErrorKind::TemplateNotFound,
                format!("{}: {e}", file.display()),
            )
        })?
    } else if let Some((_, embedded)) = EMBEDDED.iter().find(|(n, _)| *n == name) {
        (*embedded).to_string()
    } else {
        return Ok(None);
    };
    Ok(Some(
        TemplateSource::new(source).with_uptodate_check(move || modified(&file) == seen),
    ))
}

fn modified(file: &Path) -> Option<SystemTime> {
    std::fs::metadata(file).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    fn assets() -> Arc<Assets> {
        Arc::new(Assets::new(Path::new("/nonexistent"), Mode::Production).unwrap())
    }

    #[test]
    fn every_embedded_template_compiles() {
        Renderer::new(Path::new("/nonexistent"), Mode::Production, None, assets()).unwrap();
    }

    #[test]
    fn output_is_escaped() {
        let r = Renderer::new(Path::new("/nonexistent"), Mode::Production, None, assets()).unwrap();
        let page = r
            .render(
                "error.html",
                context! { status => 404, reason => "Not Found",
                message => "<script>alert(1)</script>",
                meta => context! { title => "<b>", description => "d" } },
            )
            .unwrap();
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("&lt;script&gt;"), "{page}");
    }

    #[test]
    fn a_file_overrides_its_template_and_a_broken_one_fails_the_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("error.html"), "custom {{ status }}").unwrap();
        let r = Renderer::new(dir.path(), Mode::Production, None, assets()).unwrap();
        assert_eq!(
            r.render("error.html", context! { status => 418 }).unwrap(),
            "custom 418"
        );
        std::fs::write(dir.path().join("error.html"), "{% if %}").unwrap();
        let err = Renderer::new(dir.path(), Mode::Production, None, assets())
            .err()
            .unwrap();
        assert!(err.starts_with("error.html"), "{err}");
    }

    #[test]
    fn development_picks_up_edits_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let r = Renderer::new(dir.path(), Mode::Development, None, assets()).unwrap();
        let embedded = r.render("error.html", context! { status => 1 }).unwrap();
        assert!(embedded.contains("<!doctype html>"), "{embedded}");
        let file = dir.path().join("error.html");
        std::fs::write(&file, "first {{ status }}").unwrap();
        assert_eq!(
            r.render("error.html", context! { status => 2 }).unwrap(),
            "first 2"
        );
        // Make sure the mtime moves even on filesystems with coarse timestamps.
        std::fs::write(&file, "second {{ status }}").unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(
            r.render("error.html", context! { status => 3 }).unwrap(),
            "second 3"
        );
        std::fs::remove_file(&file).unwrap();
        let back = r.render("error.html", context! { status => 4 }).unwrap();
        assert!(back.contains("<!doctype html>"), "{back}");
    }
}
