//! Starts the real broker (`stompkit-broker`, in-process on 127.0.0.1:0) for the
//! CLI's end-to-end tests.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use stompkit_broker::{Broker, BrokerConfig};

/// A broker on its own runtime thread, alive until the test process exits.
pub fn start_broker() -> SocketAddr {
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
            let broker = Broker::bind(config).await.unwrap();
            tx.send(broker.local_addrs()[0]).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}
