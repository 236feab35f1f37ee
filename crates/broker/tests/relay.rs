//! Relay mode against a real RabbitMQ (Debian `rabbitmq-server` with its STOMP
//! plugin, started on free ports by xtask's RabbitMQ module): messages through the relay over TCP and WebSocket, each client's
//! own credentials forwarded (a wrong passcode gets RabbitMQ's ERROR), a
//! configured upstream login only when set, and an upstream that dies or is
//! not there reaching the client as an ERROR.
//!
//! The test that needs RabbitMQ is `#[ignore]`d in `cargo test`: `cargo xtask ci`
//! runs it in its own step, `relay-tests`, which installs RabbitMQ when allowed
//! (`CI=true`, `--install`) or reports the step as skipped. Run by hand, it fails
//! when RabbitMQ is missing; it never passes without having run. The other tests
//! use a scripted upstream and run everywhere.
#![allow(clippy::unwrap_used)]

mod support;

use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use stompkit_broker::{Broker, BrokerConfig, RunningBroker};
use stompkit_frame::{AckMode, Command, Frame, Version};
use stompkit_tokio::{Event, StompCodec};
use stompkit_ws::{ClientOptions, ClientTransport, StompWebSocket, SubProtocol};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use xtask::rabbitmq::{GUEST, RabbitMq};

const WAIT: Duration = Duration::from_secs(15);

/// A client of the relay: STOMP frames over TCP or over WebSocket.
enum Peer {
    Tcp(Box<Framed<TcpStream, StompCodec>>),
    Ws(Box<StompWebSocket<ClientTransport>>),
}

impl Peer {
    async fn tcp(addr: SocketAddr) -> Peer {
        let stream = TcpStream::connect(addr).await.unwrap();
        Peer::Tcp(Box::new(Framed::new(stream, StompCodec::new())))
    }

    /// A WebSocket client of the relay's `/ws`, offering `subprotocols`.
    async fn ws(addr: SocketAddr, subprotocols: &[SubProtocol]) -> Peer {
        let options = ClientOptions::default().subprotocols(subprotocols.iter().copied());
        let ws = stompkit_ws::connect(&format!("ws://{addr}/ws"), options)
            .await
            .unwrap();
        Peer::Ws(Box::new(ws))
    }

    async fn send(&mut self, frame: Frame) {
        match self {
            Peer::Tcp(framed) => framed.send(frame).await.unwrap(),
            Peer::Ws(ws) => ws.send(frame).await.unwrap(),
        }
    }

    /// The TCP connection under it, for tests that drive it themselves.
    fn into_framed(self) -> Framed<TcpStream, StompCodec> {
        match self {
            Peer::Tcp(framed) => *framed,
            Peer::Ws(_) => panic!("not a TCP peer"),
        }
    }

    fn set_version(&mut self, version: Version) {
        match self {
            Peer::Tcp(framed) => framed.codec_mut().set_version(version),
            Peer::Ws(ws) => ws.set_version(version),
        }
    }

    /// The next frame (heart-beats skipped), `None` once the relay closed.
    async fn next(&mut self) -> Option<Frame> {
        tokio::time::timeout(WAIT, async {
            loop {
                let event = match self {
                    Peer::Tcp(framed) => framed.next().await.map(|e| e.map_err(|e| e.to_string())),
                    Peer::Ws(ws) => ws.next().await.map(|e| e.map_err(|e| e.to_string())),
                };
                match event {
                    Some(Ok(Event::Frame(frame))) => return Some(frame),
                    Some(Ok(Event::HeartBeat)) => continue,
                    Some(Err(_)) | None => return None,
                }
            }
        })
        .await
        .expect("timed out waiting for a frame from the relay")
    }

    async fn frame(&mut self) -> Frame {
        self.next().await.expect("the relay closed the connection")
    }

    /// CONNECT as 1.2 with these credentials (none when `None`); the reply.
    async fn connect(&mut self, credentials: Option<(&str, &str)>) -> Frame {
        let reply = self.connect_with("1.2", credentials).await;
        if reply.command == Command::Connected {
            assert_eq!(reply.version(), Some("1.2"), "{reply:?}");
        }
        reply
    }

    /// CONNECT offering `accept_version`; the reply (the peer then speaks its version).
    async fn connect_with(
        &mut self,
        accept_version: &str,
        credentials: Option<(&str, &str)>,
    ) -> Frame {
        let mut connect = Frame::connect("/", accept_version).header("heart-beat", "0,0");
        if let Some((login, passcode)) = credentials {
            connect = connect.header("login", login).header("passcode", passcode);
        }
        self.send(connect).await;
        let reply = self.frame().await;
        if reply.command == Command::Connected {
            self.set_version(reply.version().unwrap().parse().unwrap());
        }
        reply
    }

    /// Waits for the RECEIPT `id`, returning the frames that came before it.
    async fn until_receipt(&mut self, id: &str) -> Vec<Frame> {
        let mut before = Vec::new();
        loop {
            let frame = self.frame().await;
            if frame.command == Command::Receipt && frame.receipt_id() == Some(id) {
                return before;
            }
            assert_ne!(frame.command, Command::Error, "{frame:?}");
            before.push(frame);
        }
    }
}

/// The workspace's target directory (RabbitMQ's files go under it).
fn target_dir() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap()
}

/// A relay in front of `upstream`, with `tweak` applied to its config.
async fn relay(upstream: SocketAddr, tweak: impl FnOnce(&mut BrokerConfig)) -> RunningBroker {
    let mut config = BrokerConfig::default();
    config.server.listen = vec!["127.0.0.1:0".into()];
    support::in_memory(&mut config);
    config.server.close_linger_ms = 500;
    config.relay.upstream = format!("stomp://{upstream}");
    config.relay.connect_timeout_ms = 5000;
    tweak(&mut config);
    Broker::bind(config).await.unwrap()
}

/// Queue and topic delivery, client-individual ACK, a binary body and
/// escaped headers, all through the relay; DISCONNECT's receipt comes back.
async fn send_and_subscribe(mut peer: Peer, tag: &str) {
    let reply = peer.connect(Some(GUEST)).await;
    assert_eq!(reply.command, Command::Connected, "{reply:?}");
    assert!(
        reply.server().unwrap_or("").starts_with("RabbitMQ"),
        "{reply:?}"
    );
    let queue = format!("/queue/relay-{tag}");
    peer.send(Frame::subscribe(&queue, "q", AckMode::ClientIndividual).with_receipt("sub-q"))
        .await;
    peer.until_receipt("sub-q").await;
    peer.send(
        Frame::subscribe(&format!("/topic/relay-{tag}"), "t", AckMode::Auto).with_receipt("sub-t"),
    )
    .await;
    peer.until_receipt("sub-t").await;
    let body = b"bin\0ary \xff body".to_vec();
    peer.send(
        Frame::send(&queue)
            .header("x-note", "a:b\\c")
            .header("content-type", "application/octet-stream")
            .with_receipt("sent-q")
            .with_body(body.clone()),
    )
    .await;
    peer.send(Frame::send(&format!("/topic/relay-{tag}")).with_body(format!("hello {tag}")))
        .await;
    let mut messages = peer.until_receipt("sent-q").await;
    while messages.len() < 2 {
        messages.push(peer.frame().await);
    }
    let on_queue = messages
        .iter()
        .find(|m| m.subscription() == Some("q"))
        .unwrap();
    assert_eq!(on_queue.command, Command::Message);
    assert_eq!(on_queue.body(), &body[..], "binary body intact");
    assert_eq!(
        on_queue.get("x-note"),
        Some("a:b\\c"),
        "escaped header intact"
    );
    let on_topic = messages
        .iter()
        .find(|m| m.subscription() == Some("t"))
        .unwrap();
    assert_eq!(on_topic.body(), format!("hello {tag}").as_bytes());
    // 1.2 ACK by the MESSAGE's `ack` header, as RabbitMQ issued it.
    let ack = on_queue.ack().unwrap().to_owned();
    peer.send(
        Frame::new(Command::Ack)
            .header("id", &ack)
            .with_receipt("acked"),
    )
    .await;
    peer.until_receipt("acked").await;
    peer.send(Frame::disconnect().with_receipt("bye")).await;
    peer.until_receipt("bye").await;
    assert!(
        peer.next().await.is_none(),
        "closed after DISCONNECT's receipt"
    );
}

/// The client's own passcode goes upstream: a wrong one gets RabbitMQ's ERROR.
async fn wrong_passcode_gets_the_upstreams_error(mut peer: Peer) {
    let reply = peer.connect(Some((GUEST.0, "not-the-passcode"))).await;
    assert_eq!(reply.command, Command::Error, "{reply:?}");
    let text = format!(
        "{} {}",
        reply.message().unwrap_or(""),
        String::from_utf8_lossy(reply.body())
    );
    assert!(
        text.contains("ccess refused"),
        "RabbitMQ's own refusal: {text}"
    );
    assert!(peer.next().await.is_none(), "closed after the ERROR");
}

#[test]
#[ignore = "needs RabbitMQ: run by `cargo xtask ci --only relay-tests`"]
fn relay_to_rabbitmq() {
    let rabbit = RabbitMq::start(target_dir())
        .unwrap_or_else(|error| panic!("RabbitMQ did not start: {error:#}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let upstream = rabbit.stomp;
        let broker = relay(upstream, |_| {}).await;
        let addr = broker.local_addrs()[0];

        send_and_subscribe(Peer::tcp(addr).await, "tcp").await;
        wrong_passcode_gets_the_upstreams_error(Peer::tcp(addr).await).await;
        send_and_subscribe(Peer::ws(addr, &SubProtocol::ALL).await, "ws").await;
        wrong_passcode_gets_the_upstreams_error(Peer::ws(addr, &SubProtocol::ALL).await).await;
        // The WebSocket sub-protocol caps what is offered upstream: v11.stomp → 1.1.
        let mut peer = Peer::ws(addr, &[SubProtocol::V11]).await;
        let reply = peer.connect_with("1.1,1.2", Some(GUEST)).await;
        assert_eq!(reply.command, Command::Connected, "{reply:?}");
        assert_eq!(reply.version(), Some("1.1"), "{reply:?}");
        peer.send(Frame::send("/queue/relay-v11").with_receipt("r"))
            .await;
        peer.until_receipt("r").await;

        // A relay configured with an upstream login uses it for every client.
        let with_login = relay(upstream, |config| {
            config.relay.login = GUEST.0.into();
            config.relay.passcode = GUEST.1.into();
        })
        .await;
        let mut peer = Peer::tcp(with_login.local_addrs()[0]).await;
        let reply = peer.connect(Some(("anyone", "anything"))).await;
        assert_eq!(reply.command, Command::Connected, "{reply:?}");

        // The upstream dies under an open session: the client gets an ERROR, then close.
        let mut peer = Peer::tcp(addr).await;
        assert_eq!(peer.connect(Some(GUEST)).await.command, Command::Connected);
        peer.send(Frame::subscribe("/queue/relay-kill", "k", AckMode::Auto).with_receipt("s"))
            .await;
        peer.until_receipt("s").await;
        tokio::task::spawn_blocking(move || drop(rabbit))
            .await
            .unwrap();
        let error = peer.frame().await;
        assert_eq!(error.command, Command::Error, "{error:?}");
        assert_eq!(
            error.message(),
            Some("upstream connection lost"),
            "{error:?}"
        );
        assert!(peer.next().await.is_none(), "closed after the ERROR");
        // And with no upstream at all, CONNECT gets an ERROR instead of a hang.
        let reply = Peer::tcp(addr).await.connect(Some(GUEST)).await;
        assert_eq!(reply.command, Command::Error, "{reply:?}");
        assert_eq!(reply.message(), Some("upstream unavailable"), "{reply:?}");
    });
}

// ------------------------------------------- against a scripted upstream

/// A scripted upstream broker: accepts one relayed session and answers its
/// CONNECT with CONNECTED (version 1.2, `heart_beat`).
struct Scripted {
    listener: tokio::net::TcpListener,
}

impl Scripted {
    async fn bind() -> Scripted {
        Scripted {
            listener: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap()
    }

    /// Accepts the relay's connection, reads its CONNECT, answers CONNECTED.
    async fn accept(&self, heart_beat: &str) -> (Framed<TcpStream, StompCodec>, Frame) {
        let (stream, _) = self.listener.accept().await.unwrap();
        let mut framed = Framed::new(stream, StompCodec::new());
        let connect = match framed.next().await {
            Some(Ok(Event::Frame(frame))) => frame,
            other => panic!("expected CONNECT, got {other:?}"),
        };
        framed
            .send(Frame::connected(Version::V1_2).header("heart-beat", heart_beat))
            .await
            .unwrap();
        framed.codec_mut().set_version(Version::V1_2);
        (framed, connect)
    }
}

fn message(n: usize, body: &bytes::Bytes) -> Frame {
    Frame::new(Command::Message)
        .header("destination", "/queue/flood")
        .header("message-id", &n.to_string())
        .header("subscription", "s")
        .with_body(body.clone())
}

/// The relay's bound toward each side in these tests, and what a flood sends:
/// without back-pressure all of it would be taken at once.
const BOUND: usize = 64 * 1024;
const FLOOD_FRAMES: usize = 1024;
const FLOOD_BYTES: usize = FLOOD_FRAMES * BOUND;

/// Sends `FLOOD_FRAMES` frames made by `make` into `sink` in a task; returns
/// the task and the count of body bytes sent so far.
fn flood<S>(
    mut sink: S,
    make: impl Fn(usize, &bytes::Bytes) -> Frame + Send + 'static,
) -> (
    tokio::task::JoinHandle<S>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
)
where
    S: futures_util::Sink<Frame> + Unpin + Send + 'static,
    S::Error: std::fmt::Debug,
{
    let body = bytes::Bytes::from(vec![b'x'; BOUND]);
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let progress = sent.clone();
    let task = tokio::spawn(async move {
        for n in 0..FLOOD_FRAMES {
            sink.send(make(n, &body)).await.unwrap();
            progress.fetch_add(body.len(), std::sync::atomic::Ordering::Relaxed);
        }
        sink
    });
    (task, sent)
}

/// After a pause, a flood toward a peer that does not read has stalled well
/// short of its end: only socket buffers and the relay's bound hold bytes.
async fn assert_stalled(sent: &std::sync::atomic::AtomicUsize) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stalled = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        stalled < FLOOD_BYTES / 2,
        "{stalled} of {FLOOD_BYTES} bytes taken by a relay toward a peer that does not read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_upstream_to_a_client_that_does_not_read() {
    let upstream = Scripted::bind().await;
    // Heart-beats on: a stalled upstream is not taken for a dead one.
    let broker = relay(upstream.addr(), |config| {
        config.limits.max_outbox_bytes = BOUND;
        config.relay.heartbeat_ms = 200;
    })
    .await;
    let mut client = Peer::tcp(broker.local_addrs()[0]).await;
    let ((framed, _), reply) = tokio::join!(upstream.accept("200,0"), client.connect(Some(GUEST)));
    assert_eq!(reply.command, Command::Connected);
    let (task, sent) = flood(framed, message);
    assert_stalled(&sent).await;
    for n in 0..FLOOD_FRAMES {
        let frame = client.frame().await;
        assert_eq!(
            frame.message_id(),
            Some(n.to_string().as_str()),
            "in order, none lost"
        );
    }
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_client_to_an_upstream_that_does_not_read() {
    let upstream = Scripted::bind().await;
    // Heart-beats on: a client the relay does not read is not taken for a dead one.
    let broker = relay(upstream.addr(), |config| {
        config.limits.max_outbox_bytes = BOUND;
        config.heartbeat.min_ms = 100;
    })
    .await;
    let mut client = Peer::tcp(broker.local_addrs()[0]).await;
    client
        .send(Frame::connect("/", "1.2").header("heart-beat", "200,0"))
        .await;
    let (mut framed, _) = upstream.accept("0,0").await;
    let reply = client.frame().await;
    assert_eq!(reply.command, Command::Connected);
    assert_eq!(reply.heart_beat(), Some("0,200"), "{reply:?}");
    client.set_version(Version::V1_2);
    let (task, sent) = flood(client.into_framed(), |n, body| {
        Frame::send("/queue/flood")
            .header("n", &n.to_string())
            .with_body(body.clone())
    });
    assert_stalled(&sent).await;
    for n in 0..FLOOD_FRAMES {
        let frame = match framed.next().await {
            Some(Ok(Event::Frame(frame))) => frame,
            other => panic!("expected SEND {n}, got {other:?}"),
        };
        assert_eq!(
            frame.get("n"),
            Some(n.to_string().as_str()),
            "in order, none lost"
        );
    }
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heart_beats_are_kept_separately_on_each_side() {
    let upstream = Scripted::bind().await;
    let broker = relay(upstream.addr(), |config| {
        config.heartbeat.min_ms = 100;
        config.relay.heartbeat_ms = 150;
    })
    .await;
    let mut client = Peer::tcp(broker.local_addrs()[0]).await.into_framed();
    client
        .send(Frame::connect("/", "1.2").header("heart-beat", "0,100"))
        .await
        .unwrap();
    // The upstream asks for beats from the relay every 150 ms and sends none;
    // the client wants beats every 100 ms and sends none.
    let (mut up, connect) = upstream.accept("0,150").await;
    assert_eq!(
        connect.heart_beat(),
        Some("150,150"),
        "the relay's own offer upstream"
    );
    let connected = match client.next().await {
        Some(Ok(Event::Frame(frame))) => frame,
        other => panic!("expected CONNECTED, got {other:?}"),
    };
    assert_eq!(
        connected.heart_beat(),
        Some("100,0"),
        "answered for the client side"
    );
    let count_beats =
        |events: Vec<Event>| events.iter().filter(|e| **e == Event::HeartBeat).count();
    let window = Duration::from_millis(1500);
    let (to_client, to_upstream) = tokio::join!(
        collect_for(&mut client, window),
        collect_for(&mut up, window)
    );
    assert!(
        count_beats(to_client) >= 5,
        "the client got beats though the upstream sent none"
    );
    assert!(
        count_beats(to_upstream) >= 4,
        "the upstream got beats though the client sent none"
    );
}

/// Every event `framed` yields within `window`.
async fn collect_for(framed: &mut Framed<TcpStream, StompCodec>, window: Duration) -> Vec<Event> {
    let mut events = Vec::new();
    let _ = tokio::time::timeout(window, async {
        while let Some(Ok(event)) = framed.next().await {
            events.push(event);
        }
    })
    .await;
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_ends_its_upstream_session() {
    let upstream = Scripted::bind().await;
    let broker = relay(upstream.addr(), |_| {}).await;
    let mut client = Peer::tcp(broker.local_addrs()[0]).await;
    let ((mut framed, _), reply) =
        tokio::join!(upstream.accept("0,0"), client.connect(Some(GUEST)));
    assert_eq!(reply.command, Command::Connected);
    drop(client);
    let rest = collect_for(&mut framed, WAIT).await;
    assert!(
        matches!(&rest[..], [Event::Frame(f)] if f.command == Command::Disconnect),
        "a DISCONNECT, then the upstream connection closed: {rest:?}"
    );
}

/// A certificate for `localhost` made now, and a PEM file holding it (the CA
/// file a relay trusts).
#[cfg(feature = "tls")]
fn certificate(name: &str) -> (tokio_rustls::TlsAcceptor, std::path::PathBuf) {
    use tokio_rustls::rustls;
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = std::env::temp_dir().join(format!("stompkit-relay-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join(format!("{name}.pem"));
    std::fs::write(&ca_file, ck.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der());
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key.into())
        .unwrap();
    (
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)),
        ca_file,
    )
}

#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stomp_ssl_upstream_with_a_ca_file() {
    let (acceptor, ca_file) = certificate("trusted");
    let (_, other_ca) = certificate("other");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let upstream = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        let mut framed = Framed::new(tls, StompCodec::new());
        let connect = match framed.next().await {
            Some(Ok(Event::Frame(frame))) => frame,
            other => panic!("expected CONNECT, got {other:?}"),
        };
        framed.send(Frame::connected(Version::V1_2)).await.unwrap();
        framed.codec_mut().set_version(Version::V1_2);
        framed
            .send(message(7, &bytes::Bytes::from_static(b"over tls")))
            .await
            .unwrap();
        // The second connection (the relay that trusts another CA) and the third
        // (no CA file: the system's roots, which did not sign this certificate)
        // fail their handshakes.
        let mut refused = Vec::new();
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            refused.push(acceptor.accept(tcp).await.is_err());
        }
        (connect, refused)
    });
    let tls_relay = |ca_file: Option<std::path::PathBuf>| {
        move |config: &mut BrokerConfig| {
            config.relay.upstream = format!("stomp+ssl://localhost:{port}");
            if let Some(ca_file) = ca_file {
                config.relay.ca_file = ca_file.display().to_string();
            }
        }
    };
    let broker = relay(([127, 0, 0, 1], port).into(), tls_relay(Some(ca_file))).await;
    let mut client = Peer::tcp(broker.local_addrs()[0]).await;
    assert_eq!(
        client.connect(Some(("alice", "pw"))).await.command,
        Command::Connected
    );
    let delivered = client.frame().await;
    assert_eq!(delivered.body(), b"over tls");

    let untrusting = relay(([127, 0, 0, 1], port).into(), tls_relay(Some(other_ca))).await;
    let reply = Peer::tcp(untrusting.local_addrs()[0])
        .await
        .connect(Some(GUEST))
        .await;
    assert_eq!(reply.message(), Some("upstream unavailable"), "{reply:?}");
    // No CA file: the relay starts (it trusts the system's roots) but does not
    // trust the self-signed upstream.
    let system_roots = relay(([127, 0, 0, 1], port).into(), tls_relay(None)).await;
    let reply = Peer::tcp(system_roots.local_addrs()[0])
        .await
        .connect(Some(GUEST))
        .await;
    assert_eq!(reply.message(), Some("upstream unavailable"), "{reply:?}");
    let (connect, refused) = upstream.await.unwrap();
    assert_eq!(
        connect.login(),
        Some("alice"),
        "the client's login went upstream over TLS"
    );
    assert_eq!(
        refused,
        [true, true],
        "no session with an upstream whose certificate is not trusted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_upstream_login_needs_the_relays_own_login_check() {
    use stompkit_broker::UserConfig;
    use stompkit_broker::auth::{config::Secret, token};
    const SECRET: &str = "relay-test-secret-0123456789";
    let upstream = Scripted::bind().await;
    let broker = relay(upstream.addr(), |config| {
        config.relay.login = "svc".into();
        config.relay.passcode = "svc-pw".into();
        config.auth.token_secret = Secret::new(SECRET);
        config.auth.failure_delay_ms = 0;
        config.auth.max_failure_delay_ms = 0;
        config.auth.users = vec![UserConfig {
            login: "alice".into(),
            password_hash: String::new(),
            send: Some(vec!["/queue/ok".into()]),
            subscribe: None,
            admin: false,
        }];
    })
    .await;
    let addr = broker.local_addrs()[0];
    let refused = Peer::tcp(addr)
        .await
        .connect(Some(("alice", "v1.1.bad")))
        .await;
    assert_eq!(refused.message(), Some("access refused"), "{refused:?}");
    let expiry = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let alice = token::mint(SECRET.as_bytes(), "alice", expiry);
    let mut client = Peer::tcp(addr).await;
    let ((mut framed, connect), reply) = tokio::join!(
        upstream.accept("0,0"),
        client.connect(Some(("alice", &alice)))
    );
    assert_eq!(reply.command, Command::Connected, "{reply:?}");
    assert_eq!(
        (connect.login(), connect.passcode()),
        (Some("svc"), Some("svc-pw")),
        "the configured login went upstream, not the client's token"
    );
    client
        .send(Frame::send("/queue/ok").with_body("fine"))
        .await;
    client
        .send(Frame::send("/queue/no").with_body("not for alice"))
        .await;
    let error = client.frame().await;
    assert_eq!(error.message(), Some("forbidden"), "{error:?}");
    let upstream_got = collect_for(&mut framed, WAIT).await;
    let sends: Vec<_> = upstream_got
        .iter()
        .filter_map(|e| match e {
            Event::Frame(f) if f.command == Command::Send => f.destination(),
            _ => None,
        })
        .collect();
    assert_eq!(sends, ["/queue/ok"], "only the allowed SEND went upstream");
}
