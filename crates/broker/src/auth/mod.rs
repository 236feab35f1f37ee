//! Authentication: who a CONNECT is, decided off the session.
//!
//! The session turns a CONNECT into an [`AuthRequest`] and waits; the connection
//! task asks the [`Authenticator`] and hands the [`Verdict`] back. The
//! authenticator owns:
//! - the users (argon2id hashes, see [`password`]) and signed tokens ([`token`]);
//! - anonymous access: with no users and no token secret every client is
//!   anonymous (the zero-setup broker), and [`Authenticator::check_listeners`]
//!   refuses to start such a broker on a non-loopback address unless
//!   `allow_anonymous` is set;
//! - throttling: password checks run on the blocking pool behind a small
//!   semaphore (a login flood costs at most `verify_concurrency` cores and hash
//!   buffers, and never blocks the network threads); an unknown login is checked
//!   against a dummy hash of the same cost, so it takes as long as a wrong
//!   password; failures are delayed and slowed per address ([`failures`]);
//! - which [`Permissions`] each principal gets.

pub mod config;
mod error;
pub mod failures;
pub mod password;
mod reload;
pub mod token;

use crate::authz::Permissions;
use config::{AuthConfig, UserConfig, UsersFile};
pub use error::AuthSetupError;
use failures::Failures;
pub use reload::Recheck;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;

/// The credentials of a CONNECT frame.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The `login` header (absent or empty: anonymous).
    pub login: Option<String>,
    /// The `passcode` header.
    pub passcode: Option<String>,
}

impl std::fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthRequest")
            .field("login", &self.login)
            .field("passcode", &self.passcode.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Who a session is once accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The authenticated login; `None` for an anonymous client.
    pub login: Option<String>,
    /// What it may do.
    pub permissions: Arc<Permissions>,
    /// How the login was checked (a reload rechecks it the same way).
    pub credential: Credential,
}

/// How a [`Principal`]'s login was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// No login: an anonymous client.
    Anonymous,
    /// A configured user's password.
    Password,
    /// A signed token (`v1.<expiry>.<sig>`).
    Token,
}

impl Principal {
    /// An anonymous client allowed everything (the zero-setup broker).
    pub fn anonymous() -> Principal {
        Principal {
            login: None,
            permissions: Arc::new(Permissions::all()),
            credential: Credential::Anonymous,
        }
    }
}

/// The answer to an [`AuthRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let the session open as this principal.
    Accepted(Principal),
    /// ERROR `access refused` and close (the delay has already been served).
    Refused,
}

struct User {
    hash: Option<String>,
    permissions: Arc<Permissions>,
    /// `admin = true`: may use the admin API off loopback.
    admin: bool,
}

/// Decides [`AuthRequest`]s. One per broker, shared by every connection.
pub struct Authenticator {
    users: HashMap<String, User>,
    /// No users and no token secret: every client is anonymous.
    open: bool,
    /// Permissions of anonymous clients; `None` when they are refused.
    anonymous: Option<Arc<Permissions>>,
    /// Permissions of token logins not listed as users.
    default_permissions: Arc<Permissions>,
    token_secret: Option<Vec<u8>>,
    token_max_ttl: u64,
    dummy_hash: String,
    verify_slots: Arc<Semaphore>,
    /// argon2 working memory, one buffer per verification slot, reused: a login
    /// flood allocates nothing, whatever thread of the blocking pool runs it.
    memory: Arc<Mutex<Vec<Vec<argon2::Block>>>>,
    /// Shared with the authenticators that reloads make from this one.
    failures: Arc<Mutex<Failures>>,
    /// Most verifications seen running at once.
    #[cfg(test)]
    peak: Arc<tests::Peak>,
}

/// The shortest token secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

impl Authenticator {
    /// Checks the `[auth]` config (reading `users_file`) and builds the
    /// authenticator. Slow once: it hashes the dummy password (call it off the
    /// async threads). Errors are one readable line.
    pub fn new(config: &AuthConfig) -> Result<Authenticator, AuthSetupError> {
        let default_permissions = Arc::new(Permissions::new(
            &config.default_send,
            &config.default_subscribe,
        ));
        let users = users(config, &default_permissions)?;
        let secret = config.token_secret.expose();
        if !secret.is_empty() && secret.len() < MIN_SECRET_LEN {
            return Err(AuthSetupError::ShortSecret(secret.len()));
        }
        if config.verify_concurrency == 0 {
            return Err(AuthSetupError::NoVerifyConcurrency);
        }
        let open = users.is_empty() && secret.is_empty();
        let anonymous = (open || config.allow_anonymous).then(|| {
            Arc::new(Permissions::new(
                &config.anonymous_send,
                &config.anonymous_subscribe,
            ))
        });
        // Same cost as the first configured hash, so unknown logins take as long.
        let like = users.values().find_map(|u| u.hash.as_deref());
        let dummy_hash = password::dummy(like).map_err(AuthSetupError::DummyHash)?;
        let base = Duration::from_millis(config.failure_delay_ms);
        Ok(Authenticator {
            users,
            open,
            anonymous,
            default_permissions,
            token_secret: (!secret.is_empty()).then(|| secret.as_bytes().to_vec()),
            token_max_ttl: config.token_max_ttl_s,
            dummy_hash,
            verify_slots: Arc::new(Semaphore::new(config.verify_concurrency)),
            memory: Arc::default(),
            failures: Arc::new(Mutex::new(Failures::new(
                failures::CAPACITY,
                failures::WINDOW,
                base,
                Duration::from_millis(config.max_failure_delay_ms),
            ))),
            #[cfg(test)]
            peak: Arc::default(),
        })
    }

    /// Whether `login` is a configured user with `admin = true` (reloaded
    /// with the users).
    pub fn is_admin(&self, login: &str) -> bool {
        self.users.get(login).is_some_and(|u| u.admin)
    }

    /// Whether any configured user has `admin = true` (without one, a
    /// non-loopback admin listener refuses every request).
    pub fn has_admins(&self) -> bool {
        self.users.values().any(|u| u.admin)
    }

    /// Whether anonymous clients are accepted.
    pub fn allows_anonymous(&self) -> bool {
        self.anonymous.is_some()
    }

    /// Safe defaults: a broker where every client is anonymous (no users, no token
    /// secret) may listen on loopback addresses only, unless `allow_anonymous`.
    /// The error is the one line the broker prints before exiting.
    pub fn check_listeners(
        &self,
        config: &AuthConfig,
        addrs: &[SocketAddr],
    ) -> Result<(), AuthSetupError> {
        if !self.open || config.allow_anonymous {
            return Ok(());
        }
        match addrs.iter().find(|a| !a.ip().is_loopback()) {
            Some(addr) => Err(AuthSetupError::AnonymousOnPublicAddress(*addr)),
            None => Ok(()),
        }
    }

    /// Decides `request` from `peer`: waits out the address's penalty, verifies
    /// (passwords on the blocking pool, at most `verify_concurrency` at once), and
    /// on failure waits the failure delay before answering [`Verdict::Refused`].
    pub async fn authenticate(&self, peer: SocketAddr, request: AuthRequest) -> Verdict {
        let ip = peer.ip();
        let wait = self
            .failures_mut()
            .begin(ip, tokio::time::Instant::now().into_std());
        // If the connection goes away mid-way, the attempt no longer counts.
        let mut attempt = Attempt {
            auth: self,
            ip,
            open: true,
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let login = request.login.clone().filter(|l| !l.is_empty());
        let outcome = self.decide(login.as_deref(), request.passcode).await;
        let now = tokio::time::Instant::now().into_std();
        attempt.open = false;
        let delay = self.failures_mut().finish(ip, outcome.is_err(), now);
        match outcome {
            Ok(principal) => {
                tracing::info!(%peer, login = principal.login.as_deref().unwrap_or(""), "login accepted");
                Verdict::Accepted(principal)
            }
            Err(reason) => {
                tracing::warn!(
                    %peer,
                    login = login.as_deref().unwrap_or(""),
                    reason,
                    delay_ms = delay.as_millis() as u64,
                    "login refused"
                );
                tokio::time::sleep(delay).await;
                Verdict::Refused
            }
        }
    }

    async fn decide(
        &self,
        login: Option<&str>,
        passcode: Option<String>,
    ) -> Result<Principal, &'static str> {
        let anonymous = |permissions: &Arc<Permissions>| Principal {
            login: None,
            permissions: permissions.clone(),
            credential: Credential::Anonymous,
        };
        // Zero setup: nobody to check against, everyone is anonymous.
        if self.open {
            return self.anonymous.as_ref().map(anonymous).ok_or("anonymous");
        }
        let Some(login) = login else {
            return self
                .anonymous
                .as_ref()
                .map(anonymous)
                .ok_or("anonymous access is off");
        };
        let passcode = passcode.unwrap_or_default();
        let principal = |permissions: Arc<Permissions>, credential| Principal {
            login: Some(login.to_owned()),
            permissions,
            credential,
        };
        let user = self.users.get(login);
        if let Some(secret) = &self.token_secret
            && token::is_token(&passcode)
        {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            return match token::verify(secret, login, &passcode, now, self.token_max_ttl) {
                Ok(()) => Ok(principal(
                    user.map_or_else(
                        || self.default_permissions.clone(),
                        |u| u.permissions.clone(),
                    ),
                    Credential::Token,
                )),
                Err(token::TokenError::Expired) => Err("token expired"),
                Err(token::TokenError::TooLong) => Err("token lifetime too long"),
                Err(_) => Err("bad token"),
            };
        }
        // Unknown login or token-only user: same work against the dummy hash.
        let hash = user.and_then(|u| u.hash.clone());
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let Ok(permit) = self.verify_slots.clone().acquire_owned().await else {
            return Err("shutting down");
        };
        #[cfg(test)]
        let peak = self.peak.clone();
        let pool = self.memory.clone();
        let matched = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            #[cfg(test)]
            let _running = peak.enter(&hash);
            let mut memory = lock(&pool).pop().unwrap_or_default();
            let matched = password::verify_in(&hash, &passcode, &mut memory);
            lock(&pool).push(memory);
            matched
        })
        .await
        .unwrap_or(false);
        match user {
            Some(u) if known && matched => {
                Ok(principal(u.permissions.clone(), Credential::Password))
            }
            Some(_) if known => Err("wrong password"),
            Some(_) => Err("login has no password (tokens only)"),
            None => Err("unknown login"),
        }
    }

    fn failures_mut(&self) -> std::sync::MutexGuard<'_, Failures> {
        lock(&self.failures)
    }

    /// Failures currently recorded for `ip` (for tests and metrics).
    pub fn recent_failures(&self, ip: IpAddr) -> u32 {
        self.failures_mut()
            .failures(ip, tokio::time::Instant::now().into_std())
    }
}

/// Locks, whether or not another thread panicked while holding the lock (the
/// data stays consistent: every critical section is a few plain updates).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A login in progress, ended by `finish` or, when dropped unfinished (the
/// connection closed or timed out), by `cancel`.
struct Attempt<'a> {
    auth: &'a Authenticator,
    ip: IpAddr,
    open: bool,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.open {
            self.auth.failures_mut().cancel(self.ip);
        }
    }
}

/// Every configured user (`[[auth.users]]`, then `users_file`), checked, by login.
fn users(
    config: &AuthConfig,
    default_permissions: &Arc<Permissions>,
) -> Result<HashMap<String, User>, AuthSetupError> {
    let mut all = config.users.clone();
    if !config.users_file.is_empty() {
        all.extend(users_file(&config.users_file)?.users);
    }
    let mut users = HashMap::new();
    for UserConfig {
        login,
        password_hash,
        send,
        subscribe,
        admin,
    } in all
    {
        if login.is_empty() {
            return Err(AuthSetupError::EmptyLogin);
        }
        if !password_hash.is_empty() {
            password::check(&password_hash).map_err(|error| AuthSetupError::PasswordHash {
                login: login.clone(),
                error,
            })?;
        }
        let permissions = if send.is_none() && subscribe.is_none() {
            default_permissions.clone()
        } else {
            Arc::new(Permissions::new(
                send.as_deref().unwrap_or(&config.default_send),
                subscribe.as_deref().unwrap_or(&config.default_subscribe),
            ))
        };
        let user = User {
            hash: (!password_hash.is_empty()).then_some(password_hash),
            permissions,
            admin,
        };
        if users.insert(login.clone(), user).is_some() {
            return Err(AuthSetupError::DuplicateUser(login));
        }
    }
    Ok(users)
}

/// Reads the users file at `path`.
fn users_file(path: &str) -> Result<UsersFile, AuthSetupError> {
    let text =
        std::fs::read_to_string(path).map_err(|error| AuthSetupError::UsersFileUnreadable {
            path: path.to_owned(),
            error,
        })?;
    toml::from_str(&text).map_err(|e| AuthSetupError::UsersFileInvalid {
        path: path.to_owned(),
        error: crate::config::toml_error(&e, &text),
    })
}

#[cfg(test)]
mod tests;
