//! A scripted STOMP server for client tests: reads frames with the codec, writes
//! raw bytes, and lets the test say what happens when.
#![allow(dead_code)]

use futures_util::StreamExt;
use stompkit_frame::{Command, Frame, Version};
use stompkit_tokio::{Event, StompCodec};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio_util::codec::Framed;

/// The server end of a connection.
pub struct Peer<S = DuplexStream> {
    pub framed: Framed<S, StompCodec>,
    pub heartbeats: usize,
}

/// A client stream and the peer on its other end.
pub fn pair() -> (DuplexStream, Peer) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    (client, Peer::new(server))
}

impl<S: AsyncRead + AsyncWrite + Unpin> Peer<S> {
    pub fn new(io: S) -> Peer<S> {
        Peer {
            framed: Framed::new(io, StompCodec::new()),
            heartbeats: 0,
        }
    }

    /// The next event, `None` at EOF.
    pub async fn event(&mut self) -> Option<Event> {
        match self.framed.next().await {
            Some(Ok(e)) => Some(e),
            Some(Err(e)) => panic!("peer read error: {e}"),
            None => None,
        }
    }

    /// The next frame, counting heart-beats on the way; panics at EOF.
    pub async fn frame(&mut self) -> Frame {
        self.try_frame()
            .await
            .expect("client closed the connection")
    }

    /// The next frame, `None` at EOF.
    pub async fn try_frame(&mut self) -> Option<Frame> {
        loop {
            match self.event().await? {
                Event::HeartBeat => self.heartbeats += 1,
                Event::Frame(f) => return Some(f),
            }
        }
    }

    /// The next frame, which must have `command`.
    pub async fn expect(&mut self, command: Command) -> Frame {
        let f = self.frame().await;
        assert_eq!(f.command, command, "got {f:?}");
        f
    }

    pub async fn write(&mut self, bytes: impl AsRef<[u8]>) {
        let io = self.framed.get_mut();
        io.write_all(bytes.as_ref()).await.expect("peer write");
        io.flush().await.expect("peer flush");
    }

    /// Reads CONNECT and answers CONNECTED with `version` and `heart_beat`.
    pub async fn accept(&mut self, version: &str, heart_beat: &str) -> Frame {
        let connect = self.frame().await;
        assert!(connect.command.is_connect(), "got {connect:?}");
        self.write(format!(
            "CONNECTED\nversion:{version}\nheart-beat:{heart_beat}\nsession:s-1\nserver:peer/1\n\n\0\n"
        ))
        .await;
        self.framed
            .codec_mut()
            .set_version(version.parse::<Version>().expect("version"));
        connect
    }

    /// Sends a MESSAGE to subscription `sub`.
    pub async fn message(&mut self, sub: &str, id: &str, body: &str) {
        self.write(format!(
            "MESSAGE\ndestination:/queue/a\nmessage-id:{id}\nsubscription:{sub}\nack:ack-{id}\ncontent-length:{}\n\n{body}\0\n",
            body.len()
        ))
        .await;
    }

    pub async fn receipt(&mut self, id: &str) {
        self.write(format!("RECEIPT\nreceipt-id:{id}\n\n\0\n"))
            .await;
    }

    /// Reads until EOF, returning the frames seen.
    pub async fn until_eof(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(f) = self.try_frame().await {
            frames.push(f);
        }
        frames
    }
}
