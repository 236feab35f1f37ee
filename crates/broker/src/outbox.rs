//! The outbox: bytes queued toward one connection.
//!
//! Owns the per-connection write buffer that the router (deliveries, receipts) and
//! the connection (CONNECTED, ERROR, heart-beats) append encoded frames to, and the
//! connection's writer takes whole, so many frames leave in one write (coalescing).
//! One `Arc<Outbox>` per connection, shared by exactly the router and that
//! connection: its mutex is never global and is held only for a memcpy.
//!
//! It also carries the slow-consumer bound: [`Outbox::is_full`] says whether the
//! bytes queued plus the bytes being written reached `max_outbox_bytes`, and
//! [`Outbox::room`] waits until it is not: the connection stops reading from a
//! client whose outbox is full (back-pressure), so a client that asks for replies
//! (RECEIPTs) and never reads them cannot grow it without bound. It does no I/O
//! itself; `connection.rs` drains it.
//!
//! Publisher flow control is carried here, because every connection has exactly
//! one outbox that both the router and its reader see, but its rules live in
//! `flow.rs`: an outbox knows its congestion level
//! ([`is_congested`](Outbox::is_congested)), keeps the publishers
//! [`park`](Outbox::park)ed on it and releases them when a write takes it below
//! that level or it closes ([`written`](Outbox::written),
//! [`release_parked`](Outbox::release_parked)); as a publisher it stores its
//! `flow::Publisher` state in an atomic ([`is_paused`](Outbox::is_paused),
//! [`resume_reading`](Outbox::resume_reading),
//! [`set_exempt`](Outbox::set_exempt)) and wakes its reader
//! ([`resumed`](Outbox::resumed)). The timing (how long a reader waits, how long
//! it is exempt) is the reader's, with `flow.rs`'s functions.

use crate::flow::{self, Event, Publisher};
use bytes::BytesMut;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Buffers above this capacity are given back once drained.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Bytes waiting to be written to one connection.
///
/// ```
/// use stompkit_broker::internals::{Outbox, Take};
/// let outbox = Outbox::new(1024);
/// assert!(outbox.append(|buf| buf.extend_from_slice(b"RECEIPT\nreceipt-id:1\n\n\0")));
/// let mut spare = bytes::BytesMut::new();
/// assert_eq!(outbox.take(&mut spare), Take::Data);
/// assert_eq!(&spare[..], b"RECEIPT\nreceipt-id:1\n\n\0");
/// ```
#[derive(Debug)]
pub struct Outbox {
    inner: Mutex<Inner>,
    bound: usize,
    /// Bytes in the buffer plus bytes handed to the writer and not yet written.
    queued: AtomicUsize,
    in_flight: AtomicUsize,
    /// The router skipped this connection because it was full; the writer tells the
    /// router when it drained.
    blocked: AtomicBool,
    closing: AtomicBool,
    /// Wakes the writer: data or close.
    wake: Notify,
    /// Wakes everyone waiting for the close.
    closed: Notify,
    /// Wakes the reader waiting for [`Outbox::room`].
    room: Notify,
    /// Queued bytes at which publishers delivering here are paused.
    congestion: usize,
    /// As a publisher: its `flow::Publisher` state, as a byte.
    publisher: AtomicU8,
    /// Wakes the reader when the pause ends.
    resume: Notify,
    /// As a subscriber: publishers paused on this outbox's congestion.
    parked: Mutex<Vec<Arc<Outbox>>>,
    /// Whether `parked` may be non-empty (keeps `written` lock-free otherwise).
    has_parked: AtomicBool,
}

#[derive(Debug, Default)]
struct Inner {
    buf: BytesMut,
    closing: bool,
}

/// What [`Outbox::take`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// Bytes were moved into the caller's buffer.
    Data,
    /// Nothing to write; wait for [`Outbox::wait`].
    Empty,
    /// Closed and fully drained: shut the connection down.
    Closed,
}

impl Outbox {
    /// An empty outbox whose slow-consumer bound is `bound` bytes.
    pub fn new(bound: usize) -> Outbox {
        Outbox {
            inner: Mutex::new(Inner::default()),
            bound,
            queued: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            blocked: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            wake: Notify::new(),
            closed: Notify::new(),
            room: Notify::new(),
            congestion: flow::congestion_level(bound),
            publisher: AtomicU8::new(Publisher::Reading.as_byte()),
            resume: Notify::new(),
            parked: Mutex::new(Vec::new()),
            has_parked: AtomicBool::new(false),
        }
    }

    /// Appends bytes with `write`; `false` (and nothing written) once closing.
    #[inline]
    pub fn append(&self, write: impl FnOnce(&mut BytesMut)) -> bool {
        let Ok(mut inner) = self.inner.lock() else {
            return false;
        };
        if inner.closing {
            return false;
        }
        let before = inner.buf.len();
        write(&mut inner.buf);
        let added = inner.buf.len() - before;
        // Counted before the lock is released: once the writer can take these
        // bytes, `written` subtracts them, and `queued` must already hold them.
        self.queued.fetch_add(added, Ordering::Relaxed);
        drop(inner);
        if before == 0 && added > 0 {
            self.wake.notify_one();
        }
        true
    }

    /// Appends a final frame (typically ERROR) and closes: nothing more is accepted,
    /// and the writer closes the connection once this is written.
    pub fn close_with(&self, write: impl FnOnce(&mut BytesMut)) {
        if let Ok(mut inner) = self.inner.lock()
            && !inner.closing
        {
            let before = inner.buf.len();
            write(&mut inner.buf);
            let added = inner.buf.len() - before;
            self.queued.fetch_add(added, Ordering::Relaxed);
            inner.closing = true;
        }
        self.closing.store(true, Ordering::Release);
        self.wake.notify_one();
        self.closed.notify_waiters();
        self.release_parked();
    }

    /// Closes without a final frame.
    pub fn close(&self) {
        self.close_with(|_| {});
    }

    /// Whether the outbox is closing (no more writes accepted).
    #[inline]
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Waits until [`close`](Outbox::close) has been called.
    pub async fn closed(&self) {
        let notified = self.closed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.is_closing() {
            return;
        }
        notified.await;
    }

    /// Bytes queued and in flight.
    #[inline]
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// The slow-consumer bound.
    pub fn bound(&self) -> usize {
        self.bound
    }

    /// Whether the queued bytes reached the bound (the consumer is slow).
    #[inline]
    pub fn is_full(&self) -> bool {
        self.queued() >= self.bound
    }

    /// Records that the router held back messages because this outbox was full.
    #[inline]
    pub fn mark_blocked(&self) {
        self.blocked.store(true, Ordering::Relaxed);
    }

    /// Clears and returns the blocked mark (the writer calls this after a write).
    pub fn take_blocked(&self) -> bool {
        self.blocked.swap(false, Ordering::Relaxed)
    }

    /// Moves everything queued into `spare` (which must be empty), swapping buffers
    /// so neither side allocates in steady state.
    pub fn take(&self, spare: &mut BytesMut) -> Take {
        let Ok(mut inner) = self.inner.lock() else {
            return Take::Closed;
        };
        if !inner.buf.is_empty() {
            std::mem::swap(&mut inner.buf, spare);
            self.in_flight.store(spare.len(), Ordering::Relaxed);
            return Take::Data;
        }
        if inner.closing {
            return Take::Closed;
        }
        if inner.buf.capacity() > KEEP_CAPACITY {
            inner.buf = BytesMut::new();
        }
        Take::Empty
    }

    /// The writer wrote what the last [`take`](Outbox::take) returned; resumes
    /// the publishers parked here once no longer congested.
    pub fn written(&self) {
        let n = self.in_flight.swap(0, Ordering::Relaxed);
        // SeqCst with `park`'s store of `has_parked` and re-check of `queued`:
        // one of the two sides sees the other, so no publisher stays parked.
        let before = self.queued.fetch_sub(n, Ordering::SeqCst);
        if flow::regained_room(before, n, self.bound) {
            // Full before, not now: wake the reader (a stored permit if it is not waiting yet).
            self.room.notify_one();
        }
        if self.queued.load(Ordering::SeqCst) < self.congestion {
            self.release_parked();
        }
    }

    /// Waits until the outbox is below its bound (or closing). A wake-up may come
    /// early: check [`is_full`](Outbox::is_full) again.
    pub async fn room(&self) {
        if self.is_full() && !self.is_closing() {
            self.room.notified().await;
        }
    }

    /// Whether publishers delivering here should pause (queued bytes at or
    /// above the congestion level).
    #[inline]
    pub fn is_congested(&self) -> bool {
        self.queued() >= self.congestion
    }

    /// Pauses `publisher`'s reading until this outbox drains or closes. A
    /// publisher already paused (here or elsewhere) is left as it is.
    pub fn park(&self, publisher: &Arc<Outbox>) {
        if publisher.apply(Event::Park).is_none() {
            return;
        }
        if let Ok(mut parked) = self.parked.lock() {
            parked.push(publisher.clone());
            self.has_parked.store(true, Ordering::SeqCst);
        } else {
            publisher.resume_reading();
        }
        // Drained or closed meanwhile: nobody else would release it.
        if self.is_closing() || self.queued.load(Ordering::SeqCst) < self.congestion {
            self.release_parked();
        }
    }

    /// Resumes every publisher parked here.
    pub fn release_parked(&self) {
        if !self.has_parked.swap(false, Ordering::SeqCst) {
            return;
        }
        let parked = match self.parked.lock() {
            Ok(mut parked) => std::mem::take(&mut *parked),
            Err(_) => return,
        };
        for publisher in parked {
            publisher.resume_reading();
        }
    }

    /// As a publisher: applies `event` to its `flow::Publisher` state;
    /// returns the new state, or `None` when the event changed nothing.
    #[inline]
    fn apply(&self, event: Event) -> Option<Publisher> {
        let before = self
            .publisher
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                Publisher::from_byte(state)
                    .next(event)
                    .map(Publisher::as_byte)
            })
            .ok()?;
        Publisher::from_byte(before).next(event)
    }

    /// As a publisher: whether reading is paused.
    #[inline]
    pub fn is_paused(&self) -> bool {
        Publisher::from_byte(self.publisher.load(Ordering::Acquire)) == Publisher::Paused
    }

    /// Ends this connection's pause (`flow::Event::Release`: the outbox it was
    /// parked on drained or closed) and wakes its reader.
    pub fn resume_reading(&self) {
        if self.apply(Event::Release).is_some() {
            self.resume.notify_one();
        }
    }

    /// Waits until the pause may have ended (check [`is_paused`](Outbox::is_paused) again).
    pub async fn resumed(&self) {
        self.resume.notified().await;
    }

    /// As a publisher: with `true` (`flow::Event::PauseTimedOut`: its reader gave
    /// up waiting), reading resumes and [`park`](Outbox::park) leaves this
    /// connection reading, so that a subscriber that stopped reading meets its
    /// slow-consumer bound soon; with `false` (`flow::Event::ExemptionEnded`) it
    /// may be paused again.
    pub fn set_exempt(&self, exempt: bool) {
        let event = if exempt {
            Event::PauseTimedOut
        } else {
            Event::ExemptionEnded
        };
        self.apply(event);
    }

    /// After a write: whether the router held messages back from this outbox
    /// while it was full and it is no longer full, so the router should be told
    /// (`Drained`) to resume queue dispatch to it. Clears the blocked mark then.
    pub fn take_drained(&self) -> bool {
        !self.is_full() && self.take_blocked()
    }

    /// Waits for data or a close (a wake-up may be spurious: call `take` again).
    pub async fn wait(&self) {
        self.wake.notified().await;
    }

    /// Everything queued, for tests and the sans-IO harness (drains the outbox).
    pub fn drain(&self) -> BytesMut {
        let mut out = BytesMut::new();
        if self.take(&mut out) == Take::Data {
            self.written();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_waits_until_the_writer_drains_below_the_bound() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let o = std::sync::Arc::new(Outbox::new(10));
            o.room().await; // not full: no wait
            assert!(o.append(|b| b.extend_from_slice(b"0123456789")));
            let waiter = tokio::spawn({
                let o = o.clone();
                async move { o.room().await }
            });
            tokio::task::yield_now().await;
            assert!(!waiter.is_finished(), "full: the reader waits");
            let mut spare = BytesMut::new();
            assert_eq!(o.take(&mut spare), Take::Data);
            tokio::task::yield_now().await;
            assert!(!waiter.is_finished(), "in flight still counts");
            o.written();
            tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
                .await
                .unwrap()
                .unwrap();
        });
    }

    #[test]
    fn a_publisher_parked_on_a_congested_outbox_resumes_when_it_drains() {
        let subscriber = Outbox::new(1024 * 1024);
        let publisher = Arc::new(Outbox::new(1024 * 1024));
        assert!(subscriber.append(|b| b.extend_from_slice(&[b'x'; 100 * 1024])));
        assert!(!subscriber.is_congested(), "an eighth of 1 MiB is 128 KiB");
        assert!(subscriber.append(|b| b.extend_from_slice(&[b'x'; 40 * 1024])));
        assert!(subscriber.is_congested());
        subscriber.park(&publisher);
        subscriber.park(&publisher); // already paused: parked once
        assert!(publisher.is_paused());
        let mut spare = BytesMut::new();
        assert_eq!(subscriber.take(&mut spare), Take::Data);
        assert!(publisher.is_paused(), "bytes in flight still count");
        subscriber.written();
        assert!(!publisher.is_paused());
        // Closing releases too.
        assert!(subscriber.append(|b| b.extend_from_slice(&[b'x'; 200 * 1024])));
        subscriber.park(&publisher);
        assert!(publisher.is_paused());
        subscriber.close();
        assert!(!publisher.is_paused());
        // Parking on an outbox that is already closed does not strand the publisher.
        subscriber.park(&publisher);
        assert!(!publisher.is_paused());
    }

    #[test]
    fn a_publisher_whose_pause_timed_out_is_exempt_until_the_exemption_ends() {
        let subscriber = Outbox::new(1024 * 1024);
        let publisher = Arc::new(Outbox::new(1024 * 1024));
        assert!(subscriber.append(|b| b.extend_from_slice(&[b'x'; 200 * 1024])));
        subscriber.park(&publisher);
        assert!(publisher.is_paused());
        // The reader gave up waiting (flow::MAX_PAUSE): reading, and exempt.
        publisher.set_exempt(true);
        publisher.resume_reading();
        assert!(!publisher.is_paused());
        subscriber.park(&publisher);
        assert!(!publisher.is_paused(), "exempt: not paused again");
        // The exemption ended (flow::EXEMPT): it may be paused again.
        publisher.set_exempt(false);
        subscriber.park(&publisher);
        assert!(publisher.is_paused());
        subscriber.close();
        assert!(!publisher.is_paused());
    }

    #[test]
    fn drained_is_reported_once_after_the_router_held_back_and_the_outbox_has_room() {
        let o = Outbox::new(10);
        assert!(o.append(|b| b.extend_from_slice(b"0123456789")));
        assert!(!o.take_drained(), "not held back");
        o.mark_blocked();
        assert!(!o.take_drained(), "still full");
        let mut spare = BytesMut::new();
        assert_eq!(o.take(&mut spare), Take::Data);
        o.written();
        assert!(o.take_drained());
        assert!(!o.take_drained(), "once");
    }

    #[test]
    fn bound_counts_queued_and_in_flight_bytes() {
        let o = Outbox::new(10);
        assert!(o.append(|b| b.extend_from_slice(b"12345")));
        assert!(!o.is_full());
        let mut spare = BytesMut::new();
        assert_eq!(o.take(&mut spare), Take::Data);
        assert!(o.append(|b| b.extend_from_slice(b"67890")));
        assert!(o.is_full(), "in-flight bytes still count");
        o.written();
        assert!(!o.is_full());
        o.close_with(|b| b.extend_from_slice(b"E"));
        assert!(!o.append(|b| b.extend_from_slice(b"late")));
        spare.clear();
        assert_eq!(o.take(&mut spare), Take::Data);
        assert_eq!(&spare[..], b"67890E");
        o.written();
        spare.clear();
        assert_eq!(o.take(&mut spare), Take::Closed);
    }
}
