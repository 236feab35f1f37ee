//! `wss://`: the client over tokio-rustls (ring) against a server that runs
//! `StompWebSocket::accept` on a TLS stream (certificate made at test time).
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used)]

use futures_util::StreamExt;
use std::sync::Arc;
use stompkit_frame::{Command, Frame, Version};
use stompkit_ws::{ClientOptions, Event, StompWebSocket, SubProtocol, WsServerConfig};
use tokio::net::TcpListener;
use tokio_rustls::rustls;

#[tokio::test]
async fn wss_client_with_callers_rustls_config() {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_tls = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key.into())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = WsServerConfig::new(addr);
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        let mut ws = StompWebSocket::accept(tls, &config).await.unwrap();
        while let Some(Ok(event)) = ws.next().await {
            if let Event::Frame(frame) = event
                && frame.command == Command::Connect
            {
                ws.send(&Frame::connected(Version::V1_2)).await.unwrap();
            }
        }
    });

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client_tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let url = format!("wss://localhost:{}/ws", addr.port());
    let options = ClientOptions::default().tls(Arc::new(client_tls));
    let mut ws = stompkit_ws::connect(&url, options).await.unwrap();
    assert_eq!(ws.subprotocol(), Some(SubProtocol::V12));
    ws.send(
        &Frame::new(Command::Connect)
            .header("accept-version", "1.2")
            .header("host", "/"),
    )
    .await
    .unwrap();
    let Some(Ok(Event::Frame(connected))) = ws.next().await else {
        panic!()
    };
    assert_eq!(connected.command, Command::Connected);
}
