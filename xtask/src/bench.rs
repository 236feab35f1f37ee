//! Benchmarks (`cargo xtask bench [--quick] [--peers]`): runs the criterion
//! benches and turns criterion's `estimates.json` files into a summary.
//!
//! Owns where the results go and how they are read: stompkit's benches
//! (`benches/`, crate `stompkit-benches`) write to `target/criterion`, the peer
//! parsers (`benches/peers/`, its own workspace) to
//! `benches/peers/target/criterion` (both set with `CRITERION_HOME`, so the
//! place does not depend on `CARGO_TARGET_DIR`). It prints one line per
//! workload (MiB/s, frames/s, ns/frame, share of the memchr reference scan and,
//! with `--peers`, the ratio to the fastest peer), checks the project's
//! throughput targets, and writes a markdown table to `target/bench-table.md`;
//! a full run with `--peers` also puts it into the README's `wire-bench` block,
//! with the machine, the date and the load average around the run.
//! It does not know how the benches measure; `benches/` does.

use crate::{cmd, readme};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The workloads, in report order (group names in criterion's output).
const WORKLOADS: [&str; 3] = ["small", "chat", "bulk"];

/// Targets the numbers are compared against.
const SMALL_FRAMES_PER_SEC: f64 = 13e6;
const CHAT_PEER_RATIO: f64 = 5.0;
const BULK_MEMCPY_FACTOR: f64 = 2.0;
const SEND_FRAMES_PER_SEC: f64 = 20e6;

/// Runs the benchmarks; `quick` for a short run, `peers` to include the other
/// Rust STOMP parsers.
pub fn run(quick: bool, peers: bool) -> Result<()> {
    let root = cmd::root();
    let load_before = load_average();
    let home = root.join("target").join("criterion");
    let peers_home = root.join("benches/peers/target/criterion");

    let mut args = vec!["bench", "-p", "stompkit-benches", "--bench", "wire", "--"];
    if quick {
        args.push("--quick");
    }
    let mut command = cmd::cargo(&args);
    command.env("CRITERION_HOME", &home);
    cmd::echo(&command);
    cmd::run(&mut command).context("stompkit benches")?;

    if peers {
        let status = peers_home.join("peer-status.tsv");
        // A stale status file would vouch for peers this run did not check.
        if status.exists() {
            std::fs::remove_file(&status)
                .with_context(|| format!("removing {}", status.display()))?;
        }
        let manifest = root.join("benches/peers/Cargo.toml");
        let manifest = manifest.to_string_lossy();
        let mut args = vec![
            "bench",
            "--manifest-path",
            &manifest,
            "--bench",
            "peers",
            "--",
        ];
        if quick {
            args.push("--quick");
        }
        let mut command = cmd::cargo(&args);
        command.env("CRITERION_HOME", &peers_home);
        cmd::echo(&command);
        cmd::run(&mut command).context("peer benches")?;
    }

    let ours = Results::read(&home, None)?;
    let theirs = if peers {
        Some(Results::read(
            &peers_home,
            Some(&peers_home.join("peer-status.tsv")),
        )?)
    } else {
        None
    };
    let report = Report {
        ours: &ours,
        peers: theirs.as_ref(),
    };
    println!();
    print!("{}", report.summary());
    let table = report.markdown();
    let path = root.join("target").join("bench-table.md");
    std::fs::create_dir_all(root.join("target"))?;
    std::fs::write(&path, &table).with_context(|| format!("writing {}", path.display()))?;
    println!();
    print!("{table}");
    println!("(written to {})", path.display());
    if peers && !quick {
        let conditions = format!(
            "Measured by `cargo xtask bench --peers` on {}, {} (load average {} before, {} after; \
             other work on the machine makes these numbers slower, never faster).\n\n",
            machine(),
            today(),
            load_before,
            load_average()
        );
        readme::fill(&root, "wire-bench", &format!("{conditions}{table}"))?;
        println!("(and into README.md, block wire-bench)");
    }
    Ok(())
}

/// The CPU model and how many CPUs the system shows, from `/proc/cpuinfo`.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim())
        })
        .unwrap_or("unknown CPU");
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let rustc = cmd::output(std::process::Command::new("rustc").arg("-V")).unwrap_or_default();
    format!("{model}, {cpus} CPUs, {}", rustc.trim())
}

/// Today's date (UTC), as `date` prints it.
fn today() -> String {
    cmd::output(std::process::Command::new("date").args(["-u", "+%Y-%m-%d"]))
        .map_or_else(|| "unknown date".into(), |d| d.trim().to_string())
}

/// The 1-minute load average, from `/proc/loadavg`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// One benchmark's result.
#[derive(Clone, Copy, Debug)]
struct Measure {
    /// Nanoseconds per iteration (criterion's typical value: slope, else mean).
    ns: f64,
    /// Frames per iteration.
    frames: u64,
    /// Bytes per iteration.
    bytes: u64,
}

impl Measure {
    fn frames_per_sec(&self) -> f64 {
        self.frames as f64 * 1e9 / self.ns
    }
    fn mib_per_sec(&self) -> f64 {
        self.bytes as f64 * 1e9 / self.ns / (1024.0 * 1024.0)
    }
    fn ns_per_frame(&self) -> f64 {
        self.ns / self.frames.max(1) as f64
    }
}

/// All results under one criterion home: group → benchmark → measure, plus
/// which peers could not parse which workload (and why).
struct Results {
    groups: BTreeMap<String, BTreeMap<String, Measure>>,
    failures: Vec<(String, String, String)>,
}

impl Results {
    /// Reads `<home>/<group>/<bench>/new/{estimates,benchmark}.json`. With a
    /// `status` file (written by the peer benches), only benchmarks it lists as
    /// checked `ok` in this run count.
    fn read(home: &Path, status: Option<&Path>) -> Result<Results> {
        let mut allowed: Option<Vec<(String, String)>> = None;
        let mut failures = Vec::new();
        if let Some(status) = status {
            let text = std::fs::read_to_string(status).with_context(|| {
                format!("reading {} (did the peer benches run?)", status.display())
            })?;
            let mut ok = Vec::new();
            for line in text.lines() {
                let mut fields = line.splitn(3, '\t');
                let (Some(workload), Some(peer), Some(outcome)) =
                    (fields.next(), fields.next(), fields.next())
                else {
                    continue;
                };
                if outcome == "ok" {
                    ok.push((workload.to_string(), peer.to_string()));
                } else {
                    failures.push((workload.to_string(), peer.to_string(), outcome.to_string()));
                }
            }
            allowed = Some(ok);
        }
        let mut groups: BTreeMap<String, BTreeMap<String, Measure>> = BTreeMap::new();
        for group in ["small", "chat", "bulk", "send"] {
            let dir = home.join(group);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let entry = entry?;
                let bench = entry.file_name().to_string_lossy().into_owned();
                let new = entry.path().join("new");
                if !new.join("estimates.json").exists() {
                    continue;
                }
                if let Some(ok) = &allowed
                    && bench != "memchr_reference"
                    && !ok.iter().any(|(w, p)| w == group && *p == bench)
                {
                    continue;
                }
                let measure =
                    read_measure(&new).with_context(|| format!("reading {}", new.display()))?;
                groups
                    .entry(group.to_string())
                    .or_default()
                    .insert(bench, measure);
            }
        }
        if groups.is_empty() {
            bail!("no criterion results under {}", home.display());
        }
        Ok(Results { groups, failures })
    }

    fn get(&self, group: &str, bench: &str) -> Option<Measure> {
        self.groups.get(group)?.get(bench).copied()
    }

    /// The fastest benchmark of a group other than stompkit's and the reference.
    fn fastest_peer(&self, group: &str) -> Option<(&str, Measure)> {
        self.groups
            .get(group)?
            .iter()
            .filter(|(name, _)| {
                !name.starts_with("stompkit")
                    && !matches!(name.as_str(), "memchr_reference" | "memcpy")
            })
            .min_by(|a, b| a.1.ns.total_cmp(&b.1.ns))
            .map(|(name, m)| (name.as_str(), *m))
    }
}

fn read_measure(new: &Path) -> Result<Measure> {
    let estimates = read_json(&new.join("estimates.json"))?;
    let typical = |key: &str| estimates.get(key)?.get("point_estimate")?.as_f64();
    let ns = typical("slope")
        .or_else(|| typical("mean"))
        .context("no slope or mean in estimates.json")?;
    let benchmark = read_json(&new.join("benchmark.json"))?;
    let throughput = benchmark
        .get("throughput")
        .context("no throughput in benchmark.json")?;
    let (frames, bytes) = if let Some(both) = throughput.get("ElementsAndBytes") {
        (
            both.get("elements").and_then(Value::as_u64).unwrap_or(0),
            both.get("bytes").and_then(Value::as_u64).unwrap_or(0),
        )
    } else {
        (
            throughput
                .get("Elements")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            throughput.get("Bytes").and_then(Value::as_u64).unwrap_or(0),
        )
    };
    Ok(Measure { ns, frames, bytes })
}

fn read_json(path: &PathBuf) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Formats results for people.
struct Report<'a> {
    ours: &'a Results,
    peers: Option<&'a Results>,
}

impl Report<'_> {
    /// One line per workload, then the targets.
    fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "stompkit-wire throughput (parse = Parser::parse on a BytesMut, version 1.2):"
        );
        for w in WORKLOADS {
            let Some(parse) = self.ours.get(w, "stompkit_parse") else {
                let _ = writeln!(out, "  {w:5}: no result");
                continue;
            };
            let mut line = format!(
                "  {w:5}: {:>7.0} MiB/s  {:>6} frames/s  {:>8.1} ns/frame  ({} B/frame)",
                parse.mib_per_sec(),
                si(parse.frames_per_sec()),
                parse.ns_per_frame(),
                parse.bytes / parse.frames.max(1),
            );
            if let Some(reference) = self.ours.get(w, "memchr_reference") {
                let _ = write!(
                    line,
                    "  {:.0}% of memchr scan",
                    100.0 * reference.ns / parse.ns
                );
            }
            if let Some(push) = self.ours.get(w, "stompkit_push") {
                let _ = write!(line, "  | push+next_event {}/s", si(push.frames_per_sec()));
            }
            if let Some(encode) = self.ours.get(w, "stompkit_encode") {
                let _ = write!(
                    line,
                    "  | encode {} frames/s, {:.0} MiB/s",
                    si(encode.frames_per_sec()),
                    encode.mib_per_sec()
                );
            }
            if let Some((ratio, peer)) = self.peer_ratio(w) {
                let _ = write!(line, "  | {ratio:.1}x fastest peer ({peer})");
            }
            let _ = writeln!(out, "{line}");
        }
        if let Some(send) = self.ours.get("send", "stompkit_encode") {
            let _ = writeln!(
                out,
                "  send : encode a 3-header SEND: {} frames/s, {:.1} ns/frame",
                si(send.frames_per_sec()),
                send.ns_per_frame()
            );
        }
        let _ = writeln!(out, "targets:");
        for (ok, text) in self.targets() {
            let mark = match ok {
                Some(true) => "met ",
                Some(false) => "MISS",
                None => "n/a ",
            };
            let _ = writeln!(out, "  [{mark}] {text}");
        }
        if let Some(peers) = self.peers {
            for (workload, peer, reason) in &peers.failures {
                let _ = writeln!(out, "  peer {peer} cannot parse {workload}: {reason}");
            }
        }
        out
    }

    /// stompkit's speed over the fastest peer's, both from the peer run.
    fn peer_ratio(&self, workload: &str) -> Option<(f64, String)> {
        let peers = self.peers?;
        let ours = peers.get(workload, "stompkit")?;
        let (name, fastest) = peers.fastest_peer(workload)?;
        Some((fastest.ns / ours.ns, name.to_string()))
    }

    /// Each target: met (Some(true)), missed, or not measured (None), and its text.
    fn targets(&self) -> Vec<(Option<bool>, String)> {
        let mut targets = Vec::new();
        let small = self.ours.get("small", "stompkit_parse");
        targets.push((
            small.map(|m| m.frames_per_sec() >= SMALL_FRAMES_PER_SEC),
            format!(
                "small parse >= {} frames/s (< {:.0} ns/frame): {}",
                si(SMALL_FRAMES_PER_SEC),
                1e9 / SMALL_FRAMES_PER_SEC,
                small.map_or("not measured".into(), |m| format!(
                    "{}/s, {:.1} ns",
                    si(m.frames_per_sec()),
                    m.ns_per_frame()
                )),
            ),
        ));
        let chat = self.peer_ratio("chat");
        targets.push((
            chat.as_ref().map(|(r, _)| *r >= CHAT_PEER_RATIO),
            format!(
                "chat parse >= {CHAT_PEER_RATIO}x the fastest peer: {}",
                chat.map_or("not measured (run with --peers)".into(), |(r, p)| format!(
                    "{r:.1}x ({p})"
                )),
            ),
        ));
        let bulk = self
            .ours
            .get("bulk", "stompkit_parse")
            .zip(self.ours.get("bulk", "memcpy"));
        targets.push((
            bulk.map(|(p, c)| p.ns <= BULK_MEMCPY_FACTOR * c.ns),
            format!(
                "bulk parse within {BULK_MEMCPY_FACTOR}x of memcpy: {}",
                bulk.map_or("not measured".into(), |(p, c)| {
                    let mut text = format!(
                        "{:.2}x the time of memcpy ({:.0} vs {:.0} MiB/s; zero-copy, bodies skipped by content-length)",
                        p.ns / c.ns,
                        p.mib_per_sec(),
                        c.mib_per_sec()
                    );
                    if let Some(push) = self.ours.get("bulk", "stompkit_push") {
                        let _ = write!(
                            text,
                            "; push+next_event, which copies into the parser: {:.2}x ({:.0} MiB/s)",
                            push.ns / c.ns,
                            push.mib_per_sec()
                        );
                    }
                    text
                }),
            ),
        ));
        let send = self.ours.get("send", "stompkit_encode");
        targets.push((
            send.map(|m| m.frames_per_sec() >= SEND_FRAMES_PER_SEC),
            format!(
                "encode a 3-header SEND >= {} frames/s: {}",
                si(SEND_FRAMES_PER_SEC),
                send.map_or("not measured".into(), |m| format!(
                    "{}/s, {:.1} ns",
                    si(m.frames_per_sec()),
                    m.ns_per_frame()
                )),
            ),
        ));
        targets
    }

    /// Tables for the README: ours, the peers' (when measured), the targets.
    fn markdown(&self) -> String {
        let mut out = self.wire_table();
        if let Some(peers) = self.peers {
            out.push_str(&peer_table(peers));
        }
        out.push_str(&self.target_list());
        out
    }

    /// Our parse and encode figures per workload, and the 3-header SEND.
    fn wire_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| workload | bytes/frame | parse MiB/s | parse frames/s | ns/frame | % of memchr scan | encode frames/s | encode MiB/s | memcpy MiB/s |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for w in WORKLOADS {
            let Some(parse) = self.ours.get(w, "stompkit_parse") else {
                continue;
            };
            let reference = self.ours.get(w, "memchr_reference");
            let encode = self.ours.get(w, "stompkit_encode");
            let memcpy = self.ours.get(w, "memcpy");
            let _ = writeln!(
                out,
                "| {w} | {} | {:.0} | {} | {:.1} | {} | {} | {} | {} |",
                parse.bytes / parse.frames.max(1),
                parse.mib_per_sec(),
                si(parse.frames_per_sec()),
                parse.ns_per_frame(),
                reference.map_or("–".into(), |r| format!("{:.0}%", 100.0 * r.ns / parse.ns)),
                encode.map_or("–".into(), |e| si(e.frames_per_sec())),
                encode.map_or("–".into(), |e| format!("{:.0}", e.mib_per_sec())),
                memcpy.map_or("–".into(), |m| format!("{:.0}", m.mib_per_sec())),
            );
        }
        if let Some(send) = self.ours.get("send", "stompkit_encode") {
            let _ = writeln!(
                out,
                "\nEncoding a 3-header SEND: {} frames/s ({:.1} ns/frame).",
                si(send.frames_per_sec()),
                send.ns_per_frame()
            );
        }
        out
    }

    /// The targets, each met, missed or not measured.
    fn target_list(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\nTargets in this run:\n");
        for (ok, text) in self.targets() {
            let mark = match ok {
                Some(true) => "met",
                Some(false) => "**missed**",
                None => "not measured",
            };
            let _ = writeln!(out, "- {mark}: {text}");
        }
        out
    }
}

/// Parse throughput of the published Rust STOMP parsers beside ours.
fn peer_table(peers: &Results) -> String {
    let mut out = String::new();
    let mut names: Vec<&str> = Vec::new();
    for w in WORKLOADS {
        for name in peers.groups.get(w).into_iter().flat_map(|g| g.keys()) {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    names.sort_by_key(|n| (*n != "stompkit", *n == "memchr_reference", *n));
    let _ = writeln!(
        out,
        "\nParse throughput against the published Rust STOMP parsers (one run; frames/s, MiB/s in brackets; × = stompkit's speed over this row's):\n"
    );
    let _ = writeln!(out, "| parser | {} |", WORKLOADS.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(WORKLOADS.len()));
    for name in names {
        let mut row = format!(
            "| {} |",
            if name == "memchr_reference" {
                "memchr NUL+LF scan (reference)"
            } else {
                name
            }
        );
        for w in WORKLOADS {
            let cell = match (peers.get(w, name), peers.get(w, "stompkit")) {
                (Some(m), Some(ours)) if name != "stompkit" && name != "memchr_reference" => {
                    format!(
                        " {} ({:.0}) {:.1}× |",
                        si(m.frames_per_sec()),
                        m.mib_per_sec(),
                        m.ns / ours.ns
                    )
                }
                (Some(m), _) => {
                    format!(" {} ({:.0}) |", si(m.frames_per_sec()), m.mib_per_sec())
                }
                (None, _) => " cannot parse |".to_string(),
            };
            row.push_str(&cell);
        }
        let _ = writeln!(out, "{row}");
    }
    for (workload, peer, reason) in &peers.failures {
        let _ = writeln!(out, "\n{peer} cannot parse {workload}: {reason}");
    }
    out
}

/// A rate with an SI suffix: `13.2M`.
fn si(x: f64) -> String {
    if x >= 1e9 {
        format!("{:.2}G", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}
