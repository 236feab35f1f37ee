//! `stompkit-broker check-config FILE`: everything the broker checks at start
//! that needs no socket, and the effective configuration with its secrets
//! masked.
//!
//! Owns [`before_binding`] (the checks a starting broker makes before it
//! binds, written once: TLS keys, the log filter, `[relay]`, `[auth]` with its
//! users file and hashes, the listen entries, the TLS files when a listener
//! presents them), [`check_config`] (those, and the addresses the listen
//! entries name, and the safe defaults), [`masked_toml`], and [`StartError`]
//! (why a start failed: these checks, a bind, the store). It binds nothing and
//! opens no store.

use crate::auth::{AuthSetupError, Authenticator};
use crate::config::{BrokerConfig, ConfigError, ListenSpec, Secret};
use crate::store::StoreError;
use crate::tls::{self, TlsSetupError};
use crate::upstream::Upstream;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::Arc;

/// Why a broker did not start. Each message is one line, the one
/// `stompkit-broker` prints before exiting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration does not check out: a listen entry, `[relay]`, or a
    /// TLS key in a build without TLS.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `[auth]` does not check out, or the safe defaults refuse a listener.
    #[error(transparent)]
    Auth(#[from] AuthSetupError),
    /// The certificate of the TLS listeners cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// The task checking the configuration (`[auth]`, the TLS files) failed.
    #[error("{0}")]
    AuthTask(tokio::task::JoinError),
    /// Binding a listen or metrics address failed.
    #[error(transparent)]
    Bind(#[from] io::Error),
    /// The data directory cannot be used (locked by another broker, or unreadable).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The task opening the store failed.
    #[error("{0}")]
    StoreTask(tokio::task::JoinError),
    /// Cluster mode cannot start: NATS unreachable, without JetStream, or
    /// its `max_payload` too small.
    #[error("cluster mode: {0}")]
    Cluster(String),
}

impl StartError {
    /// The I/O error kind: a bind's own, else `InvalidInput`.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            StartError::Bind(e) => e.kind(),
            _ => io::ErrorKind::InvalidInput,
        }
    }
}

impl From<StartError> for io::Error {
    fn from(error: StartError) -> io::Error {
        match error {
            StartError::Bind(e) => e,
            other => io::Error::new(other.kind(), other),
        }
    }
}

/// What a masked secret reads as.
pub const MASKED: &str = "<masked>";

/// Checks `config` as [`Broker::bind`](crate::Broker::bind) would, short of
/// binding (so a port in use or a locked data directory is not found). The
/// error is the one line the broker would print.
pub fn check_config(config: &BrokerConfig) -> Result<(), StartError> {
    let Checked { auth, specs, .. } = before_binding(config)?;
    let mut addrs = Vec::new();
    for spec in &specs {
        addrs.extend(resolve("listen", &spec.addr)?);
    }
    for (what, addr) in [
        ("[server] metrics", &config.server.metrics),
        ("[admin] listen", &config.admin.listen),
    ] {
        if !addr.is_empty() {
            resolve(what, addr)?;
        }
    }
    if !config.relay.forwards_credentials() {
        auth.check_listeners(&config.auth, &addrs)?;
    }
    Ok(())
}

/// What [`before_binding`] made of a configuration that checks out.
pub(crate) struct Checked {
    /// The upstream, in relay mode.
    pub(crate) upstream: Option<Upstream>,
    /// The authenticator of `[auth]`.
    pub(crate) auth: Authenticator,
    /// The listen entries.
    pub(crate) specs: Vec<ListenSpec>,
    /// The TLS acceptor and the certificates it presents, when a listener
    /// presents them (see [`presents_certificate`]).
    pub(crate) tls: Option<(tls::Acceptor, Arc<tls::Certificates>)>,
}

/// Everything a starting broker checks before it binds, in this order: TLS
/// keys in a build without TLS, the `log_level` filter, `[relay]` (and no
/// admin listener with it), `[auth]`
/// (slow: it hashes; call it off the async threads), the listen entries, and
/// the TLS files when a listener presents them. [`Broker::bind`](crate::Broker::bind)
/// and [`check_config`] both call it, so they refuse the same files.
pub(crate) fn before_binding(config: &BrokerConfig) -> Result<Checked, StartError> {
    tls::check_no_tls_keys(config)?;
    check_log_level(&config.server.log_level)?;
    let upstream = Upstream::from_config(&config.relay)?;
    if upstream.is_some() && !config.admin.listen.is_empty() {
        return Err(ConfigError::AdminInRelayMode.into());
    }
    if config.cluster.is_enabled() {
        if upstream.is_some() {
            return Err(ConfigError::ClusterInRelayMode.into());
        }
        if !cfg!(feature = "cluster") {
            return Err(ConfigError::ClusterUnavailable.into());
        }
    }
    let auth = Authenticator::new(&config.auth)?;
    let specs = config.listen_specs()?;
    let tls = match presents_certificate(config, &specs) {
        true => Some(config.tls.reloadable()?),
        false => None,
    };
    Ok(Checked {
        upstream,
        auth,
        specs,
        tls,
    })
}

/// Whether a listener presents the `[tls]` certificate: a TLS listen entry,
/// or the admin listener with `[tls]` configured (it speaks HTTPS off
/// loopback). Otherwise the `[tls]` files are not read.
pub(crate) fn presents_certificate(config: &BrokerConfig, specs: &[ListenSpec]) -> bool {
    specs.iter().any(|s| s.tls) || (config.tls.is_configured() && !config.admin.listen.is_empty())
}

/// `log_level` as the log filter reads it (`info`, `stompkit_broker=debug,warn`).
fn check_log_level(log_level: &str) -> Result<(), ConfigError> {
    match tracing_subscriber::EnvFilter::try_new(log_level) {
        Ok(_) => Ok(()),
        Err(error) => Err(ConfigError::LogLevel {
            value: log_level.to_owned(),
            error: error.to_string(),
        }),
    }
}

/// The socket addresses `addr` names (`HOST:PORT`, resolved), or an error
/// naming `what`.
fn resolve(what: &str, addr: &str) -> Result<Vec<SocketAddr>, StartError> {
    let invalid = |why: String| {
        StartError::Bind(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} address {addr:?}: {why}"),
        ))
    };
    let found: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| invalid(e.to_string()))?
        .collect();
    if found.is_empty() {
        return Err(invalid("names no address".to_owned()));
    }
    Ok(found)
}

/// `config` as TOML, every secret (`[auth] token_secret`, users' password
/// hashes, `[relay] passcode`, `[cluster] password` and `token`) replaced by [`MASKED`] when set.
pub fn masked_toml(config: &BrokerConfig) -> Result<String, ConfigError> {
    let mut config = config.clone();
    if !config.auth.token_secret.is_empty() {
        config.auth.token_secret = Secret::new(MASKED);
    }
    for user in &mut config.auth.users {
        if !user.password_hash.is_empty() {
            user.password_hash = MASKED.to_owned();
        }
    }
    if !config.relay.passcode.is_empty() {
        config.relay.passcode = MASKED.to_owned();
    }
    for secret in [&mut config.cluster.password, &mut config.cluster.token] {
        if !secret.is_empty() {
            *secret = Secret::new(MASKED);
        }
    }
    toml::to_string(&config).map_err(|e| ConfigError::Toml(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::UserConfig;

    #[test]
    fn secrets_are_masked_and_the_rest_reads_back() {
        let mut config = BrokerConfig::default();
        config.auth.token_secret = Secret::new("0123456789abcdef-very-secret");
        config.relay.passcode = "relay-secret".into();
        config.auth.users.push(UserConfig {
            login: "alice".into(),
            password_hash: "$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into(),
            send: Some(vec!["/queue/a".into()]),
            subscribe: None,
            admin: true,
        });
        config.limits.max_body = 1234;
        let text = masked_toml(&config).unwrap();
        for secret in ["very-secret", "relay-secret", "aGFzaGhhc2hoYXNo"] {
            assert!(!text.contains(secret), "{text}");
        }
        let back = BrokerConfig::from_toml(&text).unwrap();
        assert_eq!(back.auth.token_secret.expose(), MASKED);
        assert_eq!(back.auth.users[0].password_hash, MASKED);
        assert_eq!(back.relay.passcode, MASKED);
        config.auth.token_secret = Secret::new(MASKED);
        config.auth.users[0].password_hash = MASKED.into();
        config.relay.passcode = MASKED.into();
        assert_eq!(back, config);
        // Unset secrets stay empty (nothing to hide, and nothing pretends to be set).
        let plain = BrokerConfig::from_toml(&masked_toml(&BrokerConfig::default()).unwrap());
        assert_eq!(plain.unwrap(), BrokerConfig::default());
    }

    #[test]
    fn checks_what_start_checks_short_of_binding() {
        let mut config = BrokerConfig::default();
        config.server.listen = vec!["127.0.0.1:0".into()];
        check_config(&config).unwrap();
        let refused = |tweak: fn(&mut BrokerConfig)| {
            let mut c = config.clone();
            tweak(&mut c);
            check_config(&c).unwrap_err().to_string()
        };
        assert!(refused(|c| c.server.listen = vec!["http://x:1".into()]).contains("http://x:1"));
        assert!(refused(|c| c.server.listen = vec!["0.0.0.0:0".into()]).contains("anonymous"));
        assert!(refused(|c| c.server.metrics = "nowhere".into()).contains("[server] metrics"));
        assert!(
            refused(|c| c.auth.users_file = "/nonexistent/users.toml".into())
                .contains("/nonexistent/users.toml")
        );
        assert!(refused(|c| c.relay.upstream = "http://x".into()).contains("relay.upstream"));
        assert!(refused(|c| c.server.log_level = "info,==bad[".into()).contains("log_level"));
        assert!(
            refused(|c| {
                c.relay.upstream = "stomp://127.0.0.1:61613".into();
                c.admin.listen = "127.0.0.1:0".into();
            })
            .contains("[admin] listen cannot be used with [relay] upstream")
        );
        // The [tls] files are read when a listener presents them, as at start
        // (a build without TLS refuses the keys themselves).
        let mut tls = config.clone();
        tls.tls.cert_file = "/nonexistent/cert.pem".into();
        tls.tls.key_file = "/nonexistent/key.pem".into();
        assert_eq!(check_config(&tls).is_ok(), cfg!(feature = "tls"));
        tls.admin.listen = "127.0.0.1:0".into();
        assert!(check_config(&tls).is_err());
        tls.admin.listen.clear();
        tls.server.listen.push("tls://127.0.0.1:0".into());
        assert!(check_config(&tls).is_err());
    }
}
