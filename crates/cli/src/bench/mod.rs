//! `stompkit bench`: a load generator for any STOMP broker.
//!
//! A run goes: connect every subscriber and SUBSCRIBE with a receipt (so nothing
//! published is missed), connect every publisher, start them together, send an
//! optional warm-up and then the measured messages, wait until every expected
//! delivery arrived (or nothing arrived for `--drain-timeout`), report.
//!
//! It is built not to be the bottleneck: raw tokio TCP and `stompkit-wire` instead
//! of the general client, pre-encoded SEND frames written many per syscall
//! ([`publisher`]), MESSAGEs found with a memchr scan ([`scan`], [`subscriber`]),
//! and a multi-threaded runtime. `bench idle` ([`idle`]) opens many idle
//! sessions for memory measurements.
//!
//! Durable messaging has its own paths, so the runs above stay as they are:
//! `--receipt-window N` publishes with a RECEIPT asked for every SEND (or every
//! COMMIT, `--transaction K`) and counts a message when its RECEIPT arrives
//! ([`receipted`]); `--drain N` fills a queue first and then measures how fast
//! the subscribers empty it; `--then-drain` empties what a publish-only run left
//! in a queue ([`empty`]).

pub mod clock;
pub mod empty;
pub mod flow;
pub mod idle;
pub mod proto;
pub mod publisher;
pub mod receipted;
pub mod report;
pub mod scan;
pub mod subscriber;

use crate::args::{AckArg, BrokerArgs, parse_header};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use proto::{Endpoint, STAMP_LEN, SendTemplate, Session};
use report::Report;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use stompkit_frame::Frame;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// `stompkit bench`: measure a broker's throughput and latency.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// Other kinds of runs.
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// Options of a load run.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Kinds of bench runs besides the default load run.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Open many idle connections (CONNECT/CONNECTED each) and hold them open,
    /// e.g. to measure the broker's memory per connection.
    Idle(idle::IdleArgs),
}

/// Topic (fan-out) or queue (each message to one subscriber).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Every subscriber gets every message.
    Topic,
    /// Each message goes to exactly one subscriber.
    Queue,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Topic => "topic",
            Mode::Queue => "queue",
        }
    }
}

/// Options of a load run.
#[derive(Args, Clone, Debug)]
pub struct LoadArgs {
    /// Where the broker is and how to log in.
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// Topic: every subscriber gets every message. Queue: each message goes to one subscriber.
    #[arg(long, value_enum, default_value_t = Mode::Topic)]
    pub mode: Mode,
    /// Number of publishing connections.
    #[arg(short = 'p', long, default_value_t = 1)]
    pub publishers: usize,
    /// Number of subscribing connections (0: measure publishing only).
    #[arg(short = 's', long, default_value_t = 1)]
    pub subscribers: usize,
    /// Message body size in bytes (at least 17: the body carries a send timestamp).
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Measured messages to publish in total, shared among publishers.
    #[arg(short = 'n', long, conflicts_with = "duration")]
    pub count: Option<u64>,
    /// Seconds to publish for (default 10 when --count is not given).
    #[arg(short = 'd', long)]
    pub duration: Option<f64>,
    /// Fixed publish rate in messages per second, in total across publishers
    /// (default: as fast as the broker takes them). Messages go out in
    /// millisecond batches; how far publishers fell behind schedule is reported.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Ack mode of the subscriptions; client modes send ACKs, batched per read.
    #[arg(long, value_enum, default_value_t = AckArg::Auto)]
    pub ack: AckArg,
    /// Seconds of unmeasured publishing before the measurement starts.
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,
    /// Destination to use (default /topic/bench-PID or /queue/bench-PID).
    /// Brokers name destinations differently: RabbitMQ wants /topic/x, /queue/x,
    /// /exchange/..; ActiveMQ /topic/x and /queue/x.
    #[arg(long)]
    pub destination: Option<String>,
    /// Extra header on every SEND, as name:value (repeatable), e.g. -H persistent:true.
    #[arg(short = 'H', long = "header", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Extra header on every SUBSCRIBE, as name:value (repeatable), e.g. --sub-header prefetch-count:500.
    #[arg(long = "sub-header", value_parser = parse_header)]
    pub sub_headers: Vec<(String, String)>,
    /// Most SEND frames per write (default: about 64 KiB worth, at most 256).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Most deliveries outstanding (sent and not yet received) before publishers
    /// wait for subscribers (default: 8 MiB worth of messages; 0: no limit, the
    /// publishers write as fast as the broker reads).
    #[arg(long)]
    pub window: Option<u64>,
    /// After publishing ends, give up waiting for deliveries once none arrived for this many seconds.
    #[arg(long, default_value_t = 5.0)]
    pub drain_timeout: f64,
    /// Mark every SEND `persistent:true` (a broker with a store writes it to disk;
    /// with receipts, before the RECEIPT). The same as -H persistent:true.
    #[arg(long)]
    pub persistent: bool,
    /// Receipted publishing: every SEND carries a `receipt` header (with
    /// --transaction, every COMMIT) and each publisher keeps at most N messages
    /// whose RECEIPT has not arrived. A message counts as published when its
    /// RECEIPT arrives; the RECEIPT latency (SEND written → RECEIPT read) is reported.
    #[arg(long, value_name = "N")]
    pub receipt_window: Option<u64>,
    /// With --receipt-window: publish in transactions of K SENDs (BEGIN, K SENDs,
    /// COMMIT with the receipt), e.g. to fill a durable queue fast.
    #[arg(
        long,
        value_name = "K",
        requires = "receipt_window",
        conflicts_with = "rate"
    )]
    pub transaction: Option<u64>,
    /// Drain run (--mode queue): first fill the destination with N messages
    /// (receipted: --receipt-window, default 256; its rate is the report's publish
    /// rate), then connect the subscribers and measure how fast they empty it
    /// (from their SUBSCRIBE to the last delivery).
    #[arg(long, value_name = "N", conflicts_with_all = ["count", "duration", "rate"])]
    pub drain: Option<u64>,
    /// Publish-only runs (-s 0, --mode queue): afterwards consume (ack auto,
    /// unmeasured) every message the run published, so a durable queue is left
    /// empty; fewer than published is an error.
    #[arg(long)]
    pub then_drain: bool,
    /// Runtime worker threads (default: one per CPU).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the result as one JSON object (for scripts).
    #[arg(long)]
    pub json: bool,
    /// No progress bar (it is also hidden when stdout is not a terminal).
    #[arg(short, long)]
    pub quiet: bool,
}

/// The default `--window`, in bytes of messages.
const DEFAULT_WINDOW_BYTES: u64 = 8 * 1024 * 1024;
/// The `--receipt-window` of a `--drain` run's fill when none is given.
const DEFAULT_RECEIPT_WINDOW: u64 = 256;

/// Runs `stompkit bench`.
pub fn run(args: BenchArgs) -> Result<ExitCode> {
    match args.command {
        Some(BenchCommand::Idle(idle)) => idle::run(idle),
        None => {
            let runtime = crate::runtime(args.load.threads)?;
            let load = args.load;
            let report = runtime.block_on(run_load(&load))?;
            let mut out = std::io::stdout().lock();
            if load.json {
                report.write_json(&mut out)?;
            } else {
                report.write_text(&mut out)?;
            }
            for error in &report.errors {
                eprintln!("stompkit bench: {error}");
            }
            Ok(if report.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Where a bench run connects, from `--url`, `--ca-file` and the credentials.
pub fn endpoint(broker: &BrokerArgs) -> Result<Endpoint> {
    let (target, tls) = broker.target()?;
    Ok(Endpoint {
        target,
        tls,
        credentials: broker.credentials(),
    })
}

/// Connects `n` sessions, at most 256 handshakes at a time (a burst of thousands
/// of SYNs would overflow the broker's accept backlog and stall on retransmits).
async fn connect_many(endpoint: &Endpoint, n: usize) -> Result<Vec<Session>> {
    let limit = Arc::new(tokio::sync::Semaphore::new(256));
    let mut set = JoinSet::new();
    for _ in 0..n {
        let endpoint = endpoint.clone();
        let limit = limit.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            Session::connect(&endpoint).await
        });
    }
    let mut sessions = Vec::with_capacity(n);
    while let Some(joined) = set.join_next().await {
        sessions.push(joined??);
    }
    Ok(sessions)
}

/// What a run's tasks count together, shared with the progress bar.
struct Shared {
    /// Measured messages published so far.
    published: Arc<AtomicU64>,
    /// Messages delivered so far (all subscribers).
    delivered: Arc<AtomicU64>,
    /// Deliveries outstanding, bounded by `--window`.
    window: Arc<flow::Window>,
    /// Deliveries per published message (0 without subscribers).
    fan_out: u64,
}

/// What the publishers and subscribers reported, and what went wrong.
#[derive(Default)]
struct Outcome {
    pub_stats: Vec<publisher::PublisherStats>,
    sub_stats: Vec<subscriber::SubscriberStats>,
    errors: Vec<String>,
}

/// One load run: subscribers, then publishers, then the drain, then the report.
async fn run_load(a: &LoadArgs) -> Result<Report> {
    let endpoint = endpoint(&a.broker)?;
    if a.publishers == 0 {
        bail!("--publishers must be at least 1");
    }
    check_durable_options(a)?;
    let destination = a
        .destination
        .clone()
        .unwrap_or_else(|| format!("/{}/bench-{}", a.mode.as_str(), std::process::id()));
    let size = a.size.max(STAMP_LEN);
    if size != a.size {
        eprintln!("stompkit bench: --size raised to {STAMP_LEN} (room for the send timestamp)");
    }
    clock::init();
    if let Some(n) = a.drain {
        return run_drain(a, &endpoint, destination, size, n).await;
    }
    let cpu_before = report::process_cpu_seconds();
    let shared = shared_counters(a, size);
    // Subscribers first, each confirmed by a receipt, so nothing is published to
    // a destination before every subscription exists.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut subscribers = start_subscribers(a, &endpoint, &destination, &shared, stop_rx).await?;
    let (start_tx, start_rx) = watch::channel(false);
    let mut publishers =
        start_publishers(a, &endpoint, &destination, size, &shared, start_rx).await?;
    let progress = Progress::new(a, shared.fan_out);
    let _ = start_tx.send(true);
    let mut outcome = Outcome::default();
    join_publishers(&mut publishers, &mut outcome, &progress, &shared).await;
    let published_n: u64 = outcome.pub_stats.iter().map(|s| s.published).sum();
    let expected = published_n * shared.fan_out;
    drain(
        a,
        &mut subscribers,
        expected,
        &mut outcome,
        &progress,
        &shared,
        &stop_tx,
    )
    .await;
    progress.update(&shared.published, &shared.delivered);
    progress.finish();
    let emptied = if a.then_drain {
        empty_after(a, &endpoint, &destination, &mut outcome).await
    } else {
        0
    };
    let run = Run {
        destination,
        size,
        window: shared.window.limit(),
        expected,
        cpu_before,
        measured_from: None,
        emptied,
    };
    report(a, run, outcome)
}

/// What the durable options need of the rest.
fn check_durable_options(a: &LoadArgs) -> Result<()> {
    if a.receipt_window == Some(0) {
        bail!("--receipt-window must be at least 1");
    }
    if a.drain.is_some() && (a.mode != Mode::Queue || a.subscribers == 0) {
        bail!("--drain needs --mode queue and at least one subscriber");
    }
    if a.then_drain && (a.mode != Mode::Queue || a.subscribers != 0) {
        bail!("--then-drain is for publish-only queue runs (--mode queue -s 0)");
    }
    Ok(())
}

/// `--then-drain`: consumes what the publishers sent; returns how many came.
/// A shortfall (after an otherwise clean run) is an error of the run.
async fn empty_after(
    a: &LoadArgs,
    endpoint: &Endpoint,
    destination: &str,
    outcome: &mut Outcome,
) -> u64 {
    let sent: u64 = outcome
        .pub_stats
        .iter()
        .map(|s| s.published + s.warmup)
        .sum();
    let idle = Duration::from_secs_f64(a.drain_timeout.max(0.1));
    match empty::run(endpoint, destination, a.publishers.max(1), sent, idle).await {
        Ok(got) => {
            if got < sent && outcome.errors.is_empty() {
                outcome.errors.push(format!(
                    "after the run, only {got} of the {sent} messages published could be consumed"
                ));
            }
            got
        }
        Err(e) => {
            outcome
                .errors
                .push(format!("emptying {destination} after the run: {e:#}"));
            0
        }
    }
}

/// `--drain N`: fills the queue with `n` receipted messages (the report's
/// publish figures), then connects the subscribers and measures from their
/// SUBSCRIBE to the last delivery.
async fn run_drain(
    a: &LoadArgs,
    endpoint: &Endpoint,
    destination: String,
    size: usize,
    n: u64,
) -> Result<Report> {
    let cpu_before = report::process_cpu_seconds();
    let fill = LoadArgs {
        count: Some(n),
        duration: None,
        warmup: 0.0,
        rate: None,
        receipt_window: Some(a.receipt_window.unwrap_or(DEFAULT_RECEIPT_WINDOW)),
        ..a.clone()
    };
    let patience = Duration::from_secs_f64(a.drain_timeout.max(0.1));
    let shared = Shared {
        published: Arc::new(AtomicU64::new(0)),
        delivered: Arc::new(AtomicU64::new(0)),
        window: Arc::new(flow::Window::new(0, patience)),
        fan_out: 1,
    };
    let progress = Progress::new(a, 1);
    let (start_tx, start_rx) = watch::channel(false);
    let mut publishers =
        start_publishers(&fill, endpoint, &destination, size, &shared, start_rx).await?;
    let _ = start_tx.send(true);
    let mut outcome = Outcome::default();
    join_publishers(&mut publishers, &mut outcome, &progress, &shared).await;
    let filled: u64 = outcome.pub_stats.iter().map(|s| s.published).sum();
    let sessions = connect_many(endpoint, a.subscribers)
        .await
        .context("connecting subscribers")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let drain_start = Instant::now();
    let mut subscribers = JoinSet::new();
    if outcome.errors.is_empty() {
        for mut session in sessions {
            // No receipt: the MESSAGEs of a full queue may come before it.
            session
                .send(&subscribe_frame(a, &destination))
                .await
                .context("subscribing")?;
            subscribers.spawn(subscriber::run(
                session,
                a.ack.mode(),
                shared.delivered.clone(),
                shared.window.clone(),
                stop_rx.clone(),
            ));
        }
    }
    drain(
        a,
        &mut subscribers,
        filled,
        &mut outcome,
        &progress,
        &shared,
        &stop_tx,
    )
    .await;
    progress.finish();
    let run = Run {
        destination,
        size,
        window: 0,
        expected: filled,
        cpu_before,
        measured_from: Some(drain_start),
        emptied: 0,
    };
    report(a, run, outcome)
}

/// The counters of a run: the window is `--window`, or 8 MiB worth of messages.
fn shared_counters(a: &LoadArgs, size: usize) -> Shared {
    let fan_out = match (a.mode, a.subscribers) {
        (_, 0) => 0,
        (Mode::Topic, m) => m as u64,
        (Mode::Queue, _) => 1,
    };
    let window = flow::Window::new(
        a.window
            .unwrap_or(DEFAULT_WINDOW_BYTES / (size as u64 + 128)),
        Duration::from_secs_f64(a.drain_timeout.max(0.1)),
    );
    Shared {
        published: Arc::new(AtomicU64::new(0)),
        delivered: Arc::new(AtomicU64::new(0)),
        window: Arc::new(window),
        fan_out,
    }
}

/// Connects the subscribers, SUBSCRIBEs each with a receipt and starts them.
async fn start_subscribers(
    a: &LoadArgs,
    endpoint: &Endpoint,
    destination: &str,
    shared: &Shared,
    stop: watch::Receiver<bool>,
) -> Result<JoinSet<(subscriber::SubscriberStats, Option<anyhow::Error>)>> {
    let mut subscribers = JoinSet::new();
    for mut session in connect_many(endpoint, a.subscribers)
        .await
        .context("connecting subscribers")?
    {
        session
            .request(subscribe_frame(a, destination), "bench-subscribed")
            .await
            .context("subscribing")?;
        subscribers.spawn(subscriber::run(
            session,
            a.ack.mode(),
            shared.delivered.clone(),
            shared.window.clone(),
            stop.clone(),
        ));
    }
    Ok(subscribers)
}

/// The subscribers' SUBSCRIBE: id `0`, `--ack`, `--sub-header`s.
fn subscribe_frame(a: &LoadArgs, destination: &str) -> Frame {
    let mut subscribe = Frame::subscribe(destination, "0", a.ack.mode());
    for (name, value) in &a.sub_headers {
        subscribe = subscribe.header(name, value);
    }
    subscribe
}

/// The headers of every SEND: `--header`s, and `persistent:true` with `--persistent`.
fn send_headers(a: &LoadArgs) -> Vec<(String, String)> {
    let mut headers = a.headers.clone();
    if a.persistent {
        headers.push(("persistent".into(), "true".into()));
    }
    headers
}

/// Connects the publishers and starts them; they wait for `start`.
async fn start_publishers(
    a: &LoadArgs,
    endpoint: &Endpoint,
    destination: &str,
    size: usize,
    shared: &Shared,
    start: watch::Receiver<bool>,
) -> Result<JoinSet<Result<publisher::PublisherStats>>> {
    let duration = Duration::from_secs_f64(a.duration.unwrap_or(10.0).max(0.0));
    let mut publishers = JoinSet::new();
    let sessions = connect_many(endpoint, a.publishers)
        .await
        .context("connecting publishers")?;
    let headers = send_headers(a);
    for (i, session) in sessions.into_iter().enumerate() {
        let template = SendTemplate::new(session.version, destination, &headers, size)?;
        let batch = a
            .batch
            .unwrap_or_else(|| (64 * 1024 / template.bytes.len()).clamp(1, 256));
        let count = a.count.map(|c| {
            let p = a.publishers as u64;
            c / p + u64::from((i as u64) < c % p)
        });
        let plan = publisher::Plan {
            count,
            duration,
            warmup: Duration::from_secs_f64(a.warmup.max(0.0)),
            rate: a.rate.map(|r| r / a.publishers as f64),
            batch,
            // Behind a slow broker's backlog (at most the window) the RECEIPT comes late.
            receipt_timeout: Duration::from_secs_f64((a.drain_timeout * 2.0).max(60.0)),
        };
        let counters = publisher::Counters {
            published: shared.published.clone(),
            window: shared.window.clone(),
            fan_out: shared.fan_out,
        };
        let Some(window) = a.receipt_window else {
            publishers.spawn(publisher::run(
                session,
                template,
                plan,
                counters,
                start.clone(),
            ));
            continue;
        };
        let templates = receipted::Templates::new(
            session.version,
            destination,
            &headers,
            size,
            a.transaction.is_some(),
        )?;
        let plan = receipted::Plan {
            send: plan,
            window,
            transaction: a.transaction,
        };
        publishers.spawn(receipted::run(
            session,
            templates,
            plan,
            counters,
            start.clone(),
        ));
    }
    Ok(publishers)
}

/// Waits for every publisher, updating the progress bar meanwhile.
async fn join_publishers(
    publishers: &mut JoinSet<Result<publisher::PublisherStats>>,
    outcome: &mut Outcome,
    progress: &Progress,
    shared: &Shared,
) {
    loop {
        tokio::select! {
            joined = publishers.join_next() => match joined {
                None => break,
                Some(Ok(Ok(stats))) => outcome.pub_stats.push(stats),
                Some(Ok(Err(e))) => outcome.errors.push(format!("{e:#}")),
                Some(Err(e)) => outcome.errors.push(format!("publisher task failed: {e}")),
            },
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                progress.update(&shared.published, &shared.delivered);
            }
        }
    }
}

/// Drain: waits for every expected delivery, or until deliveries stop coming
/// for `--drain-timeout` (or an error); then tells the subscribers to stop
/// (`stop`) and collects what each reports.
async fn drain(
    a: &LoadArgs,
    subscribers: &mut JoinSet<(subscriber::SubscriberStats, Option<anyhow::Error>)>,
    expected: u64,
    outcome: &mut Outcome,
    progress: &Progress,
    shared: &Shared,
    stop: &watch::Sender<bool>,
) {
    let drain_timeout = Duration::from_secs_f64(a.drain_timeout.max(0.0));
    let mut last = shared.delivered.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    while last < expected && outcome.errors.is_empty() {
        tokio::select! {
            joined = subscribers.join_next() => match joined {
                None => break,
                Some(joined) => outcome.subscriber_joined(joined),
            },
            () = tokio::time::sleep(Duration::from_millis(2)) => {}
        }
        let now_delivered = shared.delivered.load(Ordering::Relaxed);
        if now_delivered != last {
            last = now_delivered;
            last_change = Instant::now();
        } else if last_change.elapsed() >= drain_timeout {
            break;
        }
        progress.update(&shared.published, &shared.delivered);
    }
    // Fails only when every subscriber is gone already.
    let _ = stop.send(true);
    while let Some(joined) = subscribers.join_next().await {
        outcome.subscriber_joined(joined);
    }
}

impl Outcome {
    /// Records what a finished subscriber task reported.
    fn subscriber_joined(
        &mut self,
        joined: Result<
            (subscriber::SubscriberStats, Option<anyhow::Error>),
            tokio::task::JoinError,
        >,
    ) {
        match joined {
            Ok((stats, error)) => {
                self.sub_stats.push(stats);
                self.errors.extend(error.map(|e| format!("{e:#}")));
            }
            Err(e) => self.errors.push(format!("subscriber task failed: {e}")),
        }
    }
}

/// What the report needs of the run besides the tasks' outcome.
struct Run {
    destination: String,
    size: usize,
    window: u64,
    expected: u64,
    cpu_before: Option<f64>,
    /// `--drain`: deliveries are timed from here (the SUBSCRIBEs), not from the
    /// first measured publish.
    measured_from: Option<Instant>,
    /// `--then-drain`: messages consumed after the run.
    emptied: u64,
}

/// One latency histogram holding all of `histograms`.
fn merged<'a>(histograms: impl Iterator<Item = &'a Histogram<u64>>) -> Result<Histogram<u64>> {
    let mut all = subscriber::new_histogram();
    for h in histograms {
        all.add(h).context("merging latency histograms")?;
    }
    Ok(all)
}

/// The receipt window the publishers used (0: no receipts).
fn receipt_window(a: &LoadArgs) -> u64 {
    a.receipt_window
        .or(a.drain.map(|_| DEFAULT_RECEIPT_WINDOW))
        .unwrap_or(0)
}

/// Rates, durations and latencies from the tasks' statistics.
fn report(a: &LoadArgs, run: Run, outcome: Outcome) -> Result<Report> {
    let Outcome {
        pub_stats,
        sub_stats,
        errors,
    } = outcome;
    let latency = merged(sub_stats.iter().map(|s| &s.latency))?;
    let receipt_latency = merged(pub_stats.iter().filter_map(|s| s.receipt_latency.as_ref()))?;
    let published_n: u64 = pub_stats.iter().map(|s| s.published).sum();
    let delivered_n: u64 = sub_stats.iter().map(|s| s.delivered).sum();
    let measured_start = pub_stats.iter().map(|s| s.measured_start).min();
    let publish_end = pub_stats.iter().map(|s| s.end).max();
    let last_delivery = sub_stats.iter().filter_map(|s| s.last_delivery).max();
    let span = |from: Option<Instant>, to: Option<Instant>| match (from, to) {
        (Some(f), Some(t)) => t.saturating_duration_since(f).as_secs_f64(),
        _ => 0.0,
    };
    let publish_duration_s = span(measured_start, publish_end);
    let (duration_s, counted) = if a.subscribers == 0 {
        (publish_duration_s, published_n)
    } else {
        let from = run.measured_from.or(measured_start);
        (span(from, last_delivery), delivered_n)
    };
    let per_sec = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    let msgs_per_sec = per_sec(counted, duration_s);
    let [p50_us, p99_us, p999_us, max_us, min_us, mean_us] = report::latency_us(&latency);
    let receipts = report::latency_us(&receipt_latency);
    let expected = run.expected;
    Ok(Report {
        mode: a.mode.as_str().to_string(),
        destination: run.destination,
        url: a.broker.urls(),
        publishers: a.publishers,
        subscribers: a.subscribers,
        size: run.size,
        ack: a.ack.mode().as_str().to_string(),
        window: run.window,
        published: published_n,
        delivered: delivered_n,
        expected,
        lost: expected.saturating_sub(delivered_n),
        extra: delivered_n.saturating_sub(expected),
        warmup_published: pub_stats.iter().map(|s| s.warmup).sum(),
        foreign: sub_stats.iter().map(|s| s.foreign).sum(),
        duration_s,
        publish_duration_s,
        msgs_per_sec,
        mb_per_sec: msgs_per_sec * run.size as f64 / 1e6,
        publish_msgs_per_sec: per_sec(published_n, publish_duration_s),
        publish_lag_max_ms: pub_stats
            .iter()
            .map(|s| s.max_lag.as_secs_f64() * 1e3)
            .fold(0.0, f64::max),
        p50_us,
        p99_us,
        p999_us,
        max_us,
        min_us,
        mean_us,
        client_cpu_s: report::process_cpu_seconds()
            .zip(run.cpu_before)
            .map(|(after, before)| after - before),
        persistent: a.persistent,
        receipt_window: receipt_window(a),
        transaction: a.transaction.unwrap_or(0),
        receipt_p50_us: receipts[0],
        receipt_p99_us: receipts[1],
        receipt_p999_us: receipts[2],
        receipt_max_us: receipts[3],
        drain: a.drain.unwrap_or(0),
        emptied: run.emptied,
        errors,
    })
}

/// The progress bar (on stderr; hidden with `--quiet` or when stdout is not a terminal).
struct Progress {
    bar: ProgressBar,
    fan_out: u64,
}

impl Progress {
    fn new(a: &LoadArgs, fan_out: u64) -> Progress {
        let hidden = a.quiet || !std::io::stdout().is_terminal();
        let bar = match a.count {
            Some(count) if fan_out > 0 => ProgressBar::new(count * fan_out),
            _ => ProgressBar::new_spinner(),
        };
        if hidden {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        let template = if a.count.is_some() && fan_out > 0 {
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} delivered ({per_sec}) {msg}"
        } else {
            "{spinner} [{elapsed_precise}] {pos} delivered ({per_sec}) {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        Progress { bar, fan_out }
    }

    fn update(&self, published: &AtomicU64, delivered: &AtomicU64) {
        let p = published.load(Ordering::Relaxed);
        if self.fan_out == 0 {
            self.bar.set_position(p);
        } else {
            self.bar.set_position(delivered.load(Ordering::Relaxed));
        }
        self.bar.set_message(format!("{p} published"));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests;
