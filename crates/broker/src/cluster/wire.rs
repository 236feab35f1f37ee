//! A message as bytes on NATS: its headers exactly as the SEND had them, its
//! expiry and its body.
//!
//! Owns the payload format every node writes and reads (version byte 1):
//! `1`, expiry (u64, ms since the Unix epoch, 0 = never), the header count
//! (u32), each header as name and value (u32 length, then the bytes), then
//! the body to the end. Lengths are big-endian. No escaping, so every header
//! comes back byte for byte; a payload that does not read back (another
//! program publishing on the cluster's subjects) is an error, never a panic.

use crate::router::Wire;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use stompkit_frame::Headers;

/// The format's version byte.
const VERSION: u8 = 1;

/// Why a payload is no message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum WireError {
    /// Not this format (or a newer version of it).
    #[error("not a stompkit message (format byte {0})")]
    Format(u8),
    /// Ends before its headers do.
    #[error("truncated message")]
    Truncated,
    /// A header that is not UTF-8.
    #[error("header is not UTF-8")]
    Utf8,
}

/// The payload of `wire`.
pub(crate) fn encode(wire: &Wire) -> Bytes {
    let headers: usize = wire
        .headers
        .iter()
        .map(|(n, v)| 8 + n.len() + v.len())
        .sum();
    let mut out = BytesMut::with_capacity(13 + headers + wire.body.len());
    out.put_u8(VERSION);
    out.put_u64(wire.expires);
    out.put_u32(u32::try_from(wire.headers.len()).unwrap_or(u32::MAX));
    for (name, value) in wire.headers.iter() {
        put_text(&mut out, name);
        put_text(&mut out, value);
    }
    out.put_slice(&wire.body);
    out.freeze()
}

fn put_text(out: &mut BytesMut, text: &str) {
    out.put_u32(u32::try_from(text.len()).unwrap_or(u32::MAX));
    out.put_slice(text.as_bytes());
}

/// The message a payload made by [`encode`] holds (`id` is the receiver's
/// to set).
pub(crate) fn decode(mut payload: Bytes) -> Result<Wire, WireError> {
    let version = payload.try_get_u8().map_err(|_| WireError::Truncated)?;
    if version != VERSION {
        return Err(WireError::Format(version));
    }
    let expires = payload.try_get_u64().map_err(|_| WireError::Truncated)?;
    let count = payload.try_get_u32().map_err(|_| WireError::Truncated)?;
    let mut headers = Headers::with_capacity(usize::try_from(count.min(64)).unwrap_or(64));
    for _ in 0..count {
        let name = take_text(&mut payload)?;
        let value = take_text(&mut payload)?;
        headers.push(&name, &value);
    }
    Ok(Wire {
        headers,
        body: payload,
        expires,
        id: 0,
    })
}

fn take_text(payload: &mut Bytes) -> Result<String, WireError> {
    let len = payload.try_get_u32().map_err(|_| WireError::Truncated)?;
    let len = usize::try_from(len).map_err(|_| WireError::Truncated)?;
    if payload.remaining() < len {
        return Err(WireError::Truncated);
    }
    String::from_utf8(payload.split_to(len).to_vec()).map_err(|_| WireError::Utf8)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_message_reads_back(
            headers in prop::collection::vec((".{0,8}", ".{0,8}"), 0..6),
            body in prop::collection::vec(any::<u8>(), 0..64),
            expires in any::<u64>(),
        ) {
            let mut h = Headers::default();
            for (n, v) in &headers {
                h.push(n, v);
            }
            let wire = Wire { headers: h, body: Bytes::from(body), expires, id: 0 };
            let back = decode(encode(&wire)).unwrap();
            prop_assert_eq!(back, wire);
        }

        #[test]
        fn garbage_is_an_error_not_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(Bytes::from(bytes));
        }
    }

    #[test]
    fn a_cut_payload_is_truncated() {
        let mut h = Headers::default();
        h.push("a", "b");
        let wire = Wire {
            headers: h,
            body: Bytes::new(),
            expires: 0,
            id: 0,
        };
        let payload = encode(&wire);
        assert_eq!(
            decode(payload.slice(..payload.len() - 1)),
            Err(WireError::Truncated)
        );
        assert_eq!(
            decode(Bytes::from_static(b"\x07")),
            Err(WireError::Format(7))
        );
    }
}
