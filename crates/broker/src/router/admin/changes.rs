//! The operator's changes to the router: purging a queue, deleting a queue,
//! removing a durable subscription.
//!
//! Owns what each change does to routing state and to the store: a message
//! dropped here leaves the store as an acknowledged or expired one does (the
//! journal's `Remove`), a removed durable subscription as an UNSUBSCRIBE
//! with its headers does (`Unsubscribe`), and each change is sealed into a
//! store unit of its own (no connection's RECEIPT waits for it). Connections
//! that lose what they were subscribed to get ERROR through the router's one
//! `close_with_error` and are closed.

use super::{AdminRefusal, durable_id};
use crate::metrics::ErrorReason;
use crate::router::destinations::DestKey;
use crate::router::{ConnId, Router};
use stompkit_frame::Frame;

/// The `message` of the ERROR a deleted queue's consumers get.
const QUEUE_DELETED: &str = "queue deleted";
/// The `message` of the ERROR a removed durable subscription's subscriber gets.
const SUBSCRIPTION_DELETED: &str = "subscription deleted by administrator";

impl Router {
    /// Drops a queue's ready messages (by its full name, `/queue/...`),
    /// persistent ones from the store too, and says how many; deliveries
    /// awaiting an ACK stay. The queue stays, empty, so that the operator
    /// sees it so; left unused it goes at its next use, as any unused
    /// destination does.
    pub fn purge(&mut self, name: &str) -> Result<usize, AdminRefusal> {
        let (key, _) = self.listed_queue(name).ok_or(AdminRefusal::NotFound)?;
        let purged = self.drop_ready(key);
        self.journal.seal(None);
        Ok(purged)
    }

    /// Deletes a queue (by its full name, `/queue/...`): its consumers get
    /// ERROR `queue deleted` and are closed, its ready and unacknowledged
    /// messages are dropped (from the store too), and it is gone; a later
    /// SEND or SUBSCRIBE makes a new one.
    pub fn delete_queue(&mut self, name: &str) -> Result<(), AdminRefusal> {
        let (key, d) = self.listed_queue(name).ok_or(AdminRefusal::NotFound)?;
        let subs = d.subs.clone();
        self.drop_ready(key);
        let mut consumers: Vec<ConnId> = Vec::with_capacity(subs.len());
        for sk in subs {
            let Some(sub) = self.subs[sk].as_mut() else {
                continue;
            };
            for unacked in sub.unacked.drain(..) {
                if let Some(m) = &unacked.message {
                    self.journal.remove(m);
                }
            }
            consumers.push(sub.conn);
        }
        consumers.sort_unstable();
        consumers.dedup();
        let frame = Frame::error(QUEUE_DELETED)
            .header("destination", name)
            .with_body(format!("{name} was deleted by an administrator\n"));
        for conn in consumers {
            tracing::info!(conn, queue = name, "queue deleted: closing its consumer");
            self.counters.metrics.count_error(ErrorReason::Admin);
            self.close_with_error(conn, &frame);
        }
        self.collect(key);
        self.journal.seal(None);
        Ok(())
    }

    /// Removes a durable subscription for good by its admin id (as
    /// [`subscriptions`](Router::subscriptions) shows it, or its live
    /// subscriber's `<connection>/<id>`), with what it holds, from the store
    /// too: as an UNSUBSCRIBE with its durable headers does. Its subscriber,
    /// if any, gets ERROR and is closed first.
    pub fn delete_subscription(&mut self, id: &str) -> Result<(), AdminRefusal> {
        let backing = self.durable_by_id(id)?;
        let subscribers: Vec<ConnId> = self.dests[backing]
            .iter()
            .flat_map(|d| &d.subs)
            .filter_map(|&sk| self.subs[sk].as_ref())
            .map(|s| s.conn)
            .collect();
        let shown = durable_id(self.dests[backing].as_ref().map_or("", |d| &d.name));
        let frame = Frame::error(SUBSCRIPTION_DELETED).with_body(format!(
            "the durable subscription {shown} was deleted by an administrator\n"
        ));
        for conn in subscribers {
            tracing::info!(conn, subscription = shown, "durable subscription deleted");
            self.counters.metrics.count_error(ErrorReason::Admin);
            self.close_with_error(conn, &frame);
        }
        self.forget_durable(backing);
        self.journal.seal(None);
        Ok(())
    }

    /// The queue of the durable subscription `id` names (see
    /// [`delete_subscription`](Router::delete_subscription)).
    fn durable_by_id(&self, id: &str) -> Result<DestKey, AdminRefusal> {
        let by_key = self.dests.iter().position(|d| {
            d.as_ref()
                .is_some_and(|d| d.durable_of.is_some() && durable_id(&d.name) == id)
        });
        if let Some(key) = by_key {
            return Ok(key);
        }
        let (conn, sub_id) = id.split_once('/').ok_or(AdminRefusal::NotFound)?;
        let conn: ConnId = conn.parse().map_err(|_| AdminRefusal::NotFound)?;
        let sk = self.conns.get(&conn).and_then(|c| c.subs.get(sub_id));
        let sub = sk.and_then(|&sk| self.subs[sk].as_ref());
        let dest = sub.and_then(|s| Some((s.dest, self.dests[s.dest].as_ref()?)));
        match dest {
            Some((key, d)) if d.durable_of.is_some() => Ok(key),
            Some(_) => Err(AdminRefusal::NotDurable),
            None => Err(AdminRefusal::NotFound),
        }
    }

    /// Drops the ready messages of queue `key` (from the store too); how many.
    fn drop_ready(&mut self, key: DestKey) -> usize {
        let Some(d) = self.dests[key].as_mut() else {
            return 0;
        };
        let mut dropped = 0;
        while let Some(m) = d.messages.pop_front() {
            self.journal.remove(&m);
            dropped += 1;
        }
        dropped
    }
}
