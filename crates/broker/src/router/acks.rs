//! Acknowledgements: which delivery an ACK or NACK names, and settling it.
//!
//! Owns [`Unacked`] (one delivery awaiting its ACK), the lookup of the
//! delivery an ACK/NACK names (1.2 `ack` ids, 1.0/1.1 `message-id` and
//! `subscription`), and ACK/NACK themselves: `client` ACKs are cumulative,
//! `client-individual` ones single; an ACKed persistent message leaves the
//! store; a NACK's queue messages are requeued or dead-lettered (`queues.rs`). Transactions check ACKs through
//! [`find_unconsumed_ack`](Router::find_unconsumed_ack) before applying them.

use super::subscriptions::SubKey;
use super::{AckRef, ConnId, Refusal, Router};
use crate::message::{Message, parse_ack_id};
use std::collections::HashSet;

/// One delivery awaiting its ACK.
pub(super) struct Unacked {
    /// The message's number (`message-id`).
    pub(super) num: u64,
    /// This delivery's number within its subscription, which the 1.2 `ack`
    /// header carries: a redelivery of the same message gets a new one, so a
    /// late ACK for an earlier delivery cannot settle it.
    pub(super) tag: u64,
    /// The message, for queues (to redeliver); `None` for topics.
    pub(super) message: Option<Message>,
}

impl Router {
    /// ACK (or NACK, `nack`): settles the deliveries it names; a NACK's queue
    /// messages are requeued. Then the queue dispatches again.
    pub(super) fn ack(&mut self, conn: ConnId, ack: &AckRef, nack: bool) -> Result<(), Refusal> {
        let (sk, pos) = self.find_ack(conn, ack).ok_or(Refusal::UnknownAck)?;
        let Some(sub) = self.subs[sk].as_mut() else {
            return Err(Refusal::UnknownAck);
        };
        let dest = sub.dest;
        let settled = sub.settled_by(pos);
        if nack {
            let returned: Vec<Unacked> = sub.unacked.drain(settled).collect();
            self.requeue(dest, returned.into_iter(), ack.requeue);
        } else {
            for u in sub.unacked.drain(settled) {
                if let Some(m) = &u.message {
                    self.journal.remove(m);
                }
            }
        }
        self.pump(dest);
        Ok(())
    }

    /// Finds the subscription and position of the delivery an ACK/NACK names.
    fn find_ack(&self, conn: ConnId, ack: &AckRef) -> Option<(SubKey, usize)> {
        self.find_unconsumed_ack(conn, ack, &HashSet::new())
    }

    /// [`find_ack`](Router::find_ack) as if the `consumed` (subscription,
    /// delivery tag) pairs were already acknowledged. A 1.2 `ack` id names the
    /// delivery (its tag); a 1.0/1.1 message-id names the message.
    pub(super) fn find_unconsumed_ack(
        &self,
        conn: ConnId,
        ack: &AckRef,
        consumed: &HashSet<(SubKey, u64)>,
    ) -> Option<(SubKey, usize)> {
        let c = self.conns.get(&conn)?;
        let find = |sk: SubKey, names: &dyn Fn(&Unacked) -> bool| -> Option<(SubKey, usize)> {
            let sub = self.subs.get(sk)?.as_ref()?;
            if sub.conn != conn {
                return None;
            }
            let pos = sub.unacked.iter().position(names)?;
            (!consumed.contains(&(sk, sub.unacked[pos].tag))).then_some((sk, pos))
        };
        if let Some((tag, sk)) = parse_ack_id(&ack.id) {
            return find(sk, &|u| u.tag == tag);
        }
        let num: u64 = ack.id.parse().ok()?;
        let names = |u: &Unacked| u.num == num;
        match &ack.subscription {
            Some(id) => find(*c.subs.get(id)?, &names),
            None => c.subs.values().find_map(|&sk| find(sk, &names)),
        }
    }
}
