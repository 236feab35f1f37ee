//! `stompkit sub`: subscribe and print messages as they arrive.
//!
//! Output formats: the body alone (default), the whole frame (`-v`), or one JSON
//! object per line (`--json`): `{"command", "headers", "body", "body_base64"}`,
//! where `headers` maps each name to its first value (STOMP's rule for repeats)
//! and `body` is the UTF-8 text, or base64 with `body_base64: true` when the body
//! is not valid UTF-8.

use crate::args::{AckArg, BrokerArgs, parse_header};
use crate::client::{connect, report_connection_events};
use anyhow::{Context, Result, bail};
use base64::Engine;
use clap::Args;
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;
use stompkit_frame::Frame;
use stompkit_tokio::{ClientError, SubscribeOptions, SubscriptionError};

/// Options of `stompkit sub`.
#[derive(Args, Debug)]
pub struct SubArgs {
    /// What to subscribe to, e.g. /queue/orders or /topic/news.
    pub destination: String,
    /// Where the broker is and how to log in.
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// Print each whole frame: command, headers, blank line, body.
    #[arg(short, long)]
    pub verbose: bool,
    /// Print one JSON object per message: command, headers, body.
    #[arg(long, conflicts_with = "verbose")]
    pub json: bool,
    /// auto: the broker forgets a message once sent. client / client-individual:
    /// each message is acknowledged after it is printed.
    #[arg(long, value_enum, default_value_t = AckArg::Auto)]
    pub ack: AckArg,
    /// Exit after this many messages.
    #[arg(short = 'n', long)]
    pub count: Option<u64>,
    /// Extra SUBSCRIBE header as name:value (repeatable), e.g. -H selector:"x = 1".
    #[arg(short = 'H', long = "header", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Seconds to wait for the connection and the subscription's receipt.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Do not print "subscribed to ..." on stderr once the subscription is active.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `stompkit sub`.
pub fn run(a: SubArgs) -> Result<ExitCode> {
    let timeout = Duration::from_secs_f64(a.timeout.max(0.001));
    crate::runtime(Some(1))?.block_on(async move {
        // Several --url: fail over to the next broker when the connection is lost.
        let failover = a.broker.url.len() > 1;
        let client = connect(&a.broker, timeout, failover).await?;
        if failover && !a.quiet {
            report_connection_events(&client);
        }
        let mut options = SubscribeOptions::new(a.destination.clone())
            .ack(a.ack.mode())
            .buffer(4096);
        for (name, value) in &a.headers {
            options = options.header(name.clone(), value.clone());
        }
        let (mut subscription, receipt) = client
            .subscribe_with_receipt(options)
            .await
            .context("subscribe failed")?;
        match tokio::time::timeout(timeout, receipt).await {
            Ok(result) => result.context("subscribe failed")?,
            Err(_) => bail!("subscribe failed: no RECEIPT from the broker within {timeout:?}"),
        }
        if !a.quiet {
            eprintln!("subscribed to {}", a.destination);
        }
        let mut received = 0u64;
        while a.count.is_none_or(|n| received < n) {
            let message = match subscription.next().await {
                Some(Ok(message)) => message,
                Some(Err(SubscriptionError::Lagged(n))) => {
                    eprintln!("stompkit: warning: fell behind, {n} messages dropped");
                    continue;
                }
                Some(Err(SubscriptionError::Closed(e))) => {
                    return Err(e).context("subscription ended");
                }
                None => bail!("subscription ended: the connection closed"),
            };
            match print(message.frame(), &a) {
                Ok(()) => {}
                // `stompkit sub ... | head -3`: the reader is gone, so are we.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
                Err(e) => return Err(e).context("cannot write to stdout"),
            }
            if a.ack != AckArg::Auto {
                match message.ack().await {
                    Ok(()) => {}
                    // Received before a failover: the broker delivers it again.
                    Err(ClientError::StaleAck) => {
                        eprintln!("stompkit: warning: reconnected before the ACK; the message may come again");
                    }
                    Err(e) => return Err(e).context("ACK failed"),
                }
            }
            received += 1;
        }
        let _ = client.disconnect().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn print(frame: &Frame, a: &SubArgs) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer(&mut out, &to_json(frame))?;
        out.write_all(b"\n")?;
    } else {
        if a.verbose {
            writeln!(out, "{}", frame.command)?;
            for (name, value) in frame.headers().iter() {
                writeln!(out, "{name}:{value}")?;
            }
            writeln!(out)?;
        }
        out.write_all(frame.body())?;
        if !frame.body().ends_with(b"\n") {
            out.write_all(b"\n")?;
        }
        if a.verbose {
            writeln!(out)?;
        }
    }
    out.flush()
}

/// The `--json` form of a frame.
pub fn to_json(frame: &Frame) -> Value {
    let mut headers = Map::new();
    for (name, value) in frame.headers().iter() {
        // First value wins (F13).
        headers
            .entry(name.to_string())
            .or_insert_with(|| Value::String(value.to_string()));
    }
    let (body, base64) = match std::str::from_utf8(frame.body()) {
        Ok(text) => (text.to_string(), false),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(frame.body()),
            true,
        ),
    };
    json!({
        "command": frame.command.to_string(),
        "headers": headers,
        "body": body,
        "body_base64": base64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_the_first_header_and_flags_binary_bodies() {
        let frame = Frame::new(stompkit_frame::Command::Message)
            .header("destination", "/topic/a")
            .header("x", "1")
            .header("x", "2")
            .with_body(&b"\xff\x00"[..]);
        let v = to_json(&frame);
        assert_eq!(v["command"], "MESSAGE");
        assert_eq!(v["headers"]["x"], "1");
        assert_eq!(v["body"], "/wA=");
        assert_eq!(v["body_base64"], true);
        let text = to_json(&Frame::send("/q").with_body("héllo"));
        assert_eq!(text["body"], "héllo");
        assert_eq!(text["body_base64"], false);
    }
}
