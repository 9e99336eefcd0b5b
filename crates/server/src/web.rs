//! The browser client's page, served at `/` from the folder `scripts/build-web.sh` produces
//! (`unseen serve --web web/dist`): `index.html` at `/`, everything else under `/assets/`.
//!
//! The folder is read once at start-up into memory, so a request can name only a file that
//! was there (no path from the request ever reaches the file system). Every reply carries a
//! strict Content-Security-Policy: scripts, workers, WebAssembly and requests from this origin
//! only, no inline script, no frames.

use std::collections::BTreeMap;
use std::path::Path;

use axum::body::Bytes;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The policy of every page reply. `'wasm-unsafe-eval'` lets the page compile its own
/// WebAssembly module and nothing else; `connect-src 'self'` keeps requests on this server.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
worker-src 'self'; connect-src 'self'; img-src 'self' data: blob:; style-src 'self'; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Largest page folder accepted (the WebAssembly module is most of it).
const MAX_SITE_BYTES: u64 = 64 << 20;
/// Most files in the folder.
const MAX_FILES: usize = 64;

/// The page's files, in memory.
#[derive(Debug)]
pub struct Site {
    files: BTreeMap<String, (&'static str, Bytes)>,
}

fn content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        _ => return None,
    })
}

impl Site {
    /// Reads the page folder: `index.html` and the files beside it and in its subfolders
    /// (one level deep), of the types a page uses.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let shown = dir.display();
        let mut files = BTreeMap::new();
        let mut total = 0u64;
        let mut pending = vec![(dir.to_path_buf(), String::new(), 0)];
        while let Some((folder, prefix, depth)) = pending.pop() {
            let entries =
                std::fs::read_dir(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
            for entry in entries {
                let entry = entry.map_err(|e| format!("{shown}: {e}"))?;
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                let path = entry.path();
                let kind = entry
                    .file_type()
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                if kind.is_dir() && depth == 0 && !name.starts_with('.') {
                    pending.push((path, format!("{prefix}{name}/"), depth + 1));
                    continue;
                }
                let Some(ctype) = content_type(&name).filter(|_| kind.is_file()) else {
                    continue;
                };
                let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                total += bytes.len() as u64;
                if total > MAX_SITE_BYTES || files.len() >= MAX_FILES {
                    return Err(format!(
                        "{shown}: more than {MAX_FILES} files or {} MiB: not a page folder",
                        MAX_SITE_BYTES >> 20
                    ));
                }
                files.insert(format!("{prefix}{name}"), (ctype, Bytes::from(bytes)));
            }
        }
        if !files.contains_key("index.html") {
            return Err(format!(
                "{shown}: no index.html (build the page with scripts/build-web.sh)"
            ));
        }
        Ok(Self { files })
    }

    /// The reply for `name` (`index.html` for `/`), or `None` when the folder had no such file.
    pub fn reply(&self, name: &str) -> Option<Response> {
        let (ctype, bytes) = self.files.get(name)?;
        let mut response = (StatusCode::OK, bytes.clone()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(
            "cross-origin-opener-policy",
            HeaderValue::from_static("same-origin"),
        );
        Some(response)
    }

    /// Names of the files served.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_only_what_the_folder_held() {
        let dir = std::env::temp_dir().join(format!("unseen-site-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pkg/deeper")).expect("dirs");
        std::fs::write(dir.join("index.html"), "<!doctype html>").expect("write");
        std::fs::write(dir.join("pkg/a.wasm"), b"\0asm").expect("write");
        std::fs::write(dir.join("pkg/deeper/b.js"), "x").expect("write");
        std::fs::write(dir.join("notes.txt"), "x").expect("write");
        let site = Site::load(&dir).expect("load");
        assert_eq!(
            site.names().collect::<Vec<_>>(),
            ["index.html", "pkg/a.wasm"]
        );
        let r = site.reply("pkg/a.wasm").expect("wasm");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/wasm");
        assert!(r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("ascii")
            .contains("default-src 'none'"));
        assert!(site.reply("../index.html").is_none());
        assert!(site.reply("notes.txt").is_none());
        std::fs::remove_file(dir.join("index.html")).expect("rm");
        assert!(Site::load(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
