//! SIGHUP replaces the TLS certificate: new handshakes see the new one, open
//! TLS connections stay.

use crate::broker::{Broker, Scratch, with_config};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;

/// Writes a new self-signed certificate for `localhost` to `cert` and `key`;
/// returns the certificate's PEM.
fn new_certificate(cert: &Path, key: &Path) -> String {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(cert, ck.cert.pem()).unwrap();
    std::fs::write(key, ck.signing_key.serialize_pem()).unwrap();
    ck.cert.pem()
}

/// A TLS client that trusts only the certificate in `pem`.
fn trusting(pem: &str) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn handshake(addr: SocketAddr, pem: &str) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    trusting(pem).connect(name, tcp).await
}

/// Writes `frame` and reads the answering frame's bytes up to its NUL.
async fn exchange(tls: &mut TlsStream<TcpStream>, frame: &str) -> String {
    tls.write_all(frame.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    let mut got = Vec::new();
    let read = async {
        while !got.contains(&0) {
            let mut buf = [0u8; 1024];
            let n = tls.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(crate::harness::WAIT, read)
        .await
        .unwrap();
    String::from_utf8_lossy(&got)
        .trim_start_matches('\n')
        .to_owned()
}

const CONNECT: &str = "CONNECT\naccept-version:1.2\nhost:localhost\n\n\0";
const SEND: &str = "SEND\ndestination:/queue/tls\nreceipt:r\n\nhello\0";

#[tokio::test]
async fn a_reload_replaces_the_certificate_for_new_handshakes_only() {
    let scratch = Scratch::new("reload-tls");
    let (cert, key) = (scratch.path("cert.pem"), scratch.path("key.pem"));
    let old = new_certificate(&cert, &key);
    let config = scratch.write(
        "broker.toml",
        &format!(
            "[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ),
    );
    let mut command = with_config(&config);
    command.args(["--listen", "stomp+ssl://127.0.0.1:0"]);
    let broker = Broker::start(command, scratch.path("broker.log"), true);
    let addr = broker.tls.unwrap();
    let mut open = handshake(addr, &old).await.unwrap();
    assert!(exchange(&mut open, CONNECT).await.starts_with("CONNECTED"));

    let new = new_certificate(&cert, &key);
    let log = broker.reload_async("configuration reloaded", 1).await;
    assert!(log.contains("tls=true"), "{log}");
    assert!(
        handshake(addr, &old).await.is_err(),
        "a new handshake still sees the old certificate"
    );
    let mut fresh = handshake(addr, &new).await.unwrap();
    assert!(exchange(&mut fresh, CONNECT).await.starts_with("CONNECTED"));
    // The connection made with the old certificate goes on.
    assert!(exchange(&mut open, SEND).await.starts_with("RECEIPT"));

    // A certificate that does not load: the reload fails, the new one stays.
    std::fs::write(&key, "not a key").unwrap();
    let log = broker.reload_async("configuration reload failed", 1).await;
    assert!(log.contains("key.pem"), "{log}");
    let mut again = handshake(addr, &new).await.unwrap();
    assert!(exchange(&mut again, CONNECT).await.starts_with("CONNECTED"));
}
