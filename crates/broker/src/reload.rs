//! Configuration reload (SIGHUP): users, permissions and TLS certificates
//! change while the broker runs, without dropping connections.
//!
//! Owns [`Live`] (what a reload replaces: the authenticator behind
//! `Shared::authenticator()`, the certificates TLS listeners present, the
//! [`Signals`] every connection watches (the reload generation, and the
//! shutdown, in one watch: a connection's wait registers one waker for both),
//! and the configuration in force) and
//! [`reload`]: the new configuration is checked as at start (`[auth]`, users
//! file and hashes, the safe defaults on the bound addresses, the TLS files);
//! only when all of it checks out are the authenticator and certificates
//! swapped and the generation bumped, so a reload that fails changes nothing.
//! Keys a reload cannot apply are reported ([`Reloaded::needs_restart`]) and
//! left as they were. What an open session does on the new generation is the
//! connection driver's and the sessions' (`reauthorize`).

use crate::auth::{AuthSetupError, Authenticator};
use crate::config::{AuthConfig, BrokerConfig, ConfigError};
use crate::tls::{self, Certificates, TlsSetupError};
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use tokio::sync::{Mutex, watch};

/// What every connection watches: the broker shutting down and the reloads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Signals {
    /// The broker is shutting down.
    pub(crate) shutting_down: bool,
    /// Bumped by each reload that applies.
    pub(crate) generation: u64,
}

/// What a reload replaces, shared by every connection.
pub(crate) struct Live {
    auth: RwLock<Arc<Authenticator>>,
    certificates: Option<Arc<Certificates>>,
    signals: watch::Sender<Signals>,
    /// The configuration in force (its users, rules and TLS files the last
    /// reloaded ones); one reload at a time holds it.
    applied: Mutex<BrokerConfig>,
}

impl Live {
    /// The state at start: `auth` made from `config`; `certificates` when TLS
    /// listeners present them.
    pub(crate) fn new(
        config: &BrokerConfig,
        auth: Arc<Authenticator>,
        certificates: Option<Arc<Certificates>>,
    ) -> Live {
        Live {
            auth: RwLock::new(auth),
            certificates,
            signals: watch::channel(Signals::default()).0,
            applied: Mutex::new(config.clone()),
        }
    }

    /// The authenticator deciding logins now.
    pub(crate) fn authenticator(&self) -> Arc<Authenticator> {
        self.auth
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A receiver that sees each reload, and the shutdown, from now on.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Signals> {
        self.signals.subscribe()
    }

    /// Tells every connection that the broker is shutting down (once).
    pub(crate) fn shut_down(&self) {
        self.signals
            .send_if_modified(|s| !std::mem::replace(&mut s.shutting_down, true));
    }
}

/// What a successful reload did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reloaded {
    /// Keys (`section.key`) whose new values need a restart: ignored.
    pub needs_restart: Vec<String>,
    /// Whether TLS listeners present the certificate files read again.
    pub tls: bool,
}

/// Why a reload was refused (the previous configuration stays). One line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The configuration does not check out.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `[auth]` does not check out, or the safe defaults refuse it.
    #[error(transparent)]
    Auth(#[from] AuthSetupError),
    /// The new certificate cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// The task checking `[auth]` and the TLS files failed.
    #[error("{0}")]
    Task(tokio::task::JoinError),
}

/// Applies `new`'s users, permissions and TLS certificate to `live`, the
/// state of a running broker listening on `addrs`, or changes nothing and
/// says why.
pub(crate) async fn reload(
    live: &Live,
    addrs: &[SocketAddr],
    new: BrokerConfig,
) -> Result<Reloaded, ReloadError> {
    let mut applied = live.applied.lock().await;
    tls::check_no_tls_keys(&new)?;
    let mut next = applied.clone();
    take_reloadable(&mut next.auth, &new.auth);
    if live.certificates.is_some() {
        next.tls = new.tls.clone();
    }
    let needs_restart = differences(&next, &new)?;
    // Both read files and the authenticator hashes: off the async threads.
    let (old, auth_config) = (live.authenticator(), next.auth.clone());
    let tls_config = live.certificates.as_ref().map(|_| next.tls.clone());
    let (auth, loaded) = tokio::task::spawn_blocking(move || -> Result<_, ReloadError> {
        let auth = old.reloaded(&auth_config)?;
        let loaded = tls_config.as_ref().map(Certificates::load).transpose()?;
        Ok((auth, loaded))
    })
    .await
    .map_err(ReloadError::Task)??;
    if !next.relay.forwards_credentials() {
        auth.check_listeners(&next.auth, addrs)?;
    }
    if let (Some(certificates), Some(loaded)) = (&live.certificates, loaded) {
        certificates.present(loaded);
    }
    *live.auth.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(auth);
    *applied = next;
    live.signals
        .send_modify(|s| s.generation = s.generation.wrapping_add(1));
    Ok(Reloaded {
        needs_restart,
        tls: live.certificates.is_some(),
    })
}

/// The `[auth]` keys a reload applies: users (inline and the users file),
/// permissions, anonymous access.
fn take_reloadable(into: &mut AuthConfig, from: &AuthConfig) {
    into.users = from.users.clone();
    into.users_file = from.users_file.clone();
    into.default_send = from.default_send.clone();
    into.default_subscribe = from.default_subscribe.clone();
    into.anonymous_send = from.anonymous_send.clone();
    into.anonymous_subscribe = from.anonymous_subscribe.clone();
    into.allow_anonymous = from.allow_anonymous;
}

/// The `section.key`s whose values differ between `a` and `b`, sorted.
fn differences(a: &BrokerConfig, b: &BrokerConfig) -> Result<Vec<String>, ConfigError> {
    let tree =
        |c: &BrokerConfig| toml::Value::try_from(c).map_err(|e| ConfigError::Toml(e.to_string()));
    let (toml::Value::Table(a), toml::Value::Table(b)) = (tree(a)?, tree(b)?) else {
        return Ok(Vec::new());
    };
    let mut keys = Vec::new();
    for (section, a_keys) in &a {
        let (toml::Value::Table(a_keys), Some(toml::Value::Table(b_keys))) =
            (a_keys, b.get(section))
        else {
            continue;
        };
        let names: std::collections::BTreeSet<&String> =
            a_keys.keys().chain(b_keys.keys()).collect();
        for key in names {
            if a_keys.get(key) != b_keys.get(key) {
                keys.push(format!("{section}.{key}"));
            }
        }
    }
    keys.sort();
    Ok(keys)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_users_permissions_and_tls_are_reloaded() {
        let old = BrokerConfig::default();
        let mut new = old.clone();
        new.limits.max_connections = 7;
        new.server.listen = vec!["127.0.0.1:1".into()];
        new.auth.default_send = vec!["/topic/x".into()];
        new.auth.allow_anonymous = true;
        new.auth.token_max_ttl_s = 60;
        new.tls.cert_file = "cert.pem".into();
        let mut next = old.clone();
        take_reloadable(&mut next.auth, &new.auth);
        assert_eq!(next.auth.default_send, ["/topic/x"]);
        assert!(next.auth.allow_anonymous);
        assert_eq!(next.auth.token_max_ttl_s, old.auth.token_max_ttl_s);
        assert_eq!(
            differences(&next, &new).unwrap(),
            [
                "auth.token_max_ttl_s",
                "limits.max_connections",
                "server.listen",
                "tls.cert_file"
            ]
        );
        next.tls = new.tls.clone();
        assert_eq!(
            differences(&next, &next.clone()).unwrap(),
            Vec::<String>::new()
        );
    }
}
