//! `cargo xtask`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! - `cargo xtask ci` runs every check CI runs, in order, timing each step.
//! - `cargo xtask fuzz [TARGET] [--all] [--seconds N]` runs the cargo-fuzz targets in `fuzz/`.
//! - `cargo xtask bench [--quick] [--peers]` runs the benchmarks.
//! - `cargo xtask interop [--addr IP:PORT] [--portable-only]` runs the stomp.py suite in `interop/`;
//!   `cargo xtask interop --relay` runs its portable part through the broker's relay mode to RabbitMQ;
//!   `cargo xtask interop --cluster` runs it across three broker nodes on a throwaway nats-server.
//! - `cargo xtask rabbitmq` starts a throwaway RabbitMQ on free ports until stdin closes.
//! - `cargo xtask interop-js [--addr IP:PORT]` runs the stompjs and browser suites in `interop/js/`.
//! - `cargo xtask bench-broker [--with-peers] [--quick]` measures stompkit-broker against RabbitMQ and ActiveMQ.
//!
//! The alias lives in `.cargo/config.toml`. CI calls `bash .ci/run`, which calls `cargo xtask ci`.

mod activemq;
mod bench;
mod bench_broker;
mod ci;
mod cmd;
mod fuzz;
mod interop;
mod interop_cluster;
mod interop_js;
mod interop_relay;
mod modules;
mod paths;
mod readme;
mod tools;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use xtask::rabbitmq;

/// Project automation for stompkit.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Run everything CI runs: fmt, clippy, tests (with doc tests), cargo-deny, a fuzz smoke run.
    Ci(ci::CiArgs),
    /// Run cargo-fuzz targets (stable toolchain, RUSTC_BOOTSTRAP=1), seeded from fuzz/seeds/<target>/.
    Fuzz(fuzz::FuzzArgs),
    /// Run the interop suite (interop/, pytest + stomp.py) against a freshly started broker.
    Interop {
        /// Test a STOMP server that is already running instead. Without flags, the
        /// STOMPKIT_INTEROP_* environment variables are read (see xtask/src/interop.rs).
        #[arg(long)]
        addr: Option<std::net::SocketAddr>,
        /// Only the tests tagged `portable` (e.g. when the server is not stompkit).
        #[arg(long)]
        portable_only: bool,
        /// Run the portable tests through stompkit-broker in relay mode
        /// (`--upstream`) to a throwaway RabbitMQ.
        #[arg(long, conflicts_with_all = ["addr", "portable_only"])]
        relay: bool,
        /// Run the suite across three stompkit-broker nodes in cluster mode on a
        /// throwaway nats-server, each test's connections spread over the nodes.
        #[arg(long, conflicts_with_all = ["addr", "portable_only", "relay"])]
        cluster: bool,
    },
    /// Start a throwaway RabbitMQ (STOMP, Web-STOMP) on free ports, print them,
    /// and stop it when stdin reaches end of file (or Enter is pressed).
    Rabbitmq,
    /// Run the JavaScript suites (interop/js: @stomp/stompjs on Node, the demo page in
    /// headless Chromium) against a freshly started broker over WebSocket.
    InteropJs {
        /// Test a broker that is already running (its WebSocket endpoint is ws://ADDR/ws).
        #[arg(long)]
        addr: Option<std::net::SocketAddr>,
    },
    /// Run the benchmarks.
    Bench {
        /// A short run (fewer samples), e.g. to check the benchmarks still work.
        #[arg(long)]
        quick: bool,
        /// Also measure other brokers (peers) for comparison.
        #[arg(long)]
        peers: bool,
    },
    /// Measure stompkit-broker against RabbitMQ and ActiveMQ (throughput, latency,
    /// memory, WebSocket; durable queues: receipted persistent publishes, draining,
    /// RECEIPT latency, recovery of 1M stored messages) and write the tables into
    /// target/, the README and docs/; with --cluster, three cluster nodes on a
    /// throwaway nats-server against one node (target/bench-broker-cluster.md).
    BenchBroker(bench_broker::BenchBrokerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Ci(args) => ci::run(&args),
        Task::Fuzz(args) => fuzz::run(&args),
        Task::Interop { relay: true, .. } => interop_relay::run().map(drop),
        Task::Interop { cluster: true, .. } => interop_cluster::run().map(drop),
        Task::Interop {
            addr: None,
            portable_only: false,
            ..
        } => interop::run(),
        Task::Interop {
            addr,
            portable_only,
            ..
        } => interop::run_with(addr, portable_only),
        Task::InteropJs { addr } => interop_js::run(addr, interop_js::Suites::All).map(drop),
        Task::Bench { quick, peers } => bench::run(quick, peers),
        Task::Rabbitmq => rabbitmq::run_until_stdin_closes(&cmd::target_dir()),
        Task::BenchBroker(args) => bench_broker::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
