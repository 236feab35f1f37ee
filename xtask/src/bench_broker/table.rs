//! The benchmark's results as a markdown table, and writing it into the README
//! between `<!-- broker-bench:start -->` and `<!-- broker-bench:end -->`.
//!
//! Owns how a cell reads (median of the repeats, spread, loss), the per-row
//! comparison with the best peer and the verdict against the project's targets,
//! and the layout: the main table, then (when measured) the durable table under
//! its own heading with the machine's fsync latency. It measures nothing.

use super::rows::{Kind, Row, Sample, Section};
use anyhow::Result;
use std::fmt::Write as _;

/// Markers around the generated block in the README.
pub const START: &str = "<!-- broker-bench:start -->";
/// See [`START`].
pub const END: &str = "<!-- broker-bench:end -->";

/// A throughput row must reach this many times the faster peer.
pub const PEER_FACTOR: f64 = 10.0;
/// p99 latency bound at the fixed rate, microseconds.
pub const P99_US: f64 = 2000.0;
/// Idle RSS bound.
pub const IDLE_RSS: f64 = 8.0 * 1024.0 * 1024.0;
/// RSS per idle connection bound.
pub const CONN_RSS: f64 = 8.0 * 1024.0;
/// RECEIPT p99 at the fixed rate may exceed the machine's fsync p99 by this, µs.
pub const RECEIPT_OVER_FSYNC_US: f64 = 2000.0;
/// Recovery bound, seconds.
pub const RECOVERY_S: f64 = 5.0;
/// The fixed-rate rows' verdict wants at least this share of the rate published.
const RATE_KEPT: f64 = 0.95;

/// The machine's fsync latency (write 4 KiB + `fdatasync`), shown with the
/// durable table and bounding its RECEIPT latency target.
#[derive(Clone, Debug, PartialEq)]
pub struct Fsync {
    /// Median, microseconds.
    pub p50_us: f64,
    /// 99th percentile, microseconds.
    pub p99_us: f64,
    /// Writes timed.
    pub samples: usize,
    /// Where (the file system of the brokers' data directories).
    pub place: String,
}

/// The name of stompkit's column, which is always the first when measured.
pub const STOMPKIT: &str = "stompkit";

/// One broker measured: its column.
#[derive(Clone, Debug)]
pub struct Column {
    /// `stompkit`, `RabbitMQ`, `ActiveMQ`.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// Everything measured, with the circumstances.
#[derive(Clone, Debug)]
pub struct Results {
    /// Brokers, stompkit first.
    pub columns: Vec<Column>,
    /// Rows in table order.
    pub rows: Vec<Row>,
    /// `samples[row][column]`: one sample per repeat; empty when not applicable.
    pub samples: Vec<Vec<Vec<Sample>>>,
    /// The lines above the table (machine, versions, date, method).
    pub preamble: Vec<String>,
    /// The lines above the durable table (method), when it was measured.
    pub durable_preamble: Vec<String>,
    /// The machine's fsync latency, when the durable table was measured.
    pub fsync: Option<Fsync>,
}

/// The middle value of a cell's successful samples, and the half-spread as a
/// fraction of it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Median.
    pub median: f64,
    /// (max - min) / 2 / median.
    pub spread: f64,
}

/// The median and spread of `values` (`None` when empty).
pub fn summarize(mut values: Vec<f64>) -> Option<Summary> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    let spread = if median > 0.0 {
        (values[n - 1] - values[0]) / 2.0 / median
    } else {
        0.0
    };
    Some(Summary { median, spread })
}

/// The main figure of each successful sample: deliveries/s, p99 µs, bytes, seconds.
fn figures(samples: &[Sample], kind: Kind) -> Vec<f64> {
    samples
        .iter()
        .filter_map(|s| match (s, kind) {
            (Sample::Load { p99_us, .. }, Kind::Latency { .. } | Kind::ReceiptLatency { .. }) => {
                Some(*p99_us)
            }
            (Sample::Load { per_sec, .. }, _) => Some(*per_sec),
            (Sample::Bytes(b), _) => Some(*b),
            (Sample::Seconds(s), _) => Some(*s),
            (Sample::Failed(_), _) => None,
        })
        .collect()
}

/// The cell's main figure (median over the repeats).
pub fn figure(samples: &[Sample], kind: Kind) -> Option<f64> {
    summarize(figures(samples, kind)).map(|s| s.median)
}

/// Messages not delivered (or delivered twice) over all repeats: `(lost, surplus, expected)`.
fn loss(samples: &[Sample]) -> (u64, u64, u64) {
    samples.iter().fold((0, 0, 0), |(l, x, e), s| match s {
        Sample::Load {
            delivered,
            expected,
            ..
        } => (
            l + expected.saturating_sub(*delivered),
            x + delivered.saturating_sub(*expected),
            e + expected,
        ),
        _ => (l, x, e),
    })
}

/// `1.23M`, `45.6k`, `789`.
pub fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn bytes(b: f64) -> String {
    if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / 1024.0 / 1024.0)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

/// The text of one cell.
pub fn cell(samples: &[Sample], kind: Kind) -> String {
    if samples.is_empty() {
        return "–".into();
    }
    let Some(summary) = summarize(figures(samples, kind)) else {
        let why = samples.iter().find_map(|s| match s {
            Sample::Failed(why) => Some(why.as_str()),
            _ => None,
        });
        let why: String = why.unwrap_or("failed").chars().take(80).collect();
        return format!("failed: {}", why.replace('|', "/"));
    };
    let mut text = match kind {
        Kind::Throughput { .. } | Kind::DurablePublish { .. } | Kind::DurableDrain { .. } => {
            format!("{}/s", si(summary.median))
        }
        Kind::Latency { rate, .. } | Kind::ReceiptLatency { rate, .. } => {
            let p50 = load_median(samples, |s| match s {
                Sample::Load { p50_us, .. } => Some(*p50_us),
                _ => None,
            });
            let published = published_median(samples);
            let mut t = format!("{:.2} / {:.2} ms", p50 / 1e3, summary.median / 1e3);
            if published < RATE_KEPT * f64::from(rate) {
                let _ = write!(t, " (published only {}/s)", si(published));
            }
            t
        }
        Kind::IdleRss | Kind::RssPerConnection => bytes(summary.median),
        Kind::AcceptTime | Kind::Recovery { .. } => format!("{:.2} s", summary.median),
    };
    if summary.spread >= 0.005 {
        let _ = write!(text, " ±{:.0}%", summary.spread * 100.0);
    }
    let (lost, surplus, expected) = loss(samples);
    if lost > 0 {
        let _ = write!(
            text,
            " (lost {} of {})",
            si(lost as f64),
            si(expected as f64)
        );
    }
    if surplus > 0 {
        let _ = write!(text, " ({} extra)", si(surplus as f64));
    }
    if samples.iter().any(|s| matches!(s, Sample::Failed(_))) {
        text.push_str(" (a run failed)");
    }
    text
}

/// The median of one figure over a cell's load samples (0 when none).
fn load_median(samples: &[Sample], figure: impl Fn(&Sample) -> Option<f64>) -> f64 {
    summarize(samples.iter().filter_map(figure).collect()).map_or(0.0, |s| s.median)
}

/// The median publish rate of a cell's load samples.
fn published_median(samples: &[Sample]) -> f64 {
    load_median(samples, |s| match s {
        Sample::Load {
            publish_per_sec, ..
        } => Some(*publish_per_sec),
        _ => None,
    })
}

/// How stompkit (column 0) compares with the best peer on a row, and whether
/// the row meets its target: `(comparison, verdict)`.
pub fn judge(results: &Results, row: usize) -> (String, Option<bool>) {
    let kind = results.rows[row].kind;
    if results.columns.first().is_some_and(|c| c.name != STOMPKIT) {
        // stompkit was not measured (`--only`): nothing to compare or judge.
        return ("–".into(), None);
    }
    let cells = &results.samples[row];
    let ours = cells.first().and_then(|s| figure(s, kind));
    let peers: Vec<f64> = cells
        .iter()
        .skip(1)
        .filter_map(|s| figure(s, kind))
        .collect();
    let clean = cells
        .first()
        .is_some_and(|s| loss(s).0 == 0 && !s.iter().any(|x| matches!(x, Sample::Failed(_))));
    let Some(ours) = ours else {
        return ("–".into(), Some(false));
    };
    match kind {
        Kind::Throughput { .. } | Kind::DurablePublish { .. } | Kind::DurableDrain { .. } => {
            let best = peers.iter().copied().fold(0.0, f64::max);
            if best <= 0.0 {
                return ("no peer measured".into(), None);
            }
            let ratio = ours / best;
            (format!("{ratio:.1}×"), Some(clean && ratio >= PEER_FACTOR))
        }
        Kind::Latency { .. } => (String::new(), Some(clean && ours <= P99_US)),
        Kind::ReceiptLatency { rate, .. } => {
            let kept = cells
                .first()
                .is_some_and(|s| published_median(s) >= RATE_KEPT * f64::from(rate));
            let verdict = results
                .fsync
                .as_ref()
                .map(|f| clean && kept && ours <= f.p99_us + RECEIPT_OVER_FSYNC_US);
            (String::new(), verdict)
        }
        Kind::Recovery { .. } => {
            let best = peers.iter().copied().fold(f64::INFINITY, f64::min);
            let comparison = if best.is_finite() && ours > 0.0 {
                format!("{:.1}× faster", best / ours)
            } else {
                String::new()
            };
            (comparison, Some(clean && ours < RECOVERY_S))
        }
        Kind::IdleRss => (String::new(), Some(ours <= IDLE_RSS)),
        Kind::RssPerConnection => {
            let best = peers.iter().copied().fold(f64::INFINITY, f64::min);
            let comparison = if best.is_finite() && ours > 0.0 {
                format!("{:.0}× less", best / ours)
            } else {
                String::new()
            };
            (comparison, Some(ours <= CONN_RSS))
        }
        Kind::AcceptTime => {
            let best = peers.iter().copied().fold(f64::INFINITY, f64::min);
            let comparison = if best.is_finite() && ours > 0.0 {
                format!("{:.1}× faster", best / ours)
            } else {
                String::new()
            };
            (comparison, None)
        }
    }
}

/// The target a row is held to, as text.
fn target(kind: Kind, fsync: Option<&Fsync>) -> String {
    match kind {
        Kind::Throughput { .. } | Kind::DurablePublish { .. } | Kind::DurableDrain { .. } => {
            "≥ 10× best peer, no loss".into()
        }
        Kind::Latency { .. } => "p99 ≤ 2 ms".into(),
        Kind::ReceiptLatency { .. } => match fsync {
            Some(f) => format!(
                "p99 ≤ fsync p99 + 2 ms = {:.2} ms",
                (f.p99_us + RECEIPT_OVER_FSYNC_US) / 1e3
            ),
            None => "p99 ≤ fsync p99 + 2 ms (fsync not measured)".into(),
        },
        Kind::Recovery { .. } => "< 5 s".into(),
        Kind::IdleRss => "≤ 8 MiB".into(),
        Kind::RssPerConnection => "≤ 8 KiB".into(),
        Kind::AcceptTime => "–".into(),
    }
}

/// The heading of the durable table.
pub const DURABLE_HEADING: &str = "#### Durable messaging";

/// The markdown block: preamble, chart reference (when given), the main table;
/// then, when measured, the durable table under [`DURABLE_HEADING`] with its
/// own preamble and the machine's fsync latency.
pub fn markdown(results: &Results, chart: Option<&str>) -> String {
    let mut out = String::new();
    for line in &results.preamble {
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
    if let Some(chart) = chart {
        let _ = writeln!(
            out,
            "![Delivered messages per second, log scale]({chart})\n"
        );
    }
    let main = table(results, Section::Main);
    out.push_str(&main);
    let durable = table(results, Section::Durable);
    if !durable.is_empty() {
        if !main.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "{DURABLE_HEADING}\n");
        for line in &results.durable_preamble {
            let _ = writeln!(out, "{line}");
        }
        if let Some(f) = &results.fsync {
            let _ = writeln!(
                out,
                "fsync on this machine: p50 {:.2} ms, p99 {:.2} ms ({} × write 4 KiB + fdatasync, {}).",
                f.p50_us / 1e3,
                f.p99_us / 1e3,
                f.samples,
                f.place
            );
        }
        out.push('\n');
        out.push_str(&durable);
    }
    out
}

/// The rows of one section as a markdown table (empty without rows).
fn table(results: &Results, section: Section) -> String {
    let mut out = String::new();
    if !results.rows.iter().any(|r| r.kind.section() == section) {
        return out;
    }
    let mut head = String::from("| row |");
    let mut rule = String::from("|---|");
    for column in &results.columns {
        let _ = write!(head, " {} {} |", column.name, column.version);
        rule.push_str("---:|");
    }
    head.push_str(" stompkit vs best peer | target |");
    rule.push_str("---:|---|");
    let _ = writeln!(out, "{head}\n{rule}");
    for (i, row) in results.rows.iter().enumerate() {
        if row.kind.section() != section {
            continue;
        }
        let mut line = format!("| {} |", row.label);
        for samples in &results.samples[i] {
            let _ = write!(line, " {} |", cell(samples, row.kind));
        }
        let (comparison, verdict) = judge(results, i);
        let mark = match verdict {
            Some(true) => " ✅",
            Some(false) => " ❌",
            None => "",
        };
        let _ = write!(
            line,
            " {comparison} | {}{mark} |",
            target(row.kind, results.fsync.as_ref())
        );
        let _ = writeln!(out, "{line}");
    }
    out
}

/// `readme` with the text between the markers replaced by `block`.
pub fn splice(readme: &str, block: &str) -> Result<String> {
    crate::readme::replace_between(readme, START, END, block)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::rows::{Mode, rows};
    use super::*;

    fn load(per_sec: f64, delivered: u64, expected: u64) -> Sample {
        Sample::Load {
            per_sec,
            published: expected,
            delivered,
            expected,
            p50_us: 100.0,
            p99_us: 900.0,
            publish_per_sec: 20_000.0,
        }
    }

    #[test]
    fn medians_spreads_and_losses_show_in_cells() {
        let kind = Kind::Throughput {
            mode: Mode::Topic,
            publishers: 1,
            subscribers: 1,
            size: 20,
            ws: false,
        };
        let s = [
            load(1.0e6, 10, 10),
            load(1.2e6, 10, 10),
            load(1.1e6, 10, 10),
        ];
        assert_eq!(cell(&s, kind), "1.10M/s ±9%");
        assert_eq!(cell(&[load(5e3, 90, 100)], kind), "5.0k/s (lost 10 of 100)");
        assert_eq!(cell(&[], kind), "–");
        assert!(cell(&[Sample::Failed("no | pipe".into())], kind).starts_with("failed: no / pipe"));
        let latency = Kind::Latency {
            rate: 20_000,
            subscribers: 10,
            size: 20,
        };
        assert_eq!(cell(&[load(2e5, 1, 1)], latency), "0.10 / 0.90 ms");
    }

    #[test]
    fn verdicts_follow_the_targets() {
        let all = rows(100);
        let n = all.len();
        let mut samples = vec![vec![Vec::new(), Vec::new()]; n];
        samples[0] = vec![vec![load(1.0e6, 5, 5)], vec![load(5.0e4, 5, 5)]];
        samples[1] = vec![vec![load(1.0e6, 5, 5)], vec![load(2.0e5, 5, 5)]];
        samples[2] = vec![vec![load(1.0e6, 4, 5)], vec![load(1.0e3, 5, 5)]];
        let results = Results {
            columns: vec![],
            rows: all,
            samples,
            preamble: vec![],
            durable_preamble: vec![],
            fsync: None,
        };
        assert_eq!(judge(&results, 0), ("20.0×".into(), Some(true)));
        assert_eq!(judge(&results, 1), ("5.0×".into(), Some(false)));
        assert_eq!(judge(&results, 2).1, Some(false), "a loss fails the row");
    }

    #[test]
    fn the_durable_table_has_its_own_heading_and_targets() {
        use super::super::rows::durable;
        let all = durable(1000, Some(1_000_000));
        let latency = |p99_us: f64, publish_per_sec: f64| Sample::Load {
            per_sec: 0.0,
            published: 10,
            delivered: 0,
            expected: 0,
            p50_us: 1000.0,
            p99_us,
            publish_per_sec,
        };
        let samples = vec![
            vec![vec![load(2.0e5, 0, 0)], vec![load(1.0e4, 0, 0)]],
            vec![vec![load(2.0e5, 90, 100)], vec![load(1.0e4, 100, 100)]],
            vec![
                vec![latency(6000.0, 10_000.0)],
                vec![latency(9000.0, 3000.0)],
            ],
            vec![vec![Sample::Seconds(1.5)], vec![Sample::Seconds(12.0)]],
        ];
        let mut results = Results {
            columns: vec![
                Column {
                    name: "stompkit".into(),
                    version: "0".into(),
                },
                Column {
                    name: "RabbitMQ".into(),
                    version: "3".into(),
                },
            ],
            rows: all,
            samples,
            preamble: vec!["P".into()],
            durable_preamble: vec!["D".into()],
            fsync: Some(Fsync {
                p50_us: 3000.0,
                p99_us: 5000.0,
                samples: 2000,
                place: "target/".into(),
            }),
        };
        assert_eq!(judge(&results, 0), ("20.0×".into(), Some(true)));
        assert_eq!(judge(&results, 1).1, Some(false), "a loss fails the drain");
        assert_eq!(judge(&results, 2).1, Some(true), "6 ms ≤ 5 ms + 2 ms");
        assert_eq!(judge(&results, 3), ("8.0× faster".into(), Some(true)));
        let text = markdown(&results, None);
        assert!(text.starts_with("P\n\n#### Durable messaging\n\nD\nfsync on this machine: p50 3.00 ms, p99 5.00 ms (2000 × write 4 KiB + fdatasync, target/).\n\n| row |"), "{text}");
        assert!(
            text.contains("| 1.00 / 9.00 ms (published only 3.0k/s) |"),
            "{text}"
        );
        assert!(
            text.contains("p99 ≤ fsync p99 + 2 ms = 7.00 ms ✅"),
            "{text}"
        );
        assert!(
            text.contains("| 1.50 s | 12.00 s | 8.0× faster | < 5 s ✅ |"),
            "{text}"
        );
        results.fsync = None;
        assert_eq!(judge(&results, 2).1, None, "no fsync figure, no verdict");
        let peers_only = Results {
            columns: results.columns[1..].to_vec(),
            ..results.clone()
        };
        assert_eq!(
            judge(&peers_only, 0),
            ("–".into(), None),
            "no stompkit column"
        );
        results.samples[2][0] = vec![latency(6000.0, 5000.0)];
        results.fsync = Some(Fsync {
            p50_us: 1.0,
            p99_us: 9000.0,
            samples: 1,
            place: String::new(),
        });
        assert_eq!(
            judge(&results, 2).1,
            Some(false),
            "half the rate is not the row"
        );
    }

    #[test]
    fn splice_replaces_only_the_block() {
        let readme = format!("a\n{START}\nold\n{END}\nb\n");
        let new = splice(&readme, "new table\n").unwrap();
        assert_eq!(new, format!("a\n{START}\nnew table\n{END}\nb\n"));
        assert!(splice("no markers", "x").is_err());
    }
}
