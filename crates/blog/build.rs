//! Embeds every file under the workspace's `static/` into the binary.
//!
//! Writes `$OUT_DIR/embedded_assets.rs`: a table of `(relative path, include_bytes!(…))` and
//! the time the newest file changed, which becomes the embedded assets' `Last-Modified` (the
//! same in every worker and across restarts of one build; `SOURCE_DATE_EPOCH` overrides it).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
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
        let absolute = path
            .canonicalize()
            .expect("static file vanished during the build");
        writeln!(
            table,
            "    ({relative:?}, include_bytes!({:?})),",
            absolute.display().to_string()
        )
        .expect("writing to a String");
    }
    table.push_str("];\n");
    let modified = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(newest);
    writeln!(
        table,
        "pub(crate) const EMBEDDED_MODIFIED: u64 = {modified};"
    )
    .expect("String");

    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    std::fs::write(out.join("embedded_assets.rs"), table).expect("write embedded_assets.rs");
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
            let relative = path
                .strip_prefix(root)
                .expect("walked from root")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.push((relative, path));
        }
    }
}
