//! `cargo xtask interop --relay`: the portable part of the stomp.py suite run
//! through `stompkit-broker --upstream` (relay mode) to a real RabbitMQ.
//!
//! Owns only the wiring: a throwaway RabbitMQ from [`xtask::rabbitmq`] (with
//! `CI=true` installed when missing, and a failure to start fails; outside CI
//! a missing RabbitMQ is a printed `skipped: ...`), the broker binary started
//! by [`crate::interop`] with `--upstream stomp://<rabbitmq>` (and, as every
//! broker it starts, a fresh data directory of its own), and pytest with
//! `-m portable` and `STOMP_VHOST=/` (RabbitMQ reads `host` as the virtual
//! host) and RabbitMQ's stock `guest` login, which the relay forwards.

use crate::interop::{Broker, build_broker, ensure_venv, run_suite};
use anyhow::{Result, bail};
use std::time::Instant;
use xtask::rabbitmq::{GUEST, RabbitMq};

/// Runs the suite through the relay; returns a note for the CI summary.
pub fn run() -> Result<String> {
    let started = Instant::now();
    let python = ensure_venv()?;
    let binary = build_broker()?;
    let rabbit = RabbitMq::start(&crate::cmd::target_dir())?;
    let upstream = format!("stomp://{}", rabbit.stomp);
    let mut broker = Broker::start_with(&binary, &["--upstream", &upstream])?;
    println!(
        "interop --relay: stomp.py -> stompkit-broker {} -> RabbitMQ {}",
        broker.addr, rabbit.stomp
    );
    let (login, passcode) = GUEST;
    let env = [
        ("STOMP_VHOST", "/"),
        ("STOMP_LOGIN", login),
        ("STOMP_PASSCODE", passcode),
    ];
    let status = run_suite(&python, broker.addr, true, &env);
    if let Some(exit) = broker.exited()? {
        broker.print_log_tail();
        bail!("stompkit-broker (relay) exited during the interop suite ({exit})");
    }
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => {
            broker.print_log_tail();
            rabbit.print_log_tail();
            bail!("the interop suite through the relay failed ({status})");
        }
        Err(error) => {
            broker.print_log_tail();
            return Err(error);
        }
    }
    let note = format!(
        "portable suite via relay to RabbitMQ in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    println!("interop --relay: passed ({note})");
    Ok(note)
}
