//! Cluster mode: nodes sharing a NATS deployment act as one broker.
//!
//! Owns the NATS side of it: the connection (made at start, which refuses to
//! go on without it; reconnecting by itself afterwards), the server's
//! `max_payload` against the broker's frame limits, and the tasks that carry
//! out the router's [`ClusterUnit`]s and hand the router what arrives
//! ([`ClusterEvent`]):
//! - `writer.rs`: units in order, each reported done (RECEIPTs go) once
//!   NATS took its publishes and JetStream acknowledged its stored messages;
//! - `interest.rs`: the NATS subscriptions of the topics, patterns and reply
//!   destinations local clients want;
//! - `consumers.rs`: pulling queue messages from JetStream within the
//!   router's window, settling them, and progress acknowledgements for what
//!   this node holds (so a slow consumer keeps its message, and a dead
//!   node's messages go elsewhere after `ack_wait_ms`);
//! - `durables.rs`: durable subscriptions in a JetStream key-value bucket
//!   every node watches;
//! - `subject.rs` and `wire.rs`: names and bytes on NATS.
//!
//! What each op means for routing is the router's (`router/cluster.rs`).

mod consumers;
mod durables;
mod interest;
pub(crate) mod subject;
mod wire;
mod writer;

use crate::check::StartError;
use crate::config::{BrokerConfig, ClusterConfig};
use crate::metrics::Metrics;
use crate::router::ClusterEvent;
use crate::router_task::ClusterLink;
use crate::shared::ToRouter;
use async_nats::jetstream;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long the first connection to NATS may take at start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Room kept in a NATS message for the broker's own framing beyond the
/// frame's headers and body.
const FRAMING: usize = 4096;
/// Router batches of units waiting for the writer (back-pressure beyond).
const UNITS: usize = 64;
/// JetStream publishes awaiting their acknowledgement at once.
const MAX_ACKS_IN_FLIGHT: usize = 16 * 1024;

/// The NATS connection made at start.
pub(crate) struct Connection {
    client: async_nats::Client,
    /// NATS reachable (`true`) or not, as the client reports it.
    states: mpsc::UnboundedReceiver<bool>,
}

/// What every cluster task shares.
pub(crate) struct Cx {
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) config: ClusterConfig,
    pub(crate) router: mpsc::Sender<ToRouter>,
    pub(crate) metrics: Arc<Metrics>,
    /// Makes `Nats-Msg-Id`s unique to this run of this node.
    pub(crate) node: String,
}

impl Cx {
    /// Whether NATS is reachable now.
    pub(crate) fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Hands the router an event (false once the router is gone).
    pub(crate) async fn tell(&self, event: ClusterEvent) -> bool {
        self.router.send(ToRouter::Cluster(event)).await.is_ok()
    }
}

/// Connects to `[cluster] servers` and fits the frame limits of `config` to
/// the server's `max_payload` (lowering `max_body`, logged); a server too
/// small for the headers allowed, or none reachable, is a [`StartError`].
pub(crate) async fn connect(config: &mut BrokerConfig) -> Result<Connection, StartError> {
    let cluster = &config.cluster;
    let (tx, states) = mpsc::unbounded_channel();
    let options = options(cluster, tx).await?;
    let servers: Vec<String> = cluster
        .servers
        .iter()
        .map(|s| s.trim().to_owned())
        .collect();
    let client = tokio::time::timeout(CONNECT_TIMEOUT, options.connect(servers.as_slice()))
        .await
        .map_err(|_| unreachable(&servers, "timed out"))?
        .map_err(|e| unreachable(&servers, &e.to_string()))?;
    let max_payload = client.server_info().max_payload;
    fit_limits(config, max_payload)?;
    if !client.server_info().jetstream {
        return Err(StartError::Cluster(format!(
            "NATS server {} has no JetStream (start it with -js)",
            servers.join(", ")
        )));
    }
    tracing::info!(servers = %servers.join(", "), max_payload, "cluster mode: connected to NATS");
    Ok(Connection { client, states })
}

fn unreachable(servers: &[String], why: &str) -> StartError {
    StartError::Cluster(format!(
        "cannot reach NATS at {}: {why}",
        servers.join(", ")
    ))
}

/// The client options of `[cluster]`; the client reports reachability on `tx`.
async fn options(
    cluster: &ClusterConfig,
    tx: mpsc::UnboundedSender<bool>,
) -> Result<async_nats::ConnectOptions, StartError> {
    let mut options = async_nats::ConnectOptions::new()
        .name(cluster.node_name())
        .subscription_capacity(64 * 1024)
        .max_reconnects(None)
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                match event {
                    async_nats::Event::Connected => drop(tx.send(true)),
                    async_nats::Event::Disconnected => drop(tx.send(false)),
                    other => tracing::warn!(event = %other, "NATS"),
                }
            }
        });
    if !cluster.user.is_empty() {
        let password = cluster.password.expose().to_owned();
        options = options.user_and_password(cluster.user.clone(), password);
    }
    if !cluster.token.is_empty() {
        options = options.token(cluster.token.expose().to_owned());
    }
    if !cluster.credentials_file.is_empty() {
        options = options
            .credentials_file(&cluster.credentials_file)
            .await
            .map_err(|e| {
                StartError::Cluster(format!(
                    "[cluster] credentials_file {}: {e}",
                    cluster.credentials_file
                ))
            })?;
    }
    if !cluster.ca_file.is_empty() {
        options = options.add_root_certificates(cluster.ca_file.clone().into());
    }
    Ok(options.require_tls(cluster.tls_required))
}

/// Lowers `[limits] max_body` so that a frame fits in one NATS message of
/// `max_payload` bytes; refuses a server too small for the headers alone.
fn fit_limits(config: &mut BrokerConfig, max_payload: usize) -> Result<(), StartError> {
    let limits = &mut config.limits;
    let overhead = limits.max_header_bytes.saturating_add(FRAMING);
    if max_payload <= overhead {
        return Err(StartError::Cluster(format!(
            "NATS max_payload ({max_payload} bytes) leaves no room for a body after [limits] max_header_bytes ({}); raise max_payload on the NATS servers",
            limits.max_header_bytes
        )));
    }
    let room = max_payload - overhead;
    if limits.max_body > room {
        tracing::warn!(
            max_body = limits.max_body,
            lowered_to = room,
            max_payload,
            "[limits] max_body lowered to fit NATS max_payload"
        );
        limits.max_body = room;
    }
    Ok(())
}

/// Starts the cluster's tasks; returns what the router task holds.
pub(crate) fn start(
    connection: Connection,
    config: &ClusterConfig,
    router: mpsc::Sender<ToRouter>,
    metrics: Arc<Metrics>,
) -> (ClusterLink, Vec<JoinHandle<()>>) {
    let Connection { client, states } = connection;
    // Past this many unacknowledged publishes, publishing waits (the
    // writer's back-pressure) instead of failing.
    let js = jetstream::ContextBuilder::new()
        .max_ack_inflight(MAX_ACKS_IN_FLIGHT)
        .backpressure_on_inflight(true)
        .build(client.clone());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let cx = Arc::new(Cx {
        node: format!("{}-{started}", config.node_name()),
        client,
        js,
        config: config.clone(),
        router,
        metrics,
    });
    let (units_tx, units) = mpsc::channel(UNITS);
    let (done, completions) = mpsc::unbounded_channel();
    let consumers = consumers::Consumers::new(cx.clone());
    let tasks = vec![
        tokio::spawn(report_states(cx.clone(), states)),
        tokio::spawn(writer::run(cx.clone(), consumers.clone(), units, done)),
        tokio::spawn(consumers::progress(cx.clone(), consumers.clone())),
        tokio::spawn(durables::watch(cx, consumers.clone())),
    ];
    let link = ClusterLink {
        units: units_tx,
        completions,
    };
    (link, tasks)
}

/// Tells the router whether NATS is reachable, now and at every change.
async fn report_states(cx: Arc<Cx>, mut states: mpsc::UnboundedReceiver<bool>) {
    if !cx.tell(ClusterEvent::State(cx.connected())).await {
        return;
    }
    while let Some(up) = states.recv().await {
        match up {
            true => tracing::info!("NATS reachable again: cluster mode resumes"),
            false => tracing::warn!(
                "NATS unreachable: topic messages reach this node's subscribers only; receipted and queue SENDs are refused until it is back"
            ),
        }
        if !cx.tell(ClusterEvent::State(up)).await {
            return;
        }
    }
}
