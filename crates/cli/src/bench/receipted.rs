//! A receipted bench publisher (`--receipt-window N`): every SEND carries a
//! `receipt` header, or with `--transaction K` every K SENDs go in one
//! transaction whose COMMIT carries it, and a message counts as published only
//! when its RECEIPT arrives.
//!
//! Each publisher keeps at most `window` messages whose RECEIPT has not arrived
//! (a semaphore of `window` permits: a message sent takes one, its RECEIPT gives
//! it back), so a broker that answers slowly slows the publisher instead of
//! piling up a backlog. The frames are pre-encoded as in [`super::publisher`]:
//! per frame only the 16 hex digits of its id and the body's stamp are patched
//! in. A reader task takes the RECEIPTs: it marks the unit (one SEND, or one
//! transaction) answered in the [`Ledger`], returns its permits, counts it and
//! records the time from the SEND's write to the RECEIPT's read (the RECEIPT
//! latency). RECEIPTs may come in any order.
//!
//! It is a path of its own so the unreceipted publisher, which the in-memory
//! rows measure, stays exactly as it is.

use super::clock;
use super::flow::Window;
use super::proto::{SendTemplate, Session, stamp};
use super::publisher::{self, Counters, PublisherStats};
use super::scan::Scanner;
use super::subscriber::new_histogram;
use crate::transport::{ReadHalf, WriteHalf};
use anyhow::{Context, Result, anyhow, bail};
use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stompkit_frame::{Frame, Version};
use stompkit_wire::Encoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, oneshot, watch};

/// Digits of a receipt or transaction id (lower-case hex).
pub const ID_LEN: usize = 16;
/// The id written into the templates, patched per frame.
const PLACEHOLDER: &str = "0000000000000000";
/// The receipt of the final DISCONNECT.
const END_RECEIPT: &[u8] = b"bench-end";

/// How much one receipted publisher sends: a plain publisher's plan, a
/// window of RECEIPTs and, optionally, transactions.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Count, duration, warm-up, rate, batch and RECEIPT timeout, as for a
    /// publisher without receipts (`rate: None`: as fast as the window allows).
    pub send: publisher::Plan,
    /// Most messages whose RECEIPT has not arrived.
    pub window: u64,
    /// SENDs per transaction (`None`: a receipt on every SEND).
    pub transaction: Option<u64>,
}

/// The pre-encoded frames: a SEND whose id is its receipt (or its transaction),
/// and BEGIN and COMMIT for transactions. `*_at` are offsets of id digits.
#[derive(Clone, Debug)]
pub struct Templates {
    send: Vec<u8>,
    body_at: usize,
    send_id_at: usize,
    begin: Vec<u8>,
    begin_id_at: usize,
    commit: Vec<u8>,
    commit_tx_at: usize,
    commit_receipt_at: usize,
}

impl Templates {
    /// Encodes the frames for `destination` with `headers` and `size`-byte bodies;
    /// with `transactions` the SEND names a transaction instead of a receipt.
    pub fn new(
        version: Version,
        destination: &str,
        headers: &[(String, String)],
        size: usize,
        transactions: bool,
    ) -> Result<Templates> {
        let id_header = if transactions {
            "transaction"
        } else {
            "receipt"
        };
        let mut all = vec![(id_header.to_string(), PLACEHOLDER.to_string())];
        all.extend(headers.iter().cloned());
        let send = SendTemplate::new(version, destination, &all, size)?;
        let send_id_at = value_at(&send.bytes, id_header)?;
        let encode = |frame: Frame| -> Result<Vec<u8>> {
            let mut out = Vec::with_capacity(64);
            Encoder::new(Some(version)).encode(&frame, &mut out)?;
            Ok(out)
        };
        let begin = encode(Frame::begin(PLACEHOLDER))?;
        let commit = encode(Frame::commit(PLACEHOLDER).with_receipt(PLACEHOLDER))?;
        Ok(Templates {
            begin_id_at: value_at(&begin, "transaction")?,
            commit_tx_at: value_at(&commit, "transaction")?,
            commit_receipt_at: value_at(&commit, "receipt")?,
            send: send.bytes,
            body_at: send.body_at,
            send_id_at,
            begin,
            commit,
        })
    }
}

/// Where the value of header `name` starts in an encoded frame.
fn value_at(frame: &[u8], name: &str) -> Result<usize> {
    let needle = format!("\n{name}:{PLACEHOLDER}");
    memchr::memmem::find(frame, needle.as_bytes())
        .map(|at| at + needle.len() - ID_LEN)
        .with_context(|| format!("no {name} header in the encoded frame"))
}

/// Writes `id` as [`ID_LEN`] lower-case hex digits at the start of `out`.
#[inline]
pub fn put_id(out: &mut [u8], id: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, digit) in out[..ID_LEN].iter_mut().enumerate() {
        *digit = HEX[((id >> (60 - 4 * i)) & 0xf) as usize];
    }
}

/// Reads an id written by [`put_id`].
pub fn parse_id(text: &[u8]) -> Option<u64> {
    if text.len() != ID_LEN {
        return None;
    }
    text.iter().try_fold(0u64, |n, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        Some((n << 4) | u64::from(d))
    })
}

/// One SEND, or one transaction, waiting for its RECEIPT.
#[derive(Clone, Copy, Debug)]
struct Unit {
    sent_ns: u64,
    messages: u32,
    measured: bool,
    answered: bool,
}

/// The units sent and not yet answered, and what the answered ones add up to.
/// Unit `base + i` is `units[i]`; answered units leave from the front.
#[derive(Debug)]
pub struct Ledger {
    base: u64,
    units: VecDeque<Unit>,
    /// Measured messages receipted.
    measured: u64,
    /// Warm-up messages receipted.
    warmup: u64,
    /// When the last measured RECEIPT arrived.
    last_measured: Option<Instant>,
    /// SEND (or COMMIT) written → RECEIPT read, nanoseconds, measured units.
    latency: Histogram<u64>,
}

impl Default for Ledger {
    fn default() -> Ledger {
        Ledger {
            base: 0,
            units: VecDeque::new(),
            measured: 0,
            warmup: 0,
            last_measured: None,
            latency: new_histogram(),
        }
    }
}

impl Ledger {
    /// Records `n` units of `messages` each sent at `sent_ns`; returns the first id.
    pub fn sent(&mut self, n: usize, messages: u32, measured: bool, sent_ns: u64) -> u64 {
        let first = self.base + self.units.len() as u64;
        let unit = Unit {
            sent_ns,
            messages,
            measured,
            answered: false,
        };
        self.units.extend(std::iter::repeat_n(unit, n));
        first
    }

    /// The RECEIPT for unit `id` arrived at `now`: returns how many messages it
    /// answered (and whether they were measured).
    pub fn answered(&mut self, id: u64, now: Instant, now_ns: u64) -> Result<(u32, bool)> {
        let base = self.base;
        let unit = usize::try_from(id.wrapping_sub(base))
            .ok()
            .and_then(|i| self.units.get_mut(i))
            .filter(|u| !u.answered)
            .ok_or_else(|| anyhow!("RECEIPT for a SEND that awaits none (id {id:x})"))?;
        unit.answered = true;
        let Unit {
            sent_ns,
            messages,
            measured,
            ..
        } = *unit;
        if measured {
            self.measured += u64::from(messages);
            self.last_measured = Some(now);
            // A value out of the histogram's range (an hour) is not recorded.
            let _out_of_range = self.latency.record(now_ns.saturating_sub(sent_ns).max(1));
        } else {
            self.warmup += u64::from(messages);
        }
        while self.units.front().is_some_and(|u| u.answered) {
            self.units.pop_front();
            self.base += 1;
        }
        Ok((messages, measured))
    }
}

/// What the writer and the reader share.
struct Book {
    ledger: Mutex<Ledger>,
    /// Window permits: one per message awaiting its RECEIPT is taken.
    room: Semaphore,
    /// Measured messages receipted, over all publishers (progress bar).
    published_total: Arc<AtomicU64>,
}

impl Book {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        // A poisoned lock only means the other task panicked; the data is plain counters.
        self.ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Waits for `start`, sends the warm-up and measured phases with receipts,
/// waits for every RECEIPT, then disconnects.
pub async fn run(
    session: Session,
    templates: Templates,
    plan: Plan,
    counters: Counters,
    mut start: watch::Receiver<bool>,
) -> Result<PublisherStats> {
    let window = u32::try_from(plan.window)
        .ok()
        .filter(|w| *w > 0)
        .context("--receipt-window must be between 1 and 4294967295")?;
    if let Some(k) = plan.transaction
        && (k == 0 || k > u64::from(window))
    {
        bail!("--transaction must be between 1 and --receipt-window ({window})");
    }
    let Session { stream, buf, .. } = session;
    let (rd, wr) = stream.into_split();
    let book = Arc::new(Book {
        ledger: Mutex::new(Ledger::default()),
        room: Semaphore::new(window as usize),
        published_total: counters.published.clone(),
    });
    let (error_tx, error_rx) = oneshot::channel();
    let reader = tokio::spawn(read_receipts(rd, buf, book.clone(), error_tx));
    while !*start.borrow_and_update() {
        start.changed().await?;
    }
    let batch = plan.send.batch.clamp(1, window as usize);
    let mut writer = Writer {
        frames: templates.send.repeat(batch),
        templates,
        wr,
        batch,
        plan: plan.clone(),
        book: book.clone(),
        error: error_rx,
        max_lag: Duration::ZERO,
        window: counters.window,
        fan_out: counters.fan_out,
    };
    if !plan.send.warmup.is_zero() {
        let until = Instant::now() + plan.send.warmup;
        writer.phase(b'W', None, Some(until)).await?;
    }
    let measured_start = Instant::now();
    let until = plan
        .send
        .count
        .is_none()
        .then(|| measured_start + plan.send.duration);
    writer.phase(b'M', plan.send.count, until).await?;
    writer.wait(window).await?;
    finish(writer.wr, reader, plan.send.receipt_timeout).await?;
    let ledger = std::mem::take(&mut *book.ledger());
    Ok(PublisherStats {
        published: ledger.measured,
        warmup: ledger.warmup,
        measured_start,
        end: ledger.last_measured.unwrap_or(measured_start),
        max_lag: writer.max_lag,
        receipt_latency: Some(ledger.latency),
    })
}

/// DISCONNECT with a receipt, and the reader's end.
async fn finish(
    mut wr: WriteHalf,
    reader: tokio::task::JoinHandle<Result<()>>,
    timeout: Duration,
) -> Result<()> {
    wr.write_all(b"DISCONNECT\nreceipt:bench-end\n\n\0").await?;
    wr.flush().await?;
    match tokio::time::timeout(timeout, reader).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(e.into()),
        Err(_) => bail!("no RECEIPT for a publisher's DISCONNECT within {timeout:?}"),
    }
}

struct Writer {
    templates: Templates,
    /// `batch` copies of the SEND template.
    frames: Vec<u8>,
    wr: WriteHalf,
    batch: usize,
    plan: Plan,
    book: Arc<Book>,
    error: oneshot::Receiver<String>,
    max_lag: Duration,
    window: Arc<Window>,
    fan_out: u64,
}

impl Writer {
    /// Sends messages marked `marker` until `count` are sent or `until` passes.
    async fn phase(
        &mut self,
        marker: u8,
        count: Option<u64>,
        until: Option<Instant>,
    ) -> Result<()> {
        let start = Instant::now();
        let start_ns = clock::nanos_at(start);
        let measured = marker == b'M';
        let mut sent = 0u64;
        loop {
            let now = Instant::now();
            if until.is_some_and(|u| now >= u) || count.is_some_and(|c| sent >= c) {
                return Ok(());
            }
            if let Ok(message) = self.error.try_recv() {
                bail!("{message}");
            }
            let remaining = count.map_or(u64::MAX, |c| c - sent);
            if let Some(k) = self.plan.transaction {
                let k = k.min(remaining) as u32;
                self.transaction(marker, k, measured).await?;
                sent += u64::from(k);
                continue;
            }
            let mut n = (self.batch as u64).min(remaining);
            if let Some(rate) = self.plan.send.rate {
                let due = ((now - start).as_secs_f64() * rate) as u64 + 1;
                if due <= sent {
                    let next = start + Duration::from_secs_f64(sent as f64 / rate);
                    let next = until.map_or(next, |u| next.min(u));
                    tokio::time::sleep_until(next.into()).await;
                    continue;
                }
                n = n.min(due - sent);
                let due_at = start_ns + (sent as f64 * 1e9 / rate) as u64;
                let lag = Duration::from_nanos(clock::nanos_at(now).saturating_sub(due_at));
                self.max_lag = self.max_lag.max(lag);
            }
            self.sends(marker, n as usize, measured).await?;
            sent += n;
        }
    }

    /// `n` SENDs with a receipt each, in one write.
    async fn sends(&mut self, marker: u8, n: usize, measured: bool) -> Result<()> {
        self.take_room(n as u32).await?;
        self.window.acquire(n as u64 * self.fan_out).await;
        let now_ns = clock::nanos_at(Instant::now());
        let first = self.book.ledger().sent(n, 1, measured, now_ns);
        let len = self.templates.send.len();
        for i in 0..n {
            let frame = &mut self.frames[i * len..(i + 1) * len];
            put_id(&mut frame[self.templates.send_id_at..], first + i as u64);
            stamp(&mut frame[self.templates.body_at..], marker, now_ns);
        }
        self.wr.write_all(&self.frames[..n * len]).await?;
        self.wr.flush().await?;
        Ok(())
    }

    /// BEGIN, `k` SENDs (in writes of at most `batch`), COMMIT with a receipt.
    async fn transaction(&mut self, marker: u8, k: u32, measured: bool) -> Result<()> {
        self.take_room(k).await?;
        self.window.acquire(u64::from(k) * self.fan_out).await;
        let now_ns = clock::nanos_at(Instant::now());
        let id = self.book.ledger().sent(1, k, measured, now_ns);
        let t = &mut self.templates;
        put_id(&mut t.begin[t.begin_id_at..], id);
        put_id(&mut t.commit[t.commit_tx_at..], id);
        put_id(&mut t.commit[t.commit_receipt_at..], id);
        self.wr.write_all(&t.begin).await?;
        let len = t.send.len();
        let mut left = k as usize;
        while left > 0 {
            let n = left.min(self.batch);
            for i in 0..n {
                let frame = &mut self.frames[i * len..(i + 1) * len];
                put_id(&mut frame[t.send_id_at..], id);
                stamp(&mut frame[t.body_at..], marker, now_ns);
            }
            self.wr.write_all(&self.frames[..n * len]).await?;
            left -= n;
        }
        self.wr.write_all(&self.templates.commit).await?;
        self.wr.flush().await?;
        Ok(())
    }

    /// Takes `n` window permits for good (RECEIPTs give them back), failing on
    /// an ERROR or when no RECEIPT frees room within the timeout.
    async fn take_room(&mut self, n: u32) -> Result<()> {
        let timeout = self.plan.send.receipt_timeout;
        tokio::select! {
            permit = tokio::time::timeout(timeout, self.book.room.acquire_many(n)) => match permit {
                Ok(permit) => permit?.forget(),
                Err(_) => bail!("no RECEIPT within {timeout:?} with the publisher's window full"),
            },
            message = &mut self.error => bail!("{}", message.unwrap_or_else(|_| "receipt reader ended".into())),
        }
        Ok(())
    }

    /// Waits until every RECEIPT is in (all `window` permits are back).
    async fn wait(&mut self, window: u32) -> Result<()> {
        let timeout = self.plan.send.receipt_timeout;
        tokio::select! {
            permit = tokio::time::timeout(timeout, self.book.room.acquire_many(window)) => match permit {
                Ok(permit) => drop(permit?),
                Err(_) => bail!("not every RECEIPT arrived within {timeout:?} of the last SEND"),
            },
            message = &mut self.error => bail!("{}", message.unwrap_or_else(|_| "receipt reader ended".into())),
        }
        Ok(())
    }
}

/// Reads what the broker sends a receipted publisher: each RECEIPT answers a
/// unit; `Ok` on the final RECEIPT; an ERROR, an unknown receipt or the broker
/// closing first is an error (also passed to the writer through `error`).
async fn read_receipts(
    mut rd: ReadHalf,
    mut buf: BytesMut,
    book: Arc<Book>,
    error: oneshot::Sender<String>,
) -> Result<()> {
    let result = receipts(&mut rd, &mut buf, &book).await;
    if let Err(e) = &result {
        let _ = error.send(format!("{e:#}"));
    }
    result
}

async fn receipts(rd: &mut ReadHalf, buf: &mut BytesMut, book: &Book) -> Result<()> {
    let mut scanner = Scanner::default();
    loop {
        let now = Instant::now();
        let now_ns = clock::nanos_at(now);
        let mut freed = 0u32;
        let mut measured = 0u64;
        while let Some(frame) = scanner.next(buf)? {
            match &buf[frame.command.clone()] {
                b"RECEIPT" => {
                    let id = header_value(&buf[frame.command.end..frame.body.start], b"receipt-id")
                        .unwrap_or_default();
                    if id == END_RECEIPT {
                        return Ok(());
                    }
                    let id = parse_id(id).ok_or_else(|| {
                        anyhow!(
                            "RECEIPT with an unknown receipt-id {:?}",
                            String::from_utf8_lossy(id)
                        )
                    })?;
                    let (messages, is_measured) = book.ledger().answered(id, now, now_ns)?;
                    freed += messages;
                    if is_measured {
                        measured += u64::from(messages);
                    }
                }
                b"ERROR" => {
                    let message = frame.message.clone().map_or_else(String::new, |r| {
                        String::from_utf8_lossy(&buf[r]).into_owned()
                    });
                    bail!("broker sent ERROR to a publisher: {message}");
                }
                _ => {}
            }
            buf.advance(frame.consumed);
        }
        if freed > 0 {
            book.room.add_permits(freed as usize);
            book.published_total.fetch_add(measured, Ordering::Relaxed);
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 * 1024);
        }
        if rd.read_buf(buf).await? == 0 {
            bail!("broker closed a publisher's connection before answering every receipt");
        }
    }
}

/// The raw value of header `name` in a frame's header lines (`headers` runs from
/// the end of the command line to the body).
pub fn header_value<'a>(headers: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut needle = Vec::with_capacity(name.len() + 2);
    needle.push(b'\n');
    needle.extend_from_slice(name);
    needle.push(b':');
    let start = memchr::memmem::find(headers, &needle)? + needle.len();
    let rest = &headers[start..];
    let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
    Some(rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_round_trip_and_land_in_the_templates() {
        let mut out = [0u8; ID_LEN];
        for id in [0, 1, 0xdead_beef, u64::MAX] {
            put_id(&mut out, id);
            assert_eq!(parse_id(&out), Some(id));
        }
        assert_eq!(parse_id(b"bench-end"), None);
        let headers = [("persistent".to_string(), "true".to_string())];
        let t = Templates::new(Version::V1_2, "/queue/a", &headers, 20, false).unwrap();
        let mut send = t.send.clone();
        put_id(&mut send[t.send_id_at..], 0x2a);
        let text = String::from_utf8_lossy(&send);
        assert!(text.contains("\nreceipt:000000000000002a\n"), "{text}");
        assert!(text.contains("\npersistent:true\n"), "{text}");
        assert_eq!(&send[t.body_at..t.body_at + 1], b"M");
        let t = Templates::new(Version::V1_2, "/queue/a", &[], 20, true).unwrap();
        let mut commit = t.commit.clone();
        put_id(&mut commit[t.commit_tx_at..], 7);
        put_id(&mut commit[t.commit_receipt_at..], 7);
        assert_eq!(
            String::from_utf8_lossy(&commit),
            "COMMIT\ntransaction:0000000000000007\nreceipt:0000000000000007\n\n\0"
        );
        assert!(String::from_utf8_lossy(&t.send).contains("\ntransaction:0000000000000000\n"));
        assert!(!String::from_utf8_lossy(&t.send).contains("receipt"));
    }

    #[test]
    fn the_ledger_takes_receipts_in_any_order_once() {
        let mut l = Ledger::default();
        let now = Instant::now();
        assert_eq!(l.sent(3, 1, false, 10), 0);
        assert_eq!(l.sent(2, 1, true, 20), 3);
        assert_eq!(l.answered(1, now, 100).unwrap(), (1, false));
        assert_eq!(l.base, 0, "unit 0 is still awaited");
        assert_eq!(l.answered(0, now, 100).unwrap(), (1, false));
        assert_eq!(l.base, 2);
        assert!(l.answered(1, now, 100).is_err(), "answered twice");
        assert!(l.answered(9, now, 100).is_err(), "never sent");
        l.answered(4, now, 1_020).unwrap();
        assert_eq!((l.measured, l.warmup), (1, 2));
        assert_eq!(l.latency.len(), 1);
        assert_eq!(l.latency.max(), 1_000);
        assert_eq!(l.sent(1, 1000, true, 0), 5, "a transaction is one unit");
        assert_eq!(l.answered(5, now, 1).unwrap(), (1000, true));
    }

    #[test]
    fn header_values_are_found_between_command_and_body() {
        let headers = b"\nreceipt-id:abc\r\nother:1\n";
        assert_eq!(header_value(headers, b"receipt-id"), Some(&b"abc"[..]));
        assert_eq!(header_value(headers, b"other"), Some(&b"1"[..]));
        assert_eq!(header_value(headers, b"missing"), None);
    }
}
