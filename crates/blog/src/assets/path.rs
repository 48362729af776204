//! Turning a request path into a file under the static root, and nothing else.
//!
//! The request path arrives percent-decoded. It is split into components and only plain
//! names survive: no `.`/`..`, no empty segments, no backslashes, NULs, drive colons or hidden
//! names. For the override directory the joined path is then canonicalised (resolving
//! symlinks) and must still lie under the canonical root, so a symlink cannot lead out.

use std::path::{Path, PathBuf};

/// The key of an asset (`css/site.css`), or `None` for any path that is not a plain name.
pub(crate) fn clean(requested: &str) -> Option<String> {
    if requested.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    for part in requested.split('/') {
        let plain = !part.is_empty()
            && !part.starts_with('.')
            && !part.contains(['\\', '\0', ':'])
            && !part.chars().any(char::is_control);
        if !plain {
            return None;
        }
        parts.push(part);
    }
    Some(parts.join("/"))
}

/// The canonical file for `key` under `root` (itself canonical), if it exists inside it.
pub(crate) fn resolve(root: &Path, key: &str) -> Option<PathBuf> {
    let joined = key
        .split('/')
        .fold(root.to_path_buf(), |p, part| p.join(part));
    let real = joined.canonicalize().ok()?;
    (real.starts_with(root) && real.is_file()).then_some(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass() {
        assert_eq!(clean("style.css").as_deref(), Some("style.css"));
        assert_eq!(clean("img/logo.svg").as_deref(), Some("img/logo.svg"));
        assert_eq!(clean("a b+c%2e.txt").as_deref(), Some("a b+c%2e.txt"));
    }

    #[test]
    fn hostile_paths_are_refused() {
        for hostile in [
            "",
            "..",
            "../etc/passwd",
            "css/../../etc/passwd",
            "./style.css",
            "css/./x.css",
            "/etc/passwd",
            "//etc/passwd",
            "css//x.css",
            "css/",
            "..\\..\\windows\\win.ini",
            "css\\..\\x",
            "C:/windows/win.ini",
            "c:x",
            "style.css\0.png",
            ".env",
            ".git/config",
            "css/.hidden",
            "...",
            "a\nb",
        ] {
            assert_eq!(clean(hostile), None, "{hostile:?} must be refused");
        }
    }

    #[test]
    fn symlinks_out_of_the_root_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("ok.txt"), "ok").unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/inner.txt"), "in").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), root.join("leak.txt"))
            .unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("escape")).unwrap();
        std::os::unix::fs::symlink(root.join("ok.txt"), root.join("alias.txt")).unwrap();

        assert_eq!(resolve(&root, "ok.txt"), Some(root.join("ok.txt")));
        assert_eq!(
            resolve(&root, "sub/inner.txt"),
            Some(root.join("sub/inner.txt"))
        );
        assert_eq!(resolve(&root, "alias.txt"), Some(root.join("ok.txt")));
        assert_eq!(resolve(&root, "leak.txt"), None);
        assert_eq!(resolve(&root, "escape/secret.txt"), None);
        assert_eq!(resolve(&root, "sub"), None, "directories are not files");
        assert_eq!(resolve(&root, "missing.txt"), None);
    }
}
