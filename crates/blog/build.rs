//! Embeds every file under the workspace's `static/` into the binary.
//!
//! Writes `$OUT_DIR/embedded_assets.rs`: a table of `(relative path, include_bytes!(…))` and
//! the time the newest file changed, which becomes the embedded assets' `Last-Modified` (the
//! same in every worker and across restarts of one build; `SOURCE_DATE_EPOCH` overrides it).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// A failure here fails the build with its message, which names what went wrong.
fn main() -> Result<(), Box<dyn Error>> {
    let manifest = PathBuf::from(env_var("CARGO_MANIFEST_DIR")?);
    let root = manifest.join("../../static");
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");

    let mut files = Vec::new();
    if root.is_dir() {
        collect(&root, &root, &mut files);
    }
    files.sort();

    let mut newest = 0u64;
    let mut table = String::from("pub(crate) static EMBEDDED: &[(&str, &[u8])] = &[\n");
    for (relative, path) in &files {
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        newest = newest.max(modified);
        let absolute = path.canonicalize().map_err(|e| {
            format!(
                "static file {} vanished during the build: {e}",
                path.display()
            )
        })?;
        table.push_str(&format!(
            "    ({relative:?}, include_bytes!({:?})),\n",
            absolute.display().to_string()
        ));
    }
    table.push_str("];\n");
    let modified = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(newest);
    table.push_str(&format!(
        "pub(crate) const EMBEDDED_MODIFIED: u64 = {modified};\n"
    ));

    let out = PathBuf::from(env_var("OUT_DIR")?).join("embedded_assets.rs");
    std::fs::write(&out, table).map_err(|e| format!("writing {}: {e}", out.display()))?;
    Ok(())
}

/// A variable cargo sets for every build script.
fn env_var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|e| format!("{name} (set by cargo): {e}"))
}

/// Regular files below `dir`, skipping hidden names (`.gitkeep`, editor droppings).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if path.is_file() {
            // Every path here was reached by walking down from `root`, so it has that prefix.
            let Ok(below_root) = path.strip_prefix(root) else {
                continue;
            };
            let relative = below_root
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.push((relative, path));
        }
    }
}
