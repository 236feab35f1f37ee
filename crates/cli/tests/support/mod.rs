//! Starts the real broker (`stompkit-broker`, in-process on 127.0.0.1:0) for the
//! CLI's end-to-end tests.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use stompkit_broker::{Broker, BrokerConfig};

/// A broker on its own runtime thread, alive until the test process exits.
pub fn start_broker() -> SocketAddr {
    start_broker_with(|_| {}).0
}

/// As [`start_broker`], with `tweak` applied to its configuration first;
/// its STOMP address and its admin listener's URL, if it has one.
pub fn start_broker_with(
    tweak: impl FnOnce(&mut BrokerConfig) + Send + 'static,
) -> (SocketAddr, Option<String>) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut config = BrokerConfig::default();
            config.server.listen = vec!["127.0.0.1:0".into()];
            in_memory(&mut config);
            tweak(&mut config);
            let broker = Broker::bind(config).await.unwrap();
            tx.send((broker.local_addrs()[0], broker.admin_url()))
                .unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

/// Sets `[store] in_memory = true`: the store's default is the directory
/// `./stompkit-data`, and brokers of tests running in parallel would fight over
/// its lock.
fn in_memory(config: &mut BrokerConfig) {
    config.store.in_memory = true;
}

/// A TLS front for `backend` (the TLS part of a broker, for testing the CLI's
/// `stomp+ssl://` and `wss://`): accepts TLS with a certificate for `localhost`
/// made now, and pipes the plain bytes to `backend`. Returns its address and the
/// path of a PEM file holding the certificate, for `--ca-file`.
#[cfg(feature = "tls")]
pub fn start_tls_front(backend: SocketAddr) -> (SocketAddr, std::path::PathBuf) {
    use std::sync::Arc;
    use tokio_rustls::rustls;
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "stompkit-cli-tls-{}-{}",
        std::process::id(),
        backend.port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ck.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key.into())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
    });
    (rx.recv().unwrap(), ca_file)
}

/// A TCP relay to `backend` on its own runtime thread: returns its address and
/// a function that cuts every connection relayed so far (both ends see them
/// close; the relay goes on accepting).
pub fn cuttable_relay(backend: SocketAddr) -> (SocketAddr, impl Fn()) {
    use std::sync::{Arc, Mutex};
    let links: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let accepted = links.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            while let Ok((mut client, _)) = listener.accept().await {
                let link = tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                accepted.lock().unwrap().push(link.abort_handle());
            }
        });
    });
    let cut = move || {
        for link in links.lock().unwrap().drain(..) {
            link.abort();
        }
    };
    (rx.recv().unwrap(), cut)
}
