//! `cargo xtask bench-broker`: stompkit-broker side by side with RabbitMQ and
//! ActiveMQ Classic under the same `stompkit bench` workloads.
//!
//! Owns the run: building the broker and the load generator (release; the dev
//! profile for `--quick`), starting each broker in turn (stompkit; with peers
//! present, a throwaway RabbitMQ with STOMP and Web-STOMP from [`xtask::rabbitmq`]
//! and an ActiveMQ with a `stomp+nio` connector from [`crate::activemq`]),
//! measuring memory on the fresh broker first (idle RSS, then RSS per idle
//! connection and the time to accept them, from `stompkit bench idle`), then every
//! load row ([`rows`]), `--repeat` times, rows interleaved, and writing the
//! results: `target/bench-broker.md` always; with a full run also the README
//! block and `docs/bench-broker.svg` ([`chart`]).
//!
//! `--with-peers` installs missing peers with apt. `--quick` is CI's smoke test:
//! stompkit alone, short runs, 1,000 connections, only
//! `target/bench-broker-quick.md`, and it fails when any row failed or lost
//! messages. (Release builds even then: a dev build's broker is too slow to
//! keep up with its own load generator, so the runs would test the debug build.)

mod chart;
mod procfs;
mod rows;
mod table;

use crate::activemq::ActiveMq;
use crate::interop::Broker;
use crate::{activemq, cmd};
use anyhow::{Context, Result, bail};
use rows::{Kind, Plan, Row, Sample};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use table::{Column, Results};
use xtask::rabbitmq::{self, GUEST, RabbitMq};

/// Options of `cargo xtask bench-broker`.
#[derive(clap::Args, Debug)]
pub struct BenchBrokerArgs {
    /// Smoke test: stompkit alone, short runs; writes only target/.
    #[arg(long)]
    quick: bool,
    /// Install RabbitMQ and ActiveMQ with apt-get where missing.
    #[arg(long)]
    with_peers: bool,
    /// Measured seconds of publishing per load run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Unmeasured warm-up seconds before each load run.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Runs per load row (the table shows the median and the spread).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Idle connections for the memory rows.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Only these brokers (stompkit, rabbitmq, activemq; repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Do not touch README.md and docs/ (results still go to target/).
    #[arg(long)]
    no_readme: bool,
}

/// Where the chart goes, relative to the workspace root (and to the README).
const CHART: &str = "docs/bench-broker.svg";

/// `--quick`, for CI.
pub fn run_quick() -> Result<()> {
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Quick {
        #[command(flatten)]
        args: BenchBrokerArgs,
    }
    run(&Quick::try_parse_from(["bench-broker", "--quick"])?.args)
}

/// Runs the benchmark.
pub fn run(args: &BenchBrokerArgs) -> Result<()> {
    let (seconds, warmup, connections, repeat) = if args.quick {
        (1.0, 0.3, 1000, 1)
    } else {
        (
            args.seconds,
            args.warmup,
            args.connections,
            args.repeat.max(1),
        )
    };
    // The load generator and the brokers inherit this (each side of 10,000
    // connections needs that many descriptors).
    let nofile = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    println!("bench-broker: open-file limit {nofile}");
    let profile = "release";
    let bin = build(profile)?;
    let wanted = |name: &str| {
        (args.only.is_empty() && (name == "stompkit" || !args.quick))
            || args.only.iter().any(|o| o.eq_ignore_ascii_case(name))
    };
    if args.with_peers {
        install_peers(wanted("rabbitmq"), wanted("activemq"))?;
    }
    let rows = rows::rows(connections);
    let load_before = procfs::load1();
    let mut columns = Vec::new();
    let mut per_column: Vec<Vec<Vec<Sample>>> = Vec::new();
    for name in ["stompkit", "rabbitmq", "activemq"] {
        if !wanted(name) {
            continue;
        }
        let Some(subject) = start(name, &bin)? else {
            continue;
        };
        let plan = Plan {
            stompkit: &bin.join("stompkit"),
            stomp_url: &subject.stomp_url,
            ws_url: subject.ws_url.as_deref(),
            login: subject.login,
            seconds,
            warmup,
            run_id: format!("{}-{}", std::process::id(), columns.len()),
        };
        per_column.push(measure(&subject, &rows, &plan, connections, repeat));
        columns.push(subject.column.clone());
        drop(subject);
    }
    let samples = (0..rows.len())
        .map(|r| per_column.iter().map(|c| c[r].clone()).collect())
        .collect();
    let results = Results {
        preamble: preamble(&columns, profile, seconds, warmup, repeat, load_before),
        columns,
        rows,
        samples,
    };
    write(&results, args.quick, args.quick || args.no_readme)?;
    if args.quick {
        check_quick(&results)?;
    }
    Ok(())
}

/// Builds `stompkit-broker` and `stompkit` with `profile`; returns their directory.
fn build(profile: &str) -> Result<PathBuf> {
    let args = [
        "build",
        "--profile",
        profile,
        "-p",
        "stompkit-broker",
        "-p",
        "stompkit-cli",
    ];
    cmd::run(&mut cmd::cargo(&args)).context("building the broker and the load generator")?;
    Ok(cmd::target_dir().join(profile))
}

/// Installs the Debian packages of the wanted peers that are missing.
fn install_peers(rabbit: bool, active: bool) -> Result<()> {
    let mut missing = Vec::new();
    if rabbit && !rabbitmq::installed() {
        missing.push("rabbitmq-server");
    }
    if active && !activemq::installed() {
        missing.push("activemq");
    }
    if missing.is_empty() {
        return Ok(());
    }
    cmd::apt_install(&missing)
}

/// A broker under test and what the load generator needs to reach it.
struct Subject {
    column: Column,
    stomp_url: String,
    ws_url: Option<String>,
    login: Option<(&'static str, &'static str)>,
    /// The process whose memory is measured.
    pid: Option<u32>,
    /// Stops the broker when dropped.
    _guard: Box<dyn std::any::Any>,
}

/// Starts one broker; `None` (with a printed line) when it is not installed.
fn start(name: &str, bin: &Path) -> Result<Option<Subject>> {
    Ok(Some(match name {
        "stompkit" => {
            let mut command = Command::new(bin.join("stompkit-broker"));
            command
                .args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
                .env("STOMPKIT_LIMITS_MAX_CONNECTIONS", "20000");
            let broker =
                Broker::spawn(command, cmd::target_dir().join("bench-broker-stompkit.log"))?;
            Subject {
                column: Column {
                    name: "stompkit".into(),
                    version: stompkit_version(),
                },
                stomp_url: format!("stomp://{}", broker.addr),
                ws_url: Some(format!("ws://{}/ws", broker.addr)),
                login: None,
                pid: Some(broker.pid()),
                _guard: Box::new(broker),
            }
        }
        "rabbitmq" => {
            let rabbit = match RabbitMq::start(&cmd::target_dir()) {
                Ok(rabbit) => rabbit,
                Err(error) => match cmd::Missing::find(&error) {
                    Some(missing) => {
                        println!("bench-broker: {missing}");
                        return Ok(None);
                    }
                    None => return Err(error),
                },
            };
            Subject {
                column: Column {
                    name: "RabbitMQ".into(),
                    version: package_version("rabbitmq-server"),
                },
                stomp_url: format!("stomp://{}", rabbit.stomp),
                ws_url: Some(format!("ws://{}/ws", rabbit.web_stomp)),
                login: Some(GUEST),
                pid: procfs::listener_pid(rabbit.stomp.port()),
                _guard: Box::new(rabbit),
            }
        }
        _ => {
            let Some(active) = ActiveMq::start(&cmd::target_dir())? else {
                println!(
                    "bench-broker: ActiveMQ skipped: not installed (apt-get install activemq, or --with-peers)"
                );
                return Ok(None);
            };
            Subject {
                column: Column {
                    name: "ActiveMQ".into(),
                    version: package_version("activemq"),
                },
                stomp_url: format!("stomp://{}", active.stomp),
                ws_url: None,
                login: None,
                pid: active.pid(),
                _guard: Box::new(active),
            }
        }
    }))
}

/// Every row on one broker: memory first (fresh process), then the load rows
/// `repeat` times, interleaved so slow drifts in machine load spread evenly.
fn measure(
    subject: &Subject,
    rows: &[Row],
    plan: &Plan<'_>,
    connections: usize,
    repeat: usize,
) -> Vec<Vec<Sample>> {
    let mut out = vec![Vec::new(); rows.len()];
    let name = &subject.column.name;
    println!("bench-broker: measuring {name} {}", subject.column.version);
    std::thread::sleep(Duration::from_secs(2));
    let idle = subject.pid.and_then(procfs::rss_bytes);
    let (per_connection, accept) = match (subject.pid, idle) {
        (Some(pid), Some(idle)) => idle_connections(plan, pid, idle, connections),
        _ => {
            let why = Sample::Failed("cannot find the broker's process".into());
            (why.clone(), why)
        }
    };
    for (i, row) in rows.iter().enumerate() {
        match row.kind {
            Kind::IdleRss => out[i].push(idle.map_or_else(
                || Sample::Failed("cannot read the broker's memory".into()),
                |b| Sample::Bytes(b as f64),
            )),
            Kind::RssPerConnection => out[i].push(per_connection.clone()),
            Kind::AcceptTime => out[i].push(accept.clone()),
            _ => {}
        }
    }
    for _ in 0..repeat {
        for (i, row) in rows.iter().enumerate() {
            if let Some(sample) = plan.run_load(row) {
                println!(
                    "bench-broker: {name}: {}: {}",
                    row.label,
                    table::cell(std::slice::from_ref(&sample), row.kind)
                );
                out[i].push(sample);
            }
        }
    }
    out
}

/// Opens `n` idle connections with `stompkit bench idle`, measures the broker's
/// memory while they are held, closes them. Returns (RSS per connection, seconds
/// to open them all).
fn idle_connections(plan: &Plan<'_>, pid: u32, idle: u64, n: usize) -> (Sample, Sample) {
    let failed = |why: String| (Sample::Failed(why.clone()), Sample::Failed(why));
    let mut args = vec![
        "bench".to_string(),
        "idle".into(),
        "--url".into(),
        plan.stomp_url.into(),
    ];
    args.extend(plan.login_args());
    args.extend([
        "--connections".into(),
        n.to_string(),
        "--hold".into(),
        "600".into(),
        "--json".into(),
    ]);
    println!("$ {} {}", plan.stompkit.display(), args.join(" "));
    let mut child = match Command::new(plan.stompkit)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return failed(format!("cannot start stompkit: {e}")),
    };
    // The report line comes once every connection is established (or never).
    let line = child.stdout.take().and_then(|out| {
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).ok()?;
        Some(line)
    });
    let report = line.and_then(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok());
    let result = match report {
        Some(report) => {
            // Let the broker finish whatever accepting left behind.
            std::thread::sleep(Duration::from_secs(2));
            match procfs::rss_bytes(pid) {
                Some(held) => (
                    Sample::Bytes(held.saturating_sub(idle) as f64 / n as f64),
                    Sample::Seconds(report["connect_s"].as_f64().unwrap_or(f64::NAN)),
                ),
                None => failed("the broker's process is gone".into()),
            }
        }
        None => {
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
            }
            failed(
                stderr
                    .lines()
                    .last()
                    .unwrap_or("bench idle failed")
                    .to_string(),
            )
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    // Give the broker time to see the connections go before the next runs.
    std::thread::sleep(Duration::from_secs(3));
    result
}

/// `0.1.0 (git abc1234)`.
fn stompkit_version() -> String {
    let rev = cmd::output(
        Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(cmd::root()),
    );
    match rev {
        Some(rev) => format!("{} ({})", env!("CARGO_PKG_VERSION"), rev.trim()),
        None => env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// The upstream part of a Debian package's version (`3.10.8` of `3.10.8-1.1+deb12u1`).
fn package_version(package: &str) -> String {
    let full = cmd::output(Command::new("dpkg-query").args(["-W", "-f=${Version}", package]))
        .unwrap_or_default();
    upstream_version(&full)
}

fn upstream_version(debian: &str) -> String {
    let without_epoch = debian.rsplit(':').next().unwrap_or(debian);
    let upstream = without_epoch.split('-').next().unwrap_or(without_epoch);
    upstream.split('+').next().unwrap_or(upstream).to_string()
}

/// The lines above the table.
fn preamble(
    columns: &[Column],
    profile: &str,
    seconds: f64,
    warmup: f64,
    repeat: usize,
    load_before: Option<f64>,
) -> Vec<String> {
    let date =
        cmd::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])).unwrap_or_default();
    let date = date.trim();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = procfs::mem_total().map_or(0.0, |b| b as f64 / (1u64 << 30) as f64);
    let mut versions = vec![format!("stompkit {} ({profile} build)", stompkit_version())];
    for column in columns.iter().skip(1) {
        versions.push(match column.name.as_str() {
            "RabbitMQ" => format!(
                "RabbitMQ {} (Debian; Erlang {}; rabbitmq_stomp, rabbitmq_web_stomp)",
                column.version,
                package_version("erlang-base")
            ),
            _ => format!(
                "ActiveMQ Classic {} (Debian; `stomp+nio`, non-persistent; Java {})",
                column.version,
                java_version()
            ),
        });
    }
    let load = |l: Option<f64>| l.map_or("?".into(), |l| format!("{l:.1}"));
    vec![
        format!(
            "Measured {date} by `cargo xtask bench-broker` on {} ({cores} cores, {memory:.0} GiB), Linux {}; \
             the load generator (`stompkit bench`) runs on the same machine, one broker at a time.",
            procfs::cpu_model().unwrap_or_else(|| "an unknown CPU".into()),
            procfs::kernel().unwrap_or_default()
        ),
        format!("Versions: {}.", versions.join("; ")),
        format!(
            "Load rows: `ack:auto` subscriptions, {warmup} s unmeasured warm-up, then {seconds} s of measured publishing \
             as fast as the broker takes it; only measured deliveries count (topic 1→100 counts each of the 100 copies), \
             and a row whose deliveries differ from published × fan-out says how many were lost. \
             Median of {repeat} run(s), ± half the spread. WebSocket rows: stompkit's `/ws` and RabbitMQ Web-STOMP. \
             1-minute load average before / after: {} / {}.",
            load(load_before),
            load(procfs::load1())
        ),
    ]
}

fn java_version() -> String {
    let out = Command::new("java")
        .arg("-version")
        .stdin(Stdio::null())
        .output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .unwrap_or_default();
    text.split('"').nth(1).unwrap_or("?").to_string()
}

/// Writes the table to target/ and, unless `target_only`, the README block and the chart.
fn write(results: &Results, quick: bool, target_only: bool) -> Result<()> {
    let root = cmd::root();
    let name = if quick {
        "bench-broker-quick.md"
    } else {
        "bench-broker.md"
    };
    let path = cmd::target_dir().join(name);
    std::fs::create_dir_all(cmd::target_dir())?;
    let chart = (!target_only).then_some(CHART);
    let text = table::markdown(results, chart);
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    println!("\n{text}\n(written to {})", path.display());
    if target_only {
        return Ok(());
    }
    let svg = chart::svg(results)?;
    let svg_path = root.join(CHART);
    if let Some(dir) = svg_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&svg_path, svg).with_context(|| format!("writing {}", svg_path.display()))?;
    let readme_path = root.join("README.md");
    let readme = std::fs::read_to_string(&readme_path).context("reading README.md")?;
    std::fs::write(&readme_path, table::splice(&readme, &text)?)?;
    println!(
        "bench-broker: wrote {} and the README block",
        svg_path.display()
    );
    Ok(())
}

/// The smoke test's verdict: every stompkit row ran and lost nothing.
fn check_quick(results: &Results) -> Result<()> {
    let mut problems = Vec::new();
    for (row, samples) in results.rows.iter().zip(&results.samples) {
        for sample in samples.first().into_iter().flatten() {
            match sample {
                Sample::Failed(why) => problems.push(format!("{}: {why}", row.label)),
                Sample::Load {
                    delivered,
                    expected,
                    ..
                } if delivered != expected => {
                    problems.push(format!(
                        "{}: delivered {delivered} of {expected}",
                        row.label
                    ));
                }
                _ => {}
            }
        }
    }
    if !problems.is_empty() {
        bail!("bench-broker --quick: {}", problems.join("; "));
    }
    println!("bench-broker --quick: every row ran, nothing lost");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_versions_lose_their_packaging_suffixes() {
        assert_eq!(upstream_version("3.10.8-1.1+deb12u1"), "3.10.8");
        assert_eq!(upstream_version("5.17.2+dfsg-2+deb12u1"), "5.17.2");
        assert_eq!(upstream_version("1:25.2.3+dfsg-1"), "25.2.3");
    }
}
