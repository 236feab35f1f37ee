//! What the admin API sees of the router, and what it may change.
//!
//! Owns the router's answers to the admin listener (`admin/`): queues (ready
//! and unacknowledged messages, consumers, bytes), a peek at a queue's first
//! ready messages, topics, subscriptions, per-connection counts, and the
//! operator's changes: purging a queue, deleting a queue (its consumers get
//! ERROR), removing a durable subscription. The admin listener runs these on
//! the router task through `Shared::ask`; nothing here is on the routing path.

mod changes;
#[cfg(test)]
mod tests;

use super::destinations::{DestKey, Destination, Kind};
use super::subscriptions::Subscription;
use super::{ConnId, Router, reply_queues};
use crate::message::{Message, RESERVED};
use std::collections::HashMap;
use stompkit_frame::{AckMode, names};

/// How much of a peeked message's body is shown, in bytes.
const PEEK_BODY_BYTES: usize = 1024;
/// One queue, as the admin API and `/metrics` show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueInfo {
    /// The destination name (`/queue/...`).
    pub name: String,
    /// Messages held, not yet delivered.
    pub ready: usize,
    /// Messages delivered and awaiting an ACK.
    pub unacked: usize,
    /// Subscriptions on it now.
    pub consumers: usize,
    /// Whether its persistent messages are kept across a restart (a store is open).
    pub durable: bool,
    /// Bytes (headers and bodies) of its ready messages.
    pub bytes: usize,
}

impl QueueInfo {
    /// Its name after `/queue/`: the admin API's `name` and the `queue` label
    /// of `/metrics`.
    pub fn short_name(&self) -> &str {
        self.name.strip_prefix("/queue/").unwrap_or(&self.name)
    }
}

/// One topic with subscribers or durable subscriptions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    /// The destination name (`/topic/...`, or a pattern).
    pub name: String,
    /// Live subscriptions on it.
    pub subscribers: usize,
    /// Durable subscriptions collecting from it (active or not).
    pub durable_subscriptions: usize,
}

impl TopicInfo {
    /// Its name after `/topic/`: the admin API's `name`.
    pub fn short_name(&self) -> &str {
        self.name.strip_prefix("/topic/").unwrap_or(&self.name)
    }
}

/// One subscription: a live one, or a durable one with no subscriber now
/// (`connection` is `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionInfo {
    /// Its admin id: unique among subscriptions (`<connection>/<id>` for a live
    /// one; for a durable one its key's parts joined by `/`, e.g.
    /// `durable/alice/app/orders` or `durable/alice//sub-1`, a `/` or `%`
    /// inside a part spelled `%2F` or `%25`).
    pub id: String,
    /// The connection holding it, if any.
    pub connection: Option<ConnId>,
    /// Its destination (the topic or pattern for a durable one).
    pub destination: String,
    /// Its ack mode: `auto`, `client` or `client-individual`.
    pub ack: &'static str,
    /// Its selector's text, if any.
    pub selector: Option<String>,
    /// Deliveries awaiting an ACK.
    pub unacked: usize,
    /// Whether it is a durable subscription.
    pub durable: bool,
}

/// One message at the head of a queue, for a peek.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeekedMessage {
    /// Its headers, in order: those its MESSAGE will carry (`destination`,
    /// `message-id`, the SEND's own).
    pub headers: Vec<(String, String)>,
    /// Its first 1 KiB, lossy UTF-8.
    pub body: String,
    /// The whole body's length in bytes.
    pub body_len: usize,
}

/// What the router knows of one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    /// Its subscriptions now.
    pub subscriptions: usize,
    /// Messages it published.
    pub messages_in: u64,
    /// MESSAGE frames written to it.
    pub messages_out: u64,
}

/// The router-wide counts of `/api/overview`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overview {
    /// Connections the router knows (CONNECTed).
    pub connections: usize,
    /// Live subscriptions.
    pub subscriptions: usize,
    /// Queues (not counting durable subscriptions' and reply queues).
    pub queues: usize,
    /// Topics with subscribers or durable subscriptions.
    pub topics: usize,
}

/// Why an admin change did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminRefusal {
    /// No such queue or subscription.
    NotFound,
    /// The subscription is not durable (only durable ones can be removed).
    NotDurable,
}

impl Router {
    /// Every queue (not durable subscriptions' nor reply queues), by name.
    pub fn queues(&self) -> Vec<QueueInfo> {
        let mut queues: Vec<QueueInfo> = self
            .dests
            .iter()
            .flatten()
            .filter(|d| is_listed_queue(d))
            .map(|d| self.queue_info(d))
            .collect();
        queues.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        queues
    }

    /// One queue by its full name (`/queue/...`).
    pub fn queue(&self, name: &str) -> Option<QueueInfo> {
        self.listed_queue(name).map(|(_, d)| self.queue_info(d))
    }

    /// What the admin API shows of a queue.
    fn queue_info(&self, d: &Destination) -> QueueInfo {
        let unacked = d
            .subs
            .iter()
            .filter_map(|&k| self.subs[k].as_ref())
            .map(|s| s.unacked.len())
            .sum();
        QueueInfo {
            name: d.name.to_string(),
            ready: d.messages.len(),
            unacked,
            consumers: d.subs.len(),
            durable: self.journal.is_enabled(),
            bytes: d.messages.bytes(),
        }
    }

    /// The queue named `name` (`/queue/...`) if the admin API lists it.
    fn listed_queue(&self, name: &str) -> Option<(DestKey, &Destination)> {
        let key = *self.names.get(name)?;
        let d = self.dests[key].as_ref()?;
        is_listed_queue(d).then_some((key, d))
    }

    /// The first `count` ready messages of a queue (by its full name,
    /// `/queue/...`), oldest first, not consumed; `None` for no such queue.
    pub fn peek(&self, name: &str, count: usize) -> Option<Vec<PeekedMessage>> {
        let (_, d) = self.listed_queue(name)?;
        let shown = count.min(d.messages.len());
        Some(
            (0..shown)
                .filter_map(|at| d.messages.get(at))
                .map(|m| peeked(m, &d.name))
                .collect(),
        )
    }

    /// Every topic and pattern with live subscribers or durable
    /// subscriptions, by name. A durable subscription's subscriber counts
    /// among its topic's subscribers.
    pub fn topics(&self) -> Vec<TopicInfo> {
        let mut topics: Vec<TopicInfo> = self
            .dests
            .iter()
            .flatten()
            .filter(|d| is_listed_topic(d))
            .map(|d| {
                let active = d
                    .durables
                    .iter()
                    .filter_map(|&k| self.dests[k].as_ref())
                    .filter(|b| !b.subs.is_empty())
                    .count();
                TopicInfo {
                    name: d.name.to_string(),
                    subscribers: d.subs.len() + active,
                    durable_subscriptions: d.durables.len(),
                }
            })
            .collect();
        topics.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    /// Every subscription: the live ones (a durable subscription with a
    /// subscriber is one entry, under its durable id), then the durable ones
    /// with no subscriber now; ordered by connection, then id.
    pub fn subscriptions(&self) -> Vec<SubscriptionInfo> {
        let mut all = Vec::with_capacity(self.subs.len());
        for (&conn, c) in &self.conns {
            for (id, &sk) in &c.subs {
                let Some(sub) = self.subs[sk].as_ref() else {
                    continue;
                };
                let Some(d) = self.dests[sub.dest].as_ref() else {
                    continue;
                };
                all.push(match d.durable_of {
                    Some(_) => self.durable_info(d, Some(sub)),
                    None => live_info(conn, id, d, sub),
                });
            }
        }
        let inactive = self.dests.iter().flatten();
        let inactive = inactive.filter(|d| d.durable_of.is_some() && d.subs.is_empty());
        all.extend(inactive.map(|d| self.durable_info(d, None)));
        all.sort_unstable_by(|a, b| {
            let key = |s: &SubscriptionInfo| (s.connection.is_none(), s.connection);
            key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id))
        });
        all
    }

    /// What the admin API shows of the durable subscription whose queue is
    /// `backing`, with its subscriber `live` if any.
    fn durable_info(&self, backing: &Destination, live: Option<&Subscription>) -> SubscriptionInfo {
        let topic = backing.durable_of.and_then(|t| self.dests[t].as_ref());
        let ack = live.map(|s| s.ack).or(backing.durable_ack);
        SubscriptionInfo {
            id: durable_id(&backing.name),
            connection: live.map(|s| s.conn),
            destination: topic.map(|t| t.name.to_string()).unwrap_or_default(),
            ack: ack.unwrap_or(AckMode::Auto).as_str(),
            selector: backing.selector.as_ref().map(|s| s.as_str().to_owned()),
            unacked: live.map_or(0, |s| s.unacked.len()),
            durable: true,
        }
    }

    /// What the router knows of each CONNECTed connection: its
    /// subscriptions now, the messages it published and the MESSAGE frames
    /// written to it (through every subscription it ever had).
    pub fn connection_counts(&self) -> HashMap<ConnId, ConnectionCounts> {
        self.conns
            .iter()
            .map(|(&id, c)| {
                let live: u64 = c
                    .subs
                    .values()
                    .filter_map(|&k| self.subs[k].as_ref())
                    .map(|s| s.delivered)
                    .sum();
                let counts = ConnectionCounts {
                    subscriptions: c.subs.len(),
                    messages_in: c.published,
                    messages_out: c.delivered_before + live,
                };
                (id, counts)
            })
            .collect()
    }

    /// The router-wide counts.
    pub fn overview(&self) -> Overview {
        let dests = self.dests.iter().flatten();
        let (mut queues, mut topics) = (0, 0);
        for d in dests {
            queues += usize::from(is_listed_queue(d));
            topics += usize::from(is_listed_topic(d));
        }
        Overview {
            connections: self.conns.len(),
            subscriptions: self.subs.iter().flatten().count(),
            queues,
            topics,
        }
    }
}

/// Whether the admin API lists `d` as a queue: not a durable subscription's
/// queue, and not a reply queue (its name is a secret).
fn is_listed_queue(d: &Destination) -> bool {
    d.kind == Kind::Queue && d.durable_of.is_none() && !reply_queues::is_reply_destination(&d.name)
}

/// Whether the admin API lists `d` as a topic: a topic or pattern with
/// subscribers or durable subscriptions, not a reply topic (its name is a
/// secret).
fn is_listed_topic(d: &Destination) -> bool {
    matches!(d.kind, Kind::Topic | Kind::Wildcard)
        && (!d.subs.is_empty() || !d.durables.is_empty())
        && !reply_queues::is_reply_destination(&d.name)
}

/// What the admin API shows of the live, non-durable subscription `id` of
/// `conn` on `d`. A reply destination's owner subscription shows the
/// `/temp-queue/...` (or `/temp-topic/...`) name it was made for (its id),
/// not the secret name.
fn live_info(conn: ConnId, id: &str, d: &Destination, sub: &Subscription) -> SubscriptionInfo {
    let destination = match reply_queues::is_reply_destination(&d.name) {
        true => id.to_owned(),
        false => d.name.to_string(),
    };
    SubscriptionInfo {
        id: format!("{conn}/{id}"),
        connection: Some(conn),
        destination,
        ack: sub.ack.as_str(),
        selector: sub.selector.as_ref().map(|s| s.as_str().to_owned()),
        unacked: sub.unacked.len(),
        durable: false,
    }
}

/// A durable subscription's admin id: its key's parts (`durable`, scope,
/// client-id, name; see the session) joined by `/`, with `%` and `/` inside a
/// part spelled `%25` and `%2F`, so that two keys never share an id.
fn durable_id(key: &str) -> String {
    let parts: Vec<String> = key
        .split('\0')
        .map(|p| p.replace('%', "%25").replace('/', "%2F"))
        .collect();
    parts.join("/")
}

/// A message of queue `queue` as a peek shows it: the headers its MESSAGE
/// will carry before the subscription's (`destination`, `message-id`,
/// `redelivered` when it is), then the SEND's own headers in order, not those
/// the broker sets itself ([`RESERVED`]).
fn peeked(m: &Message, queue: &str) -> PeekedMessage {
    let mut headers = Vec::with_capacity(m.headers().len() + 3);
    headers.push((names::DESTINATION.to_owned(), queue.to_owned()));
    headers.push((names::MESSAGE_ID.to_owned(), m.num.to_string()));
    if m.redelivered {
        headers.push(("redelivered".to_owned(), "true".to_owned()));
    }
    let sent = m.headers().iter().filter(|(n, _)| !RESERVED.contains(n));
    headers.extend(sent.map(|(n, v)| (n.to_owned(), v.to_owned())));
    PeekedMessage {
        headers,
        body: body_head(&m.body),
        body_len: m.body.len(),
    }
}

/// The first [`PEEK_BODY_BYTES`] of `body` as lossy UTF-8 (a character the
/// cut splits is left out, not shown as a replacement character).
fn body_head(body: &[u8]) -> String {
    let head = &body[..body.len().min(PEEK_BODY_BYTES)];
    let head = match std::str::from_utf8(head) {
        Err(e) if e.error_len().is_none() && head.len() < body.len() => &head[..e.valid_up_to()],
        _ => head,
    };
    String::from_utf8_lossy(head).into_owned()
}
