//! `stompkit send`: one SEND, by default confirmed by the broker's RECEIPT.

use crate::args::{BrokerArgs, parse_header};
use crate::client::connect;
use anyhow::{Context, Result, bail};
use clap::Args;
use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;
use stompkit_frame::Frame;

/// Options of `stompkit send`.
#[derive(Args, Debug)]
pub struct SendArgs {
    /// Where to send, e.g. /queue/orders or /topic/news.
    pub destination: String,
    /// The message body. Without it, or with "-", the body is read from stdin.
    pub body: Option<String>,
    /// Where the broker is and how to log in.
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// Extra header as name:value (repeatable), e.g. -H persistent:true.
    #[arg(short = 'H', long = "header", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Sets the content-type header, e.g. --content-type application/json.
    #[arg(long)]
    pub content_type: Option<String>,
    /// Do not ask for a RECEIPT: exit as soon as the frame is written.
    /// (By default send waits until the broker confirms it has the message.)
    #[arg(long)]
    pub no_receipt: bool,
    /// Seconds to wait for the connection and for the RECEIPT.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
}

/// Runs `stompkit send`.
pub fn run(a: SendArgs) -> Result<ExitCode> {
    let body = match a.body.as_deref() {
        None | Some("-") => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .context("cannot read the body from stdin")?;
            body
        }
        Some(text) => text.as_bytes().to_vec(),
    };
    let mut frame = Frame::send(&a.destination);
    if let Some(content_type) = &a.content_type {
        frame = frame.header("content-type", content_type);
    }
    for (name, value) in &a.headers {
        frame = frame.header(name, value);
    }
    let frame = frame.with_body(body);
    let timeout = Duration::from_secs_f64(a.timeout.max(0.001));
    crate::runtime(Some(1))?.block_on(async move {
        let client = connect(&a.broker, timeout, false).await?;
        if a.no_receipt {
            client.send(frame).await.context("send failed")?;
        } else {
            let receipt = client
                .send_with_receipt(frame)
                .await
                .context("send failed")?;
            match tokio::time::timeout(timeout, receipt).await {
                Ok(result) => result.context("send failed")?,
                Err(_) => bail!("send failed: no RECEIPT from the broker within {timeout:?}"),
            }
        }
        let _ = client.disconnect().await;
        Ok(ExitCode::SUCCESS)
    })
}
