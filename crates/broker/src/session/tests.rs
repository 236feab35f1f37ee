//! Session unit tests: a session and a router wired together in memory, bytes in,
//! frames out, synthetic time.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::auth::{AuthRequest, Credential, Verdict};
use crate::router::Router;
use std::time::Duration;
use stompkit_wire::Parser;

struct Client {
    session: Session,
    parser: Parser,
    outbox: Arc<Outbox>,
}

/// How the world answers login requests: a verdict now, or `None` to hold it.
type Judge = fn(&AuthRequest) -> Option<Verdict>;

struct World {
    config: Arc<BrokerConfig>,
    router: Router,
    clients: Vec<Client>,
    now: Instant,
    judge: Judge,
}

impl World {
    fn new() -> World {
        World::with(BrokerConfig::default())
    }

    fn with(config: BrokerConfig) -> World {
        let metrics = Arc::new(Metrics::default());
        World {
            router: Router::new(config.destinations.clone(), metrics),
            config: Arc::new(config),
            clients: Vec::new(),
            now: Instant::now(),
            judge: |_| Some(Verdict::Accepted(Principal::anonymous())),
        }
    }

    /// A new TCP-less client; returns its index.
    fn open(&mut self) -> usize {
        let outbox = Arc::new(Outbox::new(self.config.limits.max_outbox_bytes));
        let conn = self.clients.len() as ConnId;
        let session = Session::new(
            self.config.clone(),
            conn,
            "127.0.0.1:1".parse().unwrap(),
            outbox.clone(),
            Arc::new(Metrics::default()),
            self.now,
        );
        self.clients.push(Client {
            session,
            parser: Parser::with_config(self.config.parser_config()),
            outbox,
        });
        self.clients.len() - 1
    }

    /// Feeds raw bytes from client `c`, as the connection task does.
    fn bytes(&mut self, c: usize, bytes: &[u8]) {
        let now = self.now;
        let mut out = Vec::new();
        let client = &mut self.clients[c];
        client.parser.push(bytes);
        client.session.on_bytes(now, true);
        self.pump(c, &mut out);
    }

    /// Parses what client `c` sent while no verdict is pending, as the connection
    /// task does, and routes the commands.
    fn pump(&mut self, c: usize, out: &mut Vec<RouterCommand>) {
        let now = self.now;
        let judge = self.judge;
        let client = &mut self.clients[c];
        loop {
            if client.session.awaiting_verdict() {
                let Some(request) = client.session.take_auth_request() else {
                    break;
                };
                match judge(&request) {
                    Some(verdict) => {
                        if let Some(v) = client.session.handle_verdict(verdict, now, out) {
                            client.parser.set_version(v);
                        }
                    }
                    None => break,
                }
            }
            let event = match client.parser.next_event() {
                Ok(None) => break,
                Ok(Some(e)) => Ok(e),
                Err(e) => Err(e),
            };
            let failed = event.is_err();
            client.session.handle_event(event, out);
            if failed {
                break;
            }
        }
        client.session.set_in_frame(now, client.parser.in_frame());
        for cmd in out.drain(..) {
            self.router.handle(cmd);
        }
    }

    /// Delivers a held verdict to client `c`, then parses what waited behind it.
    fn verdict(&mut self, c: usize, verdict: Verdict) {
        let now = self.now;
        let mut out = Vec::new();
        let client = &mut self.clients[c];
        assert!(client.session.awaiting_verdict());
        if let Some(v) = client.session.handle_verdict(verdict, now, &mut out) {
            client.parser.set_version(v);
        }
        self.pump(c, &mut out);
    }

    fn connect(&mut self, accept: &str) -> usize {
        let c = self.open();
        let frame = format!("CONNECT\naccept-version:{accept}\nhost:h\n\n\0");
        self.bytes(c, frame.as_bytes());
        let f = self.frames(c);
        assert_eq!(f[0].command, Command::Connected, "{f:?}");
        c
    }

    fn frames(&self, c: usize) -> Vec<Frame> {
        let mut p = Parser::new();
        p.push(&self.clients[c].outbox.drain());
        let mut out = Vec::new();
        while let Some(e) = p.next_event().unwrap() {
            if let Event::Frame(f) = e {
                if f.command == Command::Connected {
                    p.set_version(Version::from_bytes(f.version().unwrap().as_bytes()).unwrap());
                }
                out.push(f);
            }
        }
        out
    }

    /// The single ERROR client `c` got; asserts it is closing.
    fn error(&self, c: usize) -> Frame {
        let frames = self.frames(c);
        let last = frames
            .last()
            .cloned()
            .unwrap_or_else(|| panic!("no frames"));
        assert_eq!(last.command, Command::Error, "{frames:?}");
        assert!(self.clients[c].outbox.is_closing());
        assert!(!last.body().is_empty(), "S4: ERROR has a short body");
        last
    }

    fn tick(&mut self, d: Duration) {
        self.now += d;
        let now = self.now;
        let mut out = Vec::new();
        for c in &mut self.clients {
            c.session.handle_timeout(now, &mut out);
        }
        for cmd in out {
            self.router.handle(cmd);
        }
    }
}

#[test]
fn v3_v5_connected_carries_version_session_server_and_heart_beat() {
    let mut w = World::new();
    let c = w.open();
    w.bytes(
        c,
        b"STOMP\naccept-version:1.1,1.2\nhost:example\nheart-beat:5000,0\n\n\0",
    );
    let f = &w.frames(c)[0];
    assert_eq!(f.command, Command::Connected);
    assert_eq!(f.version(), Some("1.2"));
    assert_eq!(f.session(), Some("session-0"));
    assert_eq!(f.server(), Some(SERVER));
    // We want beats every 5000 ms from the client (it offered), send none (it wants none).
    assert_eq!(f.heart_beat(), Some("0,5000"));
}

#[test]
fn v2_connect_without_accept_version_is_a_1_0_session() {
    let mut w = World::new();
    let c = w.open();
    w.bytes(c, b"CONNECT\nlogin:u\npasscode:p\n\n\0");
    let f = &w.frames(c)[0];
    assert_eq!(f.version(), Some("1.0"));
    assert_eq!(f.heart_beat(), None, "no heart-beats in 1.0");
    assert_eq!(w.clients[c].session.version(), Some(Version::V1_0));
}

#[test]
fn v4_no_common_version_gets_error_listing_supported_versions() {
    let mut w = World::new();
    let c = w.open();
    w.bytes(c, b"CONNECT\naccept-version:2.0,3.1\nhost:h\n\n\0");
    let e = w.error(c);
    assert_eq!(e.version(), Some("1.0,1.1,1.2"));
    assert!(e.message().unwrap().contains("version"));
}

#[test]
fn h1_malformed_heart_beat_is_an_error() {
    let mut w = World::new();
    let c = w.open();
    w.bytes(
        c,
        b"CONNECT\naccept-version:1.2\nhost:h\nheart-beat:10,x\n\n\0",
    );
    assert_eq!(w.error(c).message(), Some("malformed heart-beat header"));
}

#[test]
fn heart_beat_request_is_clamped_to_server_bounds() {
    let mut config = BrokerConfig::default();
    config.heartbeat.min_ms = 1000;
    config.heartbeat.max_ms = 20_000;
    let mut w = World::with(config);
    let c = w.open();
    w.bytes(
        c,
        b"CONNECT\naccept-version:1.1\nhost:h\nheart-beat:100,90000\n\n\0",
    );
    assert_eq!(w.frames(c)[0].heart_beat(), Some("20000,1000"));
}

#[test]
fn h3_h5_server_sends_beats_and_closes_a_silent_peer_after_grace() {
    let mut config = BrokerConfig::default();
    config.heartbeat.min_ms = 10;
    let mut w = World::with(config);
    let c = w.open();
    w.bytes(
        c,
        b"CONNECT\naccept-version:1.2\nhost:h\nheart-beat:100,100\n\n\0",
    );
    w.frames(c);
    w.tick(Duration::from_millis(100));
    assert_eq!(
        &w.clients[c].outbox.drain()[..],
        b"\n",
        "a beat after one interval"
    );
    w.bytes(c, b"\n"); // the client beats: alive
    w.tick(Duration::from_millis(100));
    w.tick(Duration::from_millis(40));
    assert!(
        !w.clients[c].session.is_closed(),
        "within 1.5 x 100 ms of the last beat"
    );
    w.tick(Duration::from_millis(100));
    assert!(w.error(c).message().unwrap().contains("heart-beat"));
}

#[test]
fn login_timeout_closes_a_connection_that_never_sends_connect() {
    let mut w = World::new();
    let c = w.open();
    w.tick(Duration::from_secs(9));
    assert!(!w.clients[c].session.is_closed());
    w.tick(Duration::from_secs(1));
    assert!(w.error(c).message().unwrap().contains("login timeout"));
}

#[test]
fn frame_completion_timeout_closes_a_slow_drip_sender() {
    let mut w = World::new();
    let c = w.connect("1.2");
    w.bytes(c, b"SEND\ndestination:/queue/a\n");
    assert!(w.clients[c].session.poll_timeout().is_some());
    w.tick(Duration::from_secs(29));
    w.bytes(c, b"x:y\n"); // more bytes do not restart the clock
    w.tick(Duration::from_secs(1));
    assert_eq!(w.error(c).message(), Some("frame not completed in time"));
}

#[test]
fn frames_before_connect_and_a_second_connect_are_errors() {
    let mut w = World::new();
    let c = w.open();
    w.bytes(c, b"SEND\ndestination:/queue/a\nreceipt:r1\n\n\0");
    let e = w.error(c);
    assert_eq!(e.receipt_id(), Some("r1"));
    let c = w.connect("1.2");
    w.bytes(c, b"CONNECT\naccept-version:1.2\nhost:h\n\n\0");
    assert_eq!(w.error(c).message(), Some("already connected"));
}

#[test]
fn c8_f4_unknown_and_lower_case_commands_are_errors() {
    for bad in [&b"send\ndestination:/queue/a\n\n\0"[..], b"FROB\n\n\0"] {
        let mut w = World::new();
        let c = w.connect("1.2");
        w.bytes(c, bad);
        assert_eq!(w.error(c).message(), Some("unknown command"));
    }
}

#[test]
fn missing_required_headers_are_errors_with_receipt_id() {
    let cases: [(&str, &[u8], &str); 8] = [
        (
            "1.2",
            b"SEND\nreceipt:r\n\nx\0",
            "missing destination header",
        ),
        (
            "1.2",
            b"SUBSCRIBE\nreceipt:r\nid:1\n\n\0",
            "missing destination header",
        ),
        (
            "1.2",
            b"SUBSCRIBE\nreceipt:r\ndestination:/queue/a\n\n\0",
            "missing id header",
        ),
        ("1.2", b"UNSUBSCRIBE\nreceipt:r\n\n\0", "missing id header"),
        (
            "1.2",
            b"BEGIN\nreceipt:r\n\n\0",
            "missing transaction header",
        ),
        (
            "1.2",
            b"ACK\nreceipt:r\nmessage-id:1\n\n\0",
            "missing id header",
        ),
        (
            "1.1",
            b"ACK\nreceipt:r\nmessage-id:1\n\n\0",
            "missing subscription header",
        ),
        ("1.0", b"ACK\nreceipt:r\n\n\0", "missing message-id header"),
    ];
    for (version, bytes, message) in cases {
        let mut w = World::new();
        let c = w.connect(version);
        w.bytes(c, bytes);
        let e = w.error(c);
        assert_eq!(
            e.message(),
            Some(message),
            "{}",
            String::from_utf8_lossy(bytes)
        );
        assert_eq!(e.receipt_id(), Some("r"));
    }
}

#[test]
fn commit_abort_of_unknown_transaction_and_unknown_ack_are_errors() {
    for (bytes, message) in [
        (&b"COMMIT\ntransaction:t\n\n\0"[..], "unknown transaction"),
        (b"ABORT\ntransaction:t\n\n\0", "unknown transaction"),
        (
            b"SEND\ndestination:/queue/a\ntransaction:t\n\n\0",
            "unknown transaction",
        ),
        (b"ACK\nid:5.0\n\n\0", "ACK/NACK of an unknown message"),
        (b"NACK\nid:5\n\n\0", "ACK/NACK of an unknown message"),
        (b"UNSUBSCRIBE\nid:nope\n\n\0", "unknown subscription id"),
        (
            b"SUBSCRIBE\nid:1\ndestination:/queue/a\nack:sometimes\n\n\0",
            "invalid ack mode",
        ),
        (
            b"SUBSCRIBE\nid:1\ndestination:/queue/a\nprefetch-count:-1\n\n\0",
            "invalid prefetch-count header",
        ),
        (
            b"SEND\ndestination:/elsewhere/a\n\n\0",
            "unsupported destination",
        ),
        (
            b"MESSAGE\ndestination:/queue/a\n\n\0",
            "unexpected server frame from client",
        ),
    ] {
        let mut w = World::new();
        let c = w.connect("1.2");
        w.bytes(c, bytes);
        assert_eq!(
            w.error(c).message(),
            Some(message),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn an_invalid_selector_is_an_error_with_its_position_and_an_empty_one_is_none() {
    let mut w = World::new();
    let c = w.connect("1.2");
    w.bytes(
        c,
        b"SUBSCRIBE\nid:1\ndestination:/queue/a\nselector:n > 3 AND\nreceipt:r\n\n\0",
    );
    let e = w.error(c);
    assert_eq!(e.message(), Some("invalid selector"));
    assert_eq!(e.receipt_id(), Some("r"));
    assert_eq!(
        e.body(),
        b"invalid selector at position 9: expected an expression\n"
    );

    let mut w = World::new();
    let c = w.connect("1.2");
    w.bytes(
        c,
        b"SUBSCRIBE\nid:1\ndestination:/queue/a\nselector: \nreceipt:r\n\n\0",
    );
    w.bytes(c, b"SEND\ndestination:/queue/a\n\nhi\0");
    let got: Vec<Command> = w.frames(c).iter().map(|f| f.command).collect();
    assert_eq!(
        got,
        [Command::Receipt, Command::Message],
        "no selector: all"
    );
}

#[test]
fn nack_in_1_0_is_an_error() {
    let mut w = World::new();
    let c = w.connect("1.0");
    w.bytes(c, b"NACK\nmessage-id:1\n\n\0");
    assert_eq!(
        w.error(c).message(),
        Some("NACK is not supported in STOMP 1.0")
    );
}

#[test]
fn duplicate_subscription_id_and_subscription_limit_are_errors() {
    let mut w = World::new();
    let c = w.connect("1.2");
    w.bytes(
        c,
        b"SUBSCRIBE\nid:1\ndestination:/queue/a\n\n\0SUBSCRIBE\nid:1\ndestination:/topic/b\n\n\0",
    );
    assert_eq!(w.error(c).message(), Some("duplicate subscription id"));

    let mut config = BrokerConfig::default();
    config.limits.max_subscriptions = 1;
    let mut w = World::with(config);
    let c = w.connect("1.2");
    w.bytes(
        c,
        b"SUBSCRIBE\nid:1\ndestination:/queue/a\n\n\0SUBSCRIBE\nid:2\ndestination:/topic/b\n\n\0",
    );
    assert_eq!(w.error(c).message(), Some("too many subscriptions"));
}

#[test]
fn parse_errors_become_error_frames() {
    let cases: [(&str, &[u8], &str); 5] = [
        (
            "1.2",
            b"SUBSCRIBE\nid:1\ndestination:/queue/a\n\nbody\0",
            "frame must not have a body",
        ),
        (
            "1.2",
            b"SEND\ndestination:/queue/a\nx:a\\tb\n\n\0",
            "invalid header escape",
        ),
        (
            "1.1",
            b"SEND\ndestination:/queue/a\nx:a\\rb\n\n\0",
            "invalid header escape",
        ),
        (
            "1.2",
            b"SEND\ndestination:/queue/a\ncontent-length:+5\n\nhello\0",
            "invalid content-length",
        ),
        (
            "1.2",
            b"SEND\ndestination:/queue/a\nx:a\rb\n\n\0",
            "bare CR not followed by LF",
        ),
    ];
    for (version, bytes, message) in cases {
        let mut w = World::new();
        let c = w.connect(version);
        w.bytes(c, bytes);
        assert_eq!(
            w.error(c).message(),
            Some(message),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn receipt_follows_the_effect_and_disconnect_receipt_comes_before_close() {
    let mut w = World::new();
    let c = w.connect("1.2");
    w.bytes(c, b"SUBSCRIBE\nid:s\ndestination:/topic/a\nreceipt:r1\n\n\0SEND\ndestination:/topic/a\nreceipt:r2\n\nhi\0");
    let f = w.frames(c);
    assert_eq!(f[0].receipt_id(), Some("r1"));
    assert_eq!(f[1].command, Command::Message);
    assert_eq!(
        f[2].receipt_id(),
        Some("r2"),
        "RECEIPT after the MESSAGE the SEND produced"
    );
    w.bytes(
        c,
        b"DISCONNECT\nreceipt:bye\n\n\0SEND\ndestination:/topic/a\n\nlate\0",
    );
    let f = w.frames(c);
    assert_eq!(f.len(), 1, "nothing after DISCONNECT: {f:?}");
    assert_eq!(f[0].receipt_id(), Some("bye"));
    assert!(w.clients[c].outbox.is_closing());
}

#[test]
fn c6_transactions_buffer_until_commit_and_abort_discards() {
    let mut w = World::new();
    let sub = w.connect("1.2");
    w.bytes(sub, b"SUBSCRIBE\nid:s\ndestination:/queue/q\n\n\0");
    let c = w.connect("1.1");
    w.bytes(c, b"BEGIN\ntransaction:t\nreceipt:b\n\n\0SEND\ndestination:/queue/q\ntransaction:t\n\n1\0SEND\ndestination:/queue/q\ntransaction:t\n\n2\0");
    assert!(w.frames(sub).is_empty(), "nothing before COMMIT");
    w.bytes(c, b"COMMIT\ntransaction:t\nreceipt:c\n\n\0");
    let got: Vec<_> = w.frames(sub).iter().map(|f| f.body_bytes()).collect();
    assert_eq!(got, [&b"1"[..], b"2"]);
    let r: Vec<_> = w
        .frames(c)
        .iter()
        .map(|f| f.receipt_id().unwrap().to_owned())
        .collect();
    assert_eq!(r, ["b", "c"]);
    w.bytes(c, b"BEGIN\ntransaction:u\n\n\0SEND\ndestination:/queue/q\ntransaction:u\n\n3\0ABORT\ntransaction:u\n\n\0");
    assert!(w.frames(sub).is_empty());
    // An open transaction aborts on DISCONNECT.
    w.bytes(c, b"BEGIN\ntransaction:v\n\n\0SEND\ndestination:/queue/q\ntransaction:v\n\n4\0DISCONNECT\n\n\0");
    assert!(w.frames(sub).is_empty());
}

#[test]
fn transaction_limits_are_enforced() {
    let mut config = BrokerConfig::default();
    config.limits.max_transactions = 1;
    config.limits.max_transaction_frames = 1;
    let mut w = World::with(config);
    let c = w.connect("1.2");
    w.bytes(c, b"BEGIN\ntransaction:a\n\n\0BEGIN\ntransaction:b\n\n\0");
    assert_eq!(w.error(c).message(), Some("too many open transactions"));
    let c = w.connect("1.2");
    w.bytes(c, b"BEGIN\ntransaction:a\n\n\0SEND\ndestination:/queue/q\ntransaction:a\n\n1\0SEND\ndestination:/queue/q\ntransaction:a\n\n2\0");
    assert_eq!(w.error(c).message(), Some("transaction too large"));
    let c = w.connect("1.2");
    w.bytes(c, b"BEGIN\ntransaction:a\n\n\0BEGIN\ntransaction:a\n\n\0");
    assert_eq!(w.error(c).message(), Some("transaction already open"));
}

#[test]
fn transaction_byte_limit_counts_headers_not_only_bodies() {
    let mut config = BrokerConfig::default();
    config.limits.max_transaction_bytes = 4096;
    let mut w = World::with(config);
    let c = w.connect("1.2");
    let send = format!(
        "SEND\ndestination:/topic/t\ntransaction:a\nx-pad:{}\n\n\0",
        "p".repeat(1000)
    );
    w.bytes(c, b"BEGIN\ntransaction:a\n\n\0");
    for _ in 0..3 {
        w.bytes(c, send.as_bytes());
    }
    assert!(
        w.frames(c).is_empty(),
        "three bodiless 1 KiB SENDs fit in 4 KiB"
    );
    w.bytes(c, send.as_bytes());
    assert_eq!(w.error(c).message(), Some("transaction too large"));
}

#[test]
fn versions_side_by_side_each_get_their_own_escaping() {
    let mut w = World::new();
    let v10 = w.connect("1.0");
    let v11 = w.connect("1.1");
    let v12 = w.connect("1.2");
    w.bytes(v10, b"SUBSCRIBE\ndestination:/topic/x\n\n\0");
    w.bytes(v11, b"SUBSCRIBE\nid:a\ndestination:/topic/x\n\n\0");
    w.bytes(v12, b"SUBSCRIBE\nid:b\ndestination:/topic/x\n\n\0");
    w.bytes(
        v12,
        b"SEND\ndestination:/topic/x\nk:a\\cb\\nc\nplain:v\n\nbody\0",
    );
    let m10 = &w.frames(v10)[0];
    assert_eq!(
        m10.subscription(),
        Some("/topic/x"),
        "1.0 subscription without id"
    );
    assert_eq!(m10.get("k"), None, "LF cannot be carried in 1.0: dropped");
    assert_eq!(m10.get("plain"), Some("v"));
    let mut p = Parser::new();
    p.set_version(Version::V1_1);
    let m11 = &w.frames(v11)[0];
    assert_eq!(
        m11.get("k"),
        Some("a\\cb\\nc"),
        "read back by a 1.2 parser: raw escapes"
    );
    assert_eq!(w.frames(v12)[0].body(), b"body");
}

// ---------------------------------------------------------------- login and rights

use crate::authz::Permissions;

/// A verdict for `alice`-style principals limited to chat topics.
fn chat_only(r: &AuthRequest) -> Option<Verdict> {
    Some(Verdict::Accepted(Principal {
        login: r.login.clone(),
        permissions: Arc::new(Permissions::new(
            &["/topic/chat.*"],
            &["/topic/chat.*", "/queue/inbox"],
        )),
        credential: Credential::Password,
    }))
}

#[test]
fn connect_waits_for_the_verdict_and_pipelined_frames_wait_behind_it() {
    let mut w = World::new();
    let sub = w.connect("1.2");
    w.bytes(sub, b"SUBSCRIBE\nid:s\ndestination:/topic/a\n\n\0");
    w.judge = |_| None;
    let c = w.open();
    w.bytes(
        c,
        b"CONNECT\naccept-version:1.2\nhost:h\nlogin:alice\npasscode:pw\n\n\0SEND\ndestination:/topic/a\nreceipt:r\n\nearly\0",
    );
    assert!(w.clients[c].session.awaiting_verdict());
    assert!(w.frames(c).is_empty(), "no CONNECTED before the verdict");
    assert!(
        w.frames(sub).is_empty(),
        "the pipelined SEND is not routed yet"
    );
    w.verdict(
        c,
        Verdict::Accepted(Principal {
            login: Some("alice".into()),
            permissions: Arc::new(Permissions::all()),
            credential: Credential::Password,
        }),
    );
    let f = w.frames(c);
    assert_eq!(f[0].command, Command::Connected);
    assert_eq!(f[1].receipt_id(), Some("r"));
    assert_eq!(w.frames(sub)[0].body(), b"early");
    assert_eq!(
        w.clients[c].session.principal().unwrap().login.as_deref(),
        Some("alice")
    );
}

#[test]
fn auth_request_carries_login_and_passcode_once() {
    let mut w = World::new();
    let c = w.open();
    let mut out = Vec::new();
    let frame = Frame::connect("h", "1.2")
        .header("login", "bob")
        .header("passcode", "secret");
    let session = &mut w.clients[c].session;
    assert_eq!(session.take_auth_request(), None);
    session.handle_event(Ok(Event::Frame(frame)), &mut out);
    assert!(
        out.is_empty(),
        "the router hears of it only when the session opens"
    );
    let r = session.take_auth_request().unwrap();
    assert_eq!(
        (r.login.as_deref(), r.passcode.as_deref()),
        (Some("bob"), Some("secret"))
    );
    assert!(
        !format!("{r:?}").contains("secret"),
        "passcode stays out of logs"
    );
    assert_eq!(session.take_auth_request(), None);
    assert!(session.awaiting_verdict());
}

#[test]
fn refused_login_gets_access_refused_and_nothing_pipelined_is_routed() {
    let mut w = World::new();
    let sub = w.connect("1.2");
    w.bytes(sub, b"SUBSCRIBE\nid:s\ndestination:/topic/a\n\n\0");
    w.judge = |_| Some(Verdict::Refused);
    let c = w.open();
    w.bytes(
        c,
        b"CONNECT\naccept-version:1.2\nhost:h\nlogin:x\npasscode:y\n\n\0SEND\ndestination:/topic/a\n\nsneaky\0",
    );
    let e = w.error(c);
    assert_eq!(e.message(), Some("access refused"));
    assert_eq!(w.frames(c).len(), 0);
    assert!(w.clients[c].session.is_closed());
    assert!(w.frames(sub).is_empty());
    // A late verdict changes nothing.
    let mut out = Vec::new();
    let v = w.clients[c].session.handle_verdict(
        Verdict::Accepted(Principal::anonymous()),
        w.now,
        &mut out,
    );
    assert_eq!(v, None);
    assert!(out.is_empty());
}

#[test]
fn a_frame_fed_before_the_verdict_is_an_error() {
    let mut w = World::new();
    let c = w.open();
    let mut out = Vec::new();
    let session = &mut w.clients[c].session;
    session.handle_event(Ok(Event::Frame(Frame::connect("h", "1.2"))), &mut out);
    session.handle_event(Ok(Event::Frame(Frame::send("/topic/a"))), &mut out);
    assert!(out.is_empty());
    assert_eq!(
        w.error(c).message(),
        Some("frame received before login completed")
    );
    assert!(w.clients[c].session.is_closed());
}

#[test]
fn a_verdict_that_never_comes_times_out_after_the_failure_delays() {
    let mut config = BrokerConfig::default();
    config.limits.login_timeout_ms = 1000;
    config.auth.max_failure_delay_ms = 500;
    let mut w = World::with(config);
    w.judge = |_| None;
    let c = w.open();
    w.bytes(c, b"CONNECT\naccept-version:1.2\nhost:h\n\n\0");
    assert_eq!(
        w.clients[c].session.poll_timeout(),
        Some(w.now + Duration::from_millis(2000))
    );
    w.tick(Duration::from_millis(1999));
    assert!(
        w.frames(c).is_empty(),
        "still within login timeout + 2 × delay"
    );
    w.tick(Duration::from_millis(1));
    assert_eq!(
        w.error(c).message(),
        Some("login timeout: login not verified in time")
    );
}

#[test]
fn forbidden_subscribe_is_an_error_with_the_reason() {
    let mut w = World::new();
    w.judge = chat_only;
    let c = w.open();
    w.bytes(c, b"CONNECT\naccept-version:1.2\nhost:h\nlogin:alice\n\n\0");
    w.bytes(c, b"SUBSCRIBE\nid:1\ndestination:/topic/chat.lobby\nreceipt:ok\n\n\0SUBSCRIBE\nid:2\ndestination:/queue/inbox\n\n\0");
    let f = w.frames(c);
    assert_eq!(f[0].command, Command::Connected);
    assert_eq!(f[1].receipt_id(), Some("ok"));
    w.bytes(
        c,
        b"SUBSCRIBE\nid:3\ndestination:/topic/admin\nreceipt:no\n\n\0",
    );
    let e = w.error(c);
    assert_eq!(e.message(), Some("forbidden"));
    assert_eq!(e.receipt_id(), Some("no"));
    assert_eq!(
        String::from_utf8_lossy(e.body()).trim(),
        "alice may not subscribe to /topic/admin"
    );
}

#[test]
fn forbidden_send_is_an_error_even_inside_a_transaction() {
    let mut w = World::new();
    w.judge = chat_only;
    let sub = w.connect("1.2");
    w.bytes(sub, b"SUBSCRIBE\nid:s\ndestination:/topic/chat.a\n\n\0");
    let c = w.connect("1.2");
    w.bytes(c, b"SEND\ndestination:/topic/chat.a\n\nok\0");
    assert_eq!(w.frames(sub)[0].body(), b"ok");
    w.bytes(c, b"BEGIN\ntransaction:t\n\n\0SEND\ndestination:/topic/chat.a\ntransaction:t\n\n1\0SEND\ndestination:/queue/inbox\ntransaction:t\n\n2\0COMMIT\ntransaction:t\n\n\0");
    let e = w.error(c);
    assert_eq!(e.message(), Some("forbidden"));
    assert!(
        String::from_utf8_lossy(e.body()).contains("may not send to /queue/inbox"),
        "{e:?}"
    );
    assert!(w.frames(sub).is_empty(), "the transaction never committed");
}

#[test]
fn anonymous_rules_name_anonymous_clients() {
    let mut w = World::new();
    w.judge = |_| {
        Some(Verdict::Accepted(Principal {
            login: None,
            permissions: Arc::new(Permissions::new(&[] as &[&str], &["/topic/news"])),
            credential: Credential::Anonymous,
        }))
    };
    let c = w.connect("1.2");
    w.bytes(c, b"SEND\ndestination:/topic/news\n\nx\0");
    let e = w.error(c);
    assert_eq!(e.message(), Some("forbidden"));
    assert_eq!(
        String::from_utf8_lossy(e.body()).trim(),
        "anonymous clients may not send to /topic/news"
    );
}

/// A client whose CONNECT carries `extra` header lines (e.g. `client-id:c\n`).
fn connect_with(w: &mut World, extra: &str) -> usize {
    let c = w.open();
    let frame = format!("CONNECT\naccept-version:1.2\nhost:h\n{extra}\n\0");
    w.bytes(c, frame.as_bytes());
    assert_eq!(w.frames(c)[0].command, Command::Connected);
    c
}

#[test]
fn durable_subscriptions_in_both_conventions_keep_messages_while_away() {
    let mut w = World::new();
    let conventions = [
        (
            "client-id:c1\n",
            "SUBSCRIBE\nid:1\ndestination:/topic/t\nactivemq.subscriptionName:s\n\n\0",
            "UNSUBSCRIBE\nid:1\nactivemq.subscriptionName:s\n\n\0",
        ),
        (
            "",
            "SUBSCRIBE\nid:s\ndestination:/topic/t\ndurable:true\nauto-delete:false\n\n\0",
            "UNSUBSCRIBE\nid:s\ndurable:true\n\n\0",
        ),
    ];
    for (connect, subscribe, forget) in conventions {
        let a = connect_with(&mut w, connect);
        w.bytes(a, subscribe.as_bytes());
        w.bytes(a, b"DISCONNECT\n\n\0");
        let p = w.connect("1.2");
        w.bytes(p, b"SEND\ndestination:/topic/t\n\nkept\0");
        let b = connect_with(&mut w, connect);
        w.bytes(b, subscribe.as_bytes());
        let got = w.frames(b);
        assert_eq!(got.len(), 1, "{subscribe}: {got:?}");
        assert_eq!(got[0].body(), b"kept");
        w.bytes(b, forget.as_bytes());
        w.bytes(p, b"SEND\ndestination:/topic/t\n\ngone\0");
        w.bytes(b, subscribe.as_bytes());
        let again = w.frames(b);
        assert!(again.is_empty(), "removed for good: a fresh one: {again:?}");
        w.bytes(b, forget.as_bytes());
    }
}

#[test]
fn an_activemq_durable_subscription_needs_a_client_id() {
    let mut w = World::new();
    let c = w.connect("1.2");
    w.bytes(
        c,
        b"SUBSCRIBE\nid:1\ndestination:/topic/t\nactivemq.subscriptionName:s\n\n\0",
    );
    let e = w.error(c);
    assert!(e.get("message").unwrap().contains("client-id"));
}

#[test]
fn a_nack_with_requeue_false_dead_letters_the_message() {
    let mut w = World::new();
    let c = w.connect("1.2");
    w.bytes(
        c,
        b"SUBSCRIBE\nid:1\ndestination:/queue/q\nack:client-individual\n\n\0",
    );
    w.bytes(c, b"SEND\ndestination:/queue/q\n\nx\0");
    let m = w.frames(c).remove(0);
    let nack = format!("NACK\nid:{}\nrequeue:false\n\n\0", m.ack().unwrap());
    w.bytes(c, nack.as_bytes());
    assert!(w.frames(c).is_empty(), "not redelivered");
    w.bytes(c, b"SUBSCRIBE\nid:2\ndestination:/queue/q.dlq\n\n\0");
    let letter = w.frames(c).remove(0);
    assert_eq!(letter.body(), b"x");
    assert_eq!(letter.get("dead-letter-reason"), Some("nack"));
}

// ---------------------------------------------------------------- temporary destinations

#[test]
fn reply_destinations_take_sends_from_anyone_and_subscribes_from_no_one() {
    let mut w = World::new();
    // May send and subscribe to nothing at all.
    w.judge = |_| {
        Some(Verdict::Accepted(Principal {
            login: Some("mute".into()),
            permissions: Arc::new(Permissions::new(&[] as &[&str], &[] as &[&str])),
            credential: Credential::Password,
        }))
    };
    let c = w.connect("1.2");
    w.bytes(
        c,
        b"SEND\ndestination:/reply-queue/0123\nreceipt:r\n\nreply\0",
    );
    assert_eq!(
        w.frames(c)[0].receipt_id(),
        Some("r"),
        "the name is the capability"
    );
    w.bytes(c, b"SUBSCRIBE\nid:s\ndestination:/reply-queue/0123\n\n\0");
    let e = w.error(c);
    assert_eq!(
        e.message(),
        Some("reply destinations cannot be subscribed to")
    );
}

#[test]
fn temporary_destinations_are_only_for_reply_to() {
    for frame in [
        &b"SEND\ndestination:/temp-queue/a\n\nx\0"[..],
        b"SUBSCRIBE\nid:s\ndestination:/temp-queue/a\n\n\0",
        b"SUBSCRIBE\nid:s\ndestination:/temp-topic/a\n\n\0",
    ] {
        let mut w = World::new();
        let c = w.connect("1.2");
        w.bytes(c, frame);
        let e = w.error(c);
        assert_eq!(
            e.message(),
            Some("temporary destinations are only for the reply-to header"),
            "{}",
            String::from_utf8_lossy(frame)
        );
    }
}

#[test]
fn subscription_ids_of_temporary_destinations_are_reserved() {
    let mut w = World::new();
    let c = w.connect("1.2");
    w.bytes(
        c,
        b"SUBSCRIBE\nid:/temp-queue/a\ndestination:/queue/q\n\n\0",
    );
    assert_eq!(w.error(c).message(), Some("reserved subscription id"));
}

#[test]
fn a_reply_reaches_its_owner_through_sessions() {
    let mut w = World::new();
    let requester = w.connect("1.2");
    let responder = w.connect("1.1");
    w.bytes(responder, b"SUBSCRIBE\nid:s\ndestination:/queue/req\n\n\0");
    w.bytes(
        requester,
        b"SEND\ndestination:/queue/req\nreply-to:/temp-queue/r\n\nask\0",
    );
    let request = &w.frames(responder)[0];
    let reply_to = request.get("reply-to").unwrap().to_owned();
    assert!(reply_to.starts_with("/reply-queue/"), "{reply_to}");
    let reply = format!("SEND\ndestination:{reply_to}\n\nanswer\0");
    w.bytes(responder, reply.as_bytes());
    let got = &w.frames(requester)[0];
    assert_eq!(got.subscription(), Some("/temp-queue/r"));
    assert_eq!(got.body(), b"answer");
    // UNSUBSCRIBE of the implicit subscription: it cannot be cancelled.
    w.bytes(requester, b"UNSUBSCRIBE\nid:/temp-queue/r\n\n\0");
    assert_eq!(
        w.error(requester).message(),
        Some("unknown subscription id")
    );
}
