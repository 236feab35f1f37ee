//! TLS listeners end to end: a certificate made at test time (rcgen), STOMP over
//! TLS with stompkit-tokio's client and `wss://` with stompkit-ws's client on the
//! same port, logins over TLS, and what a TLS port does with peers that do not
//! speak TLS.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used)]

mod support;

use futures_util::StreamExt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stompkit_broker::auth::password;
use stompkit_broker::{Broker, BrokerConfig, RunningBroker, UserConfig};
use stompkit_frame::{Command, Frame};
use stompkit_tokio::{AckMode, Client, ClientConfig, ClientError, tls};
use stompkit_ws::{ClientOptions, Event};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// A certificate for `localhost` written as PEM files, removed on drop.
struct Certificate {
    dir: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
}

impl Certificate {
    fn new(name: &str) -> Certificate {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let dir =
            std::env::temp_dir().join(format!("stompkit-tls-it-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_file, ck.cert.pem()).unwrap();
        std::fs::write(&key_file, ck.signing_key.serialize_pem()).unwrap();
        Certificate {
            dir,
            cert_file,
            key_file,
        }
    }

    /// A client config trusting this certificate (the CA-file path, as the CLI's
    /// `--ca-file`).
    fn client(&self) -> Arc<rustls::ClientConfig> {
        tls::client_config_from_ca_file(&self.cert_file).unwrap()
    }
}

impl Drop for Certificate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start(cert: &Certificate, tweak: impl FnOnce(&mut BrokerConfig)) -> RunningBroker {
    let mut config = BrokerConfig::default();
    config.server.listen = vec!["tls://127.0.0.1:0".into()];
    support::in_memory(&mut config);
    config.tls.cert_file = cert.cert_file.display().to_string();
    config.tls.key_file = cert.key_file.display().to_string();
    tweak(&mut config);
    Broker::bind(config).await.unwrap()
}

fn port(broker: &RunningBroker) -> u16 {
    broker.local_addrs()[0].port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_over_tls_and_wss_on_the_same_port() {
    let cert = Certificate::new("same-port");
    let broker = start(&cert, |c| c.admin.listen = "127.0.0.1:0".into()).await;
    let listener = broker.listeners()[0];
    assert!(
        listener.tls && listener.stomp && listener.websocket,
        "{listener:?}"
    );
    let port = port(&broker);

    // STOMP over TLS (stomp+ssl://) with the stompkit-tokio client.
    let url = format!("stomp+ssl://localhost:{port}");
    let client = Client::connect_url(&url, ClientConfig::new("localhost"), Some(cert.client()))
        .await
        .unwrap();
    let mut sub = client.subscribe("/topic/tls", AckMode::Auto).await.unwrap();

    // wss:// on the same port with the stompkit-ws client.
    let options = ClientOptions::default().tls(cert.client());
    let mut ws = stompkit_ws::connect(&format!("wss://localhost:{port}/ws"), options)
        .await
        .unwrap();
    ws.send(&Frame::connect("localhost", "1.2")).await.unwrap();
    let Some(Ok(Event::Frame(connected))) = ws.next().await else {
        panic!("no CONNECTED over wss")
    };
    assert_eq!(connected.command, Command::Connected);
    ws.set_version(stompkit_frame::Version::V1_2);
    ws.send(
        &Frame::subscribe("/topic/tls", "w", stompkit_frame::AckMode::Auto).header("receipt", "r"),
    )
    .await
    .unwrap();
    let Some(Ok(Event::Frame(receipt))) = ws.next().await else {
        panic!()
    };
    assert_eq!(receipt.receipt_id(), Some("r"));

    // One message from the wss client reaches both subscribers.
    ws.send(&Frame::send("/topic/tls").with_body("over wss"))
        .await
        .unwrap();
    assert_eq!(sub.next().await.unwrap().unwrap().body(), b"over wss");
    let Some(Ok(Event::Frame(m))) = ws.next().await else {
        panic!()
    };
    assert_eq!((m.command, m.body()), (Command::Message, &b"over wss"[..]));
    // And one from the TLS client.
    client
        .send_with_receipt(Frame::send("/topic/tls").with_body("over tls"))
        .await
        .unwrap()
        .await
        .unwrap();
    let Some(Ok(Event::Frame(m))) = ws.next().await else {
        panic!()
    };
    assert_eq!(m.body(), b"over tls");
    // The admin API names each session's transport.
    let mut transports = connection_transports(broker.admin_addr().unwrap()).await;
    transports.sort();
    assert_eq!(transports, ["tls", "wss"]);
    client.disconnect().await.unwrap();
}

/// The `transport` of every connection `GET /api/connections` lists (the
/// admin listener on loopback: plain HTTP, no login).
async fn connection_transports(admin: SocketAddr) -> Vec<String> {
    let mut stream = TcpStream::connect(admin).await.unwrap();
    stream
        .write_all(b"GET /api/connections HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the admin listener closes after its answer")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let list: serde_json::Value = serde_json::from_str(body).unwrap();
    let list = list.as_array().unwrap();
    list.iter()
        .map(|c| c["transport"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_over_tls() {
    let cert = Certificate::new("login");
    let broker = start(&cert, |c| {
        c.auth.users = vec![UserConfig {
            login: "alice".into(),
            password_hash: password::hash_with(
                "wonderland",
                argon2::Params::new(1024, 1, 1, None).unwrap(),
            )
            .unwrap(),
            send: None,
            subscribe: None,
            admin: false,
        }];
        c.auth.failure_delay_ms = 10;
    })
    .await;
    let url = format!("stomp+ssl://localhost:{}", port(&broker));
    let ok = Client::connect_url(
        &url,
        ClientConfig::new("localhost").login("alice", "wonderland"),
        Some(cert.client()),
    )
    .await
    .unwrap();
    ok.disconnect().await.unwrap();
    match Client::connect_url(
        &url,
        ClientConfig::new("localhost").login("alice", "nope"),
        Some(cert.client()),
    )
    .await
    {
        Err(ClientError::Server(e)) => assert_eq!(e.message(), Some("access refused")),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("wrong password accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_trust_the_certificate_fails_the_handshake() {
    let cert = Certificate::new("trusted");
    let other = Certificate::new("untrusted");
    let broker = start(&cert, |_| {}).await;
    let url = format!("stomp+ssl://localhost:{}", port(&broker));
    let e = Client::connect_url(&url, ClientConfig::new("localhost"), Some(other.client()))
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("TLS"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_stomp_and_silence_on_a_tls_port_are_closed() {
    let cert = Certificate::new("plain");
    let broker = start(&cert, |c| c.limits.login_timeout_ms = 300).await;
    let addr: SocketAddr = broker.local_addrs()[0];

    // Plaintext STOMP: no STOMP answer, closed.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"CONNECT\naccept-version:1.2\nhost:h\n\n\0")
        .await
        .unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "not closed");
    assert!(
        !got.starts_with(b"CONNECTED") && !got.starts_with(b"ERROR"),
        "{got:?}"
    );

    // Silence: closed after the login timeout, without a handshake.
    let start = Instant::now();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut got))
        .await
        .expect("silent peer not closed")
        .ok();
    assert!(got.is_empty());
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn tls_listener_without_a_certificate_does_not_start() {
    let mut config = BrokerConfig::default();
    config.server.listen = vec!["tls://127.0.0.1:0".into()];
    support::in_memory(&mut config);
    let e = Broker::bind(config.clone()).await.err().unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("cert_file"), "{e}");
    config.tls.cert_file = "/nonexistent/cert.pem".into();
    config.tls.key_file = "/nonexistent/key.pem".into();
    let e = Broker::bind(config).await.err().unwrap();
    assert!(e.to_string().contains("/nonexistent/cert.pem"), "{e}");
}
