//! stompkit-tokio's async client against the real `stompkit-broker` binary
//! (`--in-memory`, `127.0.0.1:0`): acknowledgements of a message received
//! before a reconnect are refused with `StaleAck` and nothing reaches the
//! broker; failover from a SIGKILLed broker to a second one, with the
//! connection events in order; the client over `ws://` (through
//! `stompkit_ws::connector`, reconnecting over WebSocket too) and `wss://`.
//!
//! Connections are cut without touching the broker by a TCP relay in front of
//! it ([`Cutter`]): the broker sees its client go away (and puts unacknowledged
//! messages back), the client sees its connection closed.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)] // the durable tests' harness: only the broker process is used here
#[path = "durable/harness.rs"]
mod harness;

use futures_util::StreamExt;
#[cfg(feature = "tls")]
use harness::BROKER;
use harness::{BrokerProcess, Scratch, WAIT};
#[cfg(feature = "tls")]
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
#[cfg(feature = "tls")]
use std::process::{Child, Command as Process, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stompkit_frame::{AckMode, Frame};
use stompkit_tokio::{
    Client, ClientConfig, ClientError, ConnectionEvent, ConnectionEvents, Connector, Jitter,
    Message, Reconnect, SubscribeOptions, Subscription,
};
use stompkit_ws::ClientOptions;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The broker binary, in memory, on an ephemeral port.
fn broker(name: &str) -> (Scratch, BrokerProcess) {
    let scratch = Scratch::new(name);
    let process = scratch.in_memory().start();
    (scratch, process)
}

/// Quick reconnects for tests.
fn config() -> ClientConfig {
    ClientConfig::new("localhost").reconnect(Reconnect {
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        jitter: Jitter::Full,
        ..Reconnect::default()
    })
}

/// A TCP relay to `upstream` whose connections can all be cut at once.
struct Cutter {
    addr: SocketAddr,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Cutter {
    async fn start(upstream: SocketAddr) -> Cutter {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let links = links.clone();
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let link = tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(upstream).await else {
                            return;
                        };
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    });
                    links.lock().unwrap().push(link);
                }
            }
        });
        Cutter {
            addr,
            links,
            accept,
        }
    }

    /// Closes every relayed connection (both sides see it end).
    fn cut(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

impl Drop for Cutter {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// The next event, within [`WAIT`].
async fn next_event(events: &mut ConnectionEvents) -> ConnectionEvent {
    tokio::time::timeout(WAIT, events.next())
        .await
        .expect("no connection event in time")
        .expect("the event stream ended")
}

/// Skips `Reconnecting` events (their number depends on timing) until the
/// next other one.
async fn next_change(events: &mut ConnectionEvents) -> ConnectionEvent {
    loop {
        match next_event(events).await {
            ConnectionEvent::Reconnecting { attempt, delay } => {
                assert!(attempt >= 1 && delay <= Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

/// The next message of `sub`, within [`WAIT`].
async fn next_message(sub: &mut Subscription) -> Message {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("no message in time")
        .expect("the subscription ended")
        .expect("the subscription failed")
}

/// Sends `body` to `destination` and waits for the broker's RECEIPT.
async fn publish(client: &Client, destination: &str, body: &str) {
    let frame = Frame::send(destination).with_body(body.to_string());
    let receipt = client.send_with_receipt(frame).await.unwrap();
    tokio::time::timeout(WAIT, receipt).await.unwrap().unwrap();
}

/// Subscribes and waits until the broker has the subscription.
async fn subscribe(client: &Client, destination: &str, ack: AckMode) -> Subscription {
    let options = SubscribeOptions::new(destination).ack(ack);
    let (sub, receipt) = client.subscribe_with_receipt(options).await.unwrap();
    tokio::time::timeout(WAIT, receipt).await.unwrap().unwrap();
    sub
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_from_before_a_reconnect_is_stale_and_never_sent() {
    let (_scratch, broker) = broker("client-stale");
    let relay = Cutter::start(broker.addr).await;
    let client = Client::connect_with(Connector::tcp(relay.addr.to_string()), config())
        .await
        .unwrap();
    let mut events = client.events();
    assert!(matches!(
        next_event(&mut events).await,
        ConnectionEvent::Connected { .. }
    ));
    let mut sub = subscribe(&client, "/queue/stale", AckMode::ClientIndividual).await;
    publish(&client, "/queue/stale", "one").await;
    let before = next_message(&mut sub).await;
    assert_eq!(before.body(), b"one");
    let tx = client.begin().await.unwrap();
    let receipted_tx = client.begin().await.unwrap();

    // The connection goes; the broker puts the unacknowledged message back
    // and delivers it again on the new connection.
    relay.cut();
    match next_change(&mut events).await {
        ConnectionEvent::Disconnected { reason, .. } => {
            assert!(reason.is_connection_loss(), "{reason:?}")
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert!(matches!(
        next_change(&mut events).await,
        ConnectionEvent::Reconnected { .. }
    ));
    let again = next_message(&mut sub).await;
    assert_eq!(again.body(), b"one");
    assert_eq!(again.header("redelivered"), Some("true"), "{again:?}");

    // The old delivery is unknown to the broker: refused here, nothing sent.
    for result in [
        before.ack().await,
        before.nack().await,
        client.ack(&before).await,
        tx.ack(&before).await,
        tx.ack(&again).await,
    ] {
        assert!(matches!(result, Err(ClientError::StaleAck)), "{result:?}");
    }
    assert!(matches!(tx.commit().await, Err(ClientError::StaleAck)));
    assert!(matches!(
        receipted_tx.commit_with_receipt().await,
        Err(ClientError::StaleAck)
    ));

    // The session is fine: the new delivery is acknowledged, the broker
    // answers a receipt (an ACK with an unknown id would have been an ERROR
    // that closes the connection).
    again.ack().await.unwrap();
    publish(&client, "/queue/other", "probe").await;
    assert!(client.closed_error().is_none());
    client.disconnect().await.unwrap();
    assert!(matches!(
        next_change(&mut events).await,
        ConnectionEvent::Closed {
            reason: ClientError::Disconnected
        }
    ));

    // The ACK went through: nothing is left on the queue.
    let check = Client::connect_tcp(broker.addr.to_string(), ClientConfig::new("localhost"))
        .await
        .unwrap();
    let mut left = subscribe(&check, "/queue/stale", AckMode::Auto).await;
    publish(&check, "/queue/stale", "end").await;
    assert_eq!(next_message(&mut left).await.body(), b"end");
    check.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_the_second_broker_with_events_in_order() {
    let (_first_scratch, first) = broker("client-failover-a");
    let (_second_scratch, second) = broker("client-failover-b");
    let connector = Connector::failover(vec![
        Connector::tcp(first.addr.to_string()),
        Connector::tcp(second.addr.to_string()),
    ]);
    let client = Client::connect_with(connector, config()).await.unwrap();
    let mut events = client.events();
    let first_name = format!("tcp {}", first.addr);
    let second_name = format!("tcp {}", second.addr);
    match next_event(&mut events).await {
        ConnectionEvent::Connected { server } => assert_eq!(&*server, first_name),
        other => panic!("expected Connected, got {other:?}"),
    }
    let mut sub = subscribe(&client, "/topic/news", AckMode::Auto).await;
    publish(&client, "/topic/news", "from the first").await;
    assert_eq!(next_message(&mut sub).await.body(), b"from the first");

    first.crash();
    match next_event(&mut events).await {
        ConnectionEvent::Disconnected { server, reason } => {
            assert_eq!(&*server, first_name);
            assert!(reason.is_connection_loss(), "{reason:?}");
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
    match next_event(&mut events).await {
        ConnectionEvent::Reconnecting { attempt, delay } => {
            assert_eq!(attempt, 1);
            assert!(delay <= Duration::from_millis(20), "{delay:?}");
        }
        other => panic!("expected Reconnecting, got {other:?}"),
    }
    // The round starts with the server after the lost one: the second.
    match next_event(&mut events).await {
        ConnectionEvent::Reconnected { server, attempts } => {
            assert_eq!(&*server, second_name);
            assert_eq!(attempts, 1);
        }
        other => panic!("expected Reconnected, got {other:?}"),
    }

    // The subscription was made again on the second broker.
    publish(&client, "/topic/news", "from the second").await;
    assert_eq!(next_message(&mut sub).await.body(), b"from the second");
    let other = Client::connect_tcp(second.addr.to_string(), ClientConfig::new("localhost"))
        .await
        .unwrap();
    publish(&other, "/topic/news", "from another client").await;
    assert_eq!(next_message(&mut sub).await.body(), b"from another client");
    other.disconnect().await.unwrap();

    client.disconnect().await.unwrap();
    assert!(matches!(
        next_event(&mut events).await,
        ConnectionEvent::Closed {
            reason: ClientError::Disconnected
        }
    ));
    assert!(events.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_over_websocket_reconnects_over_websocket() {
    let (_scratch, broker) = broker("client-ws");
    let relay = Cutter::start(broker.addr).await;
    let url = format!("ws://{}/ws", relay.addr);
    let client = stompkit_ws::connect_client(&url, config(), ClientOptions::default())
        .await
        .unwrap();
    let mut events = client.events();
    match next_event(&mut events).await {
        ConnectionEvent::Connected { server } => assert_eq!(&*server, url),
        other => panic!("expected Connected, got {other:?}"),
    }
    // A peer over plain TCP on the same port.
    let tcp = Client::connect_tcp(broker.addr.to_string(), ClientConfig::new("localhost"))
        .await
        .unwrap();
    let mut sub = subscribe(&client, "/queue/ws", AckMode::Client).await;
    publish(&tcp, "/queue/ws", "over tcp").await;
    let m = next_message(&mut sub).await;
    assert_eq!(m.body(), b"over tcp");
    m.ack().await.unwrap();
    let big = "x".repeat(200 * 1024);
    publish(&client, "/queue/ws", &big).await;
    let m = next_message(&mut sub).await;
    assert!(m.body() == big.as_bytes(), "{} bytes", m.body().len());
    m.ack().await.unwrap();
    // The ACK is in before the cut (a receipt answers after what came before).
    publish(&client, "/queue/elsewhere", "probe").await;

    relay.cut();
    assert!(matches!(
        next_change(&mut events).await,
        ConnectionEvent::Disconnected { .. }
    ));
    match next_change(&mut events).await {
        ConnectionEvent::Reconnected { server, .. } => assert_eq!(&*server, url),
        other => panic!("expected Reconnected, got {other:?}"),
    }
    publish(&tcp, "/queue/ws", "after the cut").await;
    let m = next_message(&mut sub).await;
    assert_eq!(m.body(), b"after the cut");
    m.ack().await.unwrap();
    client.disconnect().await.unwrap();
    tcp.disconnect().await.unwrap();
}

/// The broker binary serving STOMP and WebSocket over TLS (`tls://`) with a
/// certificate for `localhost` made here; killed on drop.
#[cfg(feature = "tls")]
struct TlsBroker {
    child: Child,
    port: u16,
    ca: std::path::PathBuf,
    _scratch: Scratch,
}

#[cfg(feature = "tls")]
impl TlsBroker {
    fn start() -> TlsBroker {
        let scratch = Scratch::new("client-wss");
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert, key) = (
            scratch.root().join("cert.pem"),
            scratch.root().join("key.pem"),
        );
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
        let mut child = Process::new(BROKER)
            .args(["--listen", "tls://127.0.0.1:0", "--in-memory"])
            .args(["--log-level", "warn"])
            .env("STOMPKIT_TLS_CERT_FILE", &cert)
            .env("STOMPKIT_TLS_KEY_FILE", &key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let port = loop {
            let line = rx
                .recv_timeout(WAIT)
                .expect("no `websocket on wss://` line");
            if let Some(rest) = line.strip_prefix("stompkit-broker websocket on wss://") {
                let addr: SocketAddr = rest.trim_end_matches("/ws").parse().unwrap();
                break addr.port();
            }
        };
        TlsBroker {
            child,
            port,
            ca: cert,
            _scratch: scratch,
        }
    }
}

#[cfg(feature = "tls")]
impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_over_wss() {
    let broker = TlsBroker::start();
    let tls = stompkit_tokio::tls::client_config_from_ca_file(&broker.ca).unwrap();
    let url = format!("wss://localhost:{}/ws", broker.port);
    let options = ClientOptions::default().tls(tls.clone());
    let client = stompkit_ws::connect_client(&url, ClientConfig::new("localhost"), options)
        .await
        .unwrap();
    // stomp+ssl:// through the same function.
    let ssl = format!("stomp+ssl://localhost:{}", broker.port);
    let options = ClientOptions::default().tls(tls);
    let other = stompkit_ws::connect_client(&ssl, ClientConfig::new("localhost"), options)
        .await
        .unwrap();
    let mut sub = subscribe(&client, "/topic/wss", AckMode::Auto).await;
    publish(&other, "/topic/wss", "over stomp+ssl").await;
    assert_eq!(next_message(&mut sub).await.body(), b"over stomp+ssl");
    // Without the CA the system's roots do not trust this certificate.
    let refused = stompkit_ws::connect_client(
        &url,
        ClientConfig::new("localhost"),
        ClientOptions::default(),
    )
    .await;
    let e = refused.unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");
    client.disconnect().await.unwrap();
    other.disconnect().await.unwrap();
}
