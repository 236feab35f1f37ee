//! Opening a session for `send` and `sub` with the shared `stompkit-tokio`
//! client, over whichever transports the `--url`s name (TCP, TLS, WebSocket;
//! see [`crate::transport`]): one URL, or several with failover.

use crate::args::BrokerArgs;
use crate::transport::connector;
use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use std::time::Duration;
use stompkit_tokio::{Client, ClientConfig, ConnectionEvent, Connector, Reconnect};
use stompkit_ws::OutgoingMode;

/// Connects and logs in, to the first `--url` that answers; gives up after
/// `timeout`. With `reconnect`, a lost connection is made again (to the next
/// `--url` first), with the default backoff, also after an ERROR frame once
/// the session is up (a broker shutting down sends one first).
pub async fn connect(broker: &BrokerArgs, timeout: Duration, reconnect: bool) -> Result<Client> {
    let mut config = ClientConfig::new(broker.vhost.clone()).connect_timeout(timeout);
    if broker.login.is_some() || broker.passcode.is_some() {
        config = config.login(
            broker.login.clone().unwrap_or_default(),
            broker.passcode.clone().unwrap_or_default(),
        );
    }
    if reconnect {
        config = config.reconnect(Reconnect {
            after_error: true,
            ..Reconnect::default()
        });
    }
    let mut connectors = broker
        .targets()?
        .iter()
        .map(|(target, tls)| connector(target, tls.as_ref(), OutgoingMode::Text))
        .collect::<Result<Vec<Connector>>>()?;
    let connector = match connectors.len() {
        1 => connectors.remove(0),
        _ => Connector::failover(connectors),
    };
    let connecting = async {
        Client::connect_with(connector, config)
            .await
            .with_context(|| format!("cannot connect to {}", broker.urls()))
    };
    match tokio::time::timeout(timeout, connecting).await {
        Ok(client) => client,
        Err(_) => bail!(
            "cannot connect to {}: no answer within {timeout:?}",
            broker.urls()
        ),
    }
}

/// Reports on stderr when the connection is lost and made again, until the
/// session ends.
pub fn report_connection_events(client: &Client) {
    let mut events = client.events();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            match event {
                ConnectionEvent::Disconnected { server, reason } => {
                    eprintln!("stompkit: connection to {server} lost ({reason}); reconnecting");
                }
                ConnectionEvent::Reconnected { server, .. } => {
                    eprintln!("stompkit: reconnected to {server}");
                }
                _ => {}
            }
        }
    });
}
