//! What the admin listener serves besides the JSON API: the dashboard's files
//! (embedded in the binary), `/metrics` and `/healthz`.
//!
//! Owns the table of dashboard files (`assets/admin/`: `/` the page,
//! `/admin.js`, `/admin.css`) and the text answers of `/metrics` and
//! `/healthz` (`ok`, or 503 while the broker shuts down), the same as the
//! metrics listener's (`metrics_endpoint.rs`).

use super::Admin;
use super::reply::Reply;
use crate::metrics_endpoint;

/// A dashboard file: path, content type, contents.
pub(super) type File = (&'static str, &'static str, &'static str);

/// The dashboard's files.
const FILES: [File; 3] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../../assets/admin/index.html"),
    ),
    (
        "/admin.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/admin/admin.js"),
    ),
    (
        "/admin.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/admin/admin.css"),
    ),
];

/// The dashboard file at `path`, if there is one.
pub(super) fn file(path: &str) -> Option<&'static File> {
    FILES.iter().find(|(p, _, _)| *p == path)
}

/// `GET /metrics`: what the metrics listener serves.
pub(super) async fn metrics(admin: &Admin) -> Reply {
    let text = metrics_endpoint::render_all(&admin.shared).await;
    Reply::text(200, metrics_endpoint::CONTENT_TYPE, text)
}

/// `GET /healthz`: `ok` while the broker accepts connections, 503 once it
/// shuts down (what the metrics listener answers).
pub(super) fn health(admin: &Admin) -> Reply {
    let (status, text) = metrics_endpoint::health(&admin.shared);
    Reply::text(status, "text/plain; charset=utf-8", text.to_owned())
}
