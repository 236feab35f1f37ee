//! Real sockets on 127.0.0.1:0: `Framed<TcpStream, StompCodec>` on both ends, and
//! the client over TLS (tokio-rustls, certificate made at test time with rcgen;
//! those tests need the `tls` feature).
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod peer;

use futures_util::{SinkExt, StreamExt};
use peer::Peer;
#[cfg(feature = "tls")]
use std::sync::Arc;
use stompkit_frame::{AckMode, Command, Frame, Version};
use stompkit_tokio::{ClientConfig, Event, Outgoing, StompCodec};
#[cfg(feature = "tls")]
use stompkit_tokio::{ClientError, tls};
use tokio::net::{TcpListener, TcpStream};
#[cfg(feature = "tls")]
use tokio_rustls::rustls;
use tokio_util::codec::Framed;

#[tokio::test]
async fn framed_tcp_stream_works_both_ways() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut framed = Framed::new(tcp, StompCodec::new());
        let Some(Ok(Event::Frame(connect))) = framed.next().await else {
            panic!()
        };
        assert_eq!(connect.command, Command::Connect);
        framed.send(Frame::connected(Version::V1_2)).await.unwrap();
        framed.codec_mut().set_version(Version::V1_2);
        let mut seen = Vec::new();
        while let Some(event) = framed.next().await {
            seen.push(event.unwrap());
        }
        seen
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut framed = Framed::new(tcp, StompCodec::new());
    framed.send(Frame::connect("h", "1.2")).await.unwrap();
    let Some(Ok(Event::Frame(connected))) = framed.next().await else {
        panic!()
    };
    assert_eq!(connected.get("version"), Some("1.2"));
    framed.codec_mut().set_version(Version::V1_2);
    framed.send(Outgoing::HeartBeat).await.unwrap();
    framed
        .send(
            Frame::send("/q")
                .header("k", "a:b\nc")
                .with_body(vec![0u8, 1, 2]),
        )
        .await
        .unwrap();
    drop(framed);
    let seen = server.await.unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], Event::HeartBeat);
    let Event::Frame(send) = &seen[1] else {
        panic!()
    };
    assert_eq!(send.get("k"), Some("a:b\nc"));
    assert_eq!(send.body(), &[0, 1, 2]);
}

#[tokio::test]
async fn client_over_tcp_with_connect_url() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut peer = Peer::new(tcp);
        peer.accept("1.2", "0,0").await;
        let sub = peer.expect(Command::Subscribe).await;
        let send = peer.expect(Command::Send).await;
        peer.message(
            sub.id().unwrap(),
            "m",
            std::str::from_utf8(send.body()).unwrap(),
        )
        .await;
        peer.until_eof().await;
    });
    let url = format!("stomp://{addr}");
    let client = stompkit_tokio::Client::connect_url(&url, ClientConfig::new("h"), None)
        .await
        .unwrap();
    let mut sub = client.subscribe("/queue/a", AckMode::Auto).await.unwrap();
    client
        .send(Frame::send("/queue/a").with_body("ping"))
        .await
        .unwrap();
    assert_eq!(sub.next().await.unwrap().unwrap().body(), b"ping");
}

#[cfg(feature = "tls")]
fn certificate() -> (
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der());
    (ck.cert.der().clone(), key.into())
}

#[cfg(feature = "tls")]
async fn tls_server(
    cert: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<Frame>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let Ok(tls) = acceptor.accept(tcp).await else {
            return Vec::new();
        };
        let mut peer = Peer::new(tls);
        peer.accept("1.2", "0,0").await;
        let sub = peer.expect(Command::Subscribe).await;
        peer.message(sub.id().unwrap(), "m-1", "secret").await;
        let d = peer.expect(Command::Disconnect).await;
        peer.receipt(d.receipt().unwrap()).await;
        let mut frames = vec![sub, d];
        frames.extend(peer.until_eof().await);
        frames
    });
    (addr, task)
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn client_over_tls_with_a_ca_file() {
    let (cert, key) = certificate();
    let dir = std::env::temp_dir().join(format!("stompkit-tokio-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64(&cert)
    );
    std::fs::write(&ca, pem).unwrap();
    let tls_config = tls::client_config_from_ca_file(&ca).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let (addr, server) = tls_server(cert, key).await;
    let client = tls::connect(
        addr.to_string(),
        "localhost",
        tls_config,
        ClientConfig::new("localhost"),
    )
    .await
    .unwrap();
    assert_eq!(client.version(), Version::V1_2);
    let mut sub = client.subscribe("/queue/s", AckMode::Auto).await.unwrap();
    let msg = sub.next().await.unwrap().unwrap();
    assert_eq!(msg.body(), b"secret");
    client.disconnect().await.unwrap();
    let frames = server.await.unwrap();
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0].destination(), Some("/queue/s"));
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_without_a_ca_file_trusts_the_system_roots_only() {
    // The same self-signed server the CA-file test connects to: with no CA file
    // the client trusts the system's roots, which did not sign it.
    let (cert, key) = certificate();
    let (addr, server) = tls_server(cert, key).await;
    let url = format!("stomp+ssl://localhost:{}", addr.port());
    let err = stompkit_tokio::Client::connect_url(&url, ClientConfig::new("h"), None)
        .await
        .unwrap_err();
    let ClientError::Tls(tls_error) = &err else {
        panic!("expected a TLS error, got {err:?}")
    };
    assert!(
        matches!(**tls_error, tls::TlsError::Handshake(_)),
        "{tls_error:?}"
    );
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(server.await.unwrap().is_empty(), "no session was opened");
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_with_an_untrusted_certificate_fails_to_connect() {
    let (cert, key) = certificate();
    let (other, _) = certificate();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(other).unwrap();
    let tls_config = tls::client_config_with_roots(roots).unwrap();
    let (addr, _server) = tls_server(cert, key).await;
    let url = format!("stomp+ssl://localhost:{}", addr.port());
    let err = stompkit_tokio::Client::connect_url(&url, ClientConfig::new("h"), Some(tls_config))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Tls(_)), "{err:?}");
}

/// Standard base64 with line breaks every 64 characters (PEM).
#[cfg(feature = "tls")]
fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out.as_bytes()
        .chunks(64)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}
