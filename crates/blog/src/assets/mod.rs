//! Static files: embedded in the binary, overridable per file from `Config.static_dir`.
//!
//! Each file carries a content hash computed once. Templates link to
//! `/static/style.css?v=<hash8>`; a request carrying the current `v` may be cached for a year
//! (`immutable`), any other for a few minutes. Responses have a strong ETag (the hash) and a
//! Last-Modified, and answer conditional requests with 304.

mod directory;
mod path;

use crate::Mode;
use directory::Directory;
use http::{Body, Request, Response};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_assets.rs"));
}

/// For URLs carrying the current version: the content behind them never changes.
const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// For URLs without (or with a stale) version: revalidate soon.
const CACHE_SHORT: &str = "public, max-age=300";

/// One servable file.
pub(crate) struct Asset {
    body: Body,
    /// Strong validator, quoted: `"<16 hex digits>"`.
    etag: String,
    /// The first 8 hex digits of the hash, the `v=` of cache-busting URLs.
    version: String,
    content_type: String,
    /// Whole seconds, as HTTP dates carry them.
    modified: SystemTime,
    last_modified: String,
    /// Modification time and size when read from a directory; lets development re-read.
    stamp: (Option<SystemTime>, u64),
}

impl Asset {
    fn new(key: &str, body: Body, modified: SystemTime) -> Asset {
        let hash = fnv1a(body.as_bytes());
        let modified = whole_seconds(modified);
        Asset {
            etag: format!("\"{hash:016x}\""),
            version: format!("{hash:016x}")[..8].to_string(),
            content_type: content_type(key),
            last_modified: httpdate::fmt_http_date(modified),
            modified,
            stamp: (None, body.as_bytes().len() as u64),
            body,
        }
    }
}

/// All static files of one worker.
pub(crate) struct Assets {
    embedded: HashMap<&'static str, Arc<Asset>>,
    directory: Option<Directory>,
    /// Production: every file's versioned URL, computed once (files cannot change).
    urls: Option<HashMap<String, String>>,
}

impl Assets {
    /// Hashes the embedded files and, when `dir` exists, loads (production) or watches
    /// (development) it.
    pub fn new(dir: &Path, mode: Mode) -> Result<Assets, String> {
        let built = UNIX_EPOCH + Duration::from_secs(embedded::EMBEDDED_MODIFIED);
        let embedded = embedded::EMBEDDED
            .iter()
            .map(|(key, bytes)| (*key, Arc::new(Asset::new(key, Body::Static(bytes), built))))
            .collect();
        let directory = if dir.is_dir() {
            let root = dir
                .canonicalize()
                .map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
            Some(match mode {
                Mode::Production => Directory::preload(&root)?,
                Mode::Development => Directory::live(root),
            })
        } else {
            None
        };
        let mut assets = Assets {
            embedded,
            directory,
            urls: None,
        };
        if mode == Mode::Production {
            let mut names: Vec<String> = assets.embedded.keys().map(|k| k.to_string()).collect();
            if let Some(Directory::Preloaded(files)) = &assets.directory {
                names.extend(files.keys().cloned());
            }
            let urls = names
                .into_iter()
                .map(|n| (assets.url(&n), n))
                .map(|(u, n)| (n, u));
            assets.urls = Some(urls.collect());
        }
        Ok(assets)
    }

    /// The file for a request path below `/static/`, override first.
    fn lookup(&self, requested: &str) -> Option<Arc<Asset>> {
        let key = path::clean(requested)?;
        if let Some(asset) = self.directory.as_ref().and_then(|d| d.lookup(&key)) {
            return Some(asset);
        }
        self.embedded.get(key.as_str()).cloned()
    }

    /// The URL templates emit for `name`, with the cache-busting version when it exists.
    pub fn url(&self, name: &str) -> String {
        if let Some(url) = self.urls.as_ref().and_then(|urls| urls.get(name)) {
            return url.clone();
        }
        match self.lookup(name) {
            Some(asset) => format!("/static/{name}?v={}", asset.version),
            None => format!("/static/{name}"),
        }
    }

    /// Serves `requested` (the path after `/static/`) for a GET or HEAD; `None` when missing.
    pub fn serve(&self, req: &Request, requested: &str) -> Option<Response> {
        let asset = self.lookup(requested)?;
        let versioned = req
            .query
            .split('&')
            .any(|pair| pair.strip_prefix("v=").is_some_and(|v| v == asset.version));
        let cache = if versioned {
            CACHE_IMMUTABLE
        } else {
            CACHE_SHORT
        };
        let response = if is_fresh(req, &asset) {
            Response::new(304)
        } else {
            Response::new(200)
                .with_header("Content-Type", asset.content_type.clone())
                .with_body(asset.body.clone())
        };
        Some(
            response
                .with_header("ETag", asset.etag.clone())
                .with_header("Last-Modified", asset.last_modified.clone())
                .with_header("Cache-Control", cache)
                .with_header("X-Content-Type-Options", "nosniff"),
        )
    }
}

/// RFC 9110 §13.2.2: If-None-Match decides when present; If-Modified-Since only otherwise.
fn is_fresh(req: &Request, asset: &Asset) -> bool {
    if let Some(tags) = req.header("If-None-Match") {
        return tags.split(',').map(str::trim).any(|tag| {
            // Weak comparison, as the RFC asks for If-None-Match.
            tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == asset.etag
        });
    }
    match req
        .header("If-Modified-Since")
        .map(httpdate::parse_http_date)
    {
        Some(Ok(since)) => asset.modified <= since,
        _ => false,
    }
}

fn content_type(key: &str) -> String {
    let mime = mime_guess::from_path(key).first_or_octet_stream();
    let textual = mime.type_() == mime_guess::mime::TEXT
        || matches!(
            mime.essence_str(),
            "application/javascript" | "application/json" | "image/svg+xml"
        );
    if textual {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.essence_str().to_string()
    }
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// FNV-1a, 64 bits: stable across builds and processes, so every worker agrees on ETags.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests;
