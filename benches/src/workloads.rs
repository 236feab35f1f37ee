//! The benchmark workloads: buffers of many concatenated STOMP 1.2 frames, as a
//! broker would send them to a subscriber.
//!
//! This module owns the bytes only. It writes them by hand (not with the
//! stompkit encoder), so the parse benchmarks do not depend on the encoder being
//! right, and the very same bytes are fed to stompkit and to every peer parser.
//! The content is deterministic (a fixed seed), so runs are comparable.

/// One workload: a buffer of `frames` complete frames back to back.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Short name used in benchmark ids (`small`, `chat`, `bulk`).
    pub name: &'static str,
    /// What the frames look like, for reports.
    pub description: &'static str,
    /// The wire bytes.
    pub bytes: Vec<u8>,
    /// How many frames `bytes` holds.
    pub frames: usize,
}

impl Workload {
    /// Average bytes per frame.
    pub fn bytes_per_frame(&self) -> usize {
        self.bytes.len() / self.frames.max(1)
    }
}

/// Frames in the `small` workload.
pub const SMALL_FRAMES: usize = 1000;
/// Frames in the `chat` workload.
pub const CHAT_FRAMES: usize = 500;
/// Frames in the `bulk` workload.
pub const BULK_FRAMES: usize = 16;
/// Body size of a `bulk` frame.
pub const BULK_BODY: usize = 64 * 1024;
/// Body size of a `chat` frame.
pub const CHAT_BODY: usize = 340;

/// All three workloads, in report order.
pub fn all() -> Vec<Workload> {
    vec![small(), chat(), bulk()]
}

/// MESSAGE frames with 5 headers and a 20-byte body, about 140 bytes a frame.
pub fn small() -> Workload {
    let mut bytes = Vec::with_capacity(SMALL_FRAMES * 140);
    for n in 0..SMALL_FRAMES {
        let body = format!("hello stomp #{n:07}");
        debug_assert_eq!(body.len(), 20);
        push_frame(
            &mut bytes,
            &[
                ("subscription", "sub-0"),
                ("destination", "/queue/bench"),
                ("message-id", &format!("m-{n:08}")),
                ("content-type", "text/plain"),
                ("content-length", &body.len().to_string()),
            ],
            body.as_bytes(),
        );
    }
    Workload {
        name: "small",
        description: "MESSAGE, 5 headers, 20-byte body",
        bytes,
        frames: SMALL_FRAMES,
    }
}

/// MESSAGE frames as a chat service's broker sends them: 9 headers, among them
/// an ActiveMQ-style `message-id` whose colons are escaped as `\c`, and a
/// 340-byte JSON body.
pub fn chat() -> Workload {
    let mut bytes = Vec::with_capacity(CHAT_FRAMES * 600);
    for n in 0..CHAT_FRAMES {
        let body = chat_body(n);
        push_frame(
            &mut bytes,
            &[
                ("destination", "/topic/chat.room-42"),
                ("subscription", "sub-chat-7"),
                (
                    "message-id",
                    &format!("ID\\cbroker-7f3a2-41231-1795460210633-3\\c5475\\c-1\\c1\\c{n}"),
                ),
                ("redelivered", "false"),
                ("priority", "4"),
                (
                    "timestamp",
                    &format!("{}", 1_795_461_855_081_u64 + n as u64),
                ),
                ("expires", "0"),
                ("content-type", "application/json;charset=utf-8"),
                ("content-length", &body.len().to_string()),
            ],
            body.as_bytes(),
        );
    }
    Workload {
        name: "chat",
        description: "MESSAGE, 9 headers (escaped message-id), 340-byte JSON body",
        bytes,
        frames: CHAT_FRAMES,
    }
}

/// MESSAGE frames with 64 KiB binary bodies (every byte value, NULs included)
/// delimited by `content-length`.
pub fn bulk() -> Workload {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut bytes = Vec::with_capacity(BULK_FRAMES * (BULK_BODY + 200));
    let mut body = vec![0u8; BULK_BODY];
    for n in 0..BULK_FRAMES {
        for chunk in body.chunks_mut(8) {
            let word = rng.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        push_frame(
            &mut bytes,
            &[
                ("destination", "/queue/bulk"),
                ("subscription", "sub-bulk"),
                ("message-id", &format!("bulk-{n:06}")),
                ("content-type", "application/octet-stream"),
                ("content-length", &body.len().to_string()),
            ],
            &body,
        );
    }
    Workload {
        name: "bulk",
        description: "MESSAGE, 5 headers, 64 KiB binary body with content-length",
        bytes,
        frames: BULK_FRAMES,
    }
}

/// The body of the 3-header SEND encode benchmark.
pub const SEND_BODY: &[u8] = b"{\"qty\":1,\"sku\":\"A-1\"}";

/// A 340-byte JSON chat message (the text is padded to length).
fn chat_body(n: usize) -> String {
    let head = format!(
        "{{\"type\":\"chat.message\",\"id\":\"msg-{n:08}\",\"room\":\"room-42\",\
         \"from\":{{\"id\":\"user-1234\",\"name\":\"Ada Lovelace\"}},\
         \"sent_at\":\"2026-01-15T10:32:{:02}Z\",\"mentions\":[\"user-77\"],\
         \"reactions\":{{\"+1\":3}},\"text\":\"",
        n % 60
    );
    let tail = "\"}";
    let filler = "The analytical engine weaves algebraic patterns just as the Jacquard loom weaves flowers and leaves. ";
    let mut body = head;
    let want = CHAT_BODY - tail.len();
    for c in filler.chars().cycle() {
        if body.len() >= want {
            break;
        }
        body.push(c);
    }
    body.push_str(tail);
    debug_assert_eq!(body.len(), CHAT_BODY);
    body
}

/// Appends one MESSAGE frame (headers written as given: already escaped).
fn push_frame(out: &mut Vec<u8>, headers: &[(&str, &str)], body: &[u8]) {
    out.extend_from_slice(b"MESSAGE\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    out.push(0);
}

/// A small deterministic generator for bulk bodies.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_as_documented() {
        let small = small();
        assert!(
            (130..=150).contains(&small.bytes_per_frame()),
            "{}",
            small.bytes_per_frame()
        );
        let chat = chat();
        assert!(chat.bytes_per_frame() > CHAT_BODY + 200);
        let bulk = bulk();
        assert!(bulk.bytes_per_frame() > BULK_BODY);
        // Binary bodies really contain NULs, so only content-length delimits them.
        assert!(bulk.bytes[200..BULK_BODY].contains(&0));
    }

    #[test]
    fn every_frame_ends_in_nul_and_chat_ids_are_escaped() {
        for w in [small(), chat()] {
            assert_eq!(
                memchr::memchr_iter(0, &w.bytes).count(),
                w.frames,
                "{}",
                w.name
            );
        }
        assert_eq!(
            memchr::memmem::find_iter(&chat().bytes, b"ID\\cbroker").count(),
            CHAT_FRAMES
        );
    }
}
