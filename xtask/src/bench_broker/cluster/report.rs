//! The cluster comparison as markdown: the circumstances, one line per row
//! with the deliveries/s of each [`Setup`], the cluster's share of the single
//! node's rate and the time per delivery NATS adds, then every process's
//! memory. Cells read like the main table's ([`table::cell`]: median, spread,
//! loss). It measures nothing.

use super::super::rows::{Row, Sample};
use super::super::table;
use super::super::{Settings, procfs, stompkit_version};
use super::Setup;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::Command;

/// One process's resident memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Memory {
    /// `single`, `node1`, …, `nats-server`.
    pub name: String,
    /// Its process, when found.
    pub pid: Option<u32>,
    /// VmRSS before the first run.
    pub after_start: Option<u64>,
    /// VmRSS after the last run.
    pub after_rows: Option<u64>,
    /// VmHWM after the last run.
    pub peak: Option<u64>,
}

/// Everything measured, with the circumstances.
#[derive(Clone, Debug)]
pub struct Report {
    /// The lines above the table.
    pub preamble: Vec<String>,
    /// The rows, in table order.
    pub rows: Vec<Row>,
    /// `samples[row][setup]`, setups in [`Setup::ALL`] order, one sample per repeat.
    pub samples: Vec<[Vec<Sample>; 3]>,
    /// Every process's memory.
    pub memory: Vec<Memory>,
}

/// The section's heading.
pub const HEADING: &str = "### Cluster mode: 3 nodes over NATS vs 1 node";

/// The lines above the table.
pub fn preamble(settings: &Settings, nats_version: &str, load_before: Option<f64>) -> Vec<String> {
    let date = crate::cmd::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = procfs::mem_total().map_or(0.0, |b| b as f64 / (1u64 << 30) as f64);
    let load = |l: Option<f64>| l.map_or("?".into(), |l| format!("{l:.1}"));
    vec![
        format!(
            "Measured {} by `cargo xtask bench-broker --cluster` on {} ({cores} cores, {memory:.0} GiB), Linux {}; \
             stompkit {} (release build), nats-server {nats_version} with JetStream.",
            date.trim(),
            procfs::cpu_model().unwrap_or_else(|| "an unknown CPU".into()),
            procfs::kernel().unwrap_or_default(),
            stompkit_version(),
        ),
        format!(
            "Three stompkit-broker nodes (`--in-memory --cluster nats://…`) on one nats-server against one \
             stompkit-broker without `--cluster` (`--in-memory`). **The three nodes, nats-server, the relay and the \
             load generator all share this machine's {cores} cores**: the cluster figures show what the hops through \
             NATS cost on one machine, not how a cluster of several machines scales."
        ),
        format!(
            "Load: the main table's `stompkit bench` runs of the same name: `ack:auto`, {} s unmeasured warm-up, then \
             {} s of measured publishing as fast as the brokers take it; deliveries/s counts measured deliveries \
             (topic 1→100 counts each of the 100 copies), and a run whose deliveries differ from published × fan-out \
             says how many were lost. Median of {} run(s), ± half the spread.",
            settings.warmup, settings.seconds, settings.repeat
        ),
        "Placement: `stompkit bench` takes one `--url`, so the runs connect through a TCP relay in xtask that puts \
         each connection on a node by arrival order (subscribers connect first): topic 1→100: the 100 subscribers \
         round robin over nodes 1, 2, 3, the publisher on node 1; queue 4→4: consumers on nodes 1, 2, 3, 1, \
         publishers on nodes 2, 3, 1, 2. The single node is measured directly and through the same relay; the last \
         two columns compare the cluster with the latter, so the relay's own cost cancels out. NATS overhead per \
         delivery = 1 / cluster rate − 1 / single-node rate: the time of this machine each delivery costs more."
            .to_string(),
        format!(
            "1-minute load average before / after: {} / {}.",
            load(load_before),
            load(procfs::load1())
        ),
    ]
}

/// The section: heading, preamble, the rows, the memory table.
pub fn markdown(report: &Report) -> String {
    let mut out = format!("{HEADING}\n\n");
    for line in &report.preamble {
        let _ = writeln!(out, "{line}\n");
    }
    let mut head = String::from("| row |");
    for setup in Setup::ALL {
        let _ = write!(head, " {} |", setup.label());
    }
    let _ = writeln!(
        out,
        "{head} 3 nodes ÷ 1 node (both via relay) | NATS overhead per delivery |\n|---|---:|---:|---:|---:|---:|"
    );
    for (row, samples) in report.rows.iter().zip(&report.samples) {
        let mut line = format!("| {} |", row.label);
        for cell in samples {
            let _ = write!(line, " {} |", table::cell(cell, row.kind));
        }
        let single = rate(&samples[1], row);
        let cluster = rate(&samples[2], row);
        let _ = writeln!(
            out,
            "{line} {} | {} |",
            ratio(single, cluster),
            overhead(single, cluster)
        );
    }
    out.push_str("\nMemory of each process (VmRSS; peak: VmHWM):\n\n");
    out.push_str(
        "| process | RSS after start | RSS after the runs | peak RSS |\n|---|---:|---:|---:|\n",
    );
    for m in &report.memory {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            m.name,
            mib(m.after_start),
            mib(m.after_rows),
            mib(m.peak)
        );
    }
    out
}

/// The median deliveries/s of a cell's successful runs.
fn rate(samples: &[Sample], row: &Row) -> Option<f64> {
    table::figure(samples, row.kind).filter(|r| *r > 0.0)
}

/// `0.42×`.
fn ratio(single: Option<f64>, cluster: Option<f64>) -> String {
    match (single, cluster) {
        (Some(s), Some(c)) => format!("{:.2}×", c / s),
        _ => "–".into(),
    }
}

/// `+1.23 µs` per delivery: 1/cluster − 1/single, in microseconds.
fn overhead(single: Option<f64>, cluster: Option<f64>) -> String {
    match (single, cluster) {
        (Some(s), Some(c)) => format!("{:+.2} µs", overhead_us(s, c)),
        _ => "–".into(),
    }
}

/// Microseconds per delivery the cluster takes more than the single node.
pub fn overhead_us(single_per_sec: f64, cluster_per_sec: f64) -> f64 {
    1e6 / cluster_per_sec - 1e6 / single_per_sec
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("?".into(), |b| {
        format!("{:.1} MiB", b as f64 / 1024.0 / 1024.0)
    })
}

/// What went wrong: failed runs and runs that lost (or doubled) messages.
pub fn problems(report: &Report) -> Vec<String> {
    let mut problems = Vec::new();
    for (row, cells) in report.rows.iter().zip(&report.samples) {
        for (setup, samples) in Setup::ALL.iter().zip(cells) {
            for sample in samples {
                match sample {
                    Sample::Failed(why) => {
                        problems.push(format!("{}, {}: {why}", row.label, setup.label()));
                    }
                    Sample::Load {
                        delivered,
                        expected,
                        ..
                    } if delivered != expected => problems.push(format!(
                        "{}, {}: delivered {delivered} of {expected}",
                        row.label,
                        setup.label()
                    )),
                    _ => {}
                }
            }
        }
    }
    problems
}

/// How many connections the relay put on each broker: `node1 ×35, node2 ×33`.
pub fn placed(placed: &[SocketAddr], names: &[(SocketAddr, &str)]) -> String {
    let counts: Vec<String> = names
        .iter()
        .filter_map(|(addr, name)| {
            let n = placed.iter().filter(|a| *a == addr).count();
            (n > 0).then(|| format!("{name} ×{n}"))
        })
        .collect();
    format!(
        "relay placed {} connection(s): {}",
        placed.len(),
        counts.join(", ")
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::super::rows::{Kind, Mode};
    use super::super::placement;
    use super::*;

    fn load(per_sec: f64, delivered: u64, expected: u64) -> Sample {
        Sample::Load {
            per_sec,
            published: expected,
            delivered,
            expected,
            p50_us: 0.0,
            p99_us: 0.0,
            publish_per_sec: 0.0,
        }
    }

    #[test]
    fn the_overhead_is_the_difference_of_the_times_per_delivery() {
        assert!((overhead_us(1e6, 250_000.0) - 3.0).abs() < 1e-9);
        assert_eq!(overhead(Some(1e6), Some(5e5)), "+1.00 µs");
        assert_eq!(overhead(None, Some(5e5)), "–");
        assert_eq!(ratio(Some(1e6), Some(2.5e5)), "0.25×");
    }

    #[test]
    fn the_table_shows_rates_losses_and_memory() {
        let row = super::super::cluster_rows().unwrap().remove(1);
        assert_eq!(row.label, "queue 4→4, 1 KiB");
        let report = Report {
            preamble: vec!["Measured today.".into()],
            rows: vec![row],
            samples: vec![[
                vec![load(2e6, 10, 10)],
                vec![load(1e6, 10, 10), load(1e6, 10, 10)],
                vec![load(5e5, 9, 10), Sample::Failed("node1 exited".into())],
            ]],
            memory: vec![Memory {
                name: "node1".into(),
                pid: Some(1),
                after_start: Some(8 << 20),
                after_rows: Some(24 << 20),
                peak: None,
            }],
        };
        let text = markdown(&report);
        assert!(text.starts_with(HEADING), "{text}");
        assert!(
            text.contains("| queue 4→4, 1 KiB | 2.00M/s | 1.00M/s | 500.0k/s (lost 1 of 10) (a run failed) | 0.50× | +1.00 µs |"),
            "{text}"
        );
        assert!(
            text.contains("| node1 | 8.0 MiB | 24.0 MiB | ? |"),
            "{text}"
        );
        let problems = problems(&report);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("3 nodes + NATS via relay: delivered 9 of 10"));
    }

    #[test]
    fn cluster_subscribers_go_round_robin_and_queue_publishers_elsewhere() {
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let (single, nodes) = (addr(1), [addr(11), addr(12), addr(13)]);
        let topic = Kind::Throughput {
            mode: Mode::Topic,
            publishers: 1,
            subscribers: 100,
            size: 20,
            ws: false,
        };
        assert_eq!(placement(Setup::Direct, topic, single, &nodes), None);
        let relayed = placement(Setup::Relayed, topic, single, &nodes).unwrap();
        assert!((0..101).all(|k| relayed.target(k) == Some(single)));
        let spread = placement(Setup::Cluster, topic, single, &nodes).unwrap();
        let subscribers: Vec<_> = (0..4).filter_map(|k| spread.target(k)).collect();
        assert_eq!(subscribers, [nodes[0], nodes[1], nodes[2], nodes[0]]);
        assert_eq!(
            spread.target(100),
            Some(nodes[0]),
            "the publisher on node 1"
        );
        let queue = Kind::Throughput {
            mode: Mode::Queue,
            publishers: 4,
            subscribers: 4,
            size: 1024,
            ws: false,
        };
        let spread = placement(Setup::Cluster, queue, single, &nodes).unwrap();
        let all: Vec<_> = (0..8).filter_map(|k| spread.target(k)).collect();
        assert_eq!(
            all,
            [
                nodes[0], nodes[1], nodes[2], nodes[0], nodes[1], nodes[2], nodes[0], nodes[1]
            ]
        );
        for i in 0..4 {
            assert_ne!(all[i], all[4 + i], "consumer {i} and publisher {i} apart");
        }
        assert_eq!(
            placed(
                &all,
                &[(nodes[0], "node1"), (nodes[1], "node2"), (single, "single")]
            ),
            "relay placed 8 connection(s): node1 ×3, node2 ×3"
        );
    }
}
