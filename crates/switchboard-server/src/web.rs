//! The browser client's files, embedded at compile time from `web/` at the repository root,
//! so that `switchboard serve` alone serves the page.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::shared::Shared;

/// Every file of the web client: path below `web/`, content type, bytes.
const FILES: &[(&str, &str, &str)] = &[(
    "index.html",
    "text/html; charset=utf-8",
    include_str!("../../../web/index.html"),
)];

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(|| async { file("index.html") }))
        .route(
            "/web/{*path}",
            get(|Path(path): Path<String>| async move { file(&path) }),
        )
}

fn file(path: &str) -> Response {
    match FILES.iter().find(|(p, _, _)| *p == path) {
        Some((_, mime, body)) => (
            [
                (header::CONTENT_TYPE, *mime),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
