//! The benchmark's rows and how one is measured with `stompkit bench`.
//!
//! Owns the workload list ([`rows`]), the command line each row gives the load
//! generator, and reading its JSON report into a [`Sample`]. Every load row
//! subscribes with `ack:auto`, publishes an unmeasured warm-up first, and counts
//! only measured deliveries; `delivered != published × fan-out` is kept as a loss
//! (or surplus) in the sample and shown in the table.

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
}

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

    /// The `stompkit bench` arguments for a load row, or `None` when the broker
    /// has no WebSocket endpoint for a WebSocket row.
    pub fn load_args(&self, row: &Row) -> Option<Vec<String>> {
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
        // Warm-up, measured phase, drain (5 s without progress ends it), connects.
        let limit =
            Duration::from_secs_f64(self.seconds + self.warmup) * 4 + Duration::from_secs(120);
        Some(match run_json(self.stompkit, &args, limit) {
            Ok(report) => sample_from(&report),
            Err(error) => Sample::Failed(format!("{error:#}")),
        })
    }
}

/// Reads a `stompkit bench --json` report.
pub fn sample_from(report: &Value) -> Sample {
    let f = |key: &str| report[key].as_f64().unwrap_or(0.0);
    let u = |key: &str| report[key].as_u64().unwrap_or(0);
    if let Some(error) = report["errors"].as_array().and_then(|e| e.first()) {
        return Sample::Failed(error.as_str().unwrap_or("failed").to_string());
    }
    Sample::Load {
        per_sec: f("msgs_per_sec"),
        published: u("published"),
        delivered: u("delivered"),
        expected: u("expected"),
        p50_us: f("p50_us"),
        p99_us: f("p99_us"),
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
            sample_from(&ok),
            Sample::Load { delivered: 5, .. }
        ));
        let bad = serde_json::json!({"errors": ["broker sent ERROR"]});
        assert_eq!(
            sample_from(&bad),
            Sample::Failed("broker sent ERROR".into())
        );
    }
}
