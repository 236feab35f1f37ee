use super::*;
use crate::auth::Verdict;
use bytes::BytesMut;
use std::time::Duration;
use stompkit_wire::Parser;

/// A session with both outboxes, driven by hand.
struct Harness {
    session: RelaySession,
    to_client: Arc<Outbox>,
    to_upstream: Arc<Outbox>,
    start: Instant,
}

fn config(relay: RelayConfig) -> Arc<BrokerConfig> {
    Arc::new(BrokerConfig {
        relay,
        ..BrokerConfig::default()
    })
}

fn harness_with(relay: RelayConfig, allowed: &[Version]) -> Harness {
    let to_client = Arc::new(Outbox::new(1 << 20));
    let to_upstream = Arc::new(Outbox::new(1 << 20));
    let start = Instant::now();
    let session = RelaySession::new(
        config(relay),
        "127.0.0.1:4000".parse().unwrap(),
        allowed.to_vec(),
        to_client.clone(),
        to_upstream.clone(),
        Arc::new(Metrics::default()),
        start,
    );
    Harness {
        session,
        to_client,
        to_upstream,
        start,
    }
}

fn harness() -> Harness {
    harness_with(RelayConfig::default(), &Version::ALL)
}

/// Every frame queued in `outbox` (heart-beats dropped), parsed for `version`.
fn frames(outbox: &Outbox, version: Option<Version>) -> Vec<Frame> {
    let mut bytes: BytesMut = outbox.drain();
    let mut parser = Parser::new();
    if let Some(v) = version {
        parser.set_version(v);
    }
    let mut out = Vec::new();
    while let Some(event) = parser.parse(&mut bytes).unwrap() {
        if let Event::Frame(frame) = event {
            out.push(frame);
        }
    }
    out
}

fn client_connect(h: &mut Harness, frame: Frame) -> Frame {
    assert_eq!(
        h.session
            .handle_event(Side::Client, Ok(Event::Frame(frame)), h.start),
        None
    );
    assert!(h.session.wants_upstream());
    assert!(
        !h.session.reads_client(),
        "client frames wait for CONNECTED"
    );
    let mut sent = frames(&h.to_upstream, None);
    assert_eq!(sent.len(), 1);
    sent.remove(0)
}

fn upstream(h: &mut Harness, frame: Frame) -> Option<Version> {
    h.session
        .handle_event(Side::Upstream, Ok(Event::Frame(frame)), h.start)
}

/// A session opened at 1.2 with `client_hb` asked by the client and `upstream_hb`
/// answered by the upstream.
fn open(client_hb: &str, upstream_hb: &str) -> Harness {
    let mut h = harness();
    client_connect(
        &mut h,
        Frame::connect("/", "1.2").header("heart-beat", client_hb),
    );
    let connected = Frame::connected(Version::V1_2).header("heart-beat", upstream_hb);
    assert_eq!(upstream(&mut h, connected), Some(Version::V1_2));
    let _ = frames(&h.to_client, None);
    h
}

#[test]
fn the_clients_own_credentials_and_versions_go_upstream() {
    let mut h = harness();
    let sent = client_connect(
        &mut h,
        Frame::new(Command::Stomp)
            .header("accept-version", "1.1,1.2")
            .header("host", "/")
            .header("login", "alice")
            .header("passcode", "s3cret")
            .header("heart-beat", "5000,5000")
            .header("client-id", "c-7"),
    );
    assert_eq!(sent.command, Command::Connect);
    assert_eq!(sent.accept_version(), Some("1.1,1.2"));
    assert_eq!(sent.host(), Some("/"));
    assert_eq!(sent.login(), Some("alice"));
    assert_eq!(sent.passcode(), Some("s3cret"));
    assert_eq!(
        sent.heart_beat(),
        Some("10000,10000"),
        "the relay's own upstream heart-beat"
    );
    assert_eq!(sent.get("client-id"), Some("c-7"), "other headers pass");
    assert!(
        h.to_client.drain().is_empty(),
        "nothing to the client before CONNECTED"
    );
}

#[test]
fn a_configured_login_and_vhost_replace_the_clients() {
    let relay = RelayConfig {
        vhost: "prod".into(),
        login: "relay".into(),
        passcode: "relay-pw".into(),
        ..RelayConfig::default()
    };
    let mut h = harness_with(relay, &Version::ALL);
    let connect = Frame::connect("/", "1.2")
        .header("login", "mallory")
        .header("passcode", "x");
    h.session
        .handle_event(Side::Client, Ok(Event::Frame(connect)), h.start);
    // (The relay's own check of mallory, see below, accepted her.)
    assert!(h.session.take_auth_request().is_some());
    h.session
        .handle_verdict(Verdict::Accepted(Principal::anonymous()), h.start);
    let sent = frames(&h.to_upstream, None).remove(0);
    assert_eq!(sent.host(), Some("prod"));
    assert_eq!(sent.login(), Some("relay"));
    assert_eq!(sent.passcode(), Some("relay-pw"));
    assert_eq!(sent.headers().get_all("login").count(), 1);
}

#[test]
fn a_1_0_client_without_host_sends_none_and_gets_no_heart_beat() {
    let mut h = harness();
    let sent = client_connect(&mut h, Frame::new(Command::Connect));
    assert_eq!(sent.host(), None, "the upstream's default virtual host");
    assert_eq!(sent.accept_version(), None);
    assert_eq!(sent.heart_beat(), None);
    assert_eq!(
        upstream(&mut h, Frame::new(Command::Connected)),
        Some(Version::V1_0)
    );
    let connected = frames(&h.to_client, None);
    assert_eq!(connected[0].command, Command::Connected);
    assert_eq!(connected[0].heart_beat(), None);
}

#[test]
fn connected_opens_both_sides_with_separate_heart_beats() {
    let mut h = harness();
    client_connect(
        &mut h,
        Frame::connect("/", "1.1,1.2").header("heart-beat", "2000,3000"),
    );
    let connected = Frame::connected(Version::V1_2)
        .header("heart-beat", "4000,4000")
        .header("session", "up-1")
        .header("server", "RabbitMQ/3.10.8");
    assert_eq!(upstream(&mut h, connected), Some(Version::V1_2));
    assert!(h.session.reads_client());
    let to_client = frames(&h.to_client, None);
    assert_eq!(to_client.len(), 1);
    let c = &to_client[0];
    assert_eq!(c.version(), Some("1.2"));
    // Mirrored and clamped like the broker's own answer, not the upstream's 4000,4000.
    assert_eq!(c.heart_beat(), Some("3000,2000"));
    assert_eq!(c.session(), Some("up-1"));
    assert_eq!(c.server(), Some("RabbitMQ/3.10.8"));
    // Client side: we send every 3 s and hear from it every 2 s (dead after 3 s);
    // upstream side: both ways every max(10000, 4000) ms.
    h.session
        .on_bytes(Side::Client, h.start + Duration::from_millis(2000), false);
    let t = h.start + Duration::from_millis(3000);
    h.session.handle_timeout(t);
    assert_eq!(&h.to_client.drain()[..], b"\n");
    assert!(h.to_upstream.drain().is_empty());
    h.session.on_bytes(Side::Client, t, false);
    h.session.on_bytes(Side::Upstream, t, false);
    for ms in (4000..=10_000).step_by(1000) {
        let t = h.start + Duration::from_millis(ms);
        h.session.on_bytes(Side::Client, t, false);
        h.session.handle_timeout(t);
    }
    assert_eq!(&h.to_upstream.drain()[..], b"\n");
    assert!(!h.session.is_closed());
}

#[test]
fn a_silent_upstream_is_an_error_to_the_client() {
    let mut h = open("0,0", "10000,10000");
    // Nothing from upstream for 1.5 × 10 s.
    let late = h.start + Duration::from_millis(15_000);
    h.session.handle_timeout(late);
    let error = frames(&h.to_client, Some(Version::V1_2));
    assert_eq!(error[0].command, Command::Error);
    assert_eq!(
        error[0].message(),
        Some("upstream heart-beat timeout: no data from upstream")
    );
    assert!(h.session.is_closed());
    assert!(h.to_upstream.is_closing());
}

#[test]
fn an_upstream_error_reaches_the_client_then_both_close() {
    let mut h = harness();
    client_connect(
        &mut h,
        Frame::connect("/", "1.2").header("passcode", "wrong"),
    );
    let refused = Frame::error("Bad CONNECT").with_body("Access refused for user 'guest'\n");
    assert_eq!(upstream(&mut h, refused), None);
    let to_client = frames(&h.to_client, None);
    assert_eq!(to_client[0].message(), Some("Bad CONNECT"));
    assert_eq!(to_client[0].body(), b"Access refused for user 'guest'\n");
    assert!(h.session.is_closed());
    assert!(h.to_client.is_closing() && h.to_upstream.is_closing());
}

#[test]
fn frames_relay_both_ways_and_invalid_ones_end_the_session() {
    let mut h = open("0,0", "0,0");
    let send = Frame::send("/queue/a").header("x", "a:b").with_body("hi");
    h.session
        .handle_event(Side::Client, Ok(Event::Frame(send.clone())), h.start);
    assert_eq!(frames(&h.to_upstream, Some(Version::V1_2)), vec![send]);
    let message = Frame::new(Command::Message)
        .header("destination", "/queue/a")
        .header("message-id", "m1")
        .header("subscription", "s1")
        .header("ack", "a1")
        .with_body("hi");
    upstream(&mut h, message.clone());
    assert_eq!(frames(&h.to_client, Some(Version::V1_2)), vec![message]);
    // SUBSCRIBE without id in 1.2: ERROR with the receipt, and a DISCONNECT upstream.
    let bad = Frame::new(Command::Subscribe)
        .header("destination", "/queue/a")
        .with_receipt("r9");
    h.session
        .handle_event(Side::Client, Ok(Event::Frame(bad)), h.start);
    let error = frames(&h.to_client, Some(Version::V1_2));
    assert_eq!(error[0].message(), Some("missing id header"));
    assert_eq!(error[0].receipt_id(), Some("r9"));
    assert_eq!(
        frames(&h.to_upstream, Some(Version::V1_2))[0].command,
        Command::Disconnect
    );
    assert!(h.session.is_closed());
}

#[test]
fn the_upstream_may_not_send_client_frames_or_a_second_connected() {
    for frame in [Frame::send("/queue/a"), Frame::connected(Version::V1_2)] {
        let mut h = open("0,0", "0,0");
        upstream(&mut h, frame);
        let error = frames(&h.to_client, Some(Version::V1_2));
        assert!(
            error[0].message().unwrap().starts_with("unexpected "),
            "{error:?}"
        );
        assert!(h.session.is_closed());
    }
}

#[test]
fn disconnect_waits_for_its_receipt() {
    let mut h = open("0,0", "0,0");
    let disconnect = Frame::disconnect().with_receipt("bye");
    h.session
        .handle_event(Side::Client, Ok(Event::Frame(disconnect.clone())), h.start);
    assert_eq!(
        frames(&h.to_upstream, Some(Version::V1_2)),
        vec![disconnect]
    );
    assert!(!h.session.reads_client() && !h.session.is_closed());
    upstream(&mut h, Frame::receipt_for("bye"));
    assert_eq!(
        frames(&h.to_client, Some(Version::V1_2)),
        vec![Frame::receipt_for("bye")]
    );
    assert!(h.session.is_closed());
}

#[test]
fn upstream_failures_before_and_after_connected() {
    let mut h = harness();
    client_connect(&mut h, Frame::connect("/", "1.2"));
    h.session
        .upstream_unavailable("Connection refused (os error 111)");
    let error = frames(&h.to_client, None);
    assert_eq!(error[0].message(), Some("upstream unavailable"));
    assert_eq!(error[0].body(), b"Connection refused (os error 111)\n");

    let mut h = open("0,0", "0,0");
    h.session.upstream_closed();
    let error = frames(&h.to_client, Some(Version::V1_2));
    assert_eq!(error[0].message(), Some("upstream connection lost"));
}

#[test]
fn versions_are_capped_by_the_transport_and_checked_on_connected() {
    let capped = [Version::V1_0, Version::V1_1];
    let mut h = harness_with(RelayConfig::default(), &capped);
    h.session.handle_event(
        Side::Client,
        Ok(Event::Frame(Frame::connect("/", "1.2"))),
        h.start,
    );
    let error = frames(&h.to_client, None);
    assert_eq!(error[0].message(), Some("no supported protocol version"));
    assert!(h.to_upstream.drain().is_empty(), "nothing went upstream");

    let mut h = harness_with(RelayConfig::default(), &capped);
    let sent = client_connect(&mut h, Frame::connect("/", "1.1,1.2"));
    assert_eq!(sent.accept_version(), Some("1.1"));
    // An upstream answering with a version nobody offered is refused.
    assert_eq!(upstream(&mut h, Frame::connected(Version::V1_2)), None);
    let error = frames(&h.to_client, None);
    assert_eq!(
        error[0].message(),
        Some("upstream chose a version the client did not offer")
    );
}

#[test]
fn timers_login_and_connect() {
    let mut h = harness();
    h.session.handle_timeout(h.start + Duration::from_secs(10));
    assert_eq!(
        frames(&h.to_client, None)[0].message(),
        Some("login timeout: no CONNECT frame received")
    );

    let mut h = harness();
    client_connect(&mut h, Frame::connect("/", "1.2"));
    assert_eq!(
        h.session.poll_timeout(),
        Some(h.start + Duration::from_secs(10))
    );
    h.session.handle_timeout(h.start + Duration::from_secs(10));
    assert_eq!(
        frames(&h.to_client, None)[0].message(),
        Some("upstream did not answer CONNECT in time")
    );
}

#[test]
fn a_configured_login_waits_for_the_relays_own_login_check() {
    let relay = RelayConfig {
        login: "svc".into(),
        passcode: "svc-pw".into(),
        ..RelayConfig::default()
    };
    let mut h = harness_with(relay.clone(), &Version::ALL);
    let connect = Frame::connect("/", "1.2")
        .header("login", "alice")
        .header("passcode", "wrong");
    h.session
        .handle_event(Side::Client, Ok(Event::Frame(connect.clone())), h.start);
    assert!(!h.session.wants_upstream() && !h.session.reads_client());
    assert!(
        h.to_upstream.drain().is_empty(),
        "nothing upstream before the check"
    );
    let request = h.session.take_auth_request().unwrap();
    assert_eq!(request.login.as_deref(), Some("alice"));
    assert_eq!(request.passcode.as_deref(), Some("wrong"));
    assert!(h.session.take_auth_request().is_none(), "asked once");
    h.session.handle_verdict(Verdict::Refused, h.start);
    assert_eq!(
        frames(&h.to_client, None)[0].message(),
        Some("access refused")
    );
    assert!(h.session.is_closed() && h.to_upstream.is_closing());

    let mut h = harness_with(relay, &Version::ALL);
    h.session
        .handle_event(Side::Client, Ok(Event::Frame(connect)), h.start);
    let alice = Principal {
        login: Some("alice".into()),
        permissions: Arc::new(crate::authz::Permissions::new(&["/queue/ok"], &["**"])),
        credential: crate::auth::Credential::Password,
    };
    h.session.handle_verdict(Verdict::Accepted(alice), h.start);
    assert!(h.session.wants_upstream());
    let sent = frames(&h.to_upstream, None);
    assert_eq!(
        (sent[0].login(), sent[0].passcode()),
        (Some("svc"), Some("svc-pw"))
    );
    assert_eq!(
        upstream(&mut h, Frame::connected(Version::V1_2)),
        Some(Version::V1_2)
    );
    let _ = frames(&h.to_client, None);
    // The relay's own [auth] rules apply to what goes out under the shared login.
    let ok = Frame::send("/queue/ok");
    h.session
        .handle_event(Side::Client, Ok(Event::Frame(ok.clone())), h.start);
    assert_eq!(frames(&h.to_upstream, Some(Version::V1_2)), vec![ok]);
    let no = Frame::send("/queue/no").with_receipt("r");
    h.session
        .handle_event(Side::Client, Ok(Event::Frame(no)), h.start);
    let error = frames(&h.to_client, Some(Version::V1_2));
    assert_eq!(error[0].message(), Some("forbidden"));
    assert_eq!(error[0].receipt_id(), Some("r"));
    assert_eq!(error[0].body(), b"alice may not send to /queue/no\n");
}

#[test]
fn relay_errors_keep_their_wording() {
    let cases = [
        (
            RelayError::ConnectTimeout,
            "upstream did not answer CONNECT in time",
        ),
        (
            RelayError::HeartBeatTimeout,
            "upstream heart-beat timeout: no data from upstream",
        ),
        (
            RelayError::InvalidFrame(ParseError::BareCr),
            "invalid frame from upstream: bare CR not followed by LF",
        ),
        (RelayError::Unavailable, "upstream unavailable"),
        (RelayError::Closed, "upstream closed the connection"),
        (RelayError::Lost, "upstream connection lost"),
        (
            RelayError::UnexpectedFrame(Command::Connected),
            "unexpected CONNECTED frame from upstream",
        ),
        (
            RelayError::NotConnected(Command::Message),
            "upstream sent MESSAGE instead of CONNECTED",
        ),
        (
            RelayError::VersionNotOffered,
            "upstream chose a version the client did not offer",
        ),
        (
            RelayError::MalformedHeartBeat,
            "malformed heart-beat header from upstream",
        ),
        (RelayError::NotRelayable, "frame cannot be relayed"),
        (
            RelayError::Client(ProtocolError::MissingId),
            "missing id header",
        ),
    ];
    for (error, message) in cases {
        assert_eq!(error.to_string(), message);
    }
}

#[test]
fn a_reload_applies_to_a_session_the_relay_authenticated() {
    use crate::auth::{Authenticator, password};
    use crate::config::{AuthConfig, UserConfig};
    let relay = RelayConfig {
        login: "svc".into(),
        passcode: "svc-pw".into(),
        ..RelayConfig::default()
    };
    let mut h = harness_with(relay, &Version::ALL);
    let connect = Frame::connect("/", "1.2")
        .header("login", "alice")
        .header("passcode", "pw");
    h.session
        .handle_event(Side::Client, Ok(Event::Frame(connect)), h.start);
    h.session.take_auth_request().unwrap();
    let alice = Principal {
        login: Some("alice".into()),
        permissions: Arc::new(crate::authz::Permissions::new(&["/queue/ok"], &["**"])),
        credential: crate::auth::Credential::Password,
    };
    h.session.handle_verdict(Verdict::Accepted(alice), h.start);
    let _ = frames(&h.to_upstream, None);
    upstream(&mut h, Frame::connected(Version::V1_2));
    let _ = frames(&h.to_client, None);

    let cheap = argon2::Params::new(1024, 1, 1, None).unwrap();
    let config = AuthConfig {
        users: vec![UserConfig {
            login: "alice".into(),
            password_hash: password::hash_with("pw", cheap).unwrap(),
            send: Some(vec!["/queue/other".into()]),
            subscribe: None,
            admin: false,
        }],
        ..AuthConfig::default()
    };
    let auth = Authenticator::new(&config).unwrap();
    h.session.reauthorize(&auth);
    let other = Frame::send("/queue/other");
    h.session
        .handle_event(Side::Client, Ok(Event::Frame(other.clone())), h.start);
    assert_eq!(frames(&h.to_upstream, Some(Version::V1_2)), vec![other]);
    assert!(frames(&h.to_client, None).is_empty());

    // alice removed: ERROR, and both sides close.
    let mut without = config.clone();
    without.users.clear();
    without.allow_anonymous = true;
    h.session.reauthorize(&auth.reloaded(&without).unwrap());
    let error = frames(&h.to_client, Some(Version::V1_2));
    assert_eq!(error[0].message(), Some("user removed"));
    assert!(h.session.is_closed() && h.to_upstream.is_closing());
}
