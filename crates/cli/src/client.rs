//! Opening a session for `send` and `sub` with the shared `stompkit-tokio`
//! client, over whichever transport `--url` names (TCP, TLS, WebSocket; see
//! [`crate::transport`]).

use crate::args::BrokerArgs;
use crate::transport::open;
use anyhow::{Context, Result, bail};
use std::time::Duration;
use stompkit_tokio::{Client, ClientConfig};
use stompkit_ws::OutgoingMode;

/// Connects and logs in; gives up after `timeout`.
pub async fn connect(broker: &BrokerArgs, timeout: Duration) -> Result<Client> {
    let mut config = ClientConfig::new(broker.vhost.clone()).connect_timeout(timeout);
    if broker.login.is_some() || broker.passcode.is_some() {
        config = config.login(
            broker.login.clone().unwrap_or_default(),
            broker.passcode.clone().unwrap_or_default(),
        );
    }
    let (target, tls) = broker.target()?;
    let connecting = async {
        let conn = open(&target, tls.as_ref(), OutgoingMode::Text).await?;
        Client::connect(conn.into_transport(), config)
            .await
            .with_context(|| format!("cannot connect to {target}"))
    };
    match tokio::time::timeout(timeout, connecting).await {
        Ok(client) => client,
        Err(_) => bail!(
            "cannot connect to {}: no answer within {timeout:?}",
            broker.url
        ),
    }
}
