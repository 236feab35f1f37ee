//! Shared by the broker's integration tests: start a broker on 127.0.0.1:0, and
//! a raw STOMP-over-TCP client.
#![allow(dead_code)] // Each test file uses its own part.

use bytes::BytesMut;
use std::net::SocketAddr;
use std::time::Duration;
use stompkit_broker::{Broker, BrokerConfig, RunningBroker};
use stompkit_frame::{Command, Frame, Version};
use stompkit_wire::{Event, Parser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for anything.
pub const WAIT: Duration = Duration::from_secs(10);

/// A broker on 127.0.0.1:0 with an in-memory store and `tweak` applied to the
/// defaults.
pub async fn start(tweak: impl FnOnce(&mut BrokerConfig)) -> RunningBroker {
    Broker::bind(config(tweak)).await.unwrap()
}

/// The defaults with `listen = ["127.0.0.1:0"]`, an in-memory store ([`in_memory`])
/// and `tweak` applied.
pub fn config(tweak: impl FnOnce(&mut BrokerConfig)) -> BrokerConfig {
    let mut config = BrokerConfig::default();
    config.server.listen = vec!["127.0.0.1:0".into()];
    in_memory(&mut config);
    tweak(&mut config);
    config
}

/// Sets `[store] in_memory = true`: the store's default is the directory
/// `./stompkit-data`, and brokers of tests running in parallel would fight over
/// its lock.
pub fn in_memory(config: &mut BrokerConfig) {
    config.store.in_memory = true;
}

/// A raw STOMP connection: bytes out, frames in.
pub struct Raw {
    pub stream: TcpStream,
    pub parser: Parser,
    pub buf: BytesMut,
}

impl Raw {
    pub async fn open(addr: SocketAddr) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.unwrap(),
            parser: Parser::new(),
            buf: BytesMut::new(),
        }
    }

    /// Opens and CONNECTs with `accept-version` (None = header absent).
    pub async fn connect(addr: SocketAddr, accept: Option<&str>) -> Raw {
        let mut raw = Raw::open(addr).await;
        let header = accept
            .map(|a| format!("accept-version:{a}\n"))
            .unwrap_or_default();
        raw.write(format!("CONNECT\n{header}host:localhost\n\n\0").as_bytes())
            .await;
        let connected = raw.frame().await;
        assert_eq!(connected.command, Command::Connected, "{connected:?}");
        raw.parser
            .set_version(Version::from_bytes(connected.version().unwrap().as_bytes()).unwrap());
        raw
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next frame (heart-beats skipped); panics on EOF or after 10 s.
    pub async fn frame(&mut self) -> Frame {
        self.try_frame()
            .await
            .expect("connection closed before a frame arrived")
    }

    pub async fn try_frame(&mut self) -> Option<Frame> {
        tokio::time::timeout(WAIT, async {
            loop {
                match self.parser.parse(&mut self.buf).unwrap() {
                    Some(Event::Frame(f)) => return Some(f),
                    Some(Event::HeartBeat) => continue,
                    None => {}
                }
                if self.stream.read_buf(&mut self.buf).await.unwrap_or(0) == 0 {
                    return None;
                }
            }
        })
        .await
        .expect("timed out waiting for a frame")
    }

    /// Asserts the next frame is an ERROR with `message`, then that the server closes.
    pub async fn expect_error(&mut self, message: &str) -> Frame {
        let f = self.frame().await;
        assert_eq!(f.command, Command::Error, "{f:?}");
        assert_eq!(f.message(), Some(message), "{f:?}");
        assert!(!f.body().is_empty(), "S4: short body");
        self.expect_closed().await;
        f
    }

    pub async fn expect_closed(&mut self) {
        let rest = self.try_frame().await;
        assert!(rest.is_none(), "expected close, got {rest:?}");
    }

    /// SUBSCRIBEs with a receipt; returns the messages that arrived before the RECEIPT.
    pub async fn subscribe(&mut self, id: &str, dest: &str, extra: &str) -> Vec<Frame> {
        self.write(
            format!("SUBSCRIBE\nid:{id}\ndestination:{dest}\n{extra}receipt:sub-{id}\n\n\0")
                .as_bytes(),
        )
        .await;
        let mut before = Vec::new();
        loop {
            let f = self.frame().await;
            if f.command == Command::Receipt {
                assert_eq!(f.receipt_id(), Some(format!("sub-{id}").as_str()), "{f:?}");
                return before;
            }
            before.push(f);
        }
    }
}
