//! Fuzz target `session`: arbitrary sequences of client actions driven through the
//! broker's sans-IO [`Session`]s and one [`Router`] (no sockets, synthetic time),
//! checked against a model of what the clients were told.
//!
//! Four modelled clients (logins allowed everything, or limited rights) send
//! structured frames (CONNECT, SEND, SUBSCRIBE, UNSUBSCRIBE, ACK/NACK of messages
//! they received or of bogus ones, BEGIN, COMMIT, ABORT, DISCONNECT,
//! heart-beats), encoded and parsed as on the wire, may
//! stop reading (their outbox fills: slow consumers, queue back-off), read again,
//! or lose their connection; a fifth, raw client sends arbitrary bytes. Time
//! advances in ticks (login, frame and heart-beat timers). Limits are small and
//! come from the input. To reach deep states, a modelled client CONNECTs on
//! demand and its choices are mostly valid (an open transaction, a free
//! subscription id, a message it holds); the byte value 255 picks the invalid
//! variant (unknown transaction, duplicate id, bogus ack, `/elsewhere`, ...).
//!
//! Checked after every step:
//! - nothing panics;
//! - every MESSAGE a client receives names one of its subscriptions with that
//!   subscription's destination, and carries a SEND that was published to that
//!   destination (same body): never one whose SEND was refused, aborted, or is
//!   still in an uncommitted transaction;
//! - a topic subscription never gets the same message twice;
//! - a queue message is never delivered again once acknowledged (ACK, or an
//!   `auto` subscription), nor while it is unacknowledged at another
//!   subscription that is still open;
//! - the broker accepts an ACK/NACK exactly when it names a message the model
//!   holds unacknowledged (cumulative for `client`, single for
//!   `client-individual`), and commits a transaction only when all of its
//!   ACK/NACKs apply in order (a refused COMMIT publishes nothing);
//! - a SEND or SUBSCRIBE the login may not do is never accepted, nor a SEND
//!   it may not do published by a COMMIT;
//! - a frame with a `receipt` gets its RECEIPT when accepted, and an ERROR with
//!   that `receipt-id` when refused;
//! - the router's connection count and subscription gauge match the model, and
//!   once every client is gone no connection, subscription or unused
//!   destination is left.
//!
//! Input: [`Input`] through `arbitrary` (limits, then steps).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use stompkit_broker::internals::{
    ConnId, Outbox, Router, RouterCommand, Session, Take, is_valid_destination,
};
use stompkit_broker::{BrokerConfig, Metrics, Permissions, Principal, Verdict};
use stompkit_frame::{AckMode, Command, Frame, Version};
use stompkit_wire::{Encoder, Event, Parser};

/// Modelled client slots; slot `RAW` is the raw-bytes client.
const CLIENTS: usize = 4;
const RAW: usize = CLIENTS;
const DESTINATIONS: [&str; 6] = [
    "/topic/a",
    "/topic/b",
    "/queue/a",
    "/queue/b",
    "/queue/c",
    "/elsewhere",
];

/// What a restricted login may do: send to topics and `/queue/a`, subscribe to
/// `/topic/a` and queues.
fn restricted_permissions() -> Permissions {
    Permissions::new(&["/topic/*", "/queue/a"], &["/topic/a", "/queue/*"])
}

/// A destination: one of the valid five, the invalid one for 255.
fn pick_destination(d: u8) -> &'static str {
    if d == 255 {
        DESTINATIONS[5]
    } else {
        DESTINATIONS[usize::from(d) % 5]
    }
}
/// The header that tags each modelled SEND with its sequence number.
const SEQ: &str = "x-fuzz-seq";
const MAX_STEPS: usize = 200;
const MAX_BODY: usize = 300;

#[derive(Arbitrary, Debug)]
struct Input {
    limits: Limits,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
struct Limits {
    max_subscriptions: u8,
    max_transactions: u8,
    max_transaction_frames: u8,
    max_transaction_bytes: u16,
    outbox_bound: u16,
    max_destinations: u8,
    queue_max_messages: u8,
    queue_max_bytes: u16,
    drop_oldest: bool,
    slow_consumers_drop: bool,
    default_prefetch: u8,
    max_prefetch: u8,
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// A new connection in the slot (the old one is lost) sends CONNECT.
    Connect {
        client: u8,
        version: u8,
        heart_beat: Option<(u8, u8)>,
        /// A login with limited send/subscribe rights.
        restricted: bool,
    },
    Send {
        client: u8,
        destination: u8,
        transaction: Option<u8>,
        receipt: bool,
        body: Vec<u8>,
    },
    Subscribe {
        client: u8,
        id: u8,
        destination: u8,
        ack: u8,
        prefetch: Option<u8>,
        receipt: bool,
    },
    Unsubscribe {
        client: u8,
        id: u8,
        receipt: bool,
    },
    /// ACK/NACK the `pick`th unacknowledged message the client holds (one past
    /// the last: a message the broker never sent).
    Ack {
        client: u8,
        pick: u8,
        nack: bool,
        transaction: Option<u8>,
        receipt: bool,
    },
    Begin {
        client: u8,
        transaction: u8,
        receipt: bool,
    },
    Commit {
        client: u8,
        transaction: u8,
        receipt: bool,
    },
    Abort {
        client: u8,
        transaction: u8,
        receipt: bool,
    },
    Disconnect {
        client: u8,
        receipt: bool,
    },
    /// The client sends a heart-beat EOL.
    Beat {
        client: u8,
    },
    /// The client stops reading for good (until it reconnects).
    Hold {
        client: u8,
    },
    /// A client that stopped reading reads everything queued once.
    Read {
        client: u8,
    },
    /// The connection is lost (EOF, reset).
    Lose {
        client: u8,
    },
    /// Time passes.
    Tick {
        ms: u16,
    },
    /// The raw client (connected on first use) sends bytes.
    Raw {
        bytes: Vec<u8>,
    },
}

fn config(l: &Limits) -> BrokerConfig {
    let mut c = BrokerConfig::default();
    c.limits.max_subscriptions = 1 + usize::from(l.max_subscriptions % 8);
    c.limits.max_transactions = 1 + usize::from(l.max_transactions % 4);
    c.limits.max_transaction_frames = 1 + usize::from(l.max_transaction_frames % 8);
    c.limits.max_transaction_bytes = 64 + usize::from(l.max_transaction_bytes % 8192);
    c.limits.max_outbox_bytes = 64 + usize::from(l.outbox_bound % 8192);
    c.limits.max_header_line = 512;
    c.limits.max_headers = 16;
    c.limits.max_header_bytes = 2048;
    c.limits.max_body = 1024;
    c.limits.login_timeout_ms = 1000;
    c.limits.frame_timeout_ms = 1000;
    c.heartbeat.min_ms = 100;
    c.heartbeat.max_ms = 5000;
    c.destinations.max_destinations = 2 + usize::from(l.max_destinations % 8);
    c.destinations.queue_max_messages = 1 + usize::from(l.queue_max_messages % 16);
    c.destinations.queue_max_bytes = 64 + usize::from(l.queue_max_bytes % 16384);
    if l.drop_oldest {
        c.destinations.queue_overflow = stompkit_broker::QueueOverflow::DropOldest;
    }
    if l.slow_consumers_drop {
        c.destinations.slow_consumer = stompkit_broker::SlowConsumer::Drop;
    }
    c.destinations.default_prefetch = 1 + u32::from(l.default_prefetch % 8);
    c.destinations.max_prefetch = 1 + u32::from(l.max_prefetch % 16);
    c
}

// ------------------------------------------------------------------ the model

/// What became of a modelled SEND.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Buffered in a transaction that is still open.
    InTransaction,
    Published,
    /// Refused, aborted, or its transaction never committed: never delivered.
    Dropped,
    /// Could not be told (a client that does not read was closed by it).
    Unknown,
}

/// Where a queue message is, as far as the model can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Held {
    Pending,
    /// Unacknowledged at a subscription of this connection.
    Outstanding(ConnId),
    /// Acknowledged: never to be delivered again.
    Acked,
    /// Seen by the raw client or a client that does not read: not checked.
    Unknown,
}

#[derive(Debug)]
struct Sent {
    destination: &'static str,
    body: Vec<u8>,
    fate: Fate,
    held: Held,
}

/// A received, unacknowledged message.
#[derive(Clone, Debug)]
struct Unacked {
    /// The 1.2 `ack` header.
    ack: Option<String>,
    message_id: String,
    seq: Option<usize>,
}

#[derive(Debug)]
struct Sub {
    destination: String,
    mode: AckMode,
    unacked: Vec<Unacked>,
    /// Topic messages (seq) this subscription got.
    seen: HashSet<usize>,
}

/// How an ACK/NACK names its message (as the frame spells it).
#[derive(Clone, Debug)]
struct AckName {
    id: Option<String>,
    message_id: Option<String>,
    subscription: Option<String>,
}

#[derive(Clone, Debug)]
enum TxOp {
    Send(usize),
    Ack(AckName, bool),
}

/// One connection: the broker's side (session, parser, outbox) and the model of
/// the client's side.
struct Conn {
    id: ConnId,
    session: Session,
    /// The broker's parser for what the client sends.
    parser: Parser,
    outbox: Arc<Outbox>,
    /// The client's parser for what the broker sends.
    reader: Parser,
    version: Option<Version>,
    connected: bool,
    reading: bool,
    raw: bool,
    subs: BTreeMap<String, Sub>,
    transactions: HashMap<String, Vec<TxOp>>,
    /// (subscription id, destination) pairs live since the client last read.
    pairs: HashSet<(String, String)>,
    /// What the client's login may do.
    permissions: Arc<Permissions>,
}

/// What the acting client's frame asked for, applied once the broker's answer is known.
#[derive(Debug)]
enum Intent {
    Nothing,
    Send {
        seq: usize,
        transaction: Option<String>,
    },
    Subscribe {
        id: String,
        destination: String,
        mode: AckMode,
    },
    Unsubscribe {
        id: String,
    },
    Ack {
        name: AckName,
        nack: bool,
        transaction: Option<String>,
    },
    Begin(String),
    Commit(String),
    Abort(String),
}

/// The broker's answer to the acting client's frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Accepted,
    Refused,
    /// The client does not read and its connection closed: cannot tell.
    Unknown,
}

struct World {
    config: Arc<BrokerConfig>,
    metrics: Arc<Metrics>,
    router: Router,
    slots: Vec<Option<Conn>>,
    sent: Vec<Sent>,
    now: Instant,
    next_conn: ConnId,
    raw_used: bool,
    receipts: usize,
    stats: Stats,
}

/// What an input exercised (printed with `SESSION_FUZZ_DEBUG`).
#[derive(Debug, Default)]
struct Stats {
    messages_checked: usize,
    queue_deliveries_checked: usize,
    acks_accepted: usize,
    acks_refused: usize,
    commits_accepted: usize,
    commits_refused: usize,
    connections_closed: usize,
    errors: BTreeMap<String, usize>,
}

fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 1))
}

impl World {
    fn new(config: BrokerConfig) -> World {
        let metrics = Arc::new(Metrics::default());
        World {
            router: Router::new(config.destinations.clone(), metrics.clone()),
            config: Arc::new(config),
            metrics,
            slots: (0..=CLIENTS).map(|_| None).collect(),
            sent: Vec::new(),
            now: Instant::now(),
            next_conn: 1,
            raw_used: false,
            receipts: 0,
            stats: Stats::default(),
        }
    }

    fn open(&mut self, slot: usize, version: Option<Version>, restricted: bool) {
        self.lose(slot);
        let outbox = Arc::new(Outbox::new(self.config.limits.max_outbox_bytes));
        let id = self.next_conn;
        self.next_conn += 1;
        self.slots[slot] = Some(Conn {
            id,
            session: Session::new(
                self.config.clone(),
                id,
                peer(),
                outbox.clone(),
                self.metrics.clone(),
                self.now,
            ),
            parser: Parser::with_config(self.config.parser_config()),
            outbox,
            reader: Parser::new(),
            version,
            connected: false,
            reading: true,
            raw: slot == RAW,
            subs: BTreeMap::new(),
            transactions: HashMap::new(),
            pairs: HashSet::new(),
            permissions: Arc::new(if restricted {
                restricted_permissions()
            } else {
                Permissions::all()
            }),
        });
    }

    fn route(&mut self, out: Vec<RouterCommand>) {
        for command in out {
            self.router.handle(command);
        }
    }

    /// Feeds bytes from the client in `slot`, as the connection task does.
    fn feed(&mut self, slot: usize, bytes: &[u8]) {
        let now = self.now;
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        if c.session.is_closed() || c.outbox.is_closing() {
            return;
        }
        let mut out = Vec::new();
        c.session.on_bytes(now, true);
        c.parser.push(bytes);
        loop {
            if c.session.awaiting_verdict() {
                // The authenticator's verdict, at once (it runs off-thread in the server).
                if c.session.take_auth_request().is_none() {
                    break;
                }
                let principal = Principal {
                    login: None,
                    permissions: c.permissions.clone(),
                };
                let verdict = Verdict::Accepted(principal);
                if let Some(v) = c.session.handle_verdict(verdict, now, &mut out) {
                    c.parser.set_version(v);
                }
            }
            let event = match c.parser.next_event() {
                Ok(None) => break,
                Ok(Some(e)) => Ok(e),
                Err(e) => Err(e),
            };
            let failed = event.is_err();
            c.session.handle_event(event, &mut out);
            if failed || c.session.is_closed() {
                break;
            }
        }
        c.session.set_in_frame(now, c.parser.in_frame());
        self.route(out);
    }

    /// Encodes and feeds a frame; `false` when it cannot be encoded.
    fn send_frame(&mut self, slot: usize, frame: &Frame) -> bool {
        let Some(c) = self.slots[slot].as_ref() else {
            return false;
        };
        let mut bytes = Vec::new();
        if Encoder::new(c.version).encode(frame, &mut bytes).is_err() {
            return false;
        }
        self.feed(slot, &bytes);
        true
    }

    /// The connection in `slot` is gone: the session and the router forget it.
    fn lose(&mut self, slot: usize) {
        let Some(mut c) = self.slots[slot].take() else {
            return;
        };
        let mut out = Vec::new();
        c.session.on_closed(&mut out);
        self.route(out);
        self.close_model(&mut c);
        // Deliveries the close caused (requeued messages) are checked now.
        self.settle(None);
    }

    /// The model side of a closed connection: its unacked queue messages are
    /// pending again, its open transactions are dropped.
    fn close_model(&mut self, c: &mut Conn) {
        self.stats.connections_closed += 1;
        for sent in &mut self.sent {
            if sent.held == Held::Outstanding(c.id) {
                sent.held = Held::Pending;
            }
        }
        for ops in c.transactions.values() {
            for op in ops {
                if let TxOp::Send(seq) = op {
                    self.sent[*seq].fate = Fate::Dropped;
                }
            }
        }
        c.subs.clear();
        c.transactions.clear();
    }

    /// Drains the outbox of a client that reads, as its writer task would.
    fn drain(&mut self, slot: usize) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            let Some(c) = self.slots[slot].as_mut() else {
                return frames;
            };
            let mut bytes = bytes::BytesMut::new();
            if c.outbox.take(&mut bytes) != Take::Data {
                return frames;
            }
            c.outbox.written();
            let drained = !c.outbox.is_full() && c.outbox.take_blocked();
            c.reader.push(&bytes);
            loop {
                match c.reader.next_event() {
                    Ok(Some(Event::Frame(f))) => {
                        if f.command == Command::Connected
                            && let Some(v) =
                                f.version().and_then(|v| Version::from_bytes(v.as_bytes()))
                        {
                            c.reader.set_version(v);
                            c.version = Some(v);
                            c.connected = true;
                        }
                        frames.push(f);
                    }
                    Ok(Some(Event::HeartBeat)) => {}
                    Ok(None) => break,
                    Err(e) => panic!("the broker wrote an unparsable frame: {e}"),
                }
            }
            if drained {
                let conn = c.id;
                self.router.handle(RouterCommand::Drained { conn });
            }
        }
    }

    /// After a step: read what reading clients got, learn the broker's answer to
    /// the acting client's frame, apply it to the model, check every delivery,
    /// and finish connections that closed.
    fn settle(&mut self, acting: Option<(usize, Intent, Option<String>)>) {
        let closing: HashSet<ConnId> = self
            .slots
            .iter()
            .flatten()
            .filter(|c| c.outbox.is_closing())
            .map(|c| c.id)
            .collect();
        let mut received: Vec<(usize, Vec<Frame>)> = Vec::new();
        for slot in 0..=CLIENTS {
            if self.slots[slot].as_ref().is_some_and(|c| c.reading) {
                let frames = self.drain(slot);
                received.push((slot, frames));
            }
        }
        if let Some((slot, intent, receipt)) = acting {
            let answer = self.answer(slot, &received, receipt.as_deref());
            self.apply(slot, intent, answer);
        }
        // Clients closing now first: their deliveries precede their close.
        received.sort_by_key(|(slot, _)| {
            let id = self.slots[*slot].as_ref().map(|c| c.id);
            !id.is_some_and(|id| closing.contains(&id))
        });
        for (slot, frames) in &received {
            for frame in frames {
                if frame.command == Command::Message {
                    self.check_message(*slot, frame, &closing, true);
                }
            }
        }
        for slot in 0..=CLIENTS {
            if let Some(c) = self.slots[slot].as_mut()
                && c.reading
            {
                c.pairs = c
                    .subs
                    .iter()
                    .map(|(id, s)| (id.clone(), s.destination.clone()))
                    .collect();
            }
        }
        let mut finished = false;
        for slot in 0..=CLIENTS {
            let done = self.slots[slot]
                .as_ref()
                .is_some_and(|c| c.outbox.is_closing());
            if done && let Some(mut c) = self.slots[slot].take() {
                let mut out = Vec::new();
                c.session.on_closed(&mut out);
                self.route(out);
                self.close_model(&mut c);
                finished = true;
            }
        }
        if finished {
            self.settle(None);
        }
        self.check_counts();
    }

    /// How the broker answered the acting client (from what it received).
    fn answer(
        &mut self,
        slot: usize,
        received: &[(usize, Vec<Frame>)],
        receipt: Option<&str>,
    ) -> Answer {
        let Some(frames) = received.iter().find(|(s, _)| *s == slot).map(|(_, f)| f) else {
            // Not reading: an ERROR or a slow-consumer close cannot be told apart.
            let closing = self.slots[slot]
                .as_ref()
                .is_none_or(|c| c.outbox.is_closing());
            return if closing {
                Answer::Unknown
            } else {
                Answer::Accepted
            };
        };
        let error = frames.iter().find(|f| f.command == Command::Error);
        if let Some(e) = error {
            let message = e.message().unwrap_or("").to_owned();
            *self.stats.errors.entry(message).or_default() += 1;
        }
        match error {
            Some(e) if e.message() != Some("slow consumer") => {
                if let Some(r) = receipt {
                    assert_eq!(
                        e.receipt_id(),
                        Some(r),
                        "ERROR without the refused frame's receipt-id: {e:?}"
                    );
                }
                Answer::Refused
            }
            _ => {
                if let Some(r) = receipt {
                    assert!(
                        frames
                            .iter()
                            .any(|f| f.command == Command::Receipt && f.receipt_id() == Some(r)),
                        "no RECEIPT {r} for an accepted frame: {frames:?}"
                    );
                }
                Answer::Accepted
            }
        }
    }

    fn apply(&mut self, slot: usize, intent: Intent, answer: Answer) {
        let Some(mut c) = self.slots[slot].take() else {
            return;
        };
        match intent {
            Intent::Nothing => {}
            Intent::Send { seq, transaction } => {
                let destination = self.sent[seq].destination;
                assert!(
                    answer != Answer::Accepted
                        || !is_valid_destination(destination)
                        || c.permissions.may_send(destination),
                    "a forbidden SEND to {destination} was accepted"
                );
                self.sent[seq].fate = match (answer, &transaction) {
                    (Answer::Refused, _) => Fate::Dropped,
                    (_, Some(tx)) => {
                        if let Some(ops) = c.transactions.get_mut(tx) {
                            ops.push(TxOp::Send(seq));
                        }
                        Fate::InTransaction
                    }
                    (Answer::Accepted, None) => Fate::Published,
                    (Answer::Unknown, None) => Fate::Unknown,
                };
            }
            Intent::Subscribe {
                id,
                destination,
                mode,
            } => {
                assert!(
                    answer != Answer::Accepted
                        || !is_valid_destination(&destination)
                        || c.permissions.may_subscribe(&destination),
                    "a forbidden SUBSCRIBE to {destination} was accepted"
                );
                c.pairs.insert((id.clone(), destination.clone()));
                // Unknown (a client that does not read was closed): keep an
                // existing subscription of that id (a duplicate is refused).
                if answer != Answer::Refused {
                    c.subs.entry(id).or_insert(Sub {
                        destination,
                        mode,
                        unacked: Vec::new(),
                        seen: HashSet::new(),
                    });
                }
            }
            Intent::Unsubscribe { id } => {
                if answer == Answer::Accepted
                    && let Some(sub) = c.subs.remove(&id)
                {
                    self.requeue(c.id, &sub.unacked);
                }
            }
            Intent::Ack {
                name,
                nack,
                transaction,
            } => match transaction {
                Some(tx) => {
                    if answer == Answer::Accepted
                        && let Some(ops) = c.transactions.get_mut(&tx)
                    {
                        ops.push(TxOp::Ack(name, nack));
                    }
                }
                None => {
                    let nack_refused = nack && c.version == Some(Version::V1_0);
                    let valid = !nack_refused && find_unacked(&c.subs, &name).is_some();
                    if answer != Answer::Unknown {
                        assert_eq!(
                            answer == Answer::Accepted,
                            valid,
                            "the broker {} an ACK/NACK the model holds {}: {name:?}",
                            if valid { "refused" } else { "accepted" },
                            if valid { "valid" } else { "invalid" },
                        );
                    }
                    if answer == Answer::Accepted {
                        self.stats.acks_accepted += 1;
                        self.settle_ack(&mut c, &name, nack);
                    } else {
                        self.stats.acks_refused += 1;
                    }
                }
            },
            Intent::Begin(tx) => {
                if answer == Answer::Accepted {
                    c.transactions.insert(tx, Vec::new());
                }
            }
            Intent::Commit(tx) => {
                let ops = c.transactions.remove(&tx).unwrap_or_default();
                let acks_valid = acks_apply(&c, &ops);
                if answer == Answer::Accepted {
                    self.stats.commits_accepted += 1;
                    // A client that does not read may hold redeliveries the model
                    // has not seen (a NACKed message back at the same subscription
                    // has the same `ack` id): only a reading client is exact.
                    assert!(
                        acks_valid || !c.reading,
                        "the broker committed a transaction with an invalid ACK: {ops:?}"
                    );
                    for op in ops {
                        match op {
                            TxOp::Send(seq) => {
                                let destination = self.sent[seq].destination;
                                assert!(
                                    c.permissions.may_send(destination),
                                    "a COMMIT published a forbidden SEND to {destination}"
                                );
                                self.sent[seq].fate = Fate::Published;
                            }
                            TxOp::Ack(name, nack) => self.settle_ack(&mut c, &name, nack),
                        }
                    }
                } else {
                    self.stats.commits_refused += 1;
                    for op in ops {
                        if let TxOp::Send(seq) = op {
                            self.sent[seq].fate = if answer == Answer::Refused {
                                Fate::Dropped
                            } else {
                                Fate::Unknown
                            };
                        }
                    }
                }
            }
            Intent::Abort(tx) => {
                if answer == Answer::Accepted {
                    for op in c.transactions.remove(&tx).unwrap_or_default() {
                        if let TxOp::Send(seq) = op {
                            self.sent[seq].fate = Fate::Dropped;
                        }
                    }
                }
            }
        }
        self.slots[slot] = Some(c);
    }

    /// Applies an accepted ACK/NACK to the model.
    fn settle_ack(&mut self, c: &mut Conn, name: &AckName, nack: bool) {
        let done = take_acked(&mut c.subs, name);
        if nack {
            self.requeue(c.id, &done);
        } else {
            for u in done {
                if let Some(seq) = u.seq
                    && self.sent[seq].held == Held::Outstanding(c.id)
                {
                    self.sent[seq].held = Held::Acked;
                }
            }
        }
    }

    fn requeue(&mut self, conn: ConnId, unacked: &[Unacked]) {
        for u in unacked {
            if let Some(seq) = u.seq
                && self.sent[seq].held == Held::Outstanding(conn)
            {
                self.sent[seq].held = Held::Pending;
            }
        }
    }

    /// The delivery invariants for one MESSAGE. `exact`: the client reads after
    /// every step, so the model knows its subscriptions at delivery time.
    fn check_message(
        &mut self,
        slot: usize,
        frame: &Frame,
        closing: &HashSet<ConnId>,
        exact: bool,
    ) {
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        let destination = frame.destination().expect("MESSAGE without destination");
        let subscription = frame.subscription().expect("MESSAGE without subscription");
        let message_id = frame.message_id().expect("MESSAGE without message-id");
        if !c.raw {
            assert!(
                c.pairs
                    .contains(&(subscription.to_owned(), destination.to_owned())),
                "MESSAGE for subscription {subscription:?} on {destination:?}, which the client does not have: {:?}",
                c.pairs
            );
        }
        let seq = frame
            .get(SEQ)
            .and_then(|s| s.strip_prefix('s'))
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&s| s < self.sent.len());
        let queue = destination.starts_with("/queue/");
        self.stats.messages_checked += 1;
        if let Some(seq) = seq {
            let sent = &self.sent[seq];
            assert_eq!(
                sent.destination, destination,
                "message {seq} delivered to another destination"
            );
            assert_eq!(
                &sent.body[..],
                frame.body(),
                "message {seq} has another body"
            );
            assert!(
                matches!(sent.fate, Fate::Published | Fate::Unknown),
                "delivered message {seq} whose SEND is {:?}",
                sent.fate
            );
        }
        let exact = exact && !c.raw;
        if !exact {
            if let Some(seq) = seq
                && queue
            {
                self.sent[seq].held = Held::Unknown;
            }
            return;
        }
        let Some(sub) = c.subs.get_mut(subscription) else {
            assert!(
                closing.contains(&c.id),
                "MESSAGE for unknown subscription {subscription:?}"
            );
            return;
        };
        if let Some(seq) = seq {
            if queue {
                self.stats.queue_deliveries_checked += 1;
                let held = self.sent[seq].held;
                match held {
                    Held::Acked => {
                        panic!("queue message {seq} delivered again after it was acknowledged")
                    }
                    Held::Outstanding(other) if !closing.contains(&other) => {
                        panic!(
                            "queue message {seq} delivered while unacknowledged at connection {other}"
                        )
                    }
                    Held::Unknown => {}
                    _ => {
                        self.sent[seq].held = if sub.mode == AckMode::Auto {
                            Held::Acked
                        } else {
                            Held::Outstanding(c.id)
                        };
                    }
                }
            } else {
                assert!(
                    sub.seen.insert(seq),
                    "topic message {seq} delivered twice to one subscription"
                );
            }
        }
        if sub.mode != AckMode::Auto {
            sub.unacked.push(Unacked {
                ack: frame.ack().map(str::to_owned),
                message_id: message_id.to_owned(),
                seq,
            });
        }
    }

    fn check_counts(&self) {
        let connected = self
            .slots
            .iter()
            .flatten()
            .filter(|c| c.connected && !c.outbox.is_closing())
            .count();
        assert_eq!(
            self.router.connection_count(),
            connected,
            "router connections"
        );
        if !self.raw_used {
            let subs: usize = self.slots.iter().flatten().map(|c| c.subs.len()).sum();
            assert_eq!(
                self.metrics.subscriptions.load(Ordering::Relaxed) as usize,
                subs,
                "subscription gauge"
            );
        }
        assert!(self.router.destination_count() <= self.config.destinations.max_destinations);
    }

    fn receipt(&mut self, wanted: bool) -> Option<String> {
        wanted.then(|| {
            self.receipts += 1;
            format!("r{}", self.receipts)
        })
    }

    /// A modelled client that is open and connected.
    /// The slot of a modelled client that is open and connected; one that is not
    /// connects first (STOMP 1.2, no heart-beats), so that steps go deep.
    fn ready(&mut self, client: u8) -> Option<usize> {
        let slot = usize::from(client) % CLIENTS;
        let usable = |c: &Conn| c.connected && !c.outbox.is_closing();
        if !self.slots[slot].as_ref().is_some_and(usable) {
            self.connect(slot, Version::V1_2, (0, 0), false);
        }
        self.slots[slot]
            .as_ref()
            .is_some_and(usable)
            .then_some(slot)
    }

    /// A new connection in `slot` (the old one is lost) that sends CONNECT.
    fn connect(&mut self, slot: usize, version: Version, heart_beat: (u8, u8), restricted: bool) {
        self.open(slot, None, restricted);
        let frame = Frame::connect("fuzz", version.as_str()).header(
            "heart-beat",
            &format!(
                "{},{}",
                u32::from(heart_beat.0) * 20,
                u32::from(heart_beat.1) * 20
            ),
        );
        self.send_frame(slot, &frame);
        self.settle(None);
        if let Some(c) = self.slots[slot].as_mut() {
            assert!(c.connected, "no CONNECTED for {version}");
            assert_eq!(c.version, Some(version));
        }
    }

    /// A transaction id the client has open; `None` when it has none. With
    /// `t` = 255, any id (open or not).
    fn transaction(&self, slot: usize, t: u8) -> Option<String> {
        if t == 255 {
            return Some(format!("t{}", t % 3));
        }
        let c = self.slots[slot].as_ref()?;
        let mut open: Vec<&String> = c.transactions.keys().collect();
        open.sort();
        open.get(usize::from(t) % open.len().max(1))
            .map(|id| (*id).clone())
    }

    fn step(&mut self, step: Step) {
        match step {
            Step::Connect {
                client,
                version,
                heart_beat,
                restricted,
            } => {
                let slot = usize::from(client) % CLIENTS;
                let version = Version::ALL[usize::from(version) % 3];
                // Mostly no heart-beats: a silent client would soon be closed.
                let heart_beat = heart_beat.unwrap_or((0, 0));
                self.connect(slot, version, heart_beat, restricted);
            }
            Step::Send {
                client,
                destination,
                transaction,
                receipt,
                mut body,
            } => {
                let Some(slot) = self.ready(client) else {
                    return;
                };
                body.truncate(MAX_BODY);
                let seq = self.sent.len();
                let destination = pick_destination(destination);
                self.sent.push(Sent {
                    destination,
                    body: body.clone(),
                    fate: Fate::Dropped,
                    held: Held::Pending,
                });
                let mut frame = Frame::send(destination)
                    .header(SEQ, &format!("s{seq}"))
                    .with_body(body);
                let transaction = transaction.and_then(|t| self.transaction(slot, t));
                if let Some(tx) = &transaction {
                    frame = frame.with_transaction(tx);
                }
                let receipt = self.receipt(receipt);
                if let Some(r) = &receipt {
                    frame = frame.with_receipt(r);
                }
                if self.send_frame(slot, &frame) {
                    self.settle(Some((slot, Intent::Send { seq, transaction }, receipt)));
                }
            }
            Step::Subscribe {
                client,
                id,
                destination,
                ack,
                prefetch,
                receipt,
            } => {
                let Some(slot) = self.ready(client) else {
                    return;
                };
                let c = self.slots[slot].as_ref().expect("ready");
                // A free id, unless 255 (maybe a duplicate: refused).
                let id = (0..6)
                    .map(|i| format!("s{}", (usize::from(id) + i) % 6))
                    .find(|i| id == 255 || !c.subs.contains_key(i))
                    .unwrap_or_else(|| format!("s{}", id % 6));
                let destination = pick_destination(destination);
                if c.version == Some(Version::V1_0)
                    && c.subs.values().any(|s| s.destination == destination)
                {
                    // A 1.0 ACK names only the message-id: keep it unambiguous.
                    return;
                }
                let (mode, spelled) = match (ack == 255, ack % 3) {
                    (true, _) => (AckMode::Auto, "sometimes"),
                    (_, 0) => (AckMode::Auto, "auto"),
                    (_, 1) => (AckMode::Client, "client"),
                    _ => (AckMode::ClientIndividual, "client-individual"),
                };
                let mut frame = Frame::new(Command::Subscribe)
                    .header("id", &id)
                    .header("destination", destination)
                    .header("ack", spelled);
                if let Some(p) = prefetch {
                    // 0 (invalid) only for 255.
                    let p = if p == 255 { 0 } else { 1 + p % 12 };
                    frame = frame.header("prefetch-count", &p.to_string());
                }
                let receipt = self.receipt(receipt);
                if let Some(r) = &receipt {
                    frame = frame.with_receipt(r);
                }
                if self.send_frame(slot, &frame) {
                    let intent = Intent::Subscribe {
                        id,
                        destination: destination.to_owned(),
                        mode,
                    };
                    self.settle(Some((slot, intent, receipt)));
                }
            }
            Step::Unsubscribe {
                client,
                id,
                receipt,
            } => {
                let Some(slot) = self.ready(client) else {
                    return;
                };
                // One the client has, unless 255 (maybe an unknown id: refused).
                let c = self.slots[slot].as_ref().expect("ready");
                let subscribed: Vec<&String> = c.subs.keys().collect();
                let id = match subscribed.get(usize::from(id) % subscribed.len().max(1)) {
                    Some(sub) if id != 255 => (*sub).clone(),
                    _ => format!("s{}", id % 6),
                };
                let mut frame = Frame::unsubscribe(&id);
                let receipt = self.receipt(receipt);
                if let Some(r) = &receipt {
                    frame = frame.with_receipt(r);
                }
                if self.send_frame(slot, &frame) {
                    self.settle(Some((slot, Intent::Unsubscribe { id }, receipt)));
                }
            }
            Step::Ack {
                client,
                pick,
                nack,
                transaction,
                receipt,
            } => {
                let Some(slot) = self.ready(client) else {
                    return;
                };
                let c = self.slots[slot].as_ref().expect("ready");
                if !c.reading {
                    return;
                }
                let version = c.version.unwrap_or(Version::V1_2);
                let all: Vec<(&String, &Unacked)> = c
                    .subs
                    .iter()
                    .flat_map(|(id, s)| s.unacked.iter().map(move |u| (id, u)))
                    .collect();
                if all.is_empty() && pick != 255 {
                    return;
                }
                let chosen = (pick != 255).then(|| all[usize::from(pick) % all.len()]);
                let name = match chosen {
                    Some((sub, u)) => match version {
                        Version::V1_2 => AckName {
                            id: u.ack.clone(),
                            message_id: None,
                            subscription: None,
                        },
                        Version::V1_1 => AckName {
                            id: None,
                            message_id: Some(u.message_id.clone()),
                            subscription: Some((*sub).clone()),
                        },
                        _ => AckName {
                            id: None,
                            message_id: Some(u.message_id.clone()),
                            subscription: None,
                        },
                    },
                    None => AckName {
                        id: (version == Version::V1_2).then(|| "999999999999.0".to_owned()),
                        message_id: (version != Version::V1_2).then(|| "999999999999".to_owned()),
                        subscription: (version == Version::V1_1).then(|| "s0".to_owned()),
                    },
                };
                let mut frame = Frame::new(if nack { Command::Nack } else { Command::Ack });
                if let Some(id) = &name.id {
                    frame = frame.header("id", id);
                }
                if let Some(m) = &name.message_id {
                    frame = frame.header("message-id", m);
                }
                if let Some(s) = &name.subscription {
                    frame = frame.header("subscription", s);
                }
                let transaction = transaction.and_then(|t| self.transaction(slot, t));
                if let Some(tx) = &transaction {
                    frame = frame.with_transaction(tx);
                }
                let receipt = self.receipt(receipt);
                if let Some(r) = &receipt {
                    frame = frame.with_receipt(r);
                }
                if self.send_frame(slot, &frame) {
                    let intent = Intent::Ack {
                        name,
                        nack,
                        transaction,
                    };
                    self.settle(Some((slot, intent, receipt)));
                }
            }
            Step::Begin {
                client,
                transaction,
                receipt,
            }
            | Step::Commit {
                client,
                transaction,
                receipt,
            }
            | Step::Abort {
                client,
                transaction,
                receipt,
            } => {
                let Some(slot) = self.ready(client) else {
                    return;
                };
                let c = self.slots[slot].as_ref().expect("ready");
                let tx = match step {
                    // A new id, unless 255 (maybe one that is open: refused).
                    Step::Begin { .. } => (0..3)
                        .map(|i| format!("t{}", (usize::from(transaction) + i) % 3))
                        .find(|t| transaction == 255 || !c.transactions.contains_key(t))
                        .unwrap_or_else(|| format!("t{}", transaction % 3)),
                    _ => match self.transaction(slot, transaction) {
                        Some(tx) => tx,
                        None => return,
                    },
                };
                let (mut frame, intent) = match step {
                    Step::Begin { .. } => (Frame::begin(&tx), Intent::Begin(tx)),
                    Step::Commit { .. } => (Frame::commit(&tx), Intent::Commit(tx)),
                    _ => (Frame::abort(&tx), Intent::Abort(tx)),
                };
                let receipt = self.receipt(receipt);
                if let Some(r) = &receipt {
                    frame = frame.with_receipt(r);
                }
                if self.send_frame(slot, &frame) {
                    self.settle(Some((slot, intent, receipt)));
                }
            }
            Step::Disconnect { client, receipt } => {
                let Some(slot) = self.ready(client) else {
                    return;
                };
                let mut frame = Frame::disconnect();
                let receipt = self.receipt(receipt);
                if let Some(r) = &receipt {
                    frame = frame.with_receipt(r);
                }
                if self.send_frame(slot, &frame) {
                    self.settle(Some((slot, Intent::Nothing, receipt)));
                }
            }
            Step::Beat { client } => {
                let slot = usize::from(client) % CLIENTS;
                self.feed(slot, b"\n");
                self.settle(None);
            }
            Step::Hold { client } => {
                if let Some(c) = self.slots[usize::from(client) % CLIENTS].as_mut() {
                    c.reading = false;
                }
            }
            Step::Read { client } => {
                let slot = usize::from(client) % CLIENTS;
                if self.slots[slot].as_ref().is_none_or(|c| c.reading) {
                    return;
                }
                let frames = self.drain(slot);
                for frame in &frames {
                    if frame.command == Command::Message {
                        self.check_message(slot, frame, &HashSet::new(), false);
                    }
                }
                if let Some(c) = self.slots[slot].as_mut() {
                    c.pairs = c
                        .subs
                        .iter()
                        .map(|(id, s)| (id.clone(), s.destination.clone()))
                        .collect();
                }
                self.settle(None);
            }
            Step::Lose { client } => self.lose(usize::from(client) % CLIENTS),
            Step::Tick { ms } => {
                self.now += Duration::from_millis(u64::from(ms % 3000));
                let now = self.now;
                let mut out = Vec::new();
                for c in self.slots.iter_mut().flatten() {
                    c.session.handle_timeout(now, &mut out);
                }
                self.route(out);
                self.settle(None);
            }
            Step::Raw { mut bytes } => {
                if self.slots[RAW].is_none() {
                    self.open(RAW, None, false);
                }
                self.raw_used = true;
                // Keep the raw client from forging the model's tags.
                for i in 0..bytes.len().saturating_sub(5) {
                    if &bytes[i..i + 6] == b"x-fuzz" {
                        bytes[i] = b'y';
                    }
                }
                self.feed(RAW, &bytes);
                self.settle(None);
            }
        }
    }
}

/// Where an ACK/NACK lands, as the router looks it up: (subscription id, index).
fn find_unacked(subs: &BTreeMap<String, Sub>, name: &AckName) -> Option<(String, usize)> {
    let find = |pred: &dyn Fn(&Unacked) -> bool, only: Option<&str>| {
        subs.iter()
            .filter(|(id, _)| only.is_none_or(|o| o == id.as_str()))
            .find_map(|(id, s)| s.unacked.iter().position(pred).map(|p| (id.clone(), p)))
    };
    if let Some(ack) = &name.id {
        return find(&|u| u.ack.as_deref() == Some(ack.as_str()), None);
    }
    let message_id = name.message_id.as_deref()?;
    find(
        &|u| u.message_id == message_id,
        name.subscription.as_deref(),
    )
}

/// Removes what an accepted ACK/NACK covers (cumulative for `client`).
fn take_acked(subs: &mut BTreeMap<String, Sub>, name: &AckName) -> Vec<Unacked> {
    let Some((id, pos)) = find_unacked(subs, name) else {
        return Vec::new();
    };
    let Some(sub) = subs.get_mut(&id) else {
        return Vec::new();
    };
    match sub.mode {
        AckMode::Client => sub.unacked.drain(..=pos).collect(),
        _ => vec![sub.unacked.remove(pos)],
    }
}

/// Whether every ACK/NACK of a transaction names an unacked message when applied
/// in order (each one changes what the next can name).
fn acks_apply(c: &Conn, ops: &[TxOp]) -> bool {
    let mut subs: BTreeMap<String, Sub> = c
        .subs
        .iter()
        .map(|(id, s)| {
            let copy = Sub {
                destination: s.destination.clone(),
                mode: s.mode,
                unacked: s.unacked.clone(),
                seen: HashSet::new(),
            };
            (id.clone(), copy)
        })
        .collect();
    ops.iter().all(|op| match op {
        TxOp::Send(_) => true,
        TxOp::Ack(_, true) if c.version == Some(Version::V1_0) => false,
        TxOp::Ack(name, _) => !take_acked(&mut subs, name).is_empty(),
    })
}

fuzz_target!(|input: Input| {
    let debug = std::env::var_os("SESSION_FUZZ_DEBUG").is_some();
    if debug {
        // Replaying an input: show the steps.
        eprintln!("{input:#?}");
    }
    let mut world = World::new(config(&input.limits));
    for step in input.steps.into_iter().take(MAX_STEPS) {
        world.step(step);
    }
    for slot in 0..=CLIENTS {
        world.lose(slot);
    }
    if debug {
        eprintln!("{:?}", world.stats);
    }
    // Everyone is gone: no connection, no subscription, and the destinations
    // left are queues that hold messages (the others are removed when unused).
    assert_eq!(
        world.router.connection_count(),
        0,
        "connections left in the router"
    );
    assert_eq!(
        world.metrics.subscriptions.load(Ordering::Relaxed),
        0,
        "subscription gauge"
    );
    let queues = world.router.queue_stats();
    assert!(
        queues.len() == world.router.destination_count() && queues.iter().all(|q| q.depth > 0),
        "unused destinations left: {} destinations, queues {queues:?}",
        world.router.destination_count()
    );
});
