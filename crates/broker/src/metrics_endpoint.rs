//! The metrics endpoint: `GET /metrics` on its own listener, in the Prometheus
//! text format.
//!
//! Owns the endpoint's accept loop and its one answer per connection (within 5
//! s): `GET /metrics` (with or without a query) → `200` with [`render`]ed
//! counters and the router's queue depths, anything else → `404`. The counters
//! and their rendering are `metrics.rs`'s, reading the request head and writing
//! the response `http.rs`'s.

use crate::http::{self, Response};
use crate::metrics::render;
use crate::shared::{Shared, ToRouter};
use bytes::BytesMut;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// The content type of the Prometheus text format, and of the `404`.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

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

/// One request, one answer: `GET /metrics` → Prometheus text, else 404.
async fn answer(mut stream: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    let mut buf = BytesMut::new();
    let wanted = match http::read_head(&mut stream, &mut buf).await {
        Ok(Some(head)) => {
            head.method == "GET"
                && (head.target == "/metrics" || head.target.starts_with("/metrics?"))
        }
        Ok(None) | Err(_) => false,
    };
    let (status, body) = if wanted {
        (200, render(&shared.metrics, &queue_stats(&shared).await))
    } else {
        (404, "not found\n".to_owned())
    };
    let response = Response {
        status,
        content_type: CONTENT_TYPE,
        extra: "",
        body: body.as_bytes(),
        head_only: false,
    };
    response.send(&mut stream).await
}

/// The router's queue depths (none once the router is gone).
async fn queue_stats(shared: &Shared) -> Vec<crate::metrics::QueueStat> {
    let (tx, rx) = oneshot::channel();
    match shared.router.send(ToRouter::Stats(tx)).await {
        Ok(()) => rx.await.unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}
