//! The browser client's files, embedded at compile time from `web/` at the repository root,
//! so that `switchboard serve` alone serves the page: `/` is `index.html`, every other file is
//! under `/web/...` (e.g. `/web/js/app.js`). See docs/web-client.md.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::shared::Shared;

/// Every file of the web client: its path below `web/` and its text. A file added to `web/`
/// must be listed here too (the tests below check that the page references each one).
const FILES: &[(&str, &str)] = &[
    ("index.html", include_str!("../../../web/index.html")),
    ("style.css", include_str!("../../../web/style.css")),
    ("favicon.svg", include_str!("../../../web/favicon.svg")),
    ("js/app.js", include_str!("../../../web/js/app.js")),
    ("js/page.js", include_str!("../../../web/js/page.js")),
    ("js/session.js", include_str!("../../../web/js/session.js")),
    (
        "js/conversations.js",
        include_str!("../../../web/js/conversations.js"),
    ),
    ("js/history.js", include_str!("../../../web/js/history.js")),
    ("js/online.js", include_str!("../../../web/js/online.js")),
    (
        "js/contacts.js",
        include_str!("../../../web/js/contacts.js"),
    ),
    (
        "js/composer.js",
        include_str!("../../../web/js/composer.js"),
    ),
    (
        "js/protocol.js",
        include_str!("../../../web/js/protocol.js"),
    ),
    ("js/state.js", include_str!("../../../web/js/state.js")),
    ("js/views.js", include_str!("../../../web/js/views.js")),
    (
        "js/contacts-view.js",
        include_str!("../../../web/js/contacts-view.js"),
    ),
];

/// The page loads only its own files, and talks to its node and, when it fails over, to the
/// other nodes of the cluster (WebSocket, and `/v1/cluster` to learn them). Messages are
/// rendered as text, so this is a second line of defence against script injection.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self' ws: wss: http: https:; object-src 'none'; base-uri 'none'; \
    form-action 'none'; \
    frame-ancestors 'none'";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/", get(crate::http::root)).route(
        "/web/{*path}",
        get(|Path(path): Path<String>| async move { file(&path) }),
    )
}

/// The content type of a file, from its extension. Module scripts must be served as
/// JavaScript or the browser refuses to run them.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

pub(crate) fn file(path: &str) -> Response {
    match FILES.iter().find(|(p, _)| *p == path) {
        Some((path, body)) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(content_type(path)),
                ),
                // The files change with the binary: revalidate rather than run stale scripts.
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                (
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(CSP),
                ),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
                (
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_non_empty_and_referenced() {
        let all: String = FILES.iter().map(|(_, body)| *body).collect();
        for (path, body) in FILES {
            assert!(!body.trim().is_empty(), "web/{path} is empty");
            if *path == "index.html" {
                continue;
            }
            // Referenced by its URL (from index.html) or by a relative module import.
            let name = path.rsplit('/').next().unwrap_or(path);
            assert!(
                all.contains(&format!("/web/{path}")) || all.contains(&format!("./{name}")),
                "web/{path} is not referenced by any page or module"
            );
        }
        let index = FILES[0].1;
        for asset in ["/web/style.css", "/web/js/app.js", "/web/favicon.svg"] {
            assert!(index.contains(asset), "index.html does not load {asset}");
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("js/app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("style.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
    }

    #[test]
    fn serves_files_and_refuses_others() {
        let ok = file("js/state.js");
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(
            ok.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert!(ok.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        assert_eq!(file("../Cargo.toml").status(), StatusCode::NOT_FOUND);
        assert_eq!(file("js/missing.js").status(), StatusCode::NOT_FOUND);
    }
}
