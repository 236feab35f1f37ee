//! The live state: which messages and subscriptions are alive, in which
//! segment, and how many live bytes each segment holds.
//!
//! Recovery and the writer apply ops through the same [`Index`], so the state a
//! restart rebuilds is, by construction, the state the writer tracked, and
//! recovery hands its index to the writer as it is. Recovery keeps each
//! message's content beside it, at the message's `slot`; the writer keeps no
//! content and reads a segment back when it copies its live messages forward.
//!
//! Subscription order: every plain Subscribe takes the next creation ordinal
//! (a replacement too: it moves to the end), a copied subscription keeps the
//! ordinal it carries. The counter and the highest message id are also carried
//! by each segment's checkpoint, so both come out the same when older segments
//! are gone.

use super::StoredSubscription;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// A hasher for message ids (numbers the broker assigns, not a client): a
/// multiply and a fold, much cheaper than SipHash on a million of them.
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }
}

type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;
type IdSet = HashSet<u64, BuildHasherDefault<IdHasher>>;

/// What is live in one segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct SegLive {
    /// Encoded bytes of its live Puts and Subscribes.
    pub bytes: u64,
    /// How many live messages and subscriptions it holds.
    pub count: u64,
}

/// A live message.
#[derive(Debug)]
pub(super) struct LiveMessage {
    /// Its queue key.
    pub queue: Arc<str>,
    /// The segment holding its Put.
    pub seg: u64,
    /// The encoded size of that Put.
    pub size: u32,
    /// Deliveries so far.
    pub deliveries: u32,
    /// Where recovery keeps its content (unused by the writer).
    pub slot: usize,
}

/// A live subscription.
#[derive(Debug, Clone)]
pub(super) struct LiveSub {
    /// The subscription.
    pub sub: StoredSubscription,
    /// Its creation ordinal.
    pub ordinal: u64,
    /// The segment holding its Subscribe.
    pub seg: u64,
    /// The encoded size of that Subscribe.
    pub size: u32,
}

/// The live state.
#[derive(Debug, Default)]
pub(super) struct Index {
    messages: IdMap<LiveMessage>,
    /// Live message ids by queue (with the shared key).
    queues: HashMap<Arc<str>, (Arc<str>, IdSet)>,
    subs: HashMap<String, LiveSub>,
    segs: HashMap<u64, SegLive>,
    max_id: u64,
    next_ordinal: u64,
}

impl Index {
    /// The highest message id seen (Puts and checkpoints).
    pub fn max_id(&self) -> u64 {
        self.max_id
    }

    /// The ordinal the next new subscription takes.
    pub fn next_ordinal(&self) -> u64 {
        self.next_ordinal
    }

    /// A message is put at `at` (segment, encoded size), replacing a live one
    /// of the same id, whose slot is returned.
    pub fn put(
        &mut self,
        id: u64,
        queue: &str,
        at: (u64, u32),
        deliveries: u32,
        slot: usize,
    ) -> Option<usize> {
        self.max_id = self.max_id.max(id);
        let queue = self.join(queue, id);
        self.hold(at);
        let (seg, size) = at;
        let live = LiveMessage {
            queue,
            seg,
            size,
            deliveries,
            slot,
        };
        let old = self.messages.insert(id, live)?;
        self.release(old.seg, old.size);
        let moved = self
            .messages
            .get(&id)
            .is_some_and(|new| new.queue != old.queue);
        if moved {
            self.leave(&old.queue, id);
        }
        Some(old.slot)
    }

    /// A live message was delivered once more (unknown ids are ignored);
    /// returns its slot.
    pub fn delivered(&mut self, id: u64) -> Option<usize> {
        let m = self.messages.get_mut(&id)?;
        m.deliveries = m.deliveries.saturating_add(1);
        Some(m.slot)
    }

    /// A message leaves (unknown ids are ignored); returns its slot.
    pub fn remove(&mut self, id: u64) -> Option<usize> {
        let m = self.messages.remove(&id)?;
        self.release(m.seg, m.size);
        self.leave(&m.queue, id);
        Some(m.slot)
    }

    /// Takes `id` out of `queue`'s members.
    fn leave(&mut self, queue: &str, id: u64) {
        if let Some((_, ids)) = self.queues.get_mut(queue) {
            ids.remove(&id);
            if ids.is_empty() {
                self.queues.remove(queue);
            }
        }
    }

    /// A subscription is created or replaced; `ordinal` is a copied one's.
    pub fn subscribe(&mut self, sub: StoredSubscription, ordinal: Option<u64>, at: (u64, u32)) {
        if let Some(old) = self.subs.remove(&sub.key) {
            self.release(old.seg, old.size);
        }
        let ordinal = ordinal.unwrap_or(self.next_ordinal);
        self.next_ordinal = self.next_ordinal.max(ordinal.saturating_add(1));
        self.hold(at);
        let (seg, size) = at;
        let key = sub.key.clone();
        let live = LiveSub {
            sub,
            ordinal,
            seg,
            size,
        };
        self.subs.insert(key, live);
    }

    /// A subscription and every live message of its queue go; `dead` is told
    /// each message's slot.
    pub fn unsubscribe(&mut self, key: &str, mut dead: impl FnMut(usize)) {
        if let Some(old) = self.subs.remove(key) {
            self.release(old.seg, old.size);
        }
        let Some((_, ids)) = self.queues.remove(key) else {
            return;
        };
        for id in ids {
            if let Some(m) = self.messages.remove(&id) {
                self.release(m.seg, m.size);
                dead(m.slot);
            }
        }
    }

    /// A checkpoint: nothing below these was forgotten.
    pub fn checkpoint(&mut self, max_id: u64, next_ordinal: u64) {
        self.max_id = self.max_id.max(max_id);
        self.next_ordinal = self.next_ordinal.max(next_ordinal);
    }

    /// What is live in segment `seg`.
    pub fn seg_live(&self, seg: u64) -> SegLive {
        self.segs.get(&seg).copied().unwrap_or_default()
    }

    /// Live bytes over all segments.
    pub fn total_live(&self) -> u64 {
        self.segs.values().map(|s| s.bytes).sum()
    }

    /// Forgets a deleted segment.
    pub fn forget_seg(&mut self, seg: u64) {
        self.segs.remove(&seg);
    }

    /// The live message `id`, if any.
    pub fn message(&self, id: u64) -> Option<&LiveMessage> {
        self.messages.get(&id)
    }

    /// Live subscriptions (all, or those whose Subscribe is in `seg`), in
    /// creation order.
    pub fn subscriptions(&self, seg: Option<u64>) -> Vec<LiveSub> {
        let mut subs: Vec<LiveSub> = self
            .subs
            .values()
            .filter(|s| seg.is_none_or(|seg| s.seg == seg))
            .cloned()
            .collect();
        subs.sort_unstable_by_key(|s| s.ordinal);
        subs
    }

    /// Adds `id` to `queue`'s members; returns the shared key.
    fn join(&mut self, queue: &str, id: u64) -> Arc<str> {
        if let Some((key, ids)) = self.queues.get_mut(queue) {
            ids.insert(id);
            return key.clone();
        }
        let key: Arc<str> = Arc::from(queue);
        let mut ids = IdSet::default();
        ids.insert(id);
        self.queues.insert(key.clone(), (key.clone(), ids));
        key
    }

    fn hold(&mut self, (seg, size): (u64, u32)) {
        let s = self.segs.entry(seg).or_default();
        s.bytes += u64::from(size);
        s.count += 1;
    }

    fn release(&mut self, seg: u64, size: u32) {
        if let Some(s) = self.segs.get_mut(&seg) {
            s.bytes = s.bytes.saturating_sub(u64::from(size));
            s.count = s.count.saturating_sub(1);
        }
    }
}
