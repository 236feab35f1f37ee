//! The journal: what the router asks the store to write, and the RECEIPTs that
//! wait for it.
//!
//! Owns the store [`Op`]s of the command being handled (sealed into one
//! [`Unit`] when it is done, so a COMMIT's SENDs and ACKs are one atomic
//! write), the units waiting for the router task to hand them to the store,
//! which unit each connection last depended on, and the RECEIPTs held until
//! the store reports that unit durable (a RECEIPT goes only when every earlier
//! persistent SEND, ACK and NACK of its connection is on disk). When writing
//! fails, the connections whose units were lost get ERROR. Without a store
//! (`in_memory`) it records nothing and holds nothing. In cluster mode the
//! same units carry the cluster's ops ([`ClusterOp`]: a RECEIPT waits for
//! JetStream as it would for the disk), and what the store would record of
//! durable subscriptions and settled messages becomes cluster ops.
//!
//! It does not write files (the store does) nor decide which messages are
//! persistent (`queues.rs`, `acks.rs` and `subscriptions.rs` do).

use super::ConnId;
use super::cluster::{ClusterOp, ClusterUnit, Settle};
use crate::message::Message;
use crate::outbox::Outbox;
use crate::store::{Op, StoredMessage, StoredSubscription, Unit};
use std::collections::VecDeque;
use std::sync::Arc;
use stompkit_frame::{AckMode, Frame};
use stompkit_wire::Encoder;

/// A frame held until a unit is durable.
struct Held {
    /// The unit it waits for.
    seq: u64,
    /// Its connection.
    conn: ConnId,
    outbox: Arc<Outbox>,
    encoder: Encoder,
    /// The RECEIPT (or a DISCONNECT's RECEIPT, then close).
    receipt: String,
    /// Close the connection after it (DISCONNECT).
    close: bool,
}

/// What a failed write means for a connection: ERROR naming `receipt` (if a
/// RECEIPT was held for it), then close.
pub(super) struct Lost {
    /// The connection.
    pub(super) conn: ConnId,
    /// Its outbox (it may have disconnected meanwhile).
    pub(super) outbox: Arc<Outbox>,
    /// Its encoder.
    pub(super) encoder: Encoder,
    /// The RECEIPT that can no longer be given.
    pub(super) receipt: Option<String>,
}

/// See the module docs.
#[derive(Default)]
pub(super) struct Journal {
    /// A store is open: record ops and hold RECEIPTs.
    enabled: bool,
    /// Cluster mode: record cluster ops.
    clustered: bool,
    /// Ops of the command being handled.
    open: Vec<Op>,
    /// Cluster ops of the command being handled.
    open_cluster: Vec<ClusterOp>,
    /// Sealed units not yet taken by the router task.
    sealed: Vec<Unit>,
    /// Sealed cluster units not yet taken by the router task.
    sealed_cluster: Vec<ClusterUnit>,
    /// The next unit's number.
    next_seq: u64,
    /// Every unit up to this one is durable.
    durable: u64,
    /// RECEIPTs waiting, each connection's in its order.
    held: VecDeque<Held>,
    /// Units not yet durable and the connection each was sealed for.
    owners: VecDeque<(u64, ConnId, Arc<Outbox>, Encoder)>,
}

impl Journal {
    /// A journal recording for a store (`enabled`) or recording nothing.
    pub(super) fn new(enabled: bool) -> Journal {
        Journal {
            enabled,
            next_seq: 1,
            ..Journal::default()
        }
    }

    /// Records that `message` joins the queue `queue` (if persistent).
    pub(super) fn put(&mut self, queue: &str, message: &Message) {
        if self.enabled && message.persistent {
            self.open.push(Op::Put(message.to_stored(queue)));
        }
    }

    /// Switches cluster mode on.
    pub(super) fn set_clustered(&mut self) {
        self.clustered = true;
    }

    /// Records a cluster op of the command being handled.
    #[inline]
    pub(super) fn cluster(&mut self, op: ClusterOp) {
        self.open_cluster.push(op);
    }

    /// Records that message `id` (`persistent`, or pulled from JetStream
    /// with `token`) was written to a subscriber: with `auto`
    /// acknowledgement it is done, else delivered once more.
    #[inline]
    pub(super) fn delivered_or_done(
        &mut self,
        id: u64,
        persistent: bool,
        token: Option<Arc<str>>,
        ack: AckMode,
    ) {
        match ack {
            AckMode::Auto => {
                if persistent {
                    self.removed(id);
                }
                if let Some(token) = token {
                    let how = Settle::Ack;
                    self.open_cluster.push(ClusterOp::Settle { token, how });
                }
            }
            _ if self.enabled && persistent => self.open.push(Op::Delivered { id }),
            _ => {}
        }
    }

    /// Records that `message` left its queue (if persistent, or pulled from
    /// JetStream: settled there).
    #[inline]
    pub(super) fn remove(&mut self, message: &Message) {
        if message.persistent {
            self.removed(message.num);
        }
        if let Some(token) = &message.token {
            let (token, how) = (token.clone(), Settle::Ack);
            self.open_cluster.push(ClusterOp::Settle { token, how });
        }
    }

    /// Persistent message `id` left its queue.
    fn removed(&mut self, id: u64) {
        if self.enabled {
            self.open.push(Op::Remove { id });
        }
    }

    /// Records a durable subscription.
    pub(super) fn subscribe(&mut self, subscription: StoredSubscription) {
        if self.clustered {
            self.open_cluster
                .push(ClusterOp::Durable(subscription.clone()));
        }
        if self.enabled {
            self.open.push(Op::Subscribe(subscription));
        }
    }

    /// Records that a durable subscription (and its messages) is gone.
    pub(super) fn unsubscribe(&mut self, key: &str) {
        if self.clustered {
            let key = key.to_owned();
            self.open_cluster.push(ClusterOp::Forget { key });
        }
        if self.enabled {
            self.open.push(Op::Unsubscribe {
                key: key.to_owned(),
            });
        }
    }

    /// Whether it records for a store.
    pub(super) fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Whether the command being handled recorded anything.
    #[inline]
    pub(super) fn has_open(&self) -> bool {
        !self.open.is_empty() || !self.open_cluster.is_empty()
    }

    /// The command of `conn` is done: its ops become one unit. Returns that
    /// unit's number, which `conn`'s later RECEIPTs wait for.
    pub(super) fn seal(&mut self, conn: Option<(ConnId, &Arc<Outbox>, Encoder)>) -> Option<u64> {
        if !self.has_open() {
            return None;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if !self.open.is_empty() {
            let ops = std::mem::take(&mut self.open);
            self.sealed.push(Unit { seq, ops });
        }
        if !self.open_cluster.is_empty() {
            let ops = std::mem::take(&mut self.open_cluster);
            self.sealed_cluster.push(ClusterUnit { seq, ops });
        }
        if let Some((conn, outbox, encoder)) = conn {
            self.owners.push_back((seq, conn, outbox.clone(), encoder));
        }
        Some(seq)
    }

    /// The unit a RECEIPT for a connection whose last sealed unit is
    /// `last_seq` must wait for, if any: the ops of the command being handled
    /// (sealed next) or that last unit.
    pub(super) fn wait_for(&self, last_seq: u64) -> Option<u64> {
        let seq = if !self.has_open() {
            last_seq
        } else {
            self.next_seq
        };
        (seq > self.durable).then_some(seq)
    }

    /// Holds a RECEIPT until unit `seq` is durable (then close when `close`).
    pub(super) fn hold(
        &mut self,
        seq: u64,
        conn: ConnId,
        outbox: &Arc<Outbox>,
        encoder: Encoder,
        receipt: &str,
        close: bool,
    ) {
        self.held.push_back(Held {
            seq,
            conn,
            outbox: outbox.clone(),
            encoder,
            receipt: receipt.to_owned(),
            close,
        });
    }

    /// The sealed units, for the store.
    pub(super) fn take_units(&mut self) -> Vec<Unit> {
        std::mem::take(&mut self.sealed)
    }

    /// The sealed cluster units, in order, for the cluster.
    pub(super) fn take_cluster_units(&mut self) -> Vec<ClusterUnit> {
        std::mem::take(&mut self.sealed_cluster)
    }

    /// Every unit up to `seq` is durable: writes the RECEIPTs that waited for
    /// them (closing after a DISCONNECT's). Each connection's RECEIPTs are held
    /// in its order; those of different connections may wait for units in any
    /// order, so all of them are looked at.
    pub(super) fn durable(&mut self, seq: u64) {
        self.durable = self.durable.max(seq);
        while self.owners.front().is_some_and(|o| o.0 <= seq) {
            self.owners.pop_front();
        }
        self.held.retain(|h| {
            if h.seq > seq {
                return true;
            }
            let receipt = Frame::receipt_for(&h.receipt);
            let write = |buf: &mut bytes::BytesMut| {
                super::encode_or_log(&h.encoder, &receipt, buf, h.conn);
            };
            match h.close {
                true => h.outbox.close_with(write),
                false => {
                    h.outbox.append(write);
                }
            }
            false
        });
    }

    /// Units `first..=last` were not written: the connections they were
    /// sealed for, each once with the first RECEIPT held for it there.
    pub(super) fn failed(&mut self, first: u64, last: u64) -> Vec<Lost> {
        let mut lost: Vec<Lost> = Vec::new();
        let owners = std::mem::take(&mut self.owners);
        for (seq, conn, outbox, encoder) in owners {
            if seq < first || seq > last {
                self.owners.push_back((seq, conn, outbox, encoder));
            } else if !lost.iter().any(|l| l.conn == conn) {
                lost.push(Lost {
                    conn,
                    outbox,
                    encoder,
                    receipt: None,
                });
            }
        }
        let held = std::mem::take(&mut self.held);
        for h in held {
            // A lost connection is closed: its later RECEIPTs never go.
            match lost.iter_mut().find(|l| l.conn == h.conn) {
                Some(l) if h.seq <= last => {
                    l.receipt.get_or_insert(h.receipt);
                }
                Some(_) => {}
                None => self.held.push_back(h),
            }
        }
        lost
    }
}

impl Message {
    /// What the store keeps of this message in queue `queue`.
    fn to_stored(&self, queue: &str) -> StoredMessage {
        StoredMessage {
            id: self.num,
            queue: queue.to_owned(),
            headers: self.headers().clone(),
            body: self.body.clone(),
            expires: self.expires,
            deliveries: self.deliveries,
        }
    }
}
