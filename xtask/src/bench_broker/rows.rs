//! The benchmark's rows and how one is measured with `stompkit bench`.
//!
//! Owns the workload lists ([`rows`], and [`durable`] for the table of
//! persistent messages), the command line each row gives the load generator,
//! and reading its JSON report into a [`Sample`]. Every load row of the main
//! table subscribes with `ack:auto`, publishes an unmeasured warm-up first, and
//! counts only measured deliveries; `delivered != published × fan-out` is kept
//! as a loss (or surplus) in the sample and shown in the table. The durable rows
//! send every message `persistent:true` with a `receipt` to a durable queue and
//! count it when its RECEIPT arrives; a publish-only durable row consumes what it
//! left behind afterwards (`--then-drain`), so the queues stay empty between
//! rows. The recovery row is measured by [`super::recovery`], not here.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Topic (fan-out) or queue (one consumer per message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `/topic/...`
    Topic,
    /// `/queue/...`
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

/// What a row measures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// Delivered messages per second, as fast as the broker goes.
    Throughput {
        /// Topic or queue.
        mode: Mode,
        /// Publishing connections.
        publishers: usize,
        /// Subscribing connections.
        subscribers: usize,
        /// Body bytes.
        size: usize,
        /// Over WebSocket instead of TCP.
        ws: bool,
    },
    /// Publish-to-delivery latency at a fixed publish rate, topic 1→`subscribers`.
    Latency {
        /// Messages per second published.
        rate: u32,
        /// Subscribers.
        subscribers: usize,
        /// Body bytes.
        size: usize,
    },
    /// Resident memory of the broker with no connection.
    IdleRss,
    /// Resident memory added per idle connection (CONNECT/CONNECTED, then nothing).
    RssPerConnection,
    /// Seconds to open (CONNECT → CONNECTED) that many connections.
    AcceptTime,
    /// Persistent SENDs per second into a durable queue, each with a receipt,
    /// counted when the RECEIPT arrives; no consumer.
    DurablePublish {
        /// Publishing connections.
        publishers: usize,
        /// Most SENDs per publisher whose RECEIPT has not arrived.
        window: u64,
        /// Body bytes.
        size: usize,
    },
    /// Messages per second draining a durable queue filled with `messages`
    /// persistent messages first, each ACKed on its own (`client-individual`).
    DurableDrain {
        /// Messages in the queue when the consumers subscribe.
        messages: u64,
        /// Consuming connections.
        consumers: usize,
        /// Unacknowledged messages per consumer (`prefetch-count` /
        /// `activemq.prefetchSize`).
        prefetch: u32,
        /// Body bytes.
        size: usize,
    },
    /// RECEIPT latency (SEND written → RECEIPT read) at a fixed rate of
    /// persistent SENDs to a durable queue.
    ReceiptLatency {
        /// SENDs per second, over all publishers.
        rate: u32,
        /// Publishing connections.
        publishers: usize,
        /// Most SENDs per publisher whose RECEIPT has not arrived.
        window: u64,
        /// Body bytes.
        size: usize,
    },
    /// Seconds from starting the broker again after SIGKILL, with `messages`
    /// persistent messages stored, until a consumer gets the first of them.
    Recovery {
        /// Messages stored.
        messages: u64,
        /// Body bytes.
        size: usize,
    },
}

/// The two tables of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    /// Throughput, latency, memory, WebSocket (messages in memory).
    Main,
    /// Persistent messages in durable queues.
    Durable,
}

impl Kind {
    /// The table the row belongs to.
    pub fn section(self) -> Section {
        match self {
            Kind::DurablePublish { .. }
            | Kind::DurableDrain { .. }
            | Kind::ReceiptLatency { .. }
            | Kind::Recovery { .. } => Section::Durable,
            _ => Section::Main,
        }
    }
}

/// One row of the table.
#[derive(Clone, Debug)]
pub struct Row {
    /// Shown in the first column.
    pub label: String,
    /// What is measured.
    pub kind: Kind,
}

impl Row {
    /// A short name usable in a destination (`topic-1-100-20b-ws`).
    pub fn slug(&self) -> String {
        match self.kind {
            Kind::Throughput {
                mode,
                publishers,
                subscribers,
                size,
                ws,
            } => format!(
                "{}-{publishers}-{subscribers}-{size}b{}",
                mode.as_str(),
                if ws { "-ws" } else { "" }
            ),
            Kind::Latency { rate, .. } => format!("latency-{rate}"),
            Kind::IdleRss => "idle-rss".into(),
            Kind::RssPerConnection => "rss-per-connection".into(),
            Kind::AcceptTime => "accept".into(),
            Kind::DurablePublish { publishers, .. } => format!("durable-publish-{publishers}"),
            Kind::DurableDrain { consumers, .. } => format!("durable-drain-{consumers}"),
            Kind::ReceiptLatency { rate, .. } => format!("receipt-latency-{rate}"),
            Kind::Recovery { messages, .. } => format!("recovery-{messages}"),
        }
    }

    /// Whether the row is a throughput row (drawn in the chart).
    pub fn is_throughput(&self) -> bool {
        matches!(self.kind, Kind::Throughput { .. })
    }
}

/// The rows, in table order: TCP throughput, latency, memory, WebSocket throughput.
pub fn rows(idle_connections: usize) -> Vec<Row> {
    let shapes = [
        (Mode::Topic, 1, 1),
        (Mode::Topic, 1, 100),
        (Mode::Queue, 1, 1),
        (Mode::Queue, 4, 4),
    ];
    let throughput = |ws: bool| {
        let mut rows = Vec::new();
        for (mode, publishers, subscribers) in shapes {
            for size in [20, 1024] {
                let size_text = if size == 1024 {
                    "1 KiB".into()
                } else {
                    format!("{size} B")
                };
                rows.push(Row {
                    label: format!(
                        "{}{} {publishers}→{subscribers}, {size_text}",
                        if ws { "WebSocket " } else { "" },
                        mode.as_str()
                    ),
                    kind: Kind::Throughput {
                        mode,
                        publishers,
                        subscribers,
                        size,
                        ws,
                    },
                });
            }
        }
        rows
    };
    let mut all = throughput(false);
    all.push(Row {
        label: "latency p50 / p99 at 20k msg/s, topic 1→10, 20 B".into(),
        kind: Kind::Latency {
            rate: 20_000,
            subscribers: 10,
            size: 20,
        },
    });
    all.push(Row {
        label: "idle RSS".into(),
        kind: Kind::IdleRss,
    });
    all.push(Row {
        label: format!("RSS per idle connection ({idle_connections} connections)"),
        kind: Kind::RssPerConnection,
    });
    all.push(Row {
        label: format!("time to accept {idle_connections} connections"),
        kind: Kind::AcceptTime,
    });
    all.extend(throughput(true));
    all
}

/// The durable table's rows: publish, drain of `drain_messages`, RECEIPT latency
/// and, with `recovery_messages`, recovery after SIGKILL. 1 KiB bodies.
pub fn durable(drain_messages: u64, recovery_messages: Option<u64>) -> Vec<Row> {
    let size = 1024;
    let mut rows = vec![
        Row {
            label: "persistent publish, 4 publishers × 256 awaiting RECEIPT, 1 KiB".into(),
            kind: Kind::DurablePublish {
                publishers: 4,
                window: 256,
                size,
            },
        },
        Row {
            label: format!(
                "drain {} stored, 4 consumers, client-individual ACKs, prefetch 1000, 1 KiB",
                count(drain_messages)
            ),
            kind: Kind::DurableDrain {
                messages: drain_messages,
                consumers: 4,
                prefetch: 1000,
                size,
            },
        },
        Row {
            label: "RECEIPT latency p50 / p99 at 10k persistent SENDs/s, 4 publishers, 1 KiB"
                .into(),
            kind: Kind::ReceiptLatency {
                rate: 10_000,
                publishers: 4,
                window: 1000,
                size,
            },
        },
    ];
    if let Some(messages) = recovery_messages {
        rows.push(Row {
            label: format!(
                "recovery: SIGKILL with {} stored (1 KiB), restart → first message",
                count(messages)
            ),
            kind: Kind::Recovery { messages, size },
        });
    }
    rows
}

/// `1M`, `200k`, `5000`.
fn count(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 10_000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// One measurement of one row on one broker.
#[derive(Clone, Debug, PartialEq)]
pub enum Sample {
    /// A load run.
    Load {
        /// Measured deliveries per second (publishes per second without subscribers).
        per_sec: f64,
        /// Measured messages published.
        published: u64,
        /// Measured messages delivered.
        delivered: u64,
        /// `published × fan-out`.
        expected: u64,
        /// Latency median and 99th percentile, microseconds.
        p50_us: f64,
        /// 99th percentile.
        p99_us: f64,
        /// Publishes per second actually achieved (for the fixed-rate row).
        publish_per_sec: f64,
    },
    /// Bytes.
    Bytes(f64),
    /// Seconds.
    Seconds(f64),
    /// The run failed; the first line of why.
    Failed(String),
}

/// How a row is run against one broker.
pub struct Plan<'a> {
    /// The `stompkit` binary.
    pub stompkit: &'a Path,
    /// `stomp://host:port`.
    pub stomp_url: &'a str,
    /// `ws://host:port/path`, when the broker speaks STOMP over WebSocket.
    pub ws_url: Option<&'a str>,
    /// `(login, passcode)`, when the broker wants them.
    pub login: Option<(&'a str, &'a str)>,
    /// Measured seconds per run.
    pub seconds: f64,
    /// Warm-up seconds per run.
    pub warmup: f64,
    /// Makes destinations unique across runs.
    pub run_id: String,
    /// The SUBSCRIBE header that bounds unacknowledged messages
    /// (`prefetch-count`, ActiveMQ's `activemq.prefetchSize`).
    pub prefetch_header: &'a str,
    /// How a durable queue is filled fastest on this broker: transactions of this
    /// many SENDs, or (`None`) receipted windows ([`FILL_WINDOW`]).
    pub fill_transaction: Option<u64>,
    /// Durable rows use a new queue each run (counts up).
    pub durable_runs: std::cell::Cell<u32>,
}

/// Messages per publisher awaiting RECEIPT while a durable queue is filled.
pub const FILL_WINDOW: u64 = 1000;
/// Publishers filling a durable queue.
pub const FILL_PUBLISHERS: usize = 4;

impl Plan<'_> {
    /// `--login L --passcode P` for `stompkit bench`, when the broker wants them.
    pub fn login_args(&self) -> Vec<String> {
        self.login.map_or_else(Vec::new, |(login, passcode)| {
            vec![
                "--login".into(),
                login.into(),
                "--passcode".into(),
                passcode.into(),
            ]
        })
    }

    /// The `stompkit bench` arguments that fill a durable queue fast: receipted
    /// persistent SENDs, in transactions where that is faster.
    pub fn fill_args(&self) -> Vec<String> {
        let mut args = vec![
            "-p".into(),
            FILL_PUBLISHERS.to_string(),
            "--persistent".into(),
            "--receipt-window".into(),
        ];
        match self.fill_transaction {
            Some(k) => args.extend([(2 * k).to_string(), "--transaction".into(), k.to_string()]),
            None => args.push(FILL_WINDOW.to_string()),
        }
        args
    }

    /// The `stompkit bench` arguments for a durable load row (a fresh queue per run).
    fn durable_args(&self, row: &Row) -> Option<Vec<String>> {
        let run = self.durable_runs.get();
        self.durable_runs.set(run + 1);
        let mut args: Vec<String> = vec!["bench".into(), "--url".into(), self.stomp_url.into()];
        args.extend(self.login_args());
        args.extend(["--mode".into(), "queue".into()]);
        args.extend(self.durable_workload(row.kind)?);
        args.extend([
            "--drain-timeout".into(),
            "10".into(),
            "--destination".into(),
            format!("/queue/bench-{}-{}-{run}", row.slug(), self.run_id),
            "--json".into(),
            "--quiet".into(),
        ]);
        Some(args)
    }

    /// What a durable row sends and receives, as `stompkit bench` arguments.
    fn durable_workload(&self, kind: Kind) -> Option<Vec<String>> {
        match kind {
            Kind::DurablePublish {
                publishers,
                window,
                size,
            } => Some(self.receipted_publishing(publishers, window, size, None)),
            Kind::ReceiptLatency {
                rate,
                publishers,
                window,
                size,
            } => Some(self.receipted_publishing(publishers, window, size, Some(rate))),
            Kind::DurableDrain {
                messages,
                consumers,
                prefetch,
                size,
            } => {
                let mut args = self.fill_args();
                args.extend([
                    "-s".into(),
                    consumers.to_string(),
                    "--size".into(),
                    size.to_string(),
                    "--drain".into(),
                    messages.to_string(),
                    "--ack".into(),
                    "client-individual".into(),
                    "--sub-header".into(),
                    format!("{}:{prefetch}", self.prefetch_header),
                ]);
                Some(args)
            }
            _ => None,
        }
    }

    /// Timed persistent publishing with a RECEIPT on every SEND (at most
    /// `window` awaited per publisher), as fast as it goes or at `rate`, no
    /// consumer; the queue is emptied afterwards.
    fn receipted_publishing(
        &self,
        publishers: usize,
        window: u64,
        size: usize,
        rate: Option<u32>,
    ) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "-p".into(),
            publishers.to_string(),
            "-s".into(),
            "0".into(),
            "--size".into(),
            size.to_string(),
            "--duration".into(),
            self.seconds.to_string(),
            "--warmup".into(),
            self.warmup.to_string(),
        ];
        if let Some(rate) = rate {
            args.extend(["--rate".into(), rate.to_string()]);
        }
        args.extend([
            "--persistent".into(),
            "--receipt-window".into(),
            window.to_string(),
            "--then-drain".into(),
        ]);
        args
    }

    /// The `stompkit bench` arguments for a load row, or `None` when the broker
    /// has no WebSocket endpoint for a WebSocket row.
    pub fn load_args(&self, row: &Row) -> Option<Vec<String>> {
        if row.kind.section() == Section::Durable {
            return self.durable_args(row);
        }
        let (mode, publishers, subscribers, size, rate, url) = match row.kind {
            Kind::Throughput {
                mode,
                publishers,
                subscribers,
                size,
                ws,
            } => {
                let url = if ws { self.ws_url? } else { self.stomp_url };
                (mode, publishers, subscribers, size, None, url)
            }
            Kind::Latency {
                rate,
                subscribers,
                size,
            } => (
                Mode::Topic,
                1,
                subscribers,
                size,
                Some(rate),
                self.stomp_url,
            ),
            _ => return None,
        };
        let mut args: Vec<String> = vec!["bench".into(), "--url".into(), url.into()];
        args.extend(self.login_args());
        args.extend([
            "--mode".into(),
            mode.as_str().into(),
            "-p".into(),
            publishers.to_string(),
            "-s".into(),
            subscribers.to_string(),
            "--size".into(),
            size.to_string(),
            "--duration".into(),
            self.seconds.to_string(),
            "--warmup".into(),
            self.warmup.to_string(),
            "--ack".into(),
            "auto".into(),
            "--drain-timeout".into(),
            "5".into(),
            "--destination".into(),
            format!("/{}/bench-{}-{}", mode.as_str(), row.slug(), self.run_id),
            "--json".into(),
            "--quiet".into(),
        ]);
        if let Some(rate) = rate {
            args.extend(["--rate".into(), rate.to_string()]);
        }
        Some(args)
    }

    /// Runs a load row; `None` when it does not apply to this broker.
    pub fn run_load(&self, row: &Row) -> Option<Sample> {
        let args = self.load_args(row)?;
        // Warm-up, measured phase, drain (5 s without progress ends it), connects;
        // a durable drain fills its queue first (at 500 messages/s at worst).
        let mut limit =
            Duration::from_secs_f64(self.seconds + self.warmup) * 4 + Duration::from_secs(120);
        if let Kind::DurableDrain { messages, .. } = row.kind {
            limit += Duration::from_secs(messages / 500);
        }
        Some(match run_json(self.stompkit, &args, limit) {
            Ok(report) => sample_from(&report, row.kind),
            Err(error) => Sample::Failed(format!("{error:#}")),
        })
    }
}

/// Reads a `stompkit bench --json` report; the RECEIPT latency row takes the
/// RECEIPT latencies as its latencies.
pub fn sample_from(report: &Value, kind: Kind) -> Sample {
    let f = |key: &str| report[key].as_f64().unwrap_or(0.0);
    let u = |key: &str| report[key].as_u64().unwrap_or(0);
    if let Some(error) = report["errors"].as_array().and_then(|e| e.first()) {
        return Sample::Failed(error.as_str().unwrap_or("failed").to_string());
    }
    let (p50, p99) = match kind {
        Kind::ReceiptLatency { .. } => ("receipt_p50_us", "receipt_p99_us"),
        _ => ("p50_us", "p99_us"),
    };
    Sample::Load {
        per_sec: f("msgs_per_sec"),
        published: u("published"),
        delivered: u("delivered"),
        expected: u("expected"),
        p50_us: f(p50),
        p99_us: f(p99),
        publish_per_sec: f("publish_msgs_per_sec"),
    }
}

/// Runs `stompkit ARGS` and parses the JSON object it prints, killing it after
/// `limit`. A failed run whose report was printed still gives the report.
pub fn run_json(stompkit: &Path, args: &[String], limit: Duration) -> Result<Value> {
    println!("$ {} {}", stompkit.display(), args.join(" "));
    let mut child = Command::new(stompkit)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start {}", stompkit.display()))?;
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("stompkit bench did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut stdout)?;
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut stderr)?;
    }
    match serde_json::from_str::<Value>(stdout.trim()) {
        Ok(report) => Ok(report),
        Err(_) => {
            let why = stderr.lines().last().unwrap_or("no output").to_string();
            bail!("stompkit bench failed ({status}): {why}")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_throughput_shape_in_both_sizes_and_transports() {
        let all = rows(10_000);
        assert_eq!(all.iter().filter(|r| r.is_throughput()).count(), 16);
        assert_eq!(all[1].label, "topic 1→1, 1 KiB");
        assert_eq!(all[2].slug(), "topic-1-100-20b");
        assert!(all.last().unwrap().label.starts_with("WebSocket queue 4→4"));
    }

    #[test]
    fn load_args_name_the_workload_and_skip_missing_websocket() {
        let plan = Plan {
            stompkit: Path::new("stompkit"),
            stomp_url: "stomp://127.0.0.1:1",
            ws_url: None,
            login: Some(("guest", "guest")),
            seconds: 3.0,
            warmup: 1.0,
            run_id: "x".into(),
            prefetch_header: "activemq.prefetchSize",
            fill_transaction: Some(1000),
            durable_runs: std::cell::Cell::new(0),
        };
        let all = rows(10);
        let args = plan.load_args(&all[2]).unwrap().join(" ");
        assert!(
            args.contains("--mode topic -p 1 -s 100 --size 20 --duration 3 --warmup 1 --ack auto"),
            "{args}"
        );
        assert!(args.contains("--login guest --passcode guest"));
        assert!(args.contains("--destination /topic/bench-topic-1-100-20b-x"));
        let latency = all
            .iter()
            .find(|r| matches!(r.kind, Kind::Latency { .. }))
            .unwrap();
        assert!(
            plan.load_args(latency)
                .unwrap()
                .join(" ")
                .ends_with("--rate 20000")
        );
        let ws = all
            .iter()
            .find(|r| matches!(r.kind, Kind::Throughput { ws: true, .. }))
            .unwrap();
        assert_eq!(plan.load_args(ws), None);
    }

    #[test]
    fn a_report_with_errors_is_a_failure() {
        let ok = serde_json::json!({"msgs_per_sec": 10.0, "published": 5, "delivered": 5, "expected": 5, "errors": []});
        assert!(matches!(
            sample_from(&ok, Kind::IdleRss),
            Sample::Load { delivered: 5, .. }
        ));
        let bad = serde_json::json!({"errors": ["broker sent ERROR"]});
        assert_eq!(
            sample_from(&bad, Kind::IdleRss),
            Sample::Failed("broker sent ERROR".into())
        );
    }

    #[test]
    fn durable_rows_send_persistent_receipted_messages_to_fresh_queues() {
        let plan = Plan {
            stompkit: Path::new("stompkit"),
            stomp_url: "stomp://127.0.0.1:1",
            ws_url: None,
            login: None,
            seconds: 3.0,
            warmup: 1.0,
            run_id: "x".into(),
            prefetch_header: "activemq.prefetchSize",
            fill_transaction: Some(1000),
            durable_runs: std::cell::Cell::new(0),
        };
        let all = durable(200_000, Some(1_000_000));
        assert_eq!(all.len(), 4);
        assert!(all.iter().all(|r| r.kind.section() == Section::Durable));
        assert_eq!(
            rows(10)
                .iter()
                .filter(|r| r.kind.section() == Section::Durable)
                .count(),
            0
        );
        assert!(
            all[1].label.starts_with("drain 200k stored"),
            "{}",
            all[1].label
        );
        assert!(all[3].label.contains("1M stored"), "{}", all[3].label);
        let publish = plan.load_args(&all[0]).unwrap().join(" ");
        assert!(
            publish.contains("--mode queue -p 4 -s 0 --size 1024 --duration 3 --warmup 1 --persistent --receipt-window 256 --then-drain"),
            "{publish}"
        );
        assert!(publish.contains("--destination /queue/bench-durable-publish-4-x-0 "));
        let again = plan.load_args(&all[0]).unwrap().join(" ");
        assert!(
            again.contains("--destination /queue/bench-durable-publish-4-x-1 "),
            "a new queue per run"
        );
        let drain = plan.load_args(&all[1]).unwrap().join(" ");
        assert!(
            drain.contains("-p 4 --persistent --receipt-window 2000 --transaction 1000 -s 4 --size 1024 --drain 200000 --ack client-individual --sub-header activemq.prefetchSize:1000"),
            "{drain}"
        );
        let latency = plan.load_args(&all[2]).unwrap().join(" ");
        assert!(
            latency.contains("--rate 10000 --persistent --receipt-window 1000 --then-drain"),
            "{latency}"
        );
        assert_eq!(
            plan.load_args(&all[3]),
            None,
            "recovery is measured elsewhere"
        );
        let report = serde_json::json!({"p50_us": 1.0, "p99_us": 2.0, "receipt_p50_us": 30.0, "receipt_p99_us": 40.0, "errors": []});
        assert!(matches!(
            sample_from(&report, all[2].kind),
            Sample::Load {
                p50_us: 30.0,
                p99_us: 40.0,
                ..
            }
        ));
    }
}
