//! The pages' static files (CSS, JavaScript, the font, the mark), embedded
//! in the binary and served under names that carry a hash of their content:
//! a name never changes meaning, so browsers may keep a file for a year and a
//! new build is picked up at once. Nothing is fetched from elsewhere.
//!
//! A stylesheet names the files it uses by their logical path in
//! `url("asset:fonts/…")`; those references are rewritten to the hashed
//! names before the stylesheet's own hash is taken.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::problem::AppError;

#[derive(rust_embed::Embed)]
#[folder = "assets/"]
struct Files;

/// Where the hashed files are served.
pub const PREFIX: &str = "/assets/";

/// One file as served.
struct Served {
    bytes: Cow<'static, [u8]>,
    content_type: &'static str,
}

struct Manifest {
    /// Logical path (`arena.css`) → URL (`/assets/arena.1a2b3c4d5e.css`).
    urls: HashMap<String, String>,
    /// Hashed file name → the file.
    files: HashMap<String, Served>,
}

static MANIFEST: LazyLock<Manifest> = LazyLock::new(build);

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `dir/name.ext` → `name.<hash>.ext` (directories flattened: every file's
/// name is unique).
fn hashed_name(path: &str, bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hash: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    let file = path.rsplit('/').next().unwrap_or(path);
    match file.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
        None => format!("{file}.{hash}"),
    }
}

fn build() -> Manifest {
    let mut manifest = Manifest {
        urls: HashMap::new(),
        files: HashMap::new(),
    };
    let mut stylesheets = Vec::new();
    for path in Files::iter() {
        let Some(file) = Files::get(&path) else { continue };
        if path.ends_with(".css") {
            stylesheets.push((path.into_owned(), file.data));
            continue;
        }
        add(&mut manifest, &path, file.data);
    }
    // Stylesheets last: they refer to the other files by their hashed names.
    for (path, data) in stylesheets {
        let mut text = String::from_utf8_lossy(&data).into_owned();
        for (logical, url) in &manifest.urls {
            text = text.replace(&format!("asset:{logical}"), url);
        }
        add(&mut manifest, &path, Cow::Owned(text.into_bytes()));
    }
    manifest
}

fn add(manifest: &mut Manifest, path: &str, bytes: Cow<'static, [u8]>) {
    let name = hashed_name(path, &bytes);
    manifest.urls.insert(path.to_owned(), format!("{PREFIX}{name}"));
    manifest.files.insert(
        name,
        Served {
            bytes,
            content_type: content_type(path),
        },
    );
}

/// The URL a page uses for the embedded file at `path` (`arena.css`).
///
/// # Panics
/// When no such file is embedded: a page naming a file that does not
/// exist is a bug every page test finds.
pub fn url(path: &str) -> &'static str {
    MANIFEST
        .urls
        .get(path)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no embedded asset `{path}`"))
}

/// `GET /assets/{file}`: a file by its hashed name, cached for a year.
pub async fn serve(Path(file): Path<String>) -> Result<Response, AppError> {
    let served = MANIFEST
        .files
        .get(&file)
        .ok_or_else(|| AppError::NotFound(format!("there is no asset `{file}`")))?;
    let bytes = match &served.bytes {
        Cow::Borrowed(bytes) => bytes::Bytes::from_static(bytes),
        Cow::Owned(bytes) => bytes::Bytes::copy_from_slice(bytes),
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(served.content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_has_a_hashed_url_and_stylesheets_point_at_hashed_fonts() {
        let css = url("arena.css");
        assert!(css.starts_with(PREFIX) && css.ends_with(".css") && css.len() > "/assets/arena..css".len() + 9);
        let name = css.trim_start_matches(PREFIX);
        let text = String::from_utf8_lossy(&MANIFEST.files[name].bytes).into_owned();
        assert!(!text.contains("asset:"), "a reference was left unresolved");
        assert!(text.contains(url("fonts/cinzel-700.woff2")));
    }

    #[test]
    fn a_different_content_is_a_different_name() {
        assert_ne!(hashed_name("a.css", b"one"), hashed_name("a.css", b"two"));
        assert_eq!(hashed_name("fonts/x.woff2", b"one"), hashed_name("x.woff2", b"one"));
    }
}
