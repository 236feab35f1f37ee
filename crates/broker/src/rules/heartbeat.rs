//! Heart-beats as both sessions keep them: the CONNECTED answer to a client's
//! `heart-beat` request (H1–H4, mirrored and clamped to `[heartbeat]`), and one
//! tick of a heart-beat timer (send the beat, or find the peer dead, H5).
//!
//! Does not parse the header (the sessions do, at different moments) nor own
//! the timers (each session keeps its own `HeartBeater`s).

use crate::config::HeartbeatConfig;
use crate::outbox::Outbox;
use std::time::Instant;
use stompkit_negotiate::{
    HeartBeat, HeartBeatAction, HeartBeatIntervals, HeartBeater, negotiate_heartbeat,
};

/// The server's `heart-beat` for CONNECTED and the intervals both sides keep.
///
/// Answers what the client asked for, clamped to our bounds (RabbitMQ's way):
/// we send as often as it wants to receive, and want what it offers to send.
pub(crate) fn answer_heartbeat(
    theirs: HeartBeat,
    bounds: &HeartbeatConfig,
) -> (HeartBeat, HeartBeatIntervals) {
    let ours = HeartBeat {
        cx: theirs.cy,
        cy: theirs.cx,
    }
    .clamp(bounds.min_ms, bounds.max_ms);
    (ours, negotiate_heartbeat(ours, theirs))
}

/// One tick of a heart-beat timer at `now`: when a beat is due, an EOL goes
/// into `outbox`. Returns `false` when the peer has been silent too long.
pub(crate) fn beat(beats: &mut HeartBeater, outbox: &Outbox, now: Instant) -> bool {
    match beats.handle_timeout(now) {
        Some(HeartBeatAction::SendBeat) => {
            outbox.append(|buf| buf.extend_from_slice(b"\n"));
            beats.on_sent(now);
            true
        }
        Some(HeartBeatAction::PeerDead) => false,
        None => true,
    }
}
