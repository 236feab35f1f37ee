//! The router: destinations, subscriptions, queues and acknowledgements, sans-IO.
//!
//! Owns all routing state and is driven by [`RouterCommand`]s, one at a time, in the
//! order connections sent them (in the server, one task owns the router and drains
//! a channel; no lock anywhere). Deliveries are encoded straight into each receiving
//! connection's [`Outbox`]; a RECEIPT is written after its frame's effect, so it
//! follows every MESSAGE that effect produced (S3).
//!
//! Destinations (created on first use, removed when unused):
//! - `/topic/<name>`: every current subscriber gets every message, in publish order
//!   per publisher. Nothing is held. A client-ack topic subscriber with no credit,
//!   or a subscriber whose outbox is full, misses the message (counted as dropped),
//!   or with `slow_consumer = disconnect` (default) is closed with an ERROR.
//! - `/queue/<name>`: each message goes to exactly one subscriber, round-robin among
//!   those with free credit and room in their outbox; messages are held while none
//!   can take them, up to the queue limits.
//! - Any other destination is refused by the session with an ERROR.
//!
//! Acknowledgement (C3, C4, S2): `auto` messages are done once written; `client` ACKs
//! are cumulative over the subscription's delivery order; `client-individual` ACKs
//! one message. NACK (same scope rules) puts queue messages back at the head of the
//! queue marked `redelivered:true`; so do a subscription's unacked queue messages
//! when it is unsubscribed or its connection closes. The 1.2 `ack` header value is
//! `<message-id>.<subscription key>`; 1.0/1.1 ACKs name `message-id` (and 1.1 the
//! `subscription`).

use crate::config::{DestinationsConfig, QueueOverflow, SlowConsumer};
use crate::message::{Delivery, Message, encode_delivery, frame_size, header_line, parse_ack_id};
use crate::metrics::{Metrics, QueueStat};
use crate::outbox::Outbox;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use stompkit_frame::{AckMode, Frame, Version, names};
use stompkit_wire::Encoder;

/// Identifies a connection (unique for the broker's lifetime).
pub type ConnId = u64;

/// Which message an ACK or NACK names, as the client spelled it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckRef {
    /// 1.2: the MESSAGE's `ack` value; 1.0/1.1: its `message-id`.
    pub id: String,
    /// 1.1: the `subscription` header.
    pub subscription: Option<String>,
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
        /// Receipt to answer.
        receipt: Option<String>,
    },
    /// Remove a subscription; its unacked queue messages are redelivered.
    Unsubscribe {
        /// The connection.
        conn: ConnId,
        /// The subscription `id`.
        id: String,
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

type SubKey = usize;
type DestKey = usize;

struct Conn {
    outbox: Arc<Outbox>,
    version: Version,
    encoder: Encoder,
    subs: HashMap<String, SubKey>,
}

struct Subscription {
    conn: ConnId,
    outbox: Arc<Outbox>,
    version: Version,
    dest: DestKey,
    ack: AckMode,
    prefetch: u32,
    line: Box<[u8]>,
    unacked: VecDeque<Unacked>,
    /// Deliveries awaiting an ACK so far: the tag of the next one.
    next_tag: u64,
}

struct Unacked {
    num: u64,
    /// This delivery's number within its subscription, which the 1.2 `ack`
    /// header carries: a redelivery of the same message gets a new one, so a
    /// late ACK for an earlier delivery cannot settle it.
    tag: u64,
    /// The message, for queues (to redeliver); `None` for topics.
    message: Option<Message>,
}

impl Subscription {
    #[inline]
    fn has_credit(&self) -> bool {
        self.ack == AckMode::Auto || self.unacked.len() < self.prefetch as usize
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Topic,
    Queue,
}

struct Destination {
    name: Arc<str>,
    kind: Kind,
    /// `destination:...\n` per version.
    lines: [Box<[u8]>; 3],
    subs: Vec<SubKey>,
    held: VecDeque<Message>,
    held_bytes: usize,
    next: usize,
}

/// Why the router refused something (becomes an ERROR `message`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    UnknownAck,
    QueueFull,
    TooManyDestinations,
    BadDestination,
}

impl Refusal {
    fn message(self) -> &'static str {
        match self {
            Refusal::UnknownAck => "ACK/NACK of an unknown message",
            Refusal::QueueFull => "queue is full",
            Refusal::TooManyDestinations => "too many destinations",
            Refusal::BadDestination => "unsupported destination",
        }
    }
}

/// The sans-IO router.
///
/// ```
/// use std::sync::Arc;
/// use stompkit_broker::{Metrics, Outbox, Router, RouterCommand, RouterConfig};
/// use stompkit_frame::{AckMode, Frame, Version};
///
/// let mut router = Router::new(RouterConfig::default(), Arc::new(Metrics::default()));
/// let outbox = Arc::new(Outbox::new(1 << 20));
/// router.handle(RouterCommand::Connect { conn: 1, outbox: outbox.clone(), version: Version::V1_2 });
/// router.handle(RouterCommand::Subscribe { conn: 1, id: "s".into(),
///     destination: "/topic/a".into(), ack: AckMode::Auto, prefetch: 0, receipt: None });
/// router.handle(RouterCommand::Send { conn: 1, frame: Frame::send("/topic/a").with_body("hi") });
/// assert!(outbox.drain().starts_with(b"MESSAGE\ndestination:/topic/a\n"));
/// ```
pub struct Router {
    config: RouterConfig,
    metrics: Arc<Metrics>,
    conns: HashMap<ConnId, Conn>,
    subs: Vec<Option<Subscription>>,
    free_subs: Vec<SubKey>,
    dests: Vec<Option<Destination>>,
    free_dests: Vec<DestKey>,
    names: HashMap<Arc<str>, DestKey>,
    next_message: u64,
    to_close: Vec<ConnId>,
    // Counters flushed to `metrics` by `flush_metrics`.
    delivered: u64,
    dropped: u64,
}

impl Router {
    /// An empty router.
    pub fn new(config: RouterConfig, metrics: Arc<Metrics>) -> Router {
        Router {
            config,
            metrics,
            conns: HashMap::new(),
            subs: Vec::new(),
            free_subs: Vec::new(),
            dests: Vec::new(),
            free_dests: Vec::new(),
            names: HashMap::new(),
            next_message: 1,
            to_close: Vec::new(),
            delivered: 0,
            dropped: 0,
        }
    }

    /// Processes one command.
    pub fn handle(&mut self, command: RouterCommand) {
        match command {
            RouterCommand::Connect {
                conn,
                outbox,
                version,
            } => {
                self.conns.insert(
                    conn,
                    Conn {
                        outbox,
                        version,
                        encoder: Encoder::new(Some(version)),
                        subs: HashMap::new(),
                    },
                );
            }
            RouterCommand::Send { conn, frame } => {
                if !self.conns.contains_key(&conn) {
                    return;
                }
                let receipt = frame.receipt().map(str::to_owned);
                match self.publish(conn, frame) {
                    Ok(()) => self.receipt(conn, receipt.as_deref()),
                    Err(r) => self.refuse(conn, r, receipt.as_deref()),
                }
            }
            RouterCommand::Subscribe {
                conn,
                id,
                destination,
                ack,
                prefetch,
                receipt,
            } => {
                if !self.conns.contains_key(&conn) {
                    return;
                }
                match self.subscribe(conn, id, &destination, ack, prefetch) {
                    Ok(()) => self.receipt(conn, receipt.as_deref()),
                    Err(r) => self.refuse(conn, r, receipt.as_deref()),
                }
            }
            RouterCommand::Unsubscribe { conn, id, receipt } => {
                let key = self.conns.get_mut(&conn).and_then(|c| c.subs.remove(&id));
                if let Some(key) = key {
                    self.remove_subscription(key);
                }
                self.receipt(conn, receipt.as_deref());
            }
            RouterCommand::Ack { conn, ack, receipt }
            | RouterCommand::Nack { conn, ack, receipt }
                if !self.conns.contains_key(&conn) =>
            {
                let _ = (ack, receipt);
            }
            RouterCommand::Ack { conn, ack, receipt } => match self.ack(conn, &ack, false) {
                Ok(()) => self.receipt(conn, receipt.as_deref()),
                Err(r) => self.refuse(conn, r, receipt.as_deref()),
            },
            RouterCommand::Nack { conn, ack, receipt } => match self.ack(conn, &ack, true) {
                Ok(()) => self.receipt(conn, receipt.as_deref()),
                Err(r) => self.refuse(conn, r, receipt.as_deref()),
            },
            RouterCommand::Commit { conn, ops, receipt } => {
                if !self.conns.contains_key(&conn) {
                    return;
                }
                match self.commit(conn, ops) {
                    Ok(()) => self.receipt(conn, receipt.as_deref()),
                    Err(r) => self.refuse(conn, r, receipt.as_deref()),
                }
            }
            RouterCommand::Receipt { conn, receipt } => self.receipt(conn, Some(&receipt)),
            RouterCommand::Error { conn, frame } => {
                if let Some(c) = self.conns.get(&conn) {
                    let encoder = c.encoder;
                    c.outbox.close_with(|buf| {
                        let _ = encoder.encode(&frame, buf);
                    });
                    self.drop_conn(conn);
                }
            }
            RouterCommand::Disconnect { conn, receipt } => {
                self.receipt(conn, receipt.as_deref());
                if let Some(c) = self.conns.get(&conn) {
                    c.outbox.close();
                }
                self.drop_conn(conn);
            }
            RouterCommand::Closed { conn } => self.drop_conn(conn),
            RouterCommand::Drained { conn } => {
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
        }
        self.close_slow_consumers();
    }

    /// Adds the counts gathered since the last call to the shared metrics.
    pub fn flush_metrics(&mut self) {
        Metrics::add(
            &self.metrics.messages_out,
            std::mem::take(&mut self.delivered),
        );
        Metrics::add(&self.metrics.dropped, std::mem::take(&mut self.dropped));
    }

    /// Every queue's depth.
    pub fn queue_stats(&self) -> Vec<QueueStat> {
        self.dests
            .iter()
            .flatten()
            .filter(|d| d.kind == Kind::Queue)
            .map(|d| QueueStat {
                name: d.name.to_string(),
                depth: d.held.len(),
                bytes: d.held_bytes,
                subscribers: d.subs.len(),
            })
            .collect()
    }

    /// Destinations alive now.
    pub fn destination_count(&self) -> usize {
        self.names.len()
    }

    /// Connections known to the router.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    fn receipt(&self, conn: ConnId, receipt: Option<&str>) {
        let (Some(receipt), Some(c)) = (receipt, self.conns.get(&conn)) else {
            return;
        };
        let encoder = c.encoder;
        c.outbox.append(|buf| {
            let _ = encoder.encode(&Frame::receipt_for(receipt), buf);
        });
    }

    fn refuse(&mut self, conn: ConnId, refusal: Refusal, receipt: Option<&str>) {
        if let Some(c) = self.conns.get(&conn) {
            let mut frame = Frame::error(refusal.message());
            if let Some(r) = receipt {
                frame = frame.header(names::RECEIPT_ID, r);
            }
            let frame = frame.with_body(refusal.message().to_owned() + "\n");
            let encoder = c.encoder;
            tracing::warn!(conn, message = refusal.message(), "sending ERROR");
            Metrics::add(&self.metrics.errors, 1);
            c.outbox.close_with(|buf| {
                let _ = encoder.encode(&frame, buf);
            });
        }
        self.drop_conn(conn);
    }

    fn destination(&mut self, name: &str) -> Result<DestKey, Refusal> {
        if let Some(&k) = self.names.get(name) {
            return Ok(k);
        }
        let kind = match destination_kind(name) {
            Some(k) => k,
            None => return Err(Refusal::BadDestination),
        };
        if self.names.len() >= self.config.max_destinations {
            return Err(Refusal::TooManyDestinations);
        }
        let name: Arc<str> = Arc::from(name);
        let lines = Version::ALL.map(|v| header_line(names::DESTINATION, &name, v));
        let dest = Destination {
            name: name.clone(),
            kind,
            lines,
            subs: Vec::new(),
            held: VecDeque::new(),
            held_bytes: 0,
            next: 0,
        };
        let key = match self.free_dests.pop() {
            Some(k) => {
                self.dests[k] = Some(dest);
                k
            }
            None => {
                self.dests.push(Some(dest));
                self.dests.len() - 1
            }
        };
        self.names.insert(name, key);
        Ok(key)
    }

    /// Removes a destination that has no subscribers and holds nothing.
    fn collect(&mut self, key: DestKey) {
        let unused = matches!(&self.dests[key], Some(d) if d.subs.is_empty() && d.held.is_empty());
        if unused && let Some(d) = self.dests[key].take() {
            self.names.remove(&d.name);
            self.free_dests.push(key);
        }
    }

    /// Routes a SEND from `conn`, pausing `conn` where a receiver is congested
    /// (see the outbox's flow control).
    fn publish(&mut self, conn: ConnId, frame: Frame) -> Result<(), Refusal> {
        let Some(name) = frame.destination() else {
            return Err(Refusal::BadDestination);
        };
        let publisher = self.conns.get(&conn).map(|c| c.outbox.clone());
        let key = self.destination(name)?;
        let num = self.next_message;
        self.next_message += 1;
        Metrics::add(&self.metrics.messages_in, 1);
        let message = Message::from_send(num, frame);
        let kind = self.dests[key].as_ref().map(|d| d.kind);
        match kind {
            Some(Kind::Topic) => {
                self.fan_out(key, message, publisher.as_ref());
                self.collect(key);
                Ok(())
            }
            Some(Kind::Queue) => self.enqueue(key, message, publisher.as_ref()),
            None => Ok(()),
        }
    }

    /// Topic delivery: one encode per subscriber, straight into its outbox.
    fn fan_out(&mut self, key: DestKey, mut message: Message, publisher: Option<&Arc<Outbox>>) {
        let Some(dest) = self.dests[key].as_ref() else {
            return;
        };
        let slow = self.config.slow_consumer;
        for &sk in &dest.subs {
            let Some(sub) = self.subs[sk].as_mut() else {
                continue;
            };
            if !sub.has_credit() {
                self.dropped += 1;
                continue;
            }
            if sub.outbox.is_full() {
                match slow {
                    SlowConsumer::Drop => self.dropped += 1,
                    SlowConsumer::Disconnect => {
                        self.dropped += 1;
                        self.to_close.push(sub.conn);
                    }
                }
                continue;
            }
            let delivery = Delivery {
                destination_line: &dest.lines[sub.version as usize],
                subscription_line: &sub.line,
                version: sub.version,
                ack: ack_header(sub, sk),
            };
            let mut result = (0, false);
            if sub
                .outbox
                .append(|buf| result = encode_delivery(buf, &mut message, &delivery))
            {
                self.delivered += 1;
                count_dropped_headers(&self.metrics, &message, result);
                if sub.ack != AckMode::Auto {
                    sub.unacked.push_back(Unacked {
                        num: message.num,
                        tag: sub.next_tag,
                        message: None,
                    });
                    sub.next_tag += 1;
                }
                park_if_congested(&sub.outbox, publisher);
            }
        }
    }

    fn enqueue(
        &mut self,
        key: DestKey,
        message: Message,
        publisher: Option<&Arc<Outbox>>,
    ) -> Result<(), Refusal> {
        let (max_messages, max_bytes) =
            (self.config.queue_max_messages, self.config.queue_max_bytes);
        let Some(dest) = self.dests[key].as_mut() else {
            return Ok(());
        };
        let num = message.num;
        dest.held_bytes += message.len();
        dest.held.push_back(message);
        self.pump_from(key, publisher);
        let Some(dest) = self.dests[key].as_mut() else {
            return Ok(());
        };
        let over = |d: &Destination| d.held.len() > max_messages || d.held_bytes > max_bytes;
        let result = if !over(dest) {
            Ok(())
        } else {
            match self.config.queue_overflow {
                QueueOverflow::Refuse => {
                    // Nobody could take it: the new message is the last one held.
                    if let Some(m) = dest.held.pop_back() {
                        dest.held_bytes -= m.len();
                    }
                    Err(Refusal::QueueFull)
                }
                QueueOverflow::DropOldest => {
                    while over(dest) {
                        let Some(m) = dest.held.pop_front() else {
                            break;
                        };
                        dest.held_bytes -= m.len();
                        self.dropped += 1;
                    }
                    Ok(())
                }
            }
        };
        // Held (nobody could take it): keep only its own bytes.
        if let Some(m) = dest.held.back_mut()
            && m.num == num
        {
            m.compact();
        }
        // Refusing or dropping its only message may leave the queue unused.
        self.collect(key);
        result
    }

    /// Queue dispatch: hand held messages round-robin to subscribers with credit.
    fn pump(&mut self, key: DestKey) {
        self.pump_from(key, None);
    }

    /// [`pump`](Router::pump) on behalf of a publisher, who is paused if a
    /// receiving outbox is congested.
    fn pump_from(&mut self, key: DestKey, publisher: Option<&Arc<Outbox>>) {
        let Some(dest) = self.dests[key].as_mut() else {
            return;
        };
        if dest.kind != Kind::Queue {
            return;
        }
        while !dest.held.is_empty() && !dest.subs.is_empty() {
            let n = dest.subs.len();
            let mut chosen = None;
            for i in 0..n {
                let idx = (dest.next + i) % n;
                let sk = dest.subs[idx];
                if let Some(sub) = self.subs[sk].as_ref()
                    && sub.has_credit()
                    && !sub.outbox.is_closing()
                {
                    if sub.outbox.is_full() {
                        sub.outbox.mark_blocked();
                        continue;
                    }
                    chosen = Some((idx, sk));
                    break;
                }
            }
            let Some((idx, sk)) = chosen else {
                break;
            };
            dest.next = idx + 1;
            let Some(mut message) = dest.held.pop_front() else {
                break;
            };
            dest.held_bytes -= message.len();
            let Some(sub) = self.subs[sk].as_mut() else {
                break;
            };
            let delivery = Delivery {
                destination_line: &dest.lines[sub.version as usize],
                subscription_line: &sub.line,
                version: sub.version,
                ack: ack_header(sub, sk),
            };
            let mut result = (0, false);
            if !sub
                .outbox
                .append(|buf| result = encode_delivery(buf, &mut message, &delivery))
            {
                dest.held_bytes += message.len();
                dest.held.push_front(message);
                continue;
            }
            self.delivered += 1;
            count_dropped_headers(&self.metrics, &message, result);
            park_if_congested(&sub.outbox, publisher);
            if sub.ack != AckMode::Auto {
                message.compact();
                sub.unacked.push_back(Unacked {
                    num: message.num,
                    tag: sub.next_tag,
                    message: Some(message),
                });
                sub.next_tag += 1;
            }
        }
    }

    fn subscribe(
        &mut self,
        conn: ConnId,
        id: String,
        destination: &str,
        ack: AckMode,
        prefetch: u32,
    ) -> Result<(), Refusal> {
        let dest = self.destination(destination)?;
        let Some(c) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        let sub = Subscription {
            conn,
            outbox: c.outbox.clone(),
            version: c.version,
            dest,
            ack,
            prefetch: if prefetch == 0 {
                self.config.default_prefetch
            } else {
                prefetch
            },
            line: header_line(names::SUBSCRIPTION, &id, c.version),
            unacked: VecDeque::new(),
            next_tag: 0,
        };
        let key = match self.free_subs.pop() {
            Some(k) => {
                self.subs[k] = Some(sub);
                k
            }
            None => {
                self.subs.push(Some(sub));
                self.subs.len() - 1
            }
        };
        if let Some(old) = c.subs.insert(id, key) {
            // The session rejects duplicates; be safe anyway.
            self.remove_subscription(old);
        }
        if let Some(d) = self.dests[dest].as_mut() {
            d.subs.push(key);
        }
        Metrics::add(&self.metrics.subscriptions, 1);
        self.pump(dest);
        Ok(())
    }

    fn remove_subscription(&mut self, key: SubKey) {
        let Some(sub) = self.subs[key].take() else {
            return;
        };
        self.free_subs.push(key);
        self.metrics
            .subscriptions
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(d) = self.dests[sub.dest].as_mut() {
            if let Some(pos) = d.subs.iter().position(|&k| k == key) {
                d.subs.remove(pos);
                if d.next > pos {
                    d.next -= 1;
                }
            }
            // Unacked queue messages go back, at the head, in their order.
            let mut requeued = 0;
            for u in sub.unacked.into_iter().rev() {
                if let Some(mut m) = u.message {
                    m.redelivered = true;
                    d.held_bytes += m.len();
                    d.held.push_front(m);
                    requeued += 1;
                }
            }
            Metrics::add(&self.metrics.redelivered, requeued);
        }
        self.pump(sub.dest);
        self.collect(sub.dest);
    }

    fn drop_conn(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            let mut keys: Vec<SubKey> = c.subs.into_values().collect();
            keys.sort_unstable();
            for k in keys {
                self.remove_subscription(k);
            }
        }
    }

    fn close_slow_consumers(&mut self) {
        while let Some(conn) = self.to_close.pop() {
            if let Some(c) = self.conns.get(&conn) {
                let encoder = c.encoder;
                tracing::warn!(conn, "slow consumer: closing with ERROR");
                Metrics::add(&self.metrics.errors, 1);
                c.outbox.close_with(|buf| {
                    let frame = Frame::error("slow consumer")
                        .with_body("the connection did not read its messages fast enough\n");
                    let _ = encoder.encode(&frame, buf);
                });
                self.drop_conn(conn);
            }
        }
    }

    /// Finds the subscription and position of the message an ACK/NACK names.
    fn find_ack(&self, conn: ConnId, ack: &AckRef) -> Option<(SubKey, usize)> {
        self.find_unconsumed_ack(conn, ack, &HashSet::new())
    }

    /// [`find_ack`](Router::find_ack) as if the `consumed` (subscription,
    /// delivery tag) pairs were already acknowledged. A 1.2 `ack` id names the
    /// delivery (its tag); a 1.0/1.1 message-id names the message.
    fn find_unconsumed_ack(
        &self,
        conn: ConnId,
        ack: &AckRef,
        consumed: &HashSet<(SubKey, u64)>,
    ) -> Option<(SubKey, usize)> {
        let c = self.conns.get(&conn)?;
        let find = |sk: SubKey, names: &dyn Fn(&Unacked) -> bool| -> Option<(SubKey, usize)> {
            let sub = self.subs.get(sk)?.as_ref()?;
            if sub.conn != conn {
                return None;
            }
            let pos = sub.unacked.iter().position(names)?;
            (!consumed.contains(&(sk, sub.unacked[pos].tag))).then_some((sk, pos))
        };
        if let Some((tag, sk)) = parse_ack_id(&ack.id) {
            return find(sk, &|u| u.tag == tag);
        }
        let num: u64 = ack.id.parse().ok()?;
        let names = |u: &Unacked| u.num == num;
        match &ack.subscription {
            Some(id) => find(*c.subs.get(id)?, &names),
            None => c.subs.values().find_map(|&sk| find(sk, &names)),
        }
    }

    fn ack(&mut self, conn: ConnId, ack: &AckRef, nack: bool) -> Result<(), Refusal> {
        let (sk, pos) = self.find_ack(conn, ack).ok_or(Refusal::UnknownAck)?;
        let Some(sub) = self.subs[sk].as_mut() else {
            return Err(Refusal::UnknownAck);
        };
        let dest = sub.dest;
        let done: Vec<Unacked> = match sub.ack {
            AckMode::Client => sub.unacked.drain(..=pos).collect(),
            _ => sub.unacked.remove(pos).into_iter().collect(),
        };
        if nack && let Some(d) = self.dests[dest].as_mut() {
            let mut requeued = 0;
            for u in done.into_iter().rev() {
                if let Some(mut m) = u.message {
                    m.redelivered = true;
                    d.held_bytes += m.len();
                    d.held.push_front(m);
                    requeued += 1;
                }
            }
            Metrics::add(&self.metrics.redelivered, requeued);
        }
        self.pump(dest);
        Ok(())
    }

    fn commit(&mut self, conn: ConnId, ops: Vec<TxOp>) -> Result<(), Refusal> {
        // Validate first so a refused transaction has no partial effect.
        self.check_commit(conn, &ops)?;
        for op in ops {
            match op {
                TxOp::Send(frame) => self.publish(conn, frame)?,
                TxOp::Ack(a) => self.ack(conn, &a, false)?,
                TxOp::Nack(a) => self.ack(conn, &a, true)?,
            }
        }
        Ok(())
    }

    /// Whether every operation of a transaction succeeds when they are applied in
    /// order: each ACK/NACK names a message still unacked after the ones before
    /// it (a `client` one covers the earlier messages too), no SEND needs a
    /// destination beyond `max_destinations`, and no SEND can overflow a queue
    /// that refuses, counted as if no subscriber took anything. So a COMMIT is
    /// applied whole or refused whole.
    fn check_commit(&self, conn: ConnId, ops: &[TxOp]) -> Result<(), Refusal> {
        let mut consumed: HashSet<(SubKey, u64)> = HashSet::new();
        let mut destinations = self.names.len();
        let mut created: HashSet<&str> = HashSet::new();
        // Messages and bytes the transaction adds to each queue (SENDs, NACKs).
        let mut added: HashMap<DestKey, (usize, usize)> = HashMap::new();
        let mut new_queue: HashMap<&str, (usize, usize)> = HashMap::new();
        for op in ops {
            match op {
                TxOp::Ack(a) | TxOp::Nack(a) => {
                    let (sk, pos) = self
                        .find_unconsumed_ack(conn, a, &consumed)
                        .ok_or(Refusal::UnknownAck)?;
                    let Some(sub) = self.subs[sk].as_ref() else {
                        return Err(Refusal::UnknownAck);
                    };
                    let first = if sub.ack == AckMode::Client { 0 } else { pos };
                    for u in sub.unacked.range(first..=pos) {
                        if consumed.insert((sk, u.tag))
                            && matches!(op, TxOp::Nack(_))
                            && let Some(m) = &u.message
                        {
                            let e = added.entry(sub.dest).or_default();
                            *e = (e.0 + 1, e.1 + m.len());
                        }
                    }
                }
                TxOp::Send(f) => {
                    let name = f.destination().unwrap_or("");
                    let (messages, bytes) = match self.names.get(name) {
                        Some(&key) => {
                            let Some(d) = self.dests[key].as_ref() else {
                                continue;
                            };
                            if d.kind == Kind::Topic {
                                continue;
                            }
                            let e = added.entry(key).or_default();
                            (d.held.len() + e.0, d.held_bytes + e.1)
                        }
                        None => {
                            let kind = destination_kind(name).ok_or(Refusal::BadDestination)?;
                            // The first SEND to a new queue creates it, holding the
                            // message; a new topic (no subscribers) goes again at once.
                            let creates = kind == Kind::Topic || created.insert(name);
                            if creates && destinations >= self.config.max_destinations {
                                return Err(Refusal::TooManyDestinations);
                            }
                            if kind == Kind::Topic {
                                continue;
                            }
                            if creates {
                                destinations += 1;
                            }
                            new_queue.get(name).copied().unwrap_or_default()
                        }
                    };
                    let size = frame_size(f);
                    let (messages, bytes) = (messages + 1, bytes + size);
                    if self.config.queue_overflow == QueueOverflow::Refuse
                        && (messages > self.config.queue_max_messages
                            || bytes > self.config.queue_max_bytes)
                    {
                        return Err(Refusal::QueueFull);
                    }
                    match self.names.get(name) {
                        Some(&key) => {
                            let e = added.entry(key).or_default();
                            *e = (e.0 + 1, e.1 + size);
                        }
                        None => {
                            new_queue.insert(name, (messages, bytes));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Pauses `publisher` (when there is one) if `outbox` is congested.
#[inline]
fn park_if_congested(outbox: &Outbox, publisher: Option<&Arc<Outbox>>) {
    if let Some(publisher) = publisher
        && outbox.is_congested()
    {
        outbox.park(publisher);
    }
}

/// The 1.2 `ack` header's delivery tag and subscription key, when one is due.
#[inline]
fn ack_header(sub: &Subscription, key: SubKey) -> Option<(u64, usize)> {
    (sub.version == Version::V1_2 && sub.ack != AckMode::Auto).then_some((sub.next_tag, key))
}

#[inline]
fn count_dropped_headers(metrics: &Metrics, message: &Message, (dropped, new): (u32, bool)) {
    if dropped > 0 {
        Metrics::add(&metrics.dropped_headers, u64::from(dropped));
        if new {
            tracing::warn!(
                message_id = message.num,
                dropped,
                "dropped headers a receiver's STOMP version cannot carry"
            );
        }
    }
}

/// `/topic/<name>` or `/queue/<name>` with a non-empty name; anything else is `None`.
fn destination_kind(name: &str) -> Option<Kind> {
    if name.strip_prefix("/topic/").is_some_and(|n| !n.is_empty()) {
        Some(Kind::Topic)
    } else if name.strip_prefix("/queue/").is_some_and(|n| !n.is_empty()) {
        Some(Kind::Queue)
    } else {
        None
    }
}

/// Whether `name` is a destination the broker serves.
pub fn is_valid_destination(name: &str) -> bool {
    destination_kind(name).is_some()
}

#[cfg(test)]
mod tests;
