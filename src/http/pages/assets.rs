//! The pages' CSS and scripts, embedded in the binary. Each is served as
//! `/assets/<stem>.<hash>.<ext>` (the first 12 hex digits of its SHA-256), so a name never
//! changes meaning and the browser may keep it for a year.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::RustEmbed;
use std::collections::HashMap;
use std::sync::OnceLock;

use super::super::state::AppState;

#[derive(RustEmbed)]
#[folder = "src/http/pages/assets/"]
struct Files;

/// File name → served name, and served name → file name.
struct Names {
    hashed: HashMap<String, String>,
    plain: HashMap<String, String>,
}

fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut hashed = HashMap::new();
        let mut plain = HashMap::new();
        for file in Files::iter() {
            let Some(embedded) = Files::get(&file) else {
                continue;
            };
            let hash: String = embedded
                .metadata
                .sha256_hash()
                .iter()
                .take(6)
                .map(|b| format!("{b:02x}"))
                .collect();
            let served = match file.rsplit_once('.') {
                Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
                None => format!("{file}.{hash}"),
            };
            hashed.insert(file.to_string(), served.clone());
            plain.insert(served, file.to_string());
        }
        Names { hashed, plain }
    })
}

/// The URL of embedded file `name` (`app.css` → `/assets/app.1a2b3c4d5e6f.css`).
pub fn url(name: &str) -> String {
    let served = names()
        .hashed
        .get(name)
        .unwrap_or_else(|| panic!("no embedded asset {name}"));
    format!("/assets/{served}")
}

pub fn router() -> Router<AppState> {
    Router::new().route("/assets/{name}", get(serve))
}

async fn serve(Path(name): Path<String>) -> Response {
    let Some(file) = names().plain.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(embedded) = Files::get(file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let content_type = match file.rsplit_once('.').map(|(_, ext)| ext) {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        embedded.data.into_owned(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_asset_has_a_hashed_name_that_maps_back() {
        let css = super::url("app.css");
        assert!(
            css.starts_with("/assets/app.") && css.ends_with(".css"),
            "{css}"
        );
        assert_eq!(css.len(), "/assets/app..css".len() + 12);
        let served = css.trim_start_matches("/assets/");
        assert_eq!(super::names().plain[served], "app.css");
    }
}
