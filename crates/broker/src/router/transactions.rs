//! Transactions: COMMIT, applied whole or refused whole.
//!
//! Owns COMMIT: first a dry run of its operations in order, with the same
//! rules the operations apply (destination creation within `max_destinations`,
//! the queue [`admission`], which delivery an ACK/NACK names), counted as if no
//! subscriber took anything; only if every operation would succeed are they
//! applied. Buffering a transaction until COMMIT is the session's.

use super::destinations::{Kind, destination_kind};
use super::queues::{Admission, admission};
use super::subscriptions::SubKey;
use super::{AckRef, ConnId, Refusal, Router, TxOp};
use crate::message::frame_size;
use std::collections::{HashMap, HashSet};
use stompkit_frame::Frame;

/// A dry run of a transaction's operations so far.
struct Plan<'a> {
    router: &'a Router,
    conn: ConnId,
    /// Deliveries the transaction's ACK/NACKs so far settle.
    consumed: HashSet<(SubKey, u64)>,
    /// Destinations that would exist.
    destinations: usize,
    /// Messages and bytes each queue it touches would hold.
    queues: HashMap<&'a str, (usize, usize)>,
    /// Temporary destinations its SENDs' `reply-to` would make.
    temps: HashSet<&'a str>,
}

impl Router {
    /// Applies a transaction's operations in order, or none of them.
    pub(super) fn commit(&mut self, conn: ConnId, ops: Vec<TxOp>) -> Result<(), Refusal> {
        // Validate first so a refused transaction has no partial effect.
        self.check_commit(conn, &ops)?;
        for op in ops {
            match op {
                TxOp::Send(frame) => self.publish(conn, frame)?,
                TxOp::Ack(a) => self.ack(conn, &a, false)?,
                TxOp::Nack(a) => self.ack(conn, &a, true)?,
            }
        }
        Ok(())
    }

    /// Whether every operation of a transaction succeeds when they are applied in
    /// order: each ACK/NACK names a message still unacked after the ones before
    /// it (a `client` one covers the earlier messages too), no SEND needs a
    /// destination beyond `max_destinations`, and no SEND can overflow a queue
    /// that refuses, counted as if no subscriber took anything. So a COMMIT is
    /// applied whole or refused whole.
    fn check_commit(&self, conn: ConnId, ops: &[TxOp]) -> Result<(), Refusal> {
        let mut plan = Plan {
            router: self,
            conn,
            consumed: HashSet::new(),
            destinations: self.names.len(),
            queues: HashMap::new(),
            temps: HashSet::new(),
        };
        for op in ops {
            match op {
                TxOp::Ack(a) => plan.ack(a, false)?,
                TxOp::Nack(a) => plan.ack(a, true)?,
                TxOp::Send(f) => plan.send(f)?,
            }
        }
        Ok(())
    }
}

impl<'a> Plan<'a> {
    /// An ACK/NACK: the deliveries it settles; a NACK's queue messages go back.
    fn ack(&mut self, a: &AckRef, nack: bool) -> Result<(), Refusal> {
        let router = self.router;
        let (sk, pos) = router
            .find_unconsumed_ack(self.conn, a, &self.consumed)
            .ok_or(Refusal::UnknownAck)?;
        let Some(sub) = router.subs[sk].as_ref() else {
            return Err(Refusal::UnknownAck);
        };
        for u in sub.unacked.range(sub.settled_by(pos)) {
            if self.consumed.insert((sk, u.tag))
                && nack
                && let Some(m) = &u.message
                && let Some(d) = router.dests[sub.dest].as_ref()
            {
                let held = self.queue(&d.name);
                *held = (held.0 + 1, held.1 + m.len());
            }
        }
        Ok(())
    }

    /// A SEND: the destination it needs, and whether its queue admits it.
    fn send(&mut self, frame: &'a Frame) -> Result<(), Refusal> {
        let router = self.router;
        let (temps, destinations) = (&mut self.temps, &mut self.destinations);
        router.plan_reply_to(self.conn, frame, temps, destinations)?;
        let name = frame.destination().unwrap_or("");
        if router.is_missing_reply_destination(name) {
            return Ok(());
        }
        let existing = router
            .names
            .get(name)
            .and_then(|&k| router.dests[k].as_ref());
        let kind = match existing {
            Some(d) => d.kind,
            None => {
                let kind = destination_kind(name).ok_or(Refusal::BadDestination)?;
                // The first SEND to a new queue creates it, holding the
                // message; a new topic (no subscribers) goes again at once.
                let creates = kind == Kind::Topic || !self.queues.contains_key(name);
                if creates {
                    router.may_create(self.destinations)?;
                    if kind == Kind::Queue {
                        self.destinations += 1;
                    }
                }
                kind
            }
        };
        if kind == Kind::Topic {
            return Ok(());
        }
        let size = frame_size(frame);
        let config = &router.config;
        let held = self.queue(name);
        let (messages, bytes) = (held.0 + 1, held.1 + size);
        // A SEND names a queue, never a durable subscription's.
        if admission(config, config.queue_overflow, messages, bytes) == Admission::Refuse {
            return Err(Refusal::QueueFull);
        }
        *held = (messages, bytes);
        Ok(())
    }

    /// What the queue `name` would hold: what it holds now (nothing if it does
    /// not exist yet) plus what the transaction added so far.
    fn queue(&mut self, name: &'a str) -> &mut (usize, usize) {
        let router = self.router;
        self.queues.entry(name).or_insert_with(|| {
            router
                .names
                .get(name)
                .and_then(|&k| router.dests[k].as_ref())
                .map_or((0, 0), |d| (d.messages.len(), d.messages.bytes()))
        })
    }
}
