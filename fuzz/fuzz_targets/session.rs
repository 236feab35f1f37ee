//! Fuzz target `session`: arbitrary sequences of client actions driven through the
//! broker's sans-IO [`Session`]s and one [`Router`] over a simulated store (no
//! sockets, no files, synthetic time), checked against a model of what the
//! clients were told.
//!
//! Four modelled clients (logins allowed everything, or limited rights) send
//! structured frames (CONNECT, SEND (`persistent:true` or not), SUBSCRIBE,
//! UNSUBSCRIBE, ACK/NACK of messages they received or of bogus ones, BEGIN,
//! COMMIT, ABORT, DISCONNECT, heart-beats), encoded and parsed as on the wire, may
//! stop reading (their outbox fills: slow consumers, queue back-off), read again,
//! or lose their connection; a fifth, raw client sends arbitrary bytes. Time
//! advances in ticks (login, frame and heart-beat timers). Limits are small and
//! come from the input. To reach deep states, a modelled client CONNECTs on
//! demand and its choices are mostly valid (an open transaction, a free
//! subscription id, a message it holds); the byte value 255 picks the invalid
//! variant (unknown transaction, duplicate id, bogus ack, `/elsewhere`, ...).
//!
//! The store: the router is built with [`Router::with_store`] (from an empty
//! [`Recovered`]); after every router command the harness takes the units it
//! sealed and encodes each with `encode_unit`. The store reports them durable
//! (their records appended to a simulated log) at once after each step, or
//! leaves up to 3 in flight, or only on `Sync` steps (so RECEIPTs wait); a
//! `FailWrite` step reports the oldest in flight failed (`write_failed`: never in
//! the log). A `Restart` step crashes the broker: every connection is dropped
//! (sessions discarded, the model forgets connections, subscriptions, unacked
//! and transactional state), some of the units in flight reach the log whole
//! and maybe the next one torn (cut at an arbitrary byte; it and later ones are
//! lost), and the router is rebuilt from `recover_from_segments` of the log: a
//! segment per incarnation (each starts with the documented header, as the
//! store's `open` starts a new one; a torn tail is cut off after recovery, as
//! `open` does). Not exercised: durable topic subscriptions, dead letters
//! (`max_deliveries = 0` and no NACK `requeue:false`; the raw client's bytes
//! cannot spell `auto-delete`, `activemq.` or `requeue` either), reply queues
//! (nor `reply-to`) and expiry (the router's clock stays at 0, where nothing
//! expires).
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
//! - a frame with a `receipt` gets an ERROR with that `receipt-id` when refused;
//!   when accepted, its RECEIPT never arrives before every unit sealed for its
//!   connection's persistent SENDs, ACKs, NACKs and COMMITs up to it is reported
//!   durable (never if one failed), and it has arrived once every unit sealed for
//!   that connection's commands up to it is durable; an accepted persistent
//!   SEND to a queue, a COMMIT of one, and an ACK of a persistent queue message
//!   each seal a unit;
//! - nothing is written to a connection once it is lost, nor a MESSAGE once it
//!   sent DISCONNECT;
//! - a failed write closes every connection a failed unit was sealed for, with
//!   ERROR `message could not be made durable` (naming a RECEIPT it still
//!   waits for, if any), and no other connection gets that ERROR;
//! - a message keeps its `message-id` (across restarts too); one sent after a
//!   restart gets an id above every stored one; once a message came
//!   `redelivered:true` (or was restored so) it always does; per subscription,
//!   messages not marked `redelivered` come in increasing `message-id` order
//!   (queues are FIFO, topics in publish order);
//! - the router's connection count and subscription gauge match the model,
//!   there are at most `max_destinations` destinations (or as many as a restart
//!   restored), and once every client is gone no connection, subscription or
//!   unused destination is left.
//!
//! Checked at every restart, and once more after the last step (a clean stop:
//! every unit in flight is written), by recovering the log into a second router
//! that reads every restored queue:
//! - a persistent queue message comes back if a RECEIPT vouched for it (its
//!   SEND's or COMMIT's, or a later frame's of that connection) or its Put's unit
//!   was reported durable, unless its removal (ACK, `auto` delivery, drop of the
//!   oldest) may be in the log; nothing else comes back: no non-persistent,
//!   refused, aborted or uncommitted message, none whose Put's unit failed or
//!   was lost, none whose ACK's unit was durable (or vouched for by a RECEIPT);
//! - each queue in `message-id` order (ids unique), with the ids and bodies
//!   the messages had; `redelivered:true` on every one whose delivery to a
//!   client-ack subscription was durable, and on none never delivered;
//! - a COMMIT's persistent messages come back all or none;
//! - recovery reports a skipped stretch exactly when the log ends in a torn
//!   record; then the restarted router serves exactly what the second one read,
//!   under every check above.
//!
//! Input: [`Input`] through `arbitrary` (limits, then steps).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use stompkit_broker::internals::store::{
    Recovered, empty_segment, encode_unit, recover_from_segments,
};
use stompkit_broker::internals::{
    ConnId, Outbox, Router, RouterCommand, Session, Take, is_valid_destination,
};
use stompkit_broker::{
    BrokerConfig, Credential, Metrics, Permissions, Principal, QueueOverflow, Verdict,
};
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
/// The SEND header that makes a queue message durable.
const PERSISTENT: &str = "persistent";
/// The ERROR `message` of a connection whose store write failed.
const NOT_DURABLE: &str = "message could not be made durable";
/// Raw-client byte strings defused by changing their first byte: the model's
/// tag, and the headers of what it does not model (durable subscriptions,
/// dead letters, reply queues: their destinations would take slots of
/// `max_destinations` the model does not count).
const DEFUSED: [&[u8]; 5] = [
    b"x-fuzz",
    b"auto-delete",
    b"activemq.",
    b"requeue",
    b"reply-to",
];
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
    /// Units the store leaves in flight after each step (`% 5`: 0-3, reported
    /// durable beyond that many; 4: only `Sync` reports them).
    store_lag: u8,
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
        /// `persistent:true`.
        persistent: bool,
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
    /// The store reports its oldest units in flight durable: 1-4, all for 255.
    Sync {
        units: u8,
    },
    /// The store could not write its oldest units in flight (1-3).
    FailWrite {
        units: u8,
    },
    /// The broker crashes and restarts from its store: of the units in flight,
    /// `written` (modulo their count + 1) reached the log whole, and `torn`
    /// bytes (modulo its length) of the next one.
    Restart {
        written: u8,
        torn: Option<u16>,
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
    // Unlimited deliveries: a message is never dead-lettered (not modelled).
    c.destinations.max_deliveries = 0;
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
    /// Did not come back from a restart: never delivered again.
    Gone,
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
    /// `persistent:true` to a queue: the store keeps it.
    persistent: bool,
    /// The units its Put is in (or may be: SEND or COMMIT answer unknown).
    put: Option<Units>,
    /// Its Put is in the log: a RECEIPT vouched for it, or a restart found it.
    put_logged: bool,
    /// Units that may hold its removal (ACK, `auto` delivery).
    removals: Vec<Units>,
    /// A RECEIPT vouched for its ACK: it never comes back.
    ack_logged: bool,
    /// It was sent before a queue dropped its oldest (drops are not named).
    maybe_dropped: bool,
    /// Units that may hold a Delivered op of it.
    deliveries: Vec<Units>,
    /// It came `redelivered:true` in this incarnation (or was restored so).
    redelivered: bool,
    /// The last restart found it delivered before (`redelivered:true`).
    stored_redelivered: bool,
    /// Its `message-id`, once seen.
    message_id: Option<u64>,
    /// The accepted COMMIT that published it (its persistent messages come
    /// back all or none).
    commit: Option<usize>,
}

impl Sent {
    fn new(destination: &'static str, body: Vec<u8>, persistent: bool) -> Sent {
        Sent {
            destination,
            body,
            fate: Fate::Dropped,
            held: Held::Pending,
            persistent: persistent && destination.starts_with("/queue/"),
            put: None,
            put_logged: false,
            removals: Vec::new(),
            ack_logged: false,
            maybe_dropped: false,
            deliveries: Vec::new(),
            redelivered: false,
            stored_redelivered: false,
            message_id: None,
            commit: None,
        }
    }
}

/// Units `lo..hi` of this incarnation of the router (indices in
/// [`World::units`]): one of them holds a store op the model expects
/// (`certain`), or may hold it.
#[derive(Clone, Copy, Debug)]
struct Units {
    lo: usize,
    hi: usize,
    certain: bool,
}

/// Whether a store op is in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Logged {
    No,
    Maybe,
    Yes,
}

/// What became of a unit the router sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UnitState {
    /// Handed to the store, not reported yet.
    InFlight,
    /// Reported durable: in the log.
    Durable,
    /// Reported failed: never in the log.
    Failed,
    /// In flight at a crash, written whole: in the log, never reported.
    Written,
    /// In flight at a crash, not written (or torn): never in the log.
    Lost,
}

#[derive(Debug)]
struct UnitRecord {
    seq: u64,
    /// Its record, as `encode_unit` wrote it.
    bytes: Vec<u8>,
    state: UnitState,
    /// The connection it was sealed for (the router still had it after the
    /// command that sealed it).
    owner: Option<ConnId>,
}

impl UnitRecord {
    fn in_log(&self) -> bool {
        matches!(self.state, UnitState::Durable | UnitState::Written)
    }
}

/// A store effect an accepted frame promised, made good by a later RECEIPT.
#[derive(Clone, Copy, Debug)]
enum Vouch {
    /// Message `seq` is in the store.
    Put(usize),
    /// Message `seq`'s ACK is in the store.
    Remove(usize),
}

/// A RECEIPT the client waits for: how many of its connection's `owned` and
/// `required` units and `vouches` were there at its frame.
#[derive(Clone, Copy, Debug)]
struct Awaiting {
    owned: usize,
    required: usize,
    vouches: usize,
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
    /// The `message-id` of the last message it got not marked `redelivered`.
    fresh: Option<u64>,
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
    /// Units sealed for it (indices in [`World::units`]), in order.
    owned: Vec<usize>,
    /// Those sealed by its persistent SENDs, ACKs, NACKs and COMMITs.
    required: Vec<usize>,
    /// What its accepted frames promised the store holds once a RECEIPT comes.
    vouches: Vec<Vouch>,
    /// How many of `vouches` a RECEIPT made good.
    vouched: usize,
    /// RECEIPTs it waits for.
    awaiting: HashMap<String, Awaiting>,
    /// `World::units.len()` when it last read: what it reads next was sealed later.
    read_at: usize,
    /// The units its last read's deliveries were sealed in.
    read: (usize, usize),
    /// The model closed it (the router dropped it, its outbox may still owe a
    /// DISCONNECT's RECEIPT).
    gone: bool,
}

/// What the acting client's frame asked for, applied once the broker's answer is known.
#[derive(Debug)]
enum Intent {
    /// DISCONNECT: nothing more is delivered to the connection.
    Disconnect,
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
    /// The store's log, a segment per incarnation of the router (as `open`
    /// starts one): the record of every unit reported durable (and of those a
    /// crash wrote whole), in order.
    segments: Vec<Vec<u8>>,
    /// The units this incarnation of the router sealed, in order.
    units: Vec<UnitRecord>,
    /// Those in flight (indices), oldest first.
    in_flight: VecDeque<usize>,
    /// Units left in flight after a step; `None`: until a `Sync`.
    lag: Option<usize>,
    /// The units sealed while the acting frame was fed (`lo..hi`).
    frame_units: (usize, usize),
    /// Every message id stored before this incarnation is at most this.
    id_floor: u64,
    /// Messages (seq) by `message-id`, this incarnation.
    ids: HashMap<u64, usize>,
    /// Destinations the last restart restored (may exceed `max_destinations`).
    restored: usize,
    /// Accepted COMMITs so far.
    commits: usize,
    /// The raw client was ever used (its messages are stored, untagged).
    raw_ever: bool,
    /// `metrics.dropped_total()` after the last command.
    dropped: u64,
    /// Connections that got ERROR `message could not be made durable`.
    not_durable: HashSet<ConnId>,
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
    units_durable: usize,
    units_failed: usize,
    receipts_awaited: usize,
    receipts_checked: usize,
    restarts: usize,
    torn_writes: usize,
    messages_recovered: usize,
    survivors_required: usize,
}

fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 1))
}

/// Whether the router still has the connection: not closed by the router
/// (outbox closing) nor by the session (ERROR, DISCONNECT, lost).
fn alive(c: &Conn) -> bool {
    !c.outbox.is_closing() && !c.session.is_closed()
}

/// The `message-id` of a MESSAGE, as a number.
fn message_number(frame: &Frame) -> u64 {
    let id = frame.message_id().expect("MESSAGE without message-id");
    id.parse()
        .unwrap_or_else(|_| panic!("message-id {id:?} is not a number"))
}

/// The modelled SEND a MESSAGE carries (its tag), if any.
fn tag(frame: &Frame, sent: usize) -> Option<usize> {
    frame
        .get(SEQ)
        .and_then(|s| s.strip_prefix('s'))
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&s| s < sent)
}

impl World {
    fn new(config: BrokerConfig, lag: Option<usize>) -> World {
        let metrics = Arc::new(Metrics::default());
        World {
            router: Router::with_store(
                config.destinations.clone(),
                metrics.clone(),
                Recovered::default(),
            ),
            config: Arc::new(config),
            metrics,
            slots: (0..=CLIENTS).map(|_| None).collect(),
            sent: Vec::new(),
            now: Instant::now(),
            next_conn: 1,
            raw_used: false,
            receipts: 0,
            segments: vec![empty_segment()],
            units: Vec::new(),
            in_flight: VecDeque::new(),
            lag,
            frame_units: (0, 0),
            id_floor: 0,
            ids: HashMap::new(),
            restored: 0,
            commits: 0,
            raw_ever: false,
            dropped: 0,
            not_durable: HashSet::new(),
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
            owned: Vec::new(),
            required: Vec::new(),
            vouches: Vec::new(),
            vouched: 0,
            awaiting: HashMap::new(),
            read_at: self.units.len(),
            read: (0, 0),
            gone: false,
        });
    }

    fn route(&mut self, out: Vec<RouterCommand>) {
        for command in out {
            self.handle(command);
        }
    }

    /// Hands one command to the router, then takes the units it sealed (for
    /// the command's connection if the router still has it, as it records them).
    fn handle(&mut self, command: RouterCommand) {
        let conn = command.conn();
        let required = match &command {
            RouterCommand::Send { frame, .. } => frame.get(PERSISTENT) == Some("true"),
            RouterCommand::Ack { .. }
            | RouterCommand::Nack { .. }
            | RouterCommand::Commit { .. } => true,
            _ => false,
        };
        self.router.handle(command);
        let owner = self
            .slots
            .iter()
            .flatten()
            .find(|c| c.id == conn && alive(c))
            .map(|c| c.id);
        self.take_units(owner, required);
    }

    /// Takes the units the router sealed and encodes them, as the router task
    /// hands them to the store; notes that a queue may have dropped its oldest.
    fn take_units(&mut self, owner: Option<ConnId>, required: bool) {
        for unit in self.router.take_units() {
            if let Some(last) = self.units.last() {
                assert!(
                    unit.seq > last.seq,
                    "unit {} after unit {}",
                    unit.seq,
                    last.seq
                );
            }
            let index = self.units.len();
            let mut bytes = Vec::new();
            encode_unit(&unit, &mut bytes);
            self.units.push(UnitRecord {
                seq: unit.seq,
                bytes,
                state: UnitState::InFlight,
                owner,
            });
            self.in_flight.push_back(index);
            if let Some(c) = self
                .slots
                .iter_mut()
                .flatten()
                .find(|c| Some(c.id) == owner)
            {
                c.owned.push(index);
                if required {
                    c.required.push(index);
                }
            }
        }
        self.router.flush_metrics();
        let dropped = self.metrics.dropped_total();
        if dropped != self.dropped {
            self.dropped = dropped;
            if self.config.destinations.queue_overflow == QueueOverflow::DropOldest {
                // Drops are counted, not named: any message in a queue may have
                // been the oldest (one the model holds unacked too: a COMMIT
                // may NACK it back first).
                for s in &mut self.sent {
                    if s.destination.starts_with("/queue/") {
                        s.maybe_dropped = true;
                    }
                }
            }
        }
    }

    /// After a step: the store reports durable all but `lag` units in flight.
    fn after_step(&mut self) {
        if let Some(lag) = self.lag {
            self.sync(self.in_flight.len().saturating_sub(lag));
        }
    }

    /// The store wrote the oldest `n` units in flight: their records join the
    /// log, and the router hears they are durable.
    fn sync(&mut self, n: usize) {
        let n = n.min(self.in_flight.len());
        if n == 0 {
            return;
        }
        let mut last = 0;
        let segment = self.segments.last_mut().expect("a segment");
        for index in self.in_flight.drain(..n) {
            let unit = &mut self.units[index];
            unit.state = UnitState::Durable;
            segment.extend_from_slice(&unit.bytes);
            last = unit.seq;
        }
        self.stats.units_durable += n;
        self.router.durable(last);
        self.take_units(None, false);
        self.settle(None);
    }

    /// The store could not write the oldest `n` units in flight: the
    /// connections they were sealed for get ERROR and are closed.
    fn fail(&mut self, n: usize) {
        let n = n.min(self.in_flight.len());
        if n == 0 {
            return;
        }
        let failed: Vec<usize> = self.in_flight.drain(..n).collect();
        let mut owners = HashSet::new();
        for &index in &failed {
            self.units[index].state = UnitState::Failed;
            owners.extend(self.units[index].owner);
        }
        let reading: HashSet<ConnId> = self
            .slots
            .iter()
            .flatten()
            .filter(|c| c.reading && owners.contains(&c.id))
            .map(|c| c.id)
            .collect();
        self.stats.units_failed += n;
        let (first, last) = (self.units[failed[0]].seq, self.units[failed[n - 1]].seq);
        self.router
            .write_failed(first, last, "injected write failure");
        self.take_units(None, false);
        self.settle(None);
        for owner in owners {
            assert!(
                !self.slots.iter().flatten().any(|c| c.id == owner),
                "connection {owner} is still open after a unit sealed for it failed"
            );
            assert!(
                !reading.contains(&owner) || self.not_durable.contains(&owner),
                "connection {owner} was closed without ERROR {NOT_DURABLE:?} when its unit failed"
            );
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
                    credential: Credential::Anonymous,
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

    /// Encodes and feeds a frame (noting the units it sealed); `false` when it
    /// cannot be encoded.
    fn send_frame(&mut self, slot: usize, frame: &Frame) -> bool {
        let Some(c) = self.slots[slot].as_ref() else {
            return false;
        };
        let mut bytes = Vec::new();
        if Encoder::new(c.version).encode(frame, &mut bytes).is_err() {
            return false;
        }
        let before = self.units.len();
        self.feed(slot, &bytes);
        self.frame_units = (before, self.units.len());
        true
    }

    /// The connection in `slot` is gone: the session and the router forget it.
    fn lose(&mut self, slot: usize) {
        self.look(slot);
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        let mut out = Vec::new();
        c.session.on_closed(&mut out);
        self.route(out);
        // Nothing more is written to a connection that is gone.
        for frame in self.read_outbox(slot, false) {
            if frame.command == Command::Message {
                panic!("a MESSAGE was written to a connection after it was lost: {frame:?}");
            }
        }
        let Some(mut c) = self.slots[slot].take() else {
            return;
        };
        self.close_model(&mut c);
        // Deliveries the close caused (requeued messages) are checked now.
        self.settle(None);
    }

    /// The model side of a closed connection: its unacked queue messages are
    /// pending again, its open transactions are dropped.
    fn close_model(&mut self, c: &mut Conn) {
        if !c.gone {
            self.stats.connections_closed += 1;
        }
        c.gone = true;
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
        self.read_outbox(slot, true)
    }

    /// What is left in the outbox of a connection being dropped, checked as
    /// deliveries the model cannot place (the client never read them).
    fn look(&mut self, slot: usize) {
        let frames = self.read_outbox(slot, false);
        for frame in &frames {
            if frame.command == Command::Message {
                self.check_message(slot, frame, &HashSet::new(), false);
            }
        }
    }

    /// Takes everything in the outbox of `slot`; as the writer task does
    /// (`writer`: resuming queue dispatch once drained), or just looking.
    fn read_outbox(&mut self, slot: usize, writer: bool) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            let Some(c) = self.slots[slot].as_mut() else {
                return frames;
            };
            let mut bytes = bytes::BytesMut::new();
            if c.outbox.take(&mut bytes) != Take::Data {
                c.read = (c.read_at, self.units.len());
                c.read_at = self.units.len();
                return frames;
            }
            c.outbox.written();
            let drained = writer && !c.outbox.is_full() && c.outbox.take_blocked();
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
                self.handle(RouterCommand::Drained { conn });
            }
        }
    }

    /// After a step: read what reading clients got, learn the broker's answer to
    /// the acting client's frame, apply it to the model, check every delivery,
    /// and finish connections that closed.
    fn settle(&mut self, acting: Option<(usize, Intent, Option<String>)>) {
        // Closing, or dropped by the router (a DISCONNECT whose RECEIPT waits).
        let closing: HashSet<ConnId> = self
            .slots
            .iter()
            .flatten()
            .filter(|c| !alive(c))
            .map(|c| c.id)
            .collect();
        // What the acting frame's RECEIPT waits for: its connection's units so far.
        let waits = acting
            .as_ref()
            .and_then(|(slot, _, _)| self.slots[*slot].as_ref())
            .map(|c| (c.owned.len(), c.required.len()));
        let mut received: Vec<(usize, Vec<Frame>)> = Vec::new();
        for slot in 0..=CLIENTS {
            if self.slots[slot].as_ref().is_some_and(|c| c.reading) {
                let frames = self.drain(slot);
                received.push((slot, frames));
            }
        }
        if let Some((slot, intent, receipt)) = acting {
            if matches!(intent, Intent::Disconnect)
                && let Some((_, frames)) = received.iter().find(|(s, _)| *s == slot)
            {
                // It read everything before it sent DISCONNECT.
                assert!(
                    frames.iter().all(|f| f.command != Command::Message),
                    "a MESSAGE was written to a connection after its DISCONNECT: {frames:?}"
                );
            }
            let answer = self.answer(slot, &received, receipt.as_deref());
            self.apply(slot, intent, answer);
            if answer == Answer::Accepted
                && let Some(r) = receipt
                && let Some((owned, required)) = waits
                && let Some(c) = self.slots[slot].as_mut()
            {
                let vouches = c.vouches.len();
                c.awaiting.insert(
                    r,
                    Awaiting {
                        owned,
                        required,
                        vouches,
                    },
                );
                self.stats.receipts_awaited += 1;
            }
        }
        for (slot, frames) in &received {
            self.check_answers(*slot, frames);
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
            let Some(c) = self.slots[slot].as_ref() else {
                continue;
            };
            if c.outbox.is_closing() {
                if !c.reading {
                    self.look(slot);
                }
                if let Some(mut c) = self.slots[slot].take() {
                    let mut out = Vec::new();
                    c.session.on_closed(&mut out);
                    self.route(out);
                    self.close_model(&mut c);
                    finished = true;
                }
            } else if c.session.is_closed()
                && !c.gone
                && let Some(mut c) = self.slots[slot].take()
            {
                // The router dropped it (DISCONNECT): it still reads its RECEIPT.
                self.close_model(&mut c);
                self.slots[slot] = Some(c);
            }
        }
        if finished {
            self.settle(None);
        }
        self.check_counts();
        self.check_receipts_due();
    }

    /// The RECEIPTs and ERRORs a client read: a RECEIPT comes only once the
    /// units of its connection's persistent frames are durable, and makes
    /// good what they promised; ERROR `message could not be made durable`
    /// only for a connection a failed unit was sealed for.
    fn check_answers(&mut self, slot: usize, frames: &[Frame]) {
        for frame in frames {
            let Some(c) = self.slots[slot].as_mut() else {
                return;
            };
            match frame.command {
                Command::Receipt => {
                    let Some(r) = frame.receipt_id() else {
                        continue;
                    };
                    let Some(a) = c.awaiting.remove(r) else {
                        continue;
                    };
                    for &u in &c.required[..a.required] {
                        let unit = &self.units[u];
                        assert_eq!(
                            unit.state,
                            UnitState::Durable,
                            "RECEIPT {r} arrived before unit {} of its connection's persistent frames was durable",
                            unit.seq
                        );
                    }
                    let from = c.vouched.min(a.vouches);
                    let vouches = c.vouches[from..a.vouches].to_vec();
                    c.vouched = c.vouched.max(a.vouches);
                    for v in vouches {
                        match v {
                            Vouch::Put(seq) => self.sent[seq].put_logged = true,
                            Vouch::Remove(seq) => self.sent[seq].ack_logged = true,
                        }
                    }
                    self.stats.receipts_checked += 1;
                }
                Command::Error if frame.message() == Some(NOT_DURABLE) => {
                    let id = c.id;
                    assert!(
                        self.units
                            .iter()
                            .any(|u| u.owner == Some(id) && u.state == UnitState::Failed),
                        "ERROR {NOT_DURABLE:?} for connection {id}, none of whose units failed"
                    );
                    if let Some(r) = frame.receipt_id()
                        && !c.raw
                    {
                        assert!(
                            c.awaiting.contains_key(r),
                            "ERROR {NOT_DURABLE:?} names receipt {r}, which its client does not wait for"
                        );
                    }
                    self.not_durable.insert(id);
                }
                _ => {}
            }
        }
    }

    /// A client that reads has every RECEIPT whose connection's units up to its
    /// frame are all durable.
    fn check_receipts_due(&self) {
        for c in self.slots.iter().flatten() {
            if !c.reading || c.raw || c.outbox.is_closing() {
                continue;
            }
            for (r, a) in &c.awaiting {
                let due = c.owned[..a.owned]
                    .iter()
                    .all(|&u| self.units[u].state == UnitState::Durable);
                assert!(
                    !due,
                    "no RECEIPT {r} although every unit sealed for its connection up to its frame is durable"
                );
            }
        }
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
            // Its RECEIPT may wait for the store (`check_receipts_due`).
            _ => Answer::Accepted,
        }
    }

    fn apply(&mut self, slot: usize, intent: Intent, answer: Answer) {
        let Some(mut c) = self.slots[slot].take() else {
            return;
        };
        match intent {
            Intent::Disconnect => {}
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
                if transaction.is_none() && answer != Answer::Refused && self.sent[seq].persistent {
                    let accepted = answer == Answer::Accepted;
                    let put = self.frame_put(accepted);
                    assert!(
                        !accepted || put.lo < put.hi,
                        "a persistent SEND to {destination} was accepted but sealed no store unit"
                    );
                    self.sent[seq].put = Some(put);
                    if accepted {
                        c.vouches.push(Vouch::Put(seq));
                    }
                }
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
                        fresh: None,
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
                        if answer == Answer::Unknown && !nack {
                            // It may have been applied: its messages may be gone.
                            let mut subs = copy_subs(&c);
                            self.maybe_removed(&take_acked(&mut subs, &name));
                        }
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
                    self.commits += 1;
                    let put = self.frame_put(true);
                    let mut persistent = false;
                    for op in ops {
                        match op {
                            TxOp::Send(seq) => {
                                let destination = self.sent[seq].destination;
                                assert!(
                                    c.permissions.may_send(destination),
                                    "a COMMIT published a forbidden SEND to {destination}"
                                );
                                let s = &mut self.sent[seq];
                                s.fate = Fate::Published;
                                if s.persistent {
                                    persistent = true;
                                    s.put = Some(put);
                                    s.commit = Some(self.commits);
                                    c.vouches.push(Vouch::Put(seq));
                                }
                            }
                            TxOp::Ack(name, nack) => self.settle_ack(&mut c, &name, nack),
                        }
                    }
                    assert!(
                        !persistent || put.lo < put.hi,
                        "a COMMIT of persistent SENDs to queues sealed no store unit"
                    );
                } else {
                    self.stats.commits_refused += 1;
                    let mut subs = copy_subs(&c);
                    for op in ops {
                        match op {
                            TxOp::Send(seq) if answer == Answer::Refused => {
                                self.sent[seq].fate = Fate::Dropped;
                            }
                            TxOp::Send(seq) => {
                                // It may have been published, and stored.
                                self.sent[seq].fate = Fate::Unknown;
                                if self.sent[seq].persistent {
                                    self.sent[seq].put = Some(self.frame_put(false));
                                }
                            }
                            TxOp::Ack(name, nack) if answer == Answer::Unknown => {
                                let done = take_acked(&mut subs, &name);
                                if !nack {
                                    self.maybe_removed(&done);
                                }
                            }
                            TxOp::Ack(..) => {}
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

    /// Applies an accepted ACK/NACK (alone or in a COMMIT, whose units the
    /// acting frame sealed) to the model: an ACK removes its persistent
    /// messages from the store in those units.
    fn settle_ack(&mut self, c: &mut Conn, name: &AckName, nack: bool) {
        let done = take_acked(&mut c.subs, name);
        if nack {
            self.requeue(c.id, &done);
        } else {
            let removal = self.frame_put(true);
            for u in done {
                let Some(seq) = u.seq else {
                    continue;
                };
                let s = &mut self.sent[seq];
                if s.held == Held::Outstanding(c.id) {
                    s.held = Held::Acked;
                }
                if s.persistent {
                    assert!(
                        removal.lo < removal.hi,
                        "the ACK of persistent message {seq} sealed no store unit"
                    );
                    s.removals.push(removal);
                    c.vouches.push(Vouch::Remove(seq));
                }
            }
        }
    }

    /// The units the acting frame sealed, as where its store op is
    /// (`certain`: it was accepted) or may be.
    fn frame_put(&self, certain: bool) -> Units {
        let (lo, hi) = self.frame_units;
        Units { lo, hi, certain }
    }

    /// An ACK whose answer is unknown may have removed these messages.
    fn maybe_removed(&mut self, unacked: &[Unacked]) {
        let removal = self.frame_put(false);
        for u in unacked {
            if let Some(seq) = u.seq {
                self.sent[seq].removals.push(removal);
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
        let seq = tag(frame, self.sent.len());
        let number = message_number(frame);
        let redelivered = frame.get("redelivered") == Some("true");
        let queue = destination.starts_with("/queue/");
        // Its store op (Delivered, or Remove for `auto`) is in the units sealed
        // since the client last read.
        let (lo, hi) = c.read;
        let units = Units {
            lo,
            hi,
            certain: true,
        };
        self.stats.messages_checked += 1;
        if let Some(seq) = seq {
            let sent = &mut self.sent[seq];
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
            match sent.message_id {
                Some(id) => assert_eq!(
                    id, number,
                    "message {seq} delivered with another message-id"
                ),
                None => {
                    assert!(
                        number > self.id_floor,
                        "message {seq}, sent after a restart, got message-id {number}, not above the stored ids ({})",
                        self.id_floor
                    );
                    sent.message_id = Some(number);
                }
            }
            if let Some(other) = self.ids.insert(number, seq) {
                assert_eq!(
                    other, seq,
                    "messages {other} and {seq} have one message-id {number}"
                );
            }
        }
        let exact = exact && !c.raw;
        if !exact {
            if let Some(seq) = seq
                && queue
            {
                // Delivered in some ack mode, maybe acknowledged.
                let s = &mut self.sent[seq];
                s.held = Held::Unknown;
                let maybe = Units {
                    certain: false,
                    ..units
                };
                s.deliveries.push(maybe);
                s.removals.push(maybe);
            }
            return;
        }
        let Some(sub) = c.subs.get_mut(subscription) else {
            assert!(
                closing.contains(&c.id),
                "MESSAGE for unknown subscription {subscription:?}"
            );
            if let Some(seq) = seq
                && queue
            {
                let maybe = Units {
                    certain: false,
                    ..units
                };
                self.sent[seq].deliveries.push(maybe);
                self.sent[seq].removals.push(maybe);
            }
            return;
        };
        if !redelivered {
            if let Some(last) = sub.fresh {
                assert!(
                    last < number,
                    "subscription {subscription:?} got message-id {number} after {last}, neither redelivered"
                );
            }
            sub.fresh = Some(number);
        }
        if let Some(seq) = seq
            && !closing.contains(&c.id)
        {
            // Deliveries to a connection closing now may be seen out of order.
            let s = &mut self.sent[seq];
            assert!(
                redelivered || !s.redelivered,
                "message {seq} came without redelivered:true after it came with it (or was restored so)"
            );
            s.redelivered |= redelivered;
        }
        if let Some(seq) = seq {
            if queue {
                self.stats.queue_deliveries_checked += 1;
                let s = &mut self.sent[seq];
                if sub.mode == AckMode::Auto {
                    s.removals.push(units);
                    s.deliveries.push(Units {
                        certain: false,
                        ..units
                    });
                } else {
                    s.deliveries.push(units);
                }
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
            .filter(|c| c.connected && alive(c))
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
        // A restart restores every stored queue, beyond the limit if need be.
        let bound = self.config.destinations.max_destinations.max(self.restored);
        assert!(self.router.destination_count() <= bound);
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
        let usable = |c: &Conn| c.connected && alive(c);
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
                persistent,
                mut body,
            } => {
                let Some(slot) = self.ready(client) else {
                    return;
                };
                body.truncate(MAX_BODY);
                let seq = self.sent.len();
                let destination = pick_destination(destination);
                self.sent
                    .push(Sent::new(destination, body.clone(), persistent));
                let mut frame = Frame::send(destination).header(SEQ, &format!("s{seq}"));
                if persistent {
                    frame = frame.header(PERSISTENT, "true");
                }
                let mut frame = frame.with_body(body);
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
                    self.settle(Some((slot, Intent::Disconnect, receipt)));
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
                self.check_answers(slot, &frames);
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
                self.raw_ever = true;
                // Keep the raw client from forging the model's tags, and from
                // what the model does not cover.
                for word in DEFUSED {
                    for i in 0..(bytes.len() + 1).saturating_sub(word.len()) {
                        if &bytes[i..i + word.len()] == word {
                            bytes[i] = word[0] + 1;
                        }
                    }
                }
                self.feed(RAW, &bytes);
                self.settle(None);
            }
            Step::Sync { units } => {
                let n = if units == 255 {
                    usize::MAX
                } else {
                    1 + usize::from(units % 4)
                };
                self.sync(n);
            }
            Step::FailWrite { units } => self.fail(1 + usize::from(units % 3)),
            Step::Restart { written, torn } => self.restart(written, torn),
        }
    }

    /// The broker crashes and restarts from its store (see the module docs).
    fn restart(&mut self, written: u8, torn: Option<u16>) {
        self.stats.restarts += 1;
        // Every connection is gone; what they were sent is looked at first.
        for slot in 0..=CLIENTS {
            self.look(slot);
            if let Some(mut c) = self.slots[slot].take() {
                self.close_model(&mut c);
            }
        }
        let in_flight: Vec<usize> = self.in_flight.drain(..).collect();
        let whole = usize::from(written) % (in_flight.len() + 1);
        let segment = self.segments.last_mut().expect("a segment");
        for (i, &index) in in_flight.iter().enumerate() {
            let unit = &mut self.units[index];
            if i < whole {
                unit.state = UnitState::Written;
                segment.extend_from_slice(&unit.bytes);
            } else {
                unit.state = UnitState::Lost;
            }
        }
        let whole_records = segment.len();
        let mut torn_bytes = 0;
        if let (Some(t), Some(&index)) = (torn, in_flight.get(whole)) {
            let bytes = &self.units[index].bytes;
            torn_bytes = usize::from(t) % bytes.len().max(1);
            segment.extend_from_slice(&bytes[..torn_bytes]);
        }
        if torn_bytes > 0 {
            self.stats.torn_writes += 1;
        }
        self.recover_and_check(torn_bytes > 0);
        let recovered = self.recover();
        // As `open` does: the torn tail is cut off, and a new segment started.
        if let Some(segment) = self.segments.last_mut() {
            segment.truncate(whole_records);
        }
        self.segments.push(empty_segment());
        self.metrics = Arc::new(Metrics::default());
        self.router = Router::with_store(
            self.config.destinations.clone(),
            self.metrics.clone(),
            recovered,
        );
        self.restored = self.router.destination_count();
        self.units.clear();
        self.raw_used = false;
        self.dropped = 0;
        self.not_durable.clear();
        self.check_counts();
    }

    /// Recovers the log into a second router, reads every queue it restored
    /// with one `auto` subscriber, checks that against the model (see the
    /// module docs), and settles the model on what came back: survivors wait
    /// in their queues, the rest is gone.
    fn recover_and_check(&mut self, torn: bool) {
        let recovered = self.recover();
        assert_eq!(
            !recovered.skipped.is_empty(),
            torn,
            "recovery of a log {} skipped {:?}",
            if torn {
                "ending in a torn record"
            } else {
                "of whole records"
            },
            recovered.skipped
        );
        let max_id = recovered.max_id;
        let metrics = Arc::new(Metrics::default());
        let mut probe = Router::with_store(self.config.destinations.clone(), metrics, recovered);
        let outbox = Arc::new(Outbox::new(1 << 30));
        let conn = 1;
        probe.handle(RouterCommand::Connect {
            conn,
            outbox: outbox.clone(),
            version: Version::V1_2,
        });
        for queue in probe.queues() {
            probe.handle(RouterCommand::Subscribe {
                conn,
                id: queue.name.clone(),
                destination: queue.name,
                ack: AckMode::Auto,
                prefetch: 0,
                durable: None,
                selector: None,
                receipt: None,
            });
        }
        let mut reader = Parser::new();
        reader.set_version(Version::V1_2);
        reader.push(&outbox.drain());
        // Survivors: seq -> (message-id, redelivered).
        let mut back: HashMap<usize, (u64, bool)> = HashMap::new();
        let mut ids = HashSet::new();
        let mut last: HashMap<String, u64> = HashMap::new();
        loop {
            let frame = match reader.next_event() {
                Ok(None) => break,
                Ok(Some(Event::Frame(f))) => f,
                Ok(Some(Event::HeartBeat)) => continue,
                Err(e) => panic!("the recovered router wrote an unparsable frame: {e}"),
            };
            assert_eq!(frame.command, Command::Message, "{frame:?}");
            self.stats.messages_recovered += 1;
            let destination = frame.destination().expect("MESSAGE without destination");
            let number = message_number(&frame);
            assert!(
                ids.insert(number),
                "two recovered messages have message-id {number}"
            );
            assert!(
                number <= max_id,
                "recovered message-id {number} is above the recovered max_id {max_id}"
            );
            if let Some(before) = last.insert(destination.to_owned(), number) {
                assert!(
                    before < number,
                    "{destination} recovered out of order: message-id {number} after {before}"
                );
            }
            let Some(seq) = tag(&frame, self.sent.len()) else {
                assert!(
                    self.raw_ever,
                    "a message nobody sent was recovered: {frame:?}"
                );
                continue;
            };
            let (stored, why) = self.stored(seq);
            assert!(
                stored != Logged::No,
                "message {seq} came back after a restart although {why}"
            );
            let s = &self.sent[seq];
            assert_eq!(
                s.destination, destination,
                "message {seq} came back elsewhere"
            );
            assert_eq!(
                &s.body[..],
                frame.body(),
                "message {seq} came back with another body"
            );
            if let Some(id) = s.message_id {
                assert_eq!(
                    id, number,
                    "message {seq} came back with another message-id"
                );
            }
            let redelivered = frame.get("redelivered") == Some("true");
            let (must, may) = self.redelivery(seq);
            assert!(
                redelivered || !must,
                "message {seq} came back without redelivered:true though its delivery was durable"
            );
            assert!(
                !redelivered || may,
                "message {seq} came back redelivered:true though never delivered to a client-ack subscription"
            );
            assert!(back.insert(seq, (number, redelivered)).is_none());
        }
        // Every message the store must hold came back; a COMMIT's, all or none.
        let mut commits: HashMap<usize, (bool, bool)> = HashMap::new();
        let mut floor = self.id_floor.max(max_id);
        for seq in 0..self.sent.len() {
            let (stored, why) = self.stored(seq);
            if stored == Logged::Yes {
                self.stats.survivors_required += 1;
                assert!(
                    back.contains_key(&seq),
                    "message {seq} to {} did not come back after a restart although {why}",
                    self.sent[seq].destination
                );
            }
            let s = &self.sent[seq];
            let put = s.put_logged || s.put.is_some_and(|u| self.logged(u) == Logged::Yes);
            if put && let Some(id) = s.message_id {
                floor = floor.max(id);
            }
            let untouched = s.fate == Fate::Published
                && s.removals.is_empty()
                && !s.ack_logged
                && !s.maybe_dropped
                && s.held != Held::Unknown;
            if let Some(commit) = s.commit
                && untouched
            {
                let seen = commits.entry(commit).or_default();
                if back.contains_key(&seq) {
                    seen.0 = true;
                } else {
                    seen.1 = true;
                }
            }
        }
        for (commit, (some, not_all)) in commits {
            assert!(
                !(some && not_all),
                "only some persistent messages of COMMIT {commit} came back"
            );
        }
        self.id_floor = floor;
        self.ids.clear();
        for (seq, s) in self.sent.iter_mut().enumerate() {
            s.put = None;
            s.removals.clear();
            s.deliveries.clear();
            s.ack_logged = false;
            s.maybe_dropped = false;
            s.commit = None;
            match back.get(&seq) {
                Some(&(number, redelivered)) => {
                    s.fate = Fate::Published;
                    s.held = Held::Pending;
                    s.put_logged = true;
                    s.message_id = Some(number);
                    s.redelivered = redelivered;
                    s.stored_redelivered = redelivered;
                    self.ids.insert(number, seq);
                }
                None => {
                    s.fate = Fate::Gone;
                    s.put_logged = false;
                }
            }
        }
    }

    /// What the store recovers from its log.
    fn recover(&self) -> Recovered {
        let segments: Vec<&[u8]> = self.segments.iter().map(Vec::as_slice).collect();
        recover_from_segments(&segments)
    }

    /// Whether message `seq` is in the log (`Yes`: it must come back from a
    /// crash now, `No`: it must not), and why.
    fn stored(&self, seq: usize) -> (Logged, &'static str) {
        let s = &self.sent[seq];
        if !matches!(s.fate, Fate::Published | Fate::Unknown) {
            return (
                Logged::No,
                "its SEND was refused, aborted, never committed, or lost in a restart",
            );
        }
        if !s.persistent {
            return (Logged::No, "it is not a persistent queue message");
        }
        let put = if s.put_logged {
            Logged::Yes
        } else {
            s.put.map_or(Logged::No, |u| self.logged(u))
        };
        if put == Logged::No {
            return (
                Logged::No,
                "the unit of its Put failed, was lost, or was never sealed",
            );
        }
        let mut removed = if s.ack_logged {
            Logged::Yes
        } else {
            Logged::No
        };
        for &u in &s.removals {
            removed = removed.max(self.logged(u));
        }
        if removed == Logged::Yes {
            return (Logged::No, "its acknowledgement is in the log");
        }
        if s.maybe_dropped || s.held == Held::Unknown {
            removed = Logged::Maybe;
        }
        match (put, removed) {
            (Logged::Yes, Logged::No) if s.put_logged => (
                Logged::Yes,
                "a RECEIPT vouched for it (or a restart found it)",
            ),
            (Logged::Yes, Logged::No) => (Logged::Yes, "its Put's unit is in the log"),
            _ => (Logged::Maybe, "its Put or its removal may be in the log"),
        }
    }

    /// Whether message `seq` must come back `redelivered:true`, and whether it may.
    fn redelivery(&self, seq: usize) -> (bool, bool) {
        let s = &self.sent[seq];
        let (mut must, mut may) = (s.stored_redelivered, s.stored_redelivered);
        for &u in &s.deliveries {
            let logged = self.logged(u);
            must |= logged == Logged::Yes;
            may |= logged != Logged::No;
        }
        (must, may)
    }

    /// Whether the store op the model expects in `units` is in the log.
    fn logged(&self, units: Units) -> Logged {
        let range = &self.units[units.lo..units.hi];
        match range.iter().filter(|u| u.in_log()).count() {
            0 => Logged::No,
            n if n == range.len() && units.certain => Logged::Yes,
            _ => Logged::Maybe,
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

/// A copy of a client's subscriptions and what they hold unacknowledged.
fn copy_subs(c: &Conn) -> BTreeMap<String, Sub> {
    c.subs
        .iter()
        .map(|(id, s)| {
            let copy = Sub {
                destination: s.destination.clone(),
                mode: s.mode,
                unacked: s.unacked.clone(),
                seen: HashSet::new(),
                fresh: None,
            };
            (id.clone(), copy)
        })
        .collect()
}

/// Whether every ACK/NACK of a transaction names an unacked message when applied
/// in order (each one changes what the next can name).
fn acks_apply(c: &Conn, ops: &[TxOp]) -> bool {
    let mut subs = copy_subs(c);
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
    let lag = match input.limits.store_lag % 5 {
        4 => None,
        n => Some(usize::from(n)),
    };
    let mut world = World::new(config(&input.limits), lag);
    for step in input.steps.into_iter().take(MAX_STEPS) {
        world.step(step);
        world.after_step();
    }
    for slot in 0..=CLIENTS {
        world.lose(slot);
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
    let queues = world.router.queues();
    assert!(
        queues.len() == world.router.destination_count() && queues.iter().all(|q| q.ready > 0),
        "unused destinations left: {} destinations, queues {queues:?}",
        world.router.destination_count()
    );
    // A clean stop (the store writes every unit it was handed), then what a
    // restart would find.
    world.sync(usize::MAX);
    world.recover_and_check(false);
    if debug {
        eprintln!("{:?}", world.stats);
    }
});
