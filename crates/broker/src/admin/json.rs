//! The admin API's JSON objects, with the field names scripts rely on.
//!
//! Owns the shapes of `/api/...` answers (see the crate's README and the
//! admin CLI, which read them): built from the router's answers
//! (`router/admin.rs`), the connection registry and the rates history. Times
//! are Unix milliseconds; queue and topic `name`s are what follows `/queue/`
//! and `/topic/`, their `destination` the full name.

use super::sampler::{Rates, Sample};
use crate::registry;
use crate::router::{
    ConnId, ConnectionCounts, PeekedMessage, QueueInfo, SubscriptionInfo, TopicInfo,
};
use serde::ser::{Serialize, SerializeMap, Serializer};

/// `GET /api/overview`.
#[derive(Debug, serde::Serialize)]
pub(super) struct Overview {
    pub(super) version: &'static str,
    pub(super) uptime_s: u64,
    pub(super) connections: usize,
    pub(super) subscriptions: usize,
    pub(super) queues: usize,
    pub(super) topics: usize,
    pub(super) messages_published: u64,
    pub(super) messages_delivered: u64,
    pub(super) rates: Rates,
    pub(super) history: Vec<Sample>,
    /// Cluster mode's state; `null` for a single broker.
    pub(super) cluster: Option<Cluster>,
}

/// `cluster` in `GET /api/overview`: this node and its NATS connection.
#[derive(Debug, serde::Serialize)]
pub(super) struct Cluster {
    pub(super) node: String,
    pub(super) servers: Vec<String>,
    pub(super) connected: bool,
    pub(super) published: u64,
    pub(super) received: u64,
    pub(super) local_only: u64,
    pub(super) reconnects: u64,
}

/// One of `GET /api/connections`.
#[derive(Debug, serde::Serialize)]
pub(super) struct Connection {
    id: ConnId,
    peer: String,
    login: Option<String>,
    version: &'static str,
    transport: &'static str,
    subscriptions: usize,
    messages_in: u64,
    messages_out: u64,
    pending_bytes: usize,
    connected_at: u64,
}

impl Connection {
    /// A registered session with what the router counts of it.
    pub(super) fn new(session: registry::Session, counts: ConnectionCounts) -> Connection {
        Connection {
            id: session.id,
            peer: session.peer.to_string(),
            version: session.version.as_str(),
            transport: session.transport.as_str(),
            subscriptions: counts.subscriptions,
            messages_in: counts.messages_in,
            messages_out: counts.messages_out,
            pending_bytes: session.pending_bytes(),
            connected_at: session.connected_at,
            login: session.login,
        }
    }
}

/// One of `GET /api/queues`, or `GET /api/queues/{name}`.
#[derive(Debug, serde::Serialize)]
pub(super) struct Queue {
    name: String,
    destination: String,
    ready: usize,
    unacked: usize,
    consumers: usize,
    durable: bool,
    bytes: usize,
}

impl From<QueueInfo> for Queue {
    fn from(q: QueueInfo) -> Queue {
        Queue {
            name: q.short_name().to_owned(),
            destination: q.name,
            ready: q.ready,
            unacked: q.unacked,
            consumers: q.consumers,
            durable: q.durable,
            bytes: q.bytes,
        }
    }
}

/// One of `GET /api/queues/{name}/messages`.
#[derive(Debug, serde::Serialize)]
pub(super) struct Message {
    headers: Headers,
    body: String,
    body_len: usize,
}

impl From<PeekedMessage> for Message {
    fn from(m: PeekedMessage) -> Message {
        Message {
            headers: Headers(m.headers),
            body: m.body,
            body_len: m.body_len,
        }
    }
}

/// A message's headers as one JSON object, in order; a repeated header keeps
/// its first value (the one STOMP uses).
#[derive(Debug)]
struct Headers(Vec<(String, String)>);

impl Serialize for Headers {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seen = std::collections::HashSet::new();
        let first: Vec<&(String, String)> = self.0.iter().filter(|(n, _)| seen.insert(n)).collect();
        let mut map = serializer.serialize_map(Some(first.len()))?;
        for (name, value) in first {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// One of `GET /api/topics`.
#[derive(Debug, serde::Serialize)]
pub(super) struct Topic {
    name: String,
    destination: String,
    subscribers: usize,
    durable_subscriptions: usize,
}

impl From<TopicInfo> for Topic {
    fn from(t: TopicInfo) -> Topic {
        Topic {
            name: t.short_name().to_owned(),
            destination: t.name,
            subscribers: t.subscribers,
            durable_subscriptions: t.durable_subscriptions,
        }
    }
}

/// One of `GET /api/subscriptions`.
#[derive(Debug, serde::Serialize)]
pub(super) struct Subscription {
    id: String,
    connection: Option<ConnId>,
    destination: String,
    ack: &'static str,
    selector: Option<String>,
    unacked: usize,
    durable: bool,
}

impl From<SubscriptionInfo> for Subscription {
    fn from(s: SubscriptionInfo) -> Subscription {
        Subscription {
            id: s.id,
            connection: s.connection,
            destination: s.destination,
            ack: s.ack,
            selector: s.selector,
            unacked: s.unacked,
            durable: s.durable,
        }
    }
}

/// `DELETE /api/queues/{name}/contents`.
#[derive(Debug, serde::Serialize)]
pub(super) struct Purged {
    pub(super) purged: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_keep_order_and_first_values() {
        let m = Message::from(PeekedMessage {
            headers: vec![
                ("destination".into(), "/queue/a".into()),
                ("x".into(), "1".into()),
                ("x".into(), "2".into()),
                ("content-type".into(), "text/plain".into()),
            ],
            body: "hi".into(),
            body_len: 2,
        });
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"headers":{"destination":"/queue/a","x":"1","content-type":"text/plain"},"body":"hi","body_len":2}"#
        );
    }

    #[test]
    fn queue_names_lose_their_prefix() {
        let q = Queue::from(QueueInfo {
            name: "/queue/orders/eu".into(),
            ready: 1,
            unacked: 2,
            consumers: 3,
            durable: true,
            bytes: 4,
        });
        assert_eq!(
            serde_json::to_string(&q).unwrap(),
            r#"{"name":"orders/eu","destination":"/queue/orders/eu","ready":1,"unacked":2,"consumers":3,"durable":true,"bytes":4}"#
        );
    }
}
