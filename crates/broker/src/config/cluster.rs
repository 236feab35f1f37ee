//! `[cluster]`: the NATS deployment nodes share to act as one broker, and how
//! to reach it. Only the settings; cluster mode itself is `cluster/`'s.

use crate::auth::config::Secret;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[cluster]`: nodes connected to the same NATS servers (with JetStream)
/// act as one broker: topics over core NATS, queues and durable
/// subscriptions in JetStream streams.
///
/// ```
/// use stompkit_broker::BrokerConfig;
/// let config = BrokerConfig::from_toml("[cluster]\nservers = [\"nats://10.0.0.7:4222\"]\n").unwrap();
/// assert!(config.cluster.is_enabled());
/// assert_eq!(config.cluster.ack_wait_ms, 30_000);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// NATS servers, `nats://HOST:PORT` or `tls://HOST:PORT` (`--cluster`,
    /// repeatable); empty = a single broker (default).
    pub servers: Vec<String>,
    /// This node's name, shown in the admin API and as its NATS connection
    /// name (default empty: `stompkit-<host>-<pid>`).
    pub name: String,
    /// NATS user (with [`password`](ClusterConfig::password)); empty = none.
    pub user: String,
    /// NATS password.
    pub password: Secret,
    /// NATS authentication token; empty = none.
    pub token: Secret,
    /// NATS credentials file (JWT and NKey seed); empty = none.
    pub credentials_file: String,
    /// PEM file of the CA certificates trusted for NATS over TLS; empty = the
    /// system's root certificates.
    pub ca_file: String,
    /// Require TLS to NATS even for `nats://` URLs (default false; a
    /// `tls://` URL always uses it).
    pub tls_required: bool,
    /// How long a delivery held by a node may go unacknowledged before
    /// JetStream hands it to another node, in ms (default 30000). Bounds how
    /// soon the messages of a node that died move elsewhere; a live node
    /// keeps what its clients hold (it reports progress every third of it).
    pub ack_wait_ms: u64,
    /// JetStream replicas of every stream the cluster makes (default 1; 3 for
    /// a three-server NATS cluster that survives losing one server).
    pub replicas: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            servers: Vec::new(),
            name: String::new(),
            user: String::new(),
            password: Secret::default(),
            token: Secret::default(),
            credentials_file: String::new(),
            ca_file: String::new(),
            tls_required: false,
            ack_wait_ms: 30_000,
            replicas: 1,
        }
    }
}

impl ClusterConfig {
    /// Whether cluster mode is on.
    pub fn is_enabled(&self) -> bool {
        self.servers.iter().any(|s| !s.trim().is_empty())
    }

    /// `name`, or `stompkit-<host>-<pid>` when empty.
    pub fn node_name(&self) -> String {
        if !self.name.is_empty() {
            return self.name.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "node".to_owned());
        format!("stompkit-{host}-{}", std::process::id())
    }

    /// `ack_wait_ms` as a duration.
    pub fn ack_wait(&self) -> Duration {
        Duration::from_millis(self.ack_wait_ms)
    }
}
