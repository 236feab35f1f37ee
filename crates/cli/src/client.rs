//! Opening a session for `send` and `sub` with the shared `stompkit-tokio`
//! client, over whichever transport `--url` names.
//!
//! TCP and TLS go through [`stompkit_tokio::Client`]; TLS trusts only the CA
//! certificates of `--ca-file` (no system roots are bundled).

use crate::args::BrokerArgs;
use crate::target::Target;
use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use stompkit_tokio::{Client, ClientConfig};

/// TLS options (for stomp+ssl:// and wss:// URLs).
#[derive(Args, Clone, Debug)]
pub struct TlsArgs {
    /// PEM file with the CA certificate(s) that signed the broker's certificate
    /// (required for stomp+ssl://).
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
}

/// Connects and logs in; gives up after `timeout`.
pub async fn connect(broker: &BrokerArgs, tls: &TlsArgs, timeout: Duration) -> Result<Client> {
    let mut config = ClientConfig::new(broker.vhost.clone()).connect_timeout(timeout);
    if broker.login.is_some() || broker.passcode.is_some() {
        config = config.login(
            broker.login.clone().unwrap_or_default(),
            broker.passcode.clone().unwrap_or_default(),
        );
    }
    let target = Target::parse(&broker.url)?;
    let tls_config = match &target {
        Target::Tls { .. } => {
            let Some(ca_file) = &tls.ca_file else {
                bail!(
                    "{} needs --ca-file PEM (no system CA roots are bundled)",
                    broker.url
                );
            };
            Some(
                stompkit_tokio::tls::client_config_from_ca_file(ca_file)
                    .with_context(|| format!("cannot use CA file {}", ca_file.display()))?,
            )
        }
        Target::Tcp { .. } => None,
        Target::WebSocket(_) => {
            bail!("WebSocket URLs (ws://, wss://) are not supported yet by this build")
        }
    };
    let url = match &target {
        Target::Tls { .. } => format!("stomp+ssl://{}", target.authority().unwrap_or_default()),
        _ => format!("stomp://{}", target.authority().unwrap_or_default()),
    };
    let connecting = Client::connect_url(&url, config, tls_config);
    match tokio::time::timeout(timeout, connecting).await {
        Ok(client) => client.with_context(|| format!("cannot connect to {}", broker.url)),
        Err(_) => bail!(
            "cannot connect to {}: no answer within {timeout:?}",
            broker.url
        ),
    }
}
