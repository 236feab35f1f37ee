//! The router's side of cluster mode: what it asks of the cluster, and what
//! the cluster hands it.
//!
//! In cluster mode (`[cluster] servers`) the router still does all local
//! routing, but a message published on this node leaves through the cluster
//! and comes back through it, on this node and every other:
//! - a topic message becomes [`ClusterOp::Publish`] (core NATS) and reaches
//!   local subscribers as [`ClusterEvent::Topic`], through the NATS
//!   subscription of the one local destination (topic or pattern) it was
//!   received for, so overlapping patterns never deliver it twice. Every
//!   local SUBSCRIBE to a topic or pattern asks for [`ClusterOp::Interest`]
//!   (the first one subscribes on NATS; each RECEIPT waits until NATS has
//!   it), the last subscriber gone gives it up. While NATS is unreachable a
//!   topic SEND reaches local subscribers only (counted) and one with a
//!   receipt is refused;
//! - a queue message (a `/queue/` SEND, a dead letter, a durable
//!   subscription's copy) becomes [`ClusterOp::Enqueue`] into its JetStream
//!   stream, and the unit's RECEIPT waits for JetStream's acknowledgement.
//!   The local queue holds only what this node pulled for its consumers
//!   ([`ClusterOp::Consume`], a window the size of their credit), each
//!   message carrying its JetStream [`token`](Message::token): the router
//!   settles it ([`ClusterOp::Settle`]) where a single node would forget it
//!   (acknowledged, expired, dropped, dead-lettered) and gives back (NAK)
//!   what it holds when its last consumer leaves;
//! - a reply destination lives on the node of its owner: a reply sent on
//!   another node goes over NATS ([`ClusterOp::Publish`] with the reply
//!   destination's name), and the owner's node has the interest (its
//!   owner's subscription asks for it as a topic subscriber does).
//!
//! Ops are recorded in the [journal](super::journal) beside the store's, one
//! unit per command, so RECEIPTs wait for the cluster as they wait for a
//! disk. What happens on NATS is the `cluster` module's.

use super::destinations::{DestKey, Kind};
use super::reply_queues::is_reply_destination;
use super::{ConnId, Refusal, Router};
use crate::message::Message;
use crate::metrics::{DropReason, Metrics};
use crate::outbox::Outbox;
use crate::store::StoredSubscription;
use bytes::Bytes;
use std::sync::Arc;
use stompkit_frame::{AckMode, Frame, Headers};

/// Where queue messages start: a destination with this prefix, or a durable
/// subscription's queue, lives in JetStream.
const QUEUE_PREFIX: &str = "/queue/";
/// The pull window of an `auto` consumer (no credit of its own).
const AUTO_WINDOW: u32 = 64;
/// Most messages a node pulls ahead for one queue.
const MAX_WINDOW: u32 = 1024;

/// A message as it travels between nodes: the SEND's headers and body, and
/// when it expires (absolute, so every node agrees).
#[derive(Clone, Debug, PartialEq)]
pub struct Wire {
    /// The SEND's headers.
    pub headers: Headers,
    /// The body.
    pub body: Bytes,
    /// Expiry, in ms since the Unix epoch; 0 = never.
    pub expires: u64,
    /// Leaving: the number the node gave it (with the node's name, its
    /// JetStream `Nats-Msg-Id`, so a retried publish is stored once).
    /// Pulled from a queue's stream: its stream sequence, which is its
    /// `message-id` on every node and at every redelivery (0: none).
    pub id: u64,
}

/// How a node is done with a message it pulled from JetStream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settle {
    /// Consumed (acknowledged, expired, dropped or dead-lettered).
    Ack,
    /// Given back, for any node to deliver again.
    Nak,
}

/// What the router asks of the cluster, recorded per command.
#[derive(Clone, Debug, PartialEq)]
pub enum ClusterOp {
    /// Publish on core NATS to a topic (or a reply destination) by name.
    Publish {
        /// The destination.
        destination: Arc<str>,
        /// The message.
        message: Wire,
    },
    /// Store in the JetStream stream of a queue or durable subscription
    /// (by its destination name or durable key).
    Enqueue {
        /// The queue.
        queue: Arc<str>,
        /// The message.
        message: Wire,
    },
    /// Start (or stop) receiving what is published to a topic, pattern or
    /// reply destination.
    Interest {
        /// The destination.
        destination: Arc<str>,
        /// Wanted (else given up).
        wanted: bool,
    },
    /// Pull up to `window` unsettled messages of a queue (0: stop).
    Consume {
        /// The queue (destination name or durable key).
        queue: Arc<str>,
        /// Most messages held on this node at once.
        window: u32,
    },
    /// Settle a pulled message.
    Settle {
        /// Its JetStream token.
        token: Arc<str>,
        /// How.
        how: Settle,
    },
    /// A durable subscription is made (or replaced) for the whole cluster.
    Durable(StoredSubscription),
    /// A durable subscription is removed for the whole cluster.
    Forget {
        /// Its key.
        key: String,
    },
}

/// One command's ops: done in order, then the unit is reported.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterUnit {
    /// Its number (the journal's).
    pub seq: u64,
    /// What it asks, in order.
    pub ops: Vec<ClusterOp>,
}

/// What the cluster hands the router.
#[derive(Debug)]
pub enum ClusterEvent {
    /// NATS became reachable (`true`) or unreachable.
    State(bool),
    /// A message published to `destination`, received for the local
    /// destination `interest` (a topic, pattern or reply destination).
    Topic {
        /// The local destination whose interest received it.
        interest: Arc<str>,
        /// Where it was published.
        destination: String,
        /// The message.
        message: Wire,
    },
    /// A message pulled from a queue's stream for this node's consumers.
    Queued {
        /// The queue (destination name or durable key).
        queue: Arc<str>,
        /// The message.
        message: Wire,
        /// Its JetStream token, to settle it.
        token: Arc<str>,
        /// Deliveries by JetStream so far, this one included.
        delivered: u64,
    },
    /// A durable subscription exists in the cluster.
    Durable(StoredSubscription),
    /// A durable subscription was removed from the cluster.
    Forgotten {
        /// Its key.
        key: String,
    },
}

/// What the router knows of the cluster.
#[derive(Debug)]
pub(super) struct ClusterState {
    /// NATS is reachable.
    pub(super) up: bool,
}

impl Router {
    /// Switches cluster mode on: from now on messages go through the
    /// cluster (NATS unreachable until it says otherwise).
    pub fn with_cluster(mut self) -> Router {
        self.cluster = Some(ClusterState { up: false });
        self.journal.set_clustered();
        self
    }

    /// What the cluster must do now, in order.
    pub fn take_cluster_units(&mut self) -> Vec<ClusterUnit> {
        self.journal.take_cluster_units()
    }

    /// Handles what the cluster reports.
    pub fn cluster_event(&mut self, event: ClusterEvent) {
        match event {
            ClusterEvent::State(up) => self.cluster_state(up),
            ClusterEvent::Topic {
                interest,
                destination,
                message,
            } => self.received_topic(&interest, &destination, message),
            ClusterEvent::Queued {
                queue,
                message,
                token,
                delivered,
            } => self.received_queued(&queue, message, token, delivered),
            ClusterEvent::Durable(subscription) => self.cluster_durable(subscription),
            ClusterEvent::Forgotten { key } => {
                if let Some(&k) = self.names.get(key.as_str()) {
                    self.drop_cluster_durable(k);
                }
            }
        }
        self.close_slow_consumers();
        self.journal.seal(None);
    }

    /// Whether the router runs in cluster mode.
    #[inline]
    pub(super) fn is_clustered(&self) -> bool {
        self.cluster.is_some()
    }

    /// Cluster mode with NATS unreachable.
    pub(super) fn cluster_down(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| !c.up)
    }

    fn cluster_state(&mut self, up: bool) {
        if let Some(c) = self.cluster.as_mut() {
            c.up = up;
        }
        self.counters.metrics.set_cluster_up(up);
    }

    /// A message as it leaves this node.
    fn wire(&self, message: &Message) -> Wire {
        Wire {
            headers: message.headers().clone(),
            body: message.body.clone(),
            expires: message.expires,
            id: message.num,
        }
    }

    /// A topic SEND in cluster mode: its durable subscriptions' copies go to
    /// JetStream and the message to NATS, which brings it back to local
    /// subscribers too; while NATS is unreachable, local subscribers only
    /// (counted), and a SEND with a receipt is refused.
    pub(super) fn publish_clustered_topic(
        &mut self,
        key: DestKey,
        mut message: Message,
        publisher: Option<&Arc<Outbox>>,
        receipted: bool,
    ) -> Result<(), Refusal> {
        if self.cluster_down() {
            if receipted {
                self.collect(key);
                return Err(Refusal::ClusterDown);
            }
            Metrics::add(&self.counters.metrics.cluster_local_only, 1);
            self.fan_out_wildcards(key, &mut message, publisher);
            self.fan_out(key, message, publisher);
            self.collect(key);
            return Ok(());
        }
        self.copy_to_durable_subscriptions(key, &message, publisher);
        self.copy_to_durable_patterns(key, &message, publisher);
        if let Some(name) = self.dests[key].as_ref().map(|d| d.name.clone()) {
            let message = self.wire(&message);
            self.journal.cluster(ClusterOp::Publish {
                destination: name,
                message,
            });
        }
        self.collect(key);
        Ok(())
    }

    /// Whether `name` is a reply destination of another node (cluster mode).
    pub(super) fn is_remote_reply(&self, name: &str) -> bool {
        self.is_clustered() && is_reply_destination(name) && !self.names.contains_key(name)
    }

    /// A SEND to a reply destination of another node: over NATS to its
    /// owner's node (refused with a receipt while NATS is unreachable,
    /// else dropped and counted).
    pub(super) fn publish_remote(
        &mut self,
        conn: ConnId,
        frame: Frame,
        receipted: bool,
    ) -> Result<(), Refusal> {
        if self.cluster_down() {
            if receipted {
                return Err(Refusal::ClusterDown);
            }
            let metrics = &self.counters.metrics;
            metrics.count_dropped(DropReason::ReplyDestinationGone, 1);
            return Ok(());
        }
        let Some(destination) = frame.destination().map(Arc::<str>::from) else {
            return Err(Refusal::BadDestination);
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.published += 1;
        }
        Metrics::add(&self.counters.metrics.messages_in, 1);
        let num = self.next_number();
        let message = Message::from_send(num, frame, self.now, self.config.default_ttl_ms);
        let message = self.wire(&message);
        self.journal.cluster(ClusterOp::Publish {
            destination,
            message,
        });
        Ok(())
    }

    /// Whether `key` keeps its messages in JetStream: a `/queue/` or a
    /// durable subscription's queue, in cluster mode.
    pub(super) fn in_jetstream(&self, key: DestKey) -> bool {
        self.is_clustered()
            && self.dests[key]
                .as_ref()
                .is_some_and(|d| d.durable_of.is_some() || d.name.starts_with(QUEUE_PREFIX))
    }

    /// A new queue message in cluster mode: into its stream.
    pub(super) fn enqueue_clustered(&mut self, key: DestKey, message: &Message) {
        if let Some(name) = self.dests[key].as_ref().map(|d| d.name.clone()) {
            let message = self.wire(message);
            self.journal.cluster(ClusterOp::Enqueue {
                queue: name,
                message,
            });
        }
        self.collect(key);
    }

    /// A subscription joined or left `key`: a topic's interest follows its
    /// first and last subscriber, a queue's pull window its subscribers'
    /// credit (what the node holds goes back when none is left).
    pub(super) fn subscribers_changed(&mut self, key: DestKey, joined: bool) {
        if !self.is_clustered() {
            return;
        }
        let Some(d) = self.dests[key].as_ref() else {
            return;
        };
        let name = d.name.clone();
        let received = is_reply_destination(&name)
            || (matches!(d.kind, Kind::Topic | Kind::Wildcard) && d.durable_of.is_none());
        match d.kind {
            // Every SUBSCRIBE asks, so its RECEIPT waits for the interest.
            _ if received && (joined || d.subs.is_empty()) => {
                self.journal.cluster(ClusterOp::Interest {
                    destination: name,
                    wanted: joined,
                });
            }
            _ if received => {}
            _ if self.in_jetstream(key) => {
                let window = self.pull_window(key);
                if window == 0 {
                    self.give_back(key);
                }
                self.journal.cluster(ClusterOp::Consume {
                    queue: name,
                    window,
                });
            }
            _ => {}
        }
    }

    /// How many messages of queue `key` this node may hold: its consumers'
    /// credit.
    fn pull_window(&self, key: DestKey) -> u32 {
        let Some(d) = self.dests[key].as_ref() else {
            return 0;
        };
        let window: u32 = d
            .subs
            .iter()
            .filter_map(|&sk| self.subs[sk].as_ref())
            .map(|s| match s.ack {
                AckMode::Auto => AUTO_WINDOW,
                _ => s.prefetch.clamp(1, MAX_WINDOW),
            })
            .fold(0, u32::saturating_add);
        window.min(MAX_WINDOW)
    }

    /// Gives back (NAK) every message queue `key` holds on this node.
    fn give_back(&mut self, key: DestKey) {
        let Some(d) = self.dests[key].as_mut() else {
            return;
        };
        while let Some(m) = d.messages.pop_front() {
            if let Some(token) = m.token {
                self.journal.cluster(ClusterOp::Settle {
                    token,
                    how: Settle::Nak,
                });
            }
        }
    }

    /// A topic message from NATS for the local destination `interest`: to
    /// its subscribers if it matches (a pattern's NATS subject may be wider).
    fn received_topic(&mut self, interest: &str, destination: &str, wire: Wire) {
        let Some(&key) = self.names.get(interest) else {
            return;
        };
        let Some(kind) = self.dests[key].as_ref().map(|d| d.kind) else {
            return;
        };
        let num = self.next_number();
        let mut message = Message::from_wire(num, wire);
        if message.expired(self.now) {
            self.counters.expired += 1;
            return;
        }
        match kind {
            Kind::Wildcard => {
                let Ok(topic) = self.destination(destination) else {
                    return;
                };
                if self.pattern_matches(key, topic) {
                    self.fan_out_to(key, topic, &mut message, None);
                }
                self.collect(topic);
            }
            Kind::Topic if interest == destination => self.fan_out(key, message, None),
            Kind::Queue if interest == destination => {
                self.hold_and_pump(key, message);
            }
            _ => {}
        }
    }

    /// A message pulled from JetStream for this node's consumers of `queue`.
    fn received_queued(&mut self, queue: &str, wire: Wire, token: Arc<str>, delivered: u64) {
        let key = self.names.get(queue).copied();
        let consumed = |k: DestKey| self.dests[k].as_ref().is_some_and(|d| !d.subs.is_empty());
        let Some(key) = key.filter(|&k| self.in_jetstream(k) && consumed(k)) else {
            // Its consumers left meanwhile: for another node.
            self.journal.cluster(ClusterOp::Settle {
                token,
                how: Settle::Nak,
            });
            return;
        };
        let num = match wire.id {
            0 => self.next_number(),
            sequence => sequence,
        };
        let mut message = Message::from_wire(num, wire);
        message.token = Some(token);
        let earlier = u32::try_from(delivered.saturating_sub(1)).unwrap_or(u32::MAX);
        message.deliveries = earlier;
        message.redelivered = earlier > 0;
        self.hold_and_pump(key, message);
    }

    /// Holds `message` last in queue `key` (no limit: the pull window bounds
    /// it) and dispatches.
    fn hold_and_pump(&mut self, key: DestKey, message: Message) {
        if let Some(d) = self.dests[key].as_mut() {
            d.messages.push_back(message);
        }
        self.pump(key);
        self.collect(key);
    }

    /// A durable subscription made anywhere in the cluster: its queue exists
    /// here too, so topics published here copy into it.
    fn cluster_durable(&mut self, subscription: StoredSubscription) {
        if let Some(&k) = self.names.get(subscription.key.as_str())
            && let Some(d) = self.dests[k].as_ref()
        {
            let same_topic = d
                .durable_of
                .and_then(|t| self.dests[t].as_ref())
                .is_some_and(|t| *t.name == *subscription.destination);
            let same_selector =
                d.selector.as_ref().map(|s| s.as_str()) == subscription.selector.as_deref();
            if same_topic && same_selector {
                return;
            }
            self.drop_cluster_durable(k);
        }
        self.restore_durable(&subscription);
    }

    /// A durable subscription replaced or removed elsewhere: gone here,
    /// what this node holds of it given back.
    fn drop_cluster_durable(&mut self, key: DestKey) {
        self.give_back(key);
        self.drop_durable(key);
    }
}

impl Message {
    /// A message that came from another node (or back from NATS), numbered
    /// `num` here.
    fn from_wire(num: u64, wire: Wire) -> Message {
        let mut message = Message::of_headers(num, wire.headers, wire.body);
        message.expires = wire.expires;
        message
    }
}
