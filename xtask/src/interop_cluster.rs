//! `cargo xtask interop --cluster`: the stomp.py suite against a clustered
//! `stompkit-broker`, with the publishers and subscribers of every test on
//! different nodes.
//!
//! Owns only the wiring: a throwaway `nats-server` with JetStream from
//! [`xtask::nats`] (with `CI=true` installed when missing; outside CI a missing
//! one is a [`Missing`](xtask::process::Missing) error, which `cargo xtask ci`
//! reports as skipped), [`NODES`] broker processes on it, each started as
//! [`crate::interop`] starts its broker (`--listen 127.0.0.1:0`, the heart-beat
//! floor, `STOMPKIT_DESTINATIONS_MAX_DELIVERIES=3`) plus `--cluster <url>` and a
//! node name, without a data directory (JetStream keeps the messages), each
//! logging to `<target>/interop-cluster-node-<n>.log`; and pytest with
//! `STOMPKIT_INTEROP_NODES=<ip:port>,...` (the suite then opens each connection
//! of a test on the next node, round-robin, and deselects the tests marked
//! `single_node`, see `interop/conftest.py`). Every node is killed, then the
//! NATS server stopped, however the run ends; on a failure the end of every
//! node's log and of NATS's is printed.

use crate::interop::{
    Broker, MAX_DELIVERIES, broker_command, build_broker, ensure_venv, run_suite,
};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::ExitStatus;
use std::time::Instant;
use xtask::nats::{self, Nats};

/// How many broker nodes share the NATS server.
const NODES: usize = 3;

/// Runs the suite across the nodes; returns a note for the CI summary.
pub fn run() -> Result<String> {
    let started = Instant::now();
    // First, so that a machine without nats-server skips before building anything.
    nats::ensure_installed()?;
    let python = ensure_venv()?;
    let binary = build_broker()?;
    let nats = Nats::start()?;
    // Declared after `nats`, so dropped (killed) before it.
    let mut nodes = start_nodes(&binary, &nats.url())?;
    let first = nodes.first().context("no broker node started")?.addr;
    let addresses: Vec<String> = nodes.iter().map(|node| node.addr.to_string()).collect();
    let addresses = addresses.join(",");
    println!(
        "interop --cluster: stomp.py -> {NODES} stompkit-broker nodes ({addresses}) -> NATS {}",
        nats.url()
    );
    let env = [
        ("STOMPKIT_INTEROP_MAX_DELIVERIES", MAX_DELIVERIES),
        ("STOMPKIT_INTEROP_NODES", addresses.as_str()),
    ];
    let status = run_suite(&python, first, false, &env);
    if let Some((n, exit)) = first_exited(&mut nodes)? {
        print_tails(&nodes, &nats);
        bail!("stompkit-broker node {n} exited during the interop suite ({exit})");
    }
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => {
            print_tails(&nodes, &nats);
            bail!("the interop suite across {NODES} cluster nodes failed ({status})");
        }
        Err(error) => {
            print_tails(&nodes, &nats);
            return Err(error);
        }
    }
    let note = format!(
        "suite across {NODES} cluster nodes in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    println!("interop --cluster: passed ({note})");
    Ok(note)
}

/// Starts [`NODES`] brokers in cluster mode on `url`, each waited for until it
/// listens; those already started are killed when one fails to.
fn start_nodes(binary: &Path, url: &str) -> Result<Vec<Broker>> {
    let mut nodes = Vec::with_capacity(NODES);
    for n in 1..=NODES {
        let mut command = broker_command(binary, &["--cluster", url]);
        command.env("STOMPKIT_CLUSTER_NAME", format!("interop-node-{n}"));
        let log = crate::cmd::target_dir().join(format!("interop-cluster-node-{n}.log"));
        let node = Broker::spawn(command, log)
            .with_context(|| format!("starting cluster node {n} of {NODES}"))?;
        println!("interop --cluster: node {n} listens on {}", node.addr);
        nodes.push(node);
    }
    Ok(nodes)
}

/// The first node (numbered from 1) whose process has ended, with its status.
fn first_exited(nodes: &mut [Broker]) -> Result<Option<(usize, ExitStatus)>> {
    for (n, node) in nodes.iter_mut().enumerate() {
        if let Some(exit) = node.exited()? {
            return Ok(Some((n + 1, exit)));
        }
    }
    Ok(None)
}

/// Prints the end of every node's log, then of the NATS server's.
fn print_tails(nodes: &[Broker], nats: &Nats) {
    for node in nodes {
        node.print_log_tail();
    }
    eprintln!("{}", nats.log_tail());
}
