//! The JSON API's endpoints: what each asks the router or the registry, and
//! its answer.
//!
//! Owns the handlers behind `/api/...` (`routes.rs` picks one): questions and
//! changes run on the router task through `Shared::ask` (at most
//! [`ASK_TIMEOUT`]; a router gone or too slow is a 503), kicks go down the
//! router's channel as an ERROR command, so the client reads everything
//! routed to it before.

use super::Admin;
use super::json::{self, Purged};
use super::reply::Reply;
use super::request::Request;
use crate::metrics::ErrorReason;
use crate::router::{AdminRefusal, ConnId, Overview, Router, RouterCommand};
use crate::shared::ToRouter;
use std::collections::HashMap;
use std::time::Duration;
use stompkit_frame::Frame;

/// How long the router may take to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// The most messages a peek returns.
const MAX_PEEK: usize = 1000;

/// A peek's count when none is given.
const DEFAULT_PEEK: usize = 10;

/// The ERROR `message` a kicked client gets.
pub(crate) const KICKED: &str = "closed by administrator";

/// What an endpoint answers: the reply, or an early error reply.
type Answer = Result<Reply, Reply>;

/// Runs `question` on the router task.
async fn ask<T: Send + 'static>(
    admin: &Admin,
    question: impl FnOnce(&mut Router) -> T + Send + 'static,
) -> Result<T, Reply> {
    match tokio::time::timeout(ASK_TIMEOUT, admin.shared.ask(question)).await {
        Ok(Some(answer)) => Ok(answer),
        Ok(None) => Err(Reply::error(503, "the broker is shutting down")),
        Err(_) => Err(Reply::error(503, "the router did not answer in time")),
    }
}

/// `GET /api/overview`.
pub(super) async fn overview(admin: &Admin) -> Answer {
    let counts: Overview = ask(admin, |router| router.overview()).await?;
    let metrics = &admin.shared.metrics;
    let overview = json::Overview {
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: admin.started.elapsed().as_secs(),
        connections: counts.connections,
        subscriptions: counts.subscriptions,
        queues: counts.queues,
        topics: counts.topics,
        messages_published: crate::metrics::Metrics::get(&metrics.messages_in),
        messages_delivered: crate::metrics::Metrics::get(&metrics.messages_out),
        rates: admin.history.rates(),
        history: admin.history.samples(),
        cluster: cluster(admin),
    };
    Ok(Reply::json(200, &overview))
}

/// Cluster mode's state, for the overview.
fn cluster(admin: &Admin) -> Option<json::Cluster> {
    let metrics = &admin.shared.metrics;
    let connected = metrics.cluster_up()?;
    let config = &admin.shared.config.cluster;
    let count = crate::metrics::Metrics::get;
    Some(json::Cluster {
        node: config.node_name(),
        servers: config.servers.clone(),
        connected,
        published: count(&metrics.cluster_published),
        received: count(&metrics.cluster_received),
        local_only: count(&metrics.cluster_local_only),
        reconnects: count(&metrics.cluster_reconnects),
    })
}

/// `GET /api/connections`: the registered sessions with the router's counts.
pub(super) async fn connections(admin: &Admin) -> Answer {
    let mut counts: HashMap<ConnId, _> = ask(admin, |router| router.connection_counts()).await?;
    let list: Vec<json::Connection> = admin
        .shared
        .registry
        .sessions()
        .into_iter()
        .map(|s| {
            let c = counts.remove(&s.id).unwrap_or_default();
            json::Connection::new(s, c)
        })
        .collect();
    Ok(Reply::json(200, &list))
}

/// `DELETE /api/connections/{id}`: ERROR `closed by administrator`, then closed.
pub(super) async fn kick(admin: &Admin, id: &str) -> Answer {
    let conn: ConnId = id
        .parse()
        .map_err(|_| Reply::error(400, "bad connection id"))?;
    let session = admin
        .shared
        .registry
        .get(conn)
        .ok_or_else(|| Reply::error(404, "no such connection"))?;
    let frame = Frame::error(KICKED).with_body("an administrator closed this connection\n");
    let command = ToRouter::Command(RouterCommand::Error { conn, frame });
    if admin.shared.router.send(command).await.is_err() {
        return Err(Reply::error(503, "the broker is shutting down"));
    }
    tracing::info!(conn, peer = %session.peer, "connection closed by administrator");
    admin.shared.metrics.count_error(ErrorReason::Admin);
    Ok(Reply::no_content())
}

/// `GET /api/queues`.
pub(super) async fn queues(admin: &Admin) -> Answer {
    let queues = ask(admin, |router| router.queues()).await?;
    let list: Vec<json::Queue> = queues.into_iter().map(json::Queue::from).collect();
    Ok(Reply::json(200, &list))
}

/// `GET /api/queues/{name}`.
pub(super) async fn queue(admin: &Admin, name: String) -> Answer {
    let full = format!("/queue/{name}");
    let queue = ask(admin, move |router| router.queue(&full)).await?;
    let queue = queue.ok_or_else(no_such_queue)?;
    Ok(Reply::json(200, &json::Queue::from(queue)))
}

/// `DELETE /api/queues/{name}/contents`: `{"purged": N}`.
pub(super) async fn purge(admin: &Admin, name: String) -> Answer {
    let full = format!("/queue/{name}");
    let purged = ask(admin, move |router| router.purge(&full)).await?;
    let purged = purged.map_err(|_| no_such_queue())?;
    tracing::info!(queue = %name, purged, "queue purged by administrator");
    Ok(Reply::json(200, &Purged { purged }))
}

/// `DELETE /api/queues/{name}`.
pub(super) async fn delete_queue(admin: &Admin, name: String) -> Answer {
    let full = format!("/queue/{name}");
    let deleted = ask(admin, move |router| router.delete_queue(&full)).await?;
    deleted.map_err(|_| no_such_queue())?;
    tracing::info!(queue = %name, "queue deleted by administrator");
    Ok(Reply::no_content())
}

/// `GET /api/queues/{name}/messages?count=N`.
pub(super) async fn peek(admin: &Admin, name: String, request: &Request) -> Answer {
    let count = match request.param("count")? {
        None => DEFAULT_PEEK,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PEEK).contains(n))
            .ok_or_else(|| Reply::error(400, "count must be a number from 1 to 1000"))?,
    };
    let full = format!("/queue/{name}");
    let messages = ask(admin, move |router| router.peek(&full, count)).await?;
    let messages = messages.ok_or_else(no_such_queue)?;
    let list: Vec<json::Message> = messages.into_iter().map(json::Message::from).collect();
    Ok(Reply::json(200, &list))
}

/// `GET /api/topics`.
pub(super) async fn topics(admin: &Admin) -> Answer {
    let topics = ask(admin, |router| router.topics()).await?;
    let list: Vec<json::Topic> = topics.into_iter().map(json::Topic::from).collect();
    Ok(Reply::json(200, &list))
}

/// `GET /api/subscriptions`.
pub(super) async fn subscriptions(admin: &Admin) -> Answer {
    let subs = ask(admin, |router| router.subscriptions()).await?;
    let list: Vec<json::Subscription> = subs.into_iter().map(json::Subscription::from).collect();
    Ok(Reply::json(200, &list))
}

/// `DELETE /api/subscriptions/{id}`: durable subscriptions only.
pub(super) async fn delete_subscription(admin: &Admin, id: String) -> Answer {
    let key = id.clone();
    let deleted = ask(admin, move |router| router.delete_subscription(&key)).await?;
    match deleted {
        Ok(()) => {
            tracing::info!(subscription = %id, "durable subscription deleted by administrator");
            Ok(Reply::no_content())
        }
        Err(AdminRefusal::NotFound) => Err(Reply::error(404, "no such subscription")),
        Err(AdminRefusal::NotDurable) => Err(Reply::error(400, "not a durable subscription")),
    }
}

fn no_such_queue() -> Reply {
    Reply::error(404, "no such queue")
}
