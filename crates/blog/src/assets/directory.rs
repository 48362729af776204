//! The static override directory: files an operator drops next to the binary.
//!
//! In production the directory is read once at start and served from memory with hashes
//! computed then, so a request never touches the disk. In development each lookup stats the
//! file and re-reads it when its modification time or size changed, so edits show at once.

use super::path;
use super::Asset;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// Deeper trees are not walked (and a symlink loop cannot recurse forever).
const MAX_DEPTH: usize = 16;
/// A bound on what is held in memory: static files are small.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

pub(crate) enum Directory {
    /// Production: everything read at start.
    Preloaded(HashMap<String, Arc<Asset>>),
    /// Development: read on demand, re-read on change.
    Live {
        root: PathBuf,
        cache: RwLock<HashMap<String, Arc<Asset>>>,
    },
}

impl Directory {
    /// Reads every file under `root` (canonical) into memory.
    pub fn preload(root: &Path) -> Result<Directory, String> {
        let mut files = HashMap::new();
        walk(root, root, 0, &mut files)?;
        log::info!(
            "serving {} static files from {}",
            files.len(),
            root.display()
        );
        Ok(Directory::Preloaded(files))
    }

    pub fn live(root: PathBuf) -> Directory {
        Directory::Live {
            root,
            cache: RwLock::new(HashMap::new()),
        }
    }

    pub fn lookup(&self, key: &str) -> Option<Arc<Asset>> {
        match self {
            Directory::Preloaded(files) => files.get(key).cloned(),
            Directory::Live { root, cache } => {
                let file = path::resolve(root, key)?;
                let meta = std::fs::metadata(&file).ok()?;
                let stamp = (meta.modified().ok(), meta.len());
                let cached = cache.read().ok().and_then(|c| c.get(key).cloned());
                if let Some(asset) = cached.filter(|a| a.stamp == stamp) {
                    return Some(asset);
                }
                let asset = Arc::new(read(key, &file, &meta).ok()?);
                if let Ok(mut cache) = cache.write() {
                    cache.insert(key.to_string(), Arc::clone(&asset));
                }
                Some(asset)
            }
        }
    }
}

fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    files: &mut HashMap<String, Arc<Asset>>,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(relative) = relative_key(root, &dir.join(&name)) else {
            continue;
        };
        // Follow symlinks, but only to places inside the root.
        let Ok(real) = entry.path().canonicalize() else {
            continue;
        };
        if !real.starts_with(root) {
            log::warn!(
                "static file {} points outside {}; skipped",
                relative,
                root.display()
            );
            continue;
        }
        let Ok(meta) = std::fs::metadata(&real) else {
            continue;
        };
        if meta.is_dir() {
            walk(root, &entry.path(), depth + 1, files)?;
        } else if meta.is_file() {
            match read(&relative, &real, &meta) {
                Ok(asset) => {
                    files.insert(relative, Arc::new(asset));
                }
                Err(e) => log::warn!("static file skipped: {e}"),
            }
        }
    }
    Ok(())
}

/// The asset key of `file` below `root`, if every component is a plain name.
fn relative_key(root: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(root).ok()?;
    let joined = relative
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect::<Option<Vec<_>>>()?
        .join("/");
    path::clean(&joined)
}

fn read(key: &str, file: &Path, meta: &std::fs::Metadata) -> Result<Asset, String> {
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "static file {} is larger than {MAX_FILE_BYTES} bytes",
            file.display()
        ));
    }
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let mut asset = Asset::new(key, http::Body::Shared(bytes.into()), modified);
    asset.stamp = (meta.modified().ok(), meta.len());
    Ok(asset)
}
