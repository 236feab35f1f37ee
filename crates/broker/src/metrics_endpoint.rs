//! The metrics endpoint: `GET /metrics` and `GET /healthz` on the `--metrics`
//! listener, and the one Prometheus text the admin listener serves too.
//!
//! Owns the endpoint's accept loop and its one answer per connection (within 5
//! s), with no login: `GET /metrics` (with or without a query) → `200` with
//! [`render_all`]; `GET /healthz` → `200 ok` while the broker runs, `503` once
//! it is shutting down (the listener stays up while connections drain);
//! `HEAD` likewise without the body; another method on those paths → `405`;
//! anything else → `404`. What the text holds is `exposition.rs`'s (the
//! counters are `metrics.rs`'s, the queues the router's); reading the request
//! head and writing the response is `http.rs`'s.

mod exposition;
mod process;

use crate::http::{self, Response};
use crate::router::Router;
use crate::shared::Shared;
use bytes::BytesMut;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

pub(crate) use exposition::CONTENT_TYPE;

/// The content type of the plain answers (`/healthz`, errors).
const TEXT: &str = "text/plain; charset=utf-8";

/// The whole `/metrics` text: the counters, the router's queues (asked on the
/// router task; none once it is gone) and the process's memory and open files.
pub(crate) async fn render_all(shared: &Shared) -> String {
    let queues = shared
        .ask(|router: &mut Router| router.queues())
        .await
        .unwrap_or_default();
    // Reading /proc takes as long as the process has descriptors: off the runtime.
    let process = tokio::task::spawn_blocking(process::sample)
        .await
        .unwrap_or_default();
    exposition::render(shared.metrics.clone(), queues, process)
}

/// `/healthz`'s answer: `200 ok` while running, `503` once shutting down.
pub(crate) fn health(shared: &Shared) -> (u16, &'static str) {
    match *shared.shutdown.borrow() {
        false => (200, "ok\n"),
        true => (503, "shutting down\n"),
    }
}

/// Serves the endpoint on `listener` until the broker stops (the task is aborted).
pub(crate) async fn serve_metrics(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(Duration::from_secs(5), answer(stream, shared)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::trace!(error = %e, "metrics answer not sent"),
                Err(_) => tracing::trace!("metrics request timed out"),
            }
        });
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    Metrics,
    Health,
    WrongMethod,
    Nothing,
}

/// Routes a request by method and path (a query is ignored).
fn route(method: &str, target: &str) -> Wanted {
    let path = target.split('?').next().unwrap_or(target);
    let known = match path {
        "/metrics" => Wanted::Metrics,
        "/healthz" => Wanted::Health,
        _ => return Wanted::Nothing,
    };
    match method {
        "GET" | "HEAD" => known,
        _ => Wanted::WrongMethod,
    }
}

/// One request, one answer.
async fn answer(mut stream: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    let mut buf = BytesMut::new();
    let (wanted, head_only) = match http::read_head(&mut stream, &mut buf).await {
        Ok(Some(head)) => (route(&head.method, &head.target), head.method == "HEAD"),
        Ok(None) | Err(_) => (Wanted::Nothing, false),
    };
    let (status, content_type, extra, body) = match wanted {
        Wanted::Metrics => (200, CONTENT_TYPE, "", render_all(&shared).await),
        Wanted::Health => {
            let (status, body) = health(&shared);
            (status, TEXT, "", body.to_owned())
        }
        Wanted::WrongMethod => (
            405,
            TEXT,
            "Allow: GET, HEAD\r\n",
            "method not allowed\n".to_owned(),
        ),
        Wanted::Nothing => (404, TEXT, "", "not found\n".to_owned()),
    };
    let response = Response {
        status,
        content_type,
        extra,
        body: body.as_bytes(),
        head_only,
    };
    response.send(&mut stream).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_path_then_method() {
        assert_eq!(route("GET", "/metrics"), Wanted::Metrics);
        assert_eq!(route("GET", "/metrics?x=1"), Wanted::Metrics);
        assert_eq!(route("HEAD", "/healthz"), Wanted::Health);
        assert_eq!(route("POST", "/healthz"), Wanted::WrongMethod);
        assert_eq!(route("DELETE", "/metrics"), Wanted::WrongMethod);
        assert_eq!(route("GET", "/"), Wanted::Nothing);
        assert_eq!(route("GET", "/metricsx"), Wanted::Nothing);
        assert_eq!(route("GET", "/api/overview"), Wanted::Nothing);
    }
}
