//! The router: destinations, subscriptions, queues and acknowledgements, sans-IO.
//!
//! Owns all routing state and is driven by [`RouterCommand`]s, one at a time, in the
//! order connections sent them (in the server, one task owns the router and drains
//! a channel; no lock anywhere). Deliveries are encoded straight into each receiving
//! connection's [`Outbox`]; a RECEIPT is written after its frame's effect, so it
//! follows every MESSAGE that effect produced (S3). It owns no socket and no
//! clock; when a publisher pauses and what a full outbox means is `flow.rs`'s.
//!
//! Destinations (created on first use, removed when unused):
//! - `/topic/<name>`: every current subscriber gets every message, in publish order
//!   per publisher, except one whose selector does not select it (skipped, not
//!   dropped). Nothing is held. A client-ack topic subscriber with no credit,
//!   or a subscriber whose outbox is full, misses the message (counted as dropped),
//!   or with `slow_consumer = disconnect` (default) is closed with an ERROR.
//! - `/topic/<pattern>` (SUBSCRIBE only): segments are separated by `.`; `*`
//!   matches one segment, `#` zero or more, `>` (last) one or more. A message
//!   published to a topic also reaches every subscription whose pattern
//!   matches it, its MESSAGE naming the topic; a durable subscription on a
//!   pattern collects from every matching topic (`wildcards.rs`).
//! - `/queue/<name>`: each message goes to exactly one subscriber, round-robin among
//!   those with free credit and room in their outbox (and whose selector, if any,
//!   selects it); messages are held while none can take them, up to the queue
//!   limits, and one that no current subscriber selects does not hold up the
//!   messages behind it.
//! - `/reply-queue/<opaque>` and `/reply-topic/<opaque>`: a connection's
//!   private reply destinations, made by `reply-to:/temp-queue/<name>` (or
//!   `/temp-topic/<name>`) on its SENDs; a queue and a topic with one
//!   subscriber, its owner, on the subscription `/temp-queue/<name>`. Anyone
//!   may SEND to one, nobody may SUBSCRIBE; never stored; gone with the owner
//!   (see `reply_queues.rs`).
//! - Any other destination is refused by the session with an ERROR.
//!
//! Acknowledgement (C3, C4, S2): `auto` messages are done once written; `client` ACKs
//! are cumulative over the subscription's delivery order; `client-individual` ACKs
//! one message. NACK (same scope rules) puts queue messages back at the head of the
//! queue marked `redelivered:true`; so do a subscription's unacked queue messages
//! when it is unsubscribed or its connection closes. The 1.2 `ack` header value is
//! `<message-id>.<subscription key>`; 1.0/1.1 ACKs name `message-id` (and 1.1 the
//! `subscription`).
//!
//! Files, one concern each:
//! - `mod.rs` (here): the commands, the [`Router`], dispatch of one command to
//!   its effect, then its RECEIPT or its ERROR (one close-with-error for every
//!   connection the router drops: refusals, protocol errors, slow consumers).
//! - `destinations.rs`: the destination table (kinds, creation within
//!   `max_destinations`, removal when unused).
//! - `subscriptions.rs`: subscriptions and the one `deliver` (a MESSAGE into a
//!   subscriber's outbox, its ack bookkeeping and publisher flow control).
//! - `topics.rs`: topic fan-out and the slow-consumer policy.
//! - `queues.rs`: where a queue's messages live (`QueueMessages`, the seam for a
//!   store), the one admission decision (limits, refuse or drop-oldest),
//!   round-robin dispatch and the one `requeue`.
//! - `acks.rs`: which delivery an ACK/NACK names, and settling it.
//! - `transactions.rs`: COMMIT, applied whole or refused whole.
//! - `journal.rs`: what the store must write (one unit per command) and the
//!   RECEIPTs held until it is durable.
//! - `durable.rs`: durable topic subscriptions (with their selectors), and
//!   restoring from the store.
//! - `selectors.rs`: what a SUBSCRIBE's `selector` (parsed once by the session,
//!   `stompkit-selector`) means to routing, and queue dispatch past messages
//!   no current subscriber selects.
//! - `dead_letters.rs`: dead-letter queues.
//! - `reply_queues.rs`: temporary destinations for request/reply (the
//!   `reply-to` rewrite, reply destinations and their lifecycle).
//! - `wildcards.rs`: the trie of subscribed topic patterns, and routing a
//!   topic's message to the patterns it matches.
//! - `cluster.rs`: cluster mode's ops and events (messages through NATS
//!   and JetStream instead of local queues; see there).
//! - `admin.rs` (and `admin/changes.rs`): what the admin API sees of the
//!   router, and the operator's changes (purge, delete a queue, remove a
//!   durable subscription); never on the routing path.
//!
//! Persistence (with a store, [`Router::with_store`]): a `persistent:true`
//! message in a queue (or a durable subscription) is put in the store, its
//! deliveries counted there lazily, and removed when acknowledged, expired,
//! dropped or dead-lettered; a RECEIPT waits until every earlier store write
//! of its connection is durable. Expiry (`expiration`, `expires`,
//! `default_ttl_ms`) is checked at delivery; past `max_deliveries`, or on a
//! NACK with `requeue:false`, a message is dead-lettered.

mod acks;
mod admin;
mod cluster;
mod dead_letters;
mod destinations;
mod durable;
mod journal;
mod queues;
mod reply_queues;
mod selectors;
mod subscriptions;
mod topics;
mod transactions;
mod wildcards;

use crate::config::DestinationsConfig;
use crate::message::Message;
use crate::metrics::{DropCounts, ErrorReason, Metrics};
use crate::outbox::Outbox;
use crate::store::Recovered;
use destinations::{DestKey, Destination, Kind};
use journal::Journal;
use std::collections::HashMap;
use std::sync::Arc;
use stompkit_frame::{AckMode, Frame, Version, names};
use stompkit_selector::Selector;
use stompkit_wire::Encoder;
use subscriptions::{SubKey, Subscription, Wants};
use wildcards::Wildcards;

pub use admin::{
    AdminRefusal, ConnectionCounts, Overview, PeekedMessage, QueueInfo, SubscriptionInfo, TopicInfo,
};
pub use cluster::{ClusterEvent, ClusterOp, ClusterUnit, Settle, Wire};
pub use destinations::is_valid_destination;
pub use reply_queues::{PrivateAccess, is_reserved_subscription_id, private_destination};

/// Identifies a connection (unique for the broker's lifetime).
pub type ConnId = u64;

/// Which message an ACK or NACK names, as the client spelled it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckRef {
    /// 1.2: the MESSAGE's `ack` value; 1.0/1.1: its `message-id`.
    pub id: String,
    /// 1.1: the `subscription` header.
    pub subscription: Option<String>,
    /// A NACK's messages go back to their queue (`false` with
    /// `requeue:false`: they are dead-lettered); ignored by ACK.
    pub requeue: bool,
}

/// One operation buffered in a transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum TxOp {
    /// A SEND (its `receipt` was already answered).
    Send(Frame),
    /// An ACK.
    Ack(AckRef),
    /// A NACK.
    Nack(AckRef),
}

/// What a session asks of the router. `receipt` fields are answered with a RECEIPT
/// after the effect (S3).
#[derive(Clone, Debug)]
pub enum RouterCommand {
    /// The session is open: deliveries go to `outbox`, encoded for `version`.
    Connect {
        /// The connection.
        conn: ConnId,
        /// Its outbox.
        outbox: Arc<Outbox>,
        /// Its negotiated version.
        version: Version,
    },
    /// Publish a SEND frame (destination already validated; its own `receipt` is honoured).
    Send {
        /// The publisher.
        conn: ConnId,
        /// The SEND frame.
        frame: Frame,
    },
    /// Add a subscription.
    Subscribe {
        /// The connection.
        conn: ConnId,
        /// Its `id` (unique on the connection; the session checked).
        id: String,
        /// The destination.
        destination: String,
        /// The ack mode.
        ack: AckMode,
        /// Most unacked messages (client modes).
        prefetch: u32,
        /// A durable topic subscription's key (its scope and name).
        durable: Option<String>,
        /// Only messages it selects are delivered (`selectors.rs`).
        selector: Option<Selector>,
        /// Receipt to answer.
        receipt: Option<String>,
    },
    /// Remove a subscription; its unacked queue messages are redelivered.
    Unsubscribe {
        /// The connection.
        conn: ConnId,
        /// The subscription `id`.
        id: String,
        /// A durable subscription is removed for good (else it keeps
        /// collecting messages for its next subscriber).
        forget: bool,
        /// Receipt to answer.
        receipt: Option<String>,
    },
    /// Acknowledge.
    Ack {
        /// The connection.
        conn: ConnId,
        /// Which message.
        ack: AckRef,
        /// Receipt to answer.
        receipt: Option<String>,
    },
    /// Refuse (requeue on queues).
    Nack {
        /// The connection.
        conn: ConnId,
        /// Which message.
        ack: AckRef,
        /// Receipt to answer.
        receipt: Option<String>,
    },
    /// Apply a transaction's operations atomically, in order.
    Commit {
        /// The connection.
        conn: ConnId,
        /// The buffered operations.
        ops: Vec<TxOp>,
        /// Receipt to answer.
        receipt: Option<String>,
    },
    /// Just answer a receipt (for frames whose effect is in the session, e.g. BEGIN).
    Receipt {
        /// The connection.
        conn: ConnId,
        /// The receipt id.
        receipt: String,
    },
    /// A protocol error found by the session: write this ERROR after everything
    /// routed before it, then close.
    Error {
        /// The connection.
        conn: ConnId,
        /// The ERROR frame.
        frame: Frame,
    },
    /// DISCONNECT: answer the receipt, then close the connection.
    Disconnect {
        /// The connection.
        conn: ConnId,
        /// Receipt to answer.
        receipt: Option<String>,
    },
    /// The connection is gone (or closing): forget it, redeliver its unacked messages.
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// The connection's outbox drained below its bound: resume queue dispatch to it.
    Drained {
        /// The connection.
        conn: ConnId,
    },
}

/// Router limits and policies (the `[destinations]` config section).
pub type RouterConfig = DestinationsConfig;

struct Conn {
    outbox: Arc<Outbox>,
    version: Version,
    encoder: Encoder,
    subs: HashMap<String, SubKey>,
    /// The last store unit its frames needed: its RECEIPTs wait for it.
    last_seq: u64,
    /// Its temporary destinations (`reply_queues.rs`).
    temps: reply_queues::TempDestinations,
    /// Messages it published (SENDs routed), for the admin API.
    published: u64,
    /// MESSAGE frames written through its subscriptions since removed (the
    /// live ones count their own), for the admin API.
    delivered_before: u64,
}

/// Why the router refused something (becomes an ERROR `message`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    UnknownAck,
    QueueFull,
    TooManyDestinations,
    BadDestination,
    DurableActive,
    TooManyTempQueues,
    BadReplyTo,
    NoRandomness,
    ClusterDown,
}

impl Refusal {
    fn message(self) -> &'static str {
        match self {
            Refusal::UnknownAck => "ACK/NACK of an unknown message",
            Refusal::QueueFull => "queue is full",
            Refusal::TooManyDestinations => "too many destinations",
            Refusal::BadDestination => "unsupported destination",
            Refusal::DurableActive => "durable subscription is already active",
            Refusal::TooManyTempQueues => {
                "too many temporary queues on this connection ([destinations] max_temp_queues)"
            }
            Refusal::BadReplyTo => {
                "invalid reply-to header: /temp-queue/ and /temp-topic/ need a name"
            }
            Refusal::NoRandomness => "no reply destination could be made (no random source)",
            Refusal::ClusterDown => {
                "cluster unavailable: NATS is unreachable, so this node cannot promise the message reaches other nodes or a queue"
            }
        }
    }
}

/// What the router counts: batched counts flushed to the shared metrics by
/// [`Router::flush_metrics`], and the metrics it updates directly.
struct Counters {
    metrics: Arc<Metrics>,
    /// MESSAGE frames written since the last flush.
    delivered: u64,
    /// Messages dropped (missed by a topic subscriber, the oldest of a full
    /// queue, a dead letter with nowhere to go) since the last flush, by reason.
    dropped: DropCounts,
    /// Messages found expired since the last flush.
    expired: u64,
}

/// The sans-IO router.
///
/// ```
/// use std::sync::Arc;
/// use stompkit_broker::Metrics;
/// use stompkit_broker::internals::{Outbox, Router, RouterCommand, RouterConfig};
/// use stompkit_frame::{AckMode, Frame, Version};
///
/// let mut router = Router::new(RouterConfig::default(), Arc::new(Metrics::default()));
/// let outbox = Arc::new(Outbox::new(1 << 20));
/// router.handle(RouterCommand::Connect { conn: 1, outbox: outbox.clone(), version: Version::V1_2 });
/// router.handle(RouterCommand::Subscribe { conn: 1, id: "s".into(),
///     destination: "/topic/a".into(), ack: AckMode::Auto, prefetch: 0, durable: None,
///     selector: None, receipt: None });
/// router.handle(RouterCommand::Send { conn: 1, frame: Frame::send("/topic/a").with_body("hi") });
/// assert!(outbox.drain().starts_with(b"MESSAGE\ndestination:/topic/a\n"));
/// ```
pub struct Router {
    config: RouterConfig,
    counters: Counters,
    conns: HashMap<ConnId, Conn>,
    subs: Vec<Option<Subscription>>,
    free_subs: Vec<SubKey>,
    dests: Vec<Option<Destination>>,
    free_dests: Vec<DestKey>,
    names: HashMap<Arc<str>, DestKey>,
    next_message: u64,
    to_close: Vec<ConnId>,
    journal: Journal,
    /// The patterns of wildcard subscriptions.
    wildcards: Wildcards,
    /// Now, in ms since the Unix epoch (for expiry; set by the router task).
    now: u64,
    /// Cluster mode (`cluster.rs`).
    cluster: Option<cluster::ClusterState>,
}

impl Router {
    /// An empty router that keeps everything in memory.
    pub fn new(config: RouterConfig, metrics: Arc<Metrics>) -> Router {
        Router {
            config,
            counters: Counters {
                metrics,
                delivered: 0,
                dropped: DropCounts::default(),
                expired: 0,
            },
            conns: HashMap::new(),
            subs: Vec::new(),
            free_subs: Vec::new(),
            dests: Vec::new(),
            free_dests: Vec::new(),
            names: HashMap::new(),
            next_message: 1,
            to_close: Vec::new(),
            journal: Journal::new(false),
            wildcards: Wildcards::new(),
            now: 0,
            cluster: None,
        }
    }

    /// A router over a store holding `recovered`: its queues and durable
    /// subscriptions are restored, and from now on it records what the store
    /// must write ([`take_units`](Router::take_units)) and holds RECEIPTs
    /// until the store reports them durable ([`durable`](Router::durable)).
    pub fn with_store(config: RouterConfig, metrics: Arc<Metrics>, recovered: Recovered) -> Router {
        let mut router = Router::new(config, metrics);
        router.journal = Journal::new(true);
        router.restore(recovered);
        router
    }

    /// Sets the clock, in ms since the Unix epoch (message expiry).
    pub fn set_now(&mut self, now_ms: u64) {
        self.now = now_ms;
    }

    /// What the store must write now, in order.
    pub fn take_units(&mut self) -> Vec<crate::store::Unit> {
        self.journal.take_units()
    }

    /// The store wrote every unit up to `seq`: the RECEIPTs waiting for them go.
    pub fn durable(&mut self, seq: u64) {
        self.journal.durable(seq);
    }

    /// The store could not write units `first..=last`: every connection that
    /// needed them gets ERROR (naming its held RECEIPT) and is closed; the
    /// messages stay in memory only.
    /// In cluster mode the cluster could not do them (NATS unreachable,
    /// JetStream refused): the ERROR says so.
    pub fn write_failed(&mut self, first: u64, last: u64, error: &str) {
        let what = match self.is_clustered() {
            true => "cluster unavailable",
            false => "message could not be made durable",
        };
        tracing::error!(first, last, %error, "{what}");
        let why = format!("{what}: {error}");
        for lost in self.journal.failed(first, last) {
            let mut frame = Frame::error(what);
            if let Some(r) = &lost.receipt {
                frame = frame.header(names::RECEIPT_ID, r);
            }
            let frame = frame.with_body(why.clone() + "\n");
            self.counters.metrics.count_error(ErrorReason::StoreWrite);
            let encoder = lost.encoder;
            lost.outbox
                .close_with(|buf| encode_or_log(&encoder, &frame, buf, lost.conn));
            self.drop_conn(lost.conn);
        }
        // Returned deliveries may have been dead-lettered meanwhile.
        self.journal.seal(None);
    }

    /// Processes one command.
    pub fn handle(&mut self, command: RouterCommand) {
        let conn = command.conn();
        self.dispatch(command);
        self.close_slow_consumers();
        if self.journal.has_open() {
            let owner = self.conns.get(&conn).map(|c| (conn, &c.outbox, c.encoder));
            if let Some(seq) = self.journal.seal(owner)
                && let Some(c) = self.conns.get_mut(&conn)
            {
                c.last_seq = seq;
            }
        }
    }

    /// One command's effect.
    #[inline]
    fn dispatch(&mut self, command: RouterCommand) {
        match command {
            RouterCommand::Connect {
                conn,
                outbox,
                version,
            } => self.connect(conn, outbox, version),
            RouterCommand::Send { conn, frame } => self.send(conn, frame),
            RouterCommand::Subscribe {
                conn,
                id,
                destination,
                ack,
                prefetch,
                durable,
                selector,
                receipt,
            } => self.routed(conn, receipt.as_deref(), |r| {
                let wants = Wants {
                    ack,
                    prefetch,
                    selector,
                };
                match durable {
                    Some(key) => r.subscribe_durable(conn, id, &destination, key, wants),
                    None => r.subscribe(conn, id, &destination, wants),
                }
            }),
            RouterCommand::Unsubscribe {
                conn,
                id,
                forget,
                receipt,
            } => {
                self.unsubscribe(conn, &id, forget, receipt.as_deref());
            }
            RouterCommand::Ack { conn, ack, receipt } => {
                self.routed(conn, receipt.as_deref(), |r| r.ack(conn, &ack, false));
            }
            RouterCommand::Nack { conn, ack, receipt } => {
                self.routed(conn, receipt.as_deref(), |r| r.ack(conn, &ack, true));
            }
            RouterCommand::Commit { conn, ops, receipt } => {
                self.routed(conn, receipt.as_deref(), |r| r.commit(conn, ops));
            }
            RouterCommand::Receipt { conn, receipt } => self.receipt(conn, Some(&receipt)),
            RouterCommand::Error { conn, frame } => self.close_with_error(conn, &frame),
            RouterCommand::Disconnect { conn, receipt } => {
                self.disconnect(conn, receipt.as_deref())
            }
            RouterCommand::Closed { conn } => self.drop_conn(conn),
            RouterCommand::Drained { conn } => self.drained(conn),
        }
    }

    /// Adds the counts gathered since the last call to the shared metrics.
    pub fn flush_metrics(&mut self) {
        let c = &mut self.counters;
        Metrics::add(&c.metrics.messages_out, std::mem::take(&mut c.delivered));
        c.dropped.flush(&c.metrics);
        Metrics::add(&c.metrics.expired, std::mem::take(&mut c.expired));
    }

    /// Destinations alive now.
    pub fn destination_count(&self) -> usize {
        self.names.len()
    }

    /// Connections the router knows.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// CONNECT accepted: deliveries to `conn` go to `outbox`.
    fn connect(&mut self, conn: ConnId, outbox: Arc<Outbox>, version: Version) {
        let encoder = Encoder::new(Some(version));
        let subs = HashMap::new();
        self.conns.insert(
            conn,
            Conn {
                outbox,
                version,
                encoder,
                subs,
                last_seq: 0,
                temps: reply_queues::TempDestinations::new(),
                published: 0,
                delivered_before: 0,
            },
        );
    }

    /// SEND: publish, then RECEIPT or ERROR.
    #[inline]
    fn send(&mut self, conn: ConnId, frame: Frame) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        let receipt = frame.receipt().map(str::to_owned);
        let result = self.publish(conn, frame);
        self.answer(conn, receipt.as_deref(), result);
    }

    /// Routes a SEND from `conn`, pausing `conn` where a receiver is congested
    /// (see `flow.rs`).
    fn publish(&mut self, conn: ConnId, mut frame: Frame) -> Result<(), Refusal> {
        self.rewrite_reply_to(conn, &mut frame)?;
        let Some(name) = frame.destination() else {
            return Err(Refusal::BadDestination);
        };
        let receipted = frame.receipt().is_some();
        if self.is_remote_reply(name) {
            return self.publish_remote(conn, frame, receipted);
        }
        let Some((key, reply)) = self.target(name)? else {
            return Ok(());
        };
        let publisher = self.conns.get_mut(&conn).map(|c| {
            c.published += 1;
            c.outbox.clone()
        });
        let num = self.next_number();
        Metrics::add(&self.counters.metrics.messages_in, 1);
        let mut message = Message::from_send(num, frame, self.now, self.config.default_ttl_ms);
        // A reply destination is never stored.
        message.persistent &= !reply;
        if message.expired(self.now) {
            self.counters.expired += 1;
            self.collect(key);
            return Ok(());
        }
        let kind = self.dests[key].as_ref().map(|d| d.kind);
        match kind {
            Some(Kind::Topic) if self.is_clustered() && !reply => {
                self.publish_clustered_topic(key, message, publisher.as_ref(), receipted)
            }
            Some(Kind::Queue) if self.cluster_down() && self.in_jetstream(key) => {
                self.collect(key);
                Err(Refusal::ClusterDown)
            }
            Some(Kind::Topic) => {
                self.copy_to_durable_subscriptions(key, &message, publisher.as_ref());
                self.fan_out_wildcards(key, &mut message, publisher.as_ref());
                self.fan_out(key, message, publisher.as_ref());
                self.collect(key);
                Ok(())
            }
            Some(Kind::Queue) => self.enqueue(key, message, publisher.as_ref()),
            // Nothing is published to a pattern (the session refuses it).
            Some(Kind::Wildcard) => {
                self.collect(key);
                Err(Refusal::BadDestination)
            }
            None => Ok(()),
        }
    }

    /// A fresh message number (`message-id`).
    fn next_number(&mut self) -> u64 {
        let num = self.next_message;
        self.next_message += 1;
        num
    }

    /// UNSUBSCRIBE: its unacked queue messages go back (a durable
    /// subscription is removed for good when `forget`); then RECEIPT.
    fn unsubscribe(&mut self, conn: ConnId, id: &str, forget: bool, receipt: Option<&str>) {
        let key = self.conns.get_mut(&conn).and_then(|c| c.subs.remove(id));
        if let Some(key) = key {
            let dest = self.subs[key].as_ref().map(|s| s.dest);
            self.remove_subscription(key);
            if let Some(dest) = dest
                && forget
            {
                self.forget_durable(dest);
            }
        }
        self.receipt(conn, receipt);
    }

    /// DISCONNECT: RECEIPT (once every earlier persistent frame is durable),
    /// then close.
    fn disconnect(&mut self, conn: ConnId, receipt: Option<&str>) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let (outbox, encoder) = (c.outbox.clone(), c.encoder);
        match (receipt, self.journal.wait_for(c.last_seq)) {
            (Some(r), Some(seq)) => self.journal.hold(seq, conn, &outbox, encoder, r, true),
            _ => {
                self.receipt(conn, receipt);
                outbox.close();
            }
        }
        self.drop_conn(conn);
    }

    /// `conn`'s outbox drained below its bound: resume queue dispatch to it.
    fn drained(&mut self, conn: ConnId) {
        let dests: Vec<DestKey> = match self.conns.get(&conn) {
            Some(c) => c
                .subs
                .values()
                .filter_map(|&k| self.subs[k].as_ref())
                .map(|s| s.dest)
                .collect(),
            None => return,
        };
        for d in dests {
            self.pump(d);
        }
    }

    /// Applies a frame's `effect` if `conn` is known, then answers it.
    fn routed(
        &mut self,
        conn: ConnId,
        receipt: Option<&str>,
        effect: impl FnOnce(&mut Router) -> Result<(), Refusal>,
    ) {
        if self.conns.contains_key(&conn) {
            let result = effect(self);
            self.answer(conn, receipt, result);
        }
    }

    /// A frame's effect is done: its RECEIPT, or ERROR (and close) on refusal.
    #[inline]
    fn answer(&mut self, conn: ConnId, receipt: Option<&str>, result: Result<(), Refusal>) {
        match result {
            Ok(()) => self.receipt(conn, receipt),
            Err(refusal) => self.refuse(conn, refusal, receipt),
        }
    }

    /// A RECEIPT, now or once every earlier persistent frame of `conn` is
    /// durable (see `journal.rs`).
    fn receipt(&mut self, conn: ConnId, receipt: Option<&str>) {
        let (Some(receipt), Some(c)) = (receipt, self.conns.get(&conn)) else {
            return;
        };
        let encoder = c.encoder;
        if let Some(seq) = self.journal.wait_for(c.last_seq) {
            let outbox = c.outbox.clone();
            self.journal
                .hold(seq, conn, &outbox, encoder, receipt, false);
            return;
        }
        c.outbox
            .append(|buf| encode_or_log(&encoder, &Frame::receipt_for(receipt), buf, conn));
    }

    /// Refuses a frame: ERROR naming its receipt, then close.
    fn refuse(&mut self, conn: ConnId, refusal: Refusal, receipt: Option<&str>) {
        if self.conns.contains_key(&conn) {
            let mut frame = Frame::error(refusal.message());
            if let Some(r) = receipt {
                frame = frame.header(names::RECEIPT_ID, r);
            }
            let frame = frame.with_body(refusal.message().to_owned() + "\n");
            tracing::warn!(conn, message = refusal.message(), "sending ERROR");
            self.counters.metrics.count_error(ErrorReason::Refused);
            self.close_with_error(conn, &frame);
        }
    }

    /// The one way the router drops a connection with an ERROR (refusals,
    /// protocol errors found by the session, slow consumers): `frame` is the
    /// last thing written to it, after everything routed to it before.
    fn close_with_error(&mut self, conn: ConnId, frame: &Frame) {
        if let Some(c) = self.conns.get(&conn) {
            let encoder = c.encoder;
            c.outbox
                .close_with(|buf| encode_or_log(&encoder, frame, buf, conn));
        }
        self.drop_conn(conn);
    }

    fn drop_conn(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            let mut keys: Vec<SubKey> = c.subs.into_values().collect();
            keys.sort_unstable();
            self.remove_subscriptions(&keys);
            self.drop_reply_destinations(c.temps);
        }
    }

    /// Closes the topic subscribers found too slow while routing (see
    /// `topics.rs`), with ERROR `slow consumer`.
    fn close_slow_consumers(&mut self) {
        while let Some(conn) = self.to_close.pop() {
            if self.conns.contains_key(&conn) {
                tracing::warn!(conn, "slow consumer: closing with ERROR");
                self.counters.metrics.count_error(ErrorReason::SlowConsumer);
                let frame = Frame::error("slow consumer")
                    .with_body("the connection did not read its messages fast enough\n");
                self.close_with_error(conn, &frame);
            }
        }
    }
}

impl RouterCommand {
    /// The connection it comes from.
    #[inline]
    pub fn conn(&self) -> ConnId {
        match self {
            RouterCommand::Connect { conn, .. }
            | RouterCommand::Send { conn, .. }
            | RouterCommand::Subscribe { conn, .. }
            | RouterCommand::Unsubscribe { conn, .. }
            | RouterCommand::Ack { conn, .. }
            | RouterCommand::Nack { conn, .. }
            | RouterCommand::Commit { conn, .. }
            | RouterCommand::Receipt { conn, .. }
            | RouterCommand::Error { conn, .. }
            | RouterCommand::Disconnect { conn, .. }
            | RouterCommand::Closed { conn }
            | RouterCommand::Drained { conn } => *conn,
        }
    }
}

/// Encodes a frame the router made (or the session's ERROR) into `buf`,
/// logging the frame it could not encode (nothing is written then).
fn encode_or_log(encoder: &Encoder, frame: &Frame, buf: &mut bytes::BytesMut, conn: ConnId) {
    if let Err(error) = encoder.encode(frame, buf) {
        tracing::warn!(conn, command = %frame.command, %error, "frame not encoded");
    }
}

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod durability_tests;
#[cfg(test)]
mod selector_tests;
#[cfg(test)]
mod tests;
