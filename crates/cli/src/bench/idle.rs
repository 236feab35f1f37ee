//! `stompkit bench idle`: open many sessions, report how long the broker took to
//! accept them all, then hold them open (for measuring the broker's memory per
//! idle connection).
//!
//! Each connection sends CONNECT with `heart-beat:0,0` and waits for CONNECTED;
//! at most `--parallel` handshakes are in flight at once. Held connections are not
//! read from and keep no buffer.

use super::proto::Session;
use crate::args::BrokerArgs;
use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Options of `stompkit bench idle`.
#[derive(Args, Debug)]
pub struct IdleArgs {
    /// Where the broker is and how to log in.
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// Number of connections to open.
    #[arg(short = 'c', long, default_value_t = 1000)]
    pub connections: usize,
    /// Seconds to keep them open once all are connected.
    #[arg(long, default_value_t = 10.0)]
    pub hold: f64,
    /// Most handshakes in flight at once.
    #[arg(long, default_value_t = 256)]
    pub parallel: usize,
    /// Print the result as one JSON object (for scripts).
    #[arg(long)]
    pub json: bool,
}

/// The line printed once every connection is established.
#[derive(Debug, Serialize)]
struct IdleReport {
    connections: usize,
    connect_s: f64,
    connections_per_sec: f64,
    hold_s: f64,
}

/// Runs `stompkit bench idle`.
pub fn run(a: IdleArgs) -> Result<ExitCode> {
    let endpoint = super::endpoint(&a.broker)?;
    let runtime = crate::runtime(None)?;
    runtime.block_on(async move {
        let limit = Arc::new(Semaphore::new(a.parallel.max(1)));
        let started = Instant::now();
        let mut set = JoinSet::new();
        for _ in 0..a.connections {
            let endpoint = endpoint.clone();
            let limit = limit.clone();
            set.spawn(async move {
                let _permit = limit.acquire_owned().await?;
                Session::connect(&endpoint).await
            });
        }
        let mut held = Vec::with_capacity(a.connections);
        let mut failures = 0usize;
        let mut first_error = None;
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(Ok(session)) => held.push(session.stream),
                Ok(Err(e)) => {
                    failures += 1;
                    first_error.get_or_insert(format!("{e:#}"));
                }
                Err(e) => {
                    failures += 1;
                    first_error.get_or_insert(e.to_string());
                }
            }
        }
        if let Some(error) = first_error {
            bail!(
                "{failures} of {} connections failed; first: {error}",
                a.connections
            );
        }
        let connect_s = started.elapsed().as_secs_f64();
        let report = IdleReport {
            connections: held.len(),
            connect_s,
            connections_per_sec: held.len() as f64 / connect_s.max(1e-9),
            hold_s: a.hold,
        };
        let mut out = std::io::stdout().lock();
        if a.json {
            serde_json::to_writer(&mut out, &report)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "all {} connections established in {:.3} s ({:.0}/s); holding them for {} s",
                report.connections, report.connect_s, report.connections_per_sec, report.hold_s
            )?;
        }
        out.flush()?;
        drop(out);
        tokio::time::sleep(Duration::from_secs_f64(a.hold.max(0.0))).await;
        drop(held);
        Ok(ExitCode::SUCCESS)
    })
}
