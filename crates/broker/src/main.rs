//! `stompkit-broker`: run the broker.
//!
//! `cargo run --release -p stompkit-broker` listens on 127.0.0.1:61613 with an
//! in-memory store and default limits, serving STOMP over TCP and over WebSocket
//! (and the demo page) on the same port. Options: `--listen ADDR` (repeatable;
//! `ws://ADDR` for WebSocket only, `stomp://ADDR` for TCP STOMP only),
//! `--ws-only`, `--config FILE` (TOML, see `stompkit.sample.toml`),
//! `--metrics ADDR`, `--log-level LEVEL`, `--upstream URL` and
//! `--upstream-ca-file FILE` (relay mode, `[relay]`), `--version`. Every config key can also
//! be set with a `STOMPKIT_<SECTION>_<KEY>` environment variable; command-line
//! flags win. After binding it prints to stdout, per listener,
//! `stompkit-broker listening on stomp://<ip>:<port>` when it serves TCP STOMP and
//! `stompkit-broker websocket on ws://<ip>:<port>/ws` when it serves WebSocket
//! (the first configured path), then
//! `stompkit-broker metrics on http://<ip>:<port>/metrics` when enabled. Logs go
//! to stderr.

use anyhow::Context as _;
use clap::Parser;
use std::io::Write as _;
use std::path::PathBuf;
use stompkit_broker::{Broker, BrokerConfig, raise_nofile_limit};

/// A STOMP 1.0/1.1/1.2 broker.
#[derive(Parser, Debug)]
#[command(name = "stompkit-broker", version, about)]
struct Args {
    /// Address to accept STOMP connections on, over TCP and WebSocket (repeatable; `ws://ADDR`: WebSocket only, `stomp://ADDR`: TCP only) [default: 127.0.0.1:61613].
    #[arg(long = "listen", value_name = "ADDR")]
    listen: Vec<String>,
    /// Serve only STOMP over WebSocket on every listener: TCP STOMP clients get an ERROR.
    #[arg(long)]
    ws_only: bool,
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Log filter (error, warn, info, debug, trace or tracing directives).
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Relay mode: relay every client session to this broker
    /// (stomp://HOST:PORT or stomp+ssl://HOST:PORT) with the client's own credentials.
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// PEM file of the CA certificates to trust for a stomp+ssl upstream.
    #[arg(long, value_name = "FILE")]
    upstream_ca_file: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            BrokerConfig::from_toml(&text)?
        }
        None => BrokerConfig::default(),
    }
    .with_env(std::env::vars())?;
    if !args.listen.is_empty() {
        config.server.listen = args.listen.clone();
    }
    if args.ws_only {
        config.websocket.ws_only = true;
    }
    if let Some(m) = args.metrics {
        config.server.metrics = m;
    }
    if let Some(l) = args.log_level {
        config.server.log_level = l;
    }
    if let Some(upstream) = args.upstream {
        config.relay.upstream = upstream;
    }
    if let Some(ca_file) = args.upstream_ca_file {
        config.relay.ca_file = ca_file;
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(
            &config.server.log_level,
        )?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match raise_nofile_limit() {
        Ok(n) if n < 4096 => {
            tracing::warn!(limit = n, "RLIMIT_NOFILE is low: connections are limited")
        }
        Ok(n) => tracing::debug!(limit = n, "RLIMIT_NOFILE"),
        Err(e) => tracing::warn!(error = %e, "could not raise RLIMIT_NOFILE"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(config))
}

async fn run(config: BrokerConfig) -> anyhow::Result<()> {
    let ws_path = config.websocket.paths.first().cloned().unwrap_or_default();
    let broker = Broker::bind(config).await.context("binding listeners")?;
    {
        let mut stdout = std::io::stdout().lock();
        for listener in broker.listeners() {
            let addr = listener.addr;
            if listener.stomp {
                writeln!(stdout, "stompkit-broker listening on stomp://{addr}")?;
            }
            if listener.websocket && !ws_path.is_empty() {
                writeln!(stdout, "stompkit-broker websocket on ws://{addr}{ws_path}")?;
            }
        }
        if let Some(addr) = broker.metrics_addr() {
            writeln!(stdout, "stompkit-broker metrics on http://{addr}/metrics")?;
        }
        stdout.flush()?;
    }
    tracing::info!(addrs = ?broker.local_addrs(), "broker started");
    wait_for_signal().await;
    tracing::info!("shutting down");
    broker.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
