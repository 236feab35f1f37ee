//! Session set-up for the load generator on a raw byte stream ([`Conn`]: TCP, TLS or
//! WebSocket): CONNECT and wait for
//! CONNECTED, send a frame and wait for its RECEIPT, and the pre-encoded frames of
//! the hot path (SEND template, ACK).
//!
//! Set-up uses the general [`Parser`] on the connection's own read buffer, so any
//! bytes that arrive after the awaited frame stay in that buffer for the hot loop.
//! It owns no timing and no statistics.

use crate::transport::{Conn, TlsConfig, open};
use anyhow::{Context, Result, anyhow, bail};
use bytes::BytesMut;
use stompkit_frame::{Command, Frame, Version, names};
use stompkit_tokio::StompUrl;
use stompkit_wire::{Encoder, Event, Parser};
use stompkit_ws::OutgoingMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What goes into every CONNECT.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// `host` header (RabbitMQ: the virtual host).
    pub vhost: String,
    /// `login`, when set.
    pub login: Option<String>,
    /// `passcode`, when set.
    pub passcode: Option<String>,
}

/// Where the bench connects: the target and its TLS settings.
#[derive(Clone)]
pub struct Endpoint {
    /// The parsed `--url`.
    pub target: StompUrl,
    /// TLS settings for `stomp+ssl://` and `wss://`.
    pub tls: Option<TlsConfig>,
    /// CONNECT's headers.
    pub credentials: Credentials,
}

/// A connected STOMP session on a raw byte stream.
pub struct Session {
    /// The connection (flush after writing: on WebSocket that sends the message).
    pub stream: Conn,
    /// Bytes read past the last awaited frame.
    pub buf: BytesMut,
    /// The negotiated version.
    pub version: Version,
    parser: Parser,
}

impl Session {
    /// Connects to `endpoint`, sends CONNECT (all versions offered, no
    /// heart-beats) and waits for CONNECTED. An ERROR becomes an error with the
    /// broker's message.
    pub async fn connect(endpoint: &Endpoint) -> Result<Session> {
        let stream = open(
            &endpoint.target,
            endpoint.tls.as_ref(),
            OutgoingMode::Binary,
        )
        .await?;
        let credentials = &endpoint.credentials;
        let mut connect =
            Frame::connect(&credentials.vhost, "1.0,1.1,1.2").header(names::HEART_BEAT, "0,0");
        if let Some(login) = &credentials.login {
            connect = connect.header(names::LOGIN, login);
        }
        if let Some(passcode) = &credentials.passcode {
            connect = connect.header(names::PASSCODE, passcode);
        }
        let mut session = Session {
            stream,
            buf: BytesMut::with_capacity(4096),
            version: Version::V1_0,
            parser: Parser::new(),
        };
        session.write_frame(&connect).await?;
        let connected = session.read_frame().await?;
        match connected.command {
            Command::Connected => {}
            Command::Error => bail!("broker refused CONNECT: {}", describe_error(&connected)),
            other => bail!("expected CONNECTED, broker sent {other}"),
        }
        session.version = match connected.version() {
            None => Version::V1_0,
            Some(v) => Version::from_bytes(v.as_bytes())
                .ok_or_else(|| anyhow!("broker answered with unknown version {v:?}"))?,
        };
        session.parser.set_version(session.version);
        // Idle connections should hold as little as possible.
        session.buf = BytesMut::new();
        Ok(session)
    }

    /// Sends `frame` with a `receipt` header and waits for the RECEIPT. MESSAGEs
    /// arriving first are an error (nothing should be subscribed yet on this session).
    pub async fn request(&mut self, frame: Frame, receipt: &str) -> Result<()> {
        self.write_frame(&frame.with_receipt(receipt)).await?;
        loop {
            let answer = self.read_frame().await?;
            match answer.command {
                Command::Receipt if answer.receipt_id() == Some(receipt) => return Ok(()),
                Command::Error => bail!("broker sent ERROR: {}", describe_error(&answer)),
                _ => {}
            }
        }
    }

    /// Sends `frame` without waiting for anything (e.g. a SUBSCRIBE to a queue
    /// that already holds messages, whose MESSAGEs may come before any RECEIPT).
    pub async fn send(&mut self, frame: &Frame) -> Result<()> {
        self.write_frame(frame).await
    }

    async fn write_frame(&mut self, frame: &Frame) -> Result<()> {
        let mut out = Vec::with_capacity(256);
        Encoder::new(Some(self.version)).encode(frame, &mut out)?;
        self.stream.write_all(&out).await?;
        self.stream.flush().await?;
        Ok(())
    }

    async fn read_frame(&mut self) -> Result<Frame> {
        loop {
            match self.parser.parse(&mut self.buf)? {
                Some(Event::Frame(frame)) => return Ok(frame),
                Some(Event::HeartBeat) => continue,
                None => {}
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                bail!("broker closed the connection");
            }
        }
    }
}

/// `message` header and body of an ERROR, on one line.
pub fn describe_error(frame: &Frame) -> String {
    let message = frame.message().unwrap_or("(no message header)");
    let body = String::from_utf8_lossy(frame.body());
    let body = body.trim();
    if body.is_empty() {
        message.to_string()
    } else {
        format!("{message} ({})", body.replace('\n', " "))
    }
}

/// A pre-encoded SEND frame whose body starts with a phase marker and a timestamp.
///
/// Body layout: one marker byte (`M` measured, `W` warm-up), 16 lower-case hex
/// digits of nanoseconds since the run's clock base, then `x` up to the size.
#[derive(Clone, Debug)]
pub struct SendTemplate {
    /// One encoded frame.
    pub bytes: Vec<u8>,
    /// Offset of the marker byte within `bytes`.
    pub body_at: usize,
}

/// Marker + timestamp: the smallest body the bench can measure.
pub const STAMP_LEN: usize = 17;

impl SendTemplate {
    /// Encodes a SEND to `destination` with `headers` and a body of `size` bytes
    /// (at least [`STAMP_LEN`]).
    pub fn new(
        version: Version,
        destination: &str,
        headers: &[(String, String)],
        size: usize,
    ) -> Result<SendTemplate> {
        let size = size.max(STAMP_LEN);
        let mut body = vec![b'x'; size];
        body[..STAMP_LEN].copy_from_slice(b"M0000000000000000");
        let mut frame = Frame::send(destination);
        for (name, value) in headers {
            frame = frame.header(name, value);
        }
        let frame = frame.with_body(body);
        let mut bytes = Vec::with_capacity(size + 128);
        Encoder::new(Some(version))
            .encode(&frame, &mut bytes)
            .context("cannot encode the SEND frame")?;
        let body_at = bytes.len() - 1 - size;
        Ok(SendTemplate { bytes, body_at })
    }
}

/// Writes `marker` and `nanos` (16 hex digits) over the stamp at the start of a body.
#[inline]
pub fn stamp(body: &mut [u8], marker: u8, nanos: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    body[0] = marker;
    for (i, digit) in body[1..STAMP_LEN].iter_mut().enumerate() {
        *digit = HEX[((nanos >> (60 - 4 * i)) & 0xf) as usize];
    }
}

/// Reads a stamp written by [`stamp`]: `(marker, nanos)`, `None` if the body is not ours.
#[inline]
pub fn read_stamp(body: &[u8]) -> Option<(u8, u64)> {
    if body.len() < STAMP_LEN || !(body[0] == b'M' || body[0] == b'W') {
        return None;
    }
    let mut nanos = 0u64;
    for &c in &body[1..STAMP_LEN] {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        nanos = (nanos << 4) | u64::from(d);
    }
    Some((body[0], nanos))
}

/// Appends an ACK for one message of subscription `0`, in `version`'s form: 1.2 by
/// the MESSAGE's `ack` header, 1.1 by `message-id` and `subscription`, 1.0 by
/// `message-id`. The ids are the raw (still escaped) header bytes.
pub fn put_ack(out: &mut Vec<u8>, version: Version, ack: Option<&[u8]>, message_id: &[u8]) {
    match (version, ack) {
        (Version::V1_2, Some(ack)) => {
            out.extend_from_slice(b"ACK\nid:");
            out.extend_from_slice(ack);
        }
        (Version::V1_0, _) => {
            out.extend_from_slice(b"ACK\nmessage-id:");
            out.extend_from_slice(message_id);
        }
        _ => {
            out.extend_from_slice(b"ACK\nsubscription:0\nmessage-id:");
            out.extend_from_slice(message_id);
        }
    }
    out.extend_from_slice(b"\n\n\0");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stamps_round_trip() {
        let mut body = *b"M0000000000000000xyz";
        for nanos in [0, 1, 0xdead_beef, u64::MAX] {
            stamp(&mut body, b'W', nanos);
            assert_eq!(read_stamp(&body), Some((b'W', nanos)));
        }
        assert_eq!(read_stamp(b"hello world, not a stamp"), None);
    }

    #[test]
    fn template_body_sits_before_the_nul() {
        let t = SendTemplate::new(Version::V1_2, "/topic/a", &[], 20).unwrap();
        assert_eq!(&t.bytes[t.body_at..t.body_at + 1], b"M");
        assert_eq!(t.bytes.len() - t.body_at, 21);
        assert_eq!(*t.bytes.last().unwrap(), 0);
        // Too small a size is raised to the stamp.
        let t = SendTemplate::new(Version::V1_2, "/topic/a", &[], 1).unwrap();
        assert_eq!(t.bytes.len() - t.body_at, STAMP_LEN + 1);
    }

    #[test]
    fn acks_follow_the_version() {
        let mut out = Vec::new();
        put_ack(&mut out, Version::V1_2, Some(b"7"), b"m-7");
        put_ack(&mut out, Version::V1_1, None, b"m-7");
        put_ack(&mut out, Version::V1_0, None, b"m-7");
        assert_eq!(
            out,
            b"ACK\nid:7\n\n\0ACK\nsubscription:0\nmessage-id:m-7\n\n\0ACK\nmessage-id:m-7\n\n\0"
        );
    }
}
