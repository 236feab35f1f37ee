//! Who may use the admin listener.
//!
//! Owns the decision on every admin request, before anything is routed:
//! - on a loopback address ([`Guard::Loopback`]) no login is asked, but the
//!   `Host` header must name a loopback address (`localhost`, `127.x.x.x`,
//!   `[::1]`, any port): a page of another site that a DNS name rebound to
//!   127.0.0.1 sends its own host name, and is refused;
//! - on any other address ([`Guard::Login`]) `Authorization: Basic` of a user
//!   with `admin = true`, its passcode a password (over TLS only) or a signed
//!   token, decided by the broker's [`Authenticator`] (its throttling and
//!   failure delays included);
//! - a refusal is a 401 and nothing else (`reply.rs`).
//!
//! Accepted logins are remembered for [`REMEMBER`] (a digest of login and
//! passcode, never the passcode), so a dashboard polling over HTTPS does not
//! verify a password hash per request; a reloaded authenticator forgets them.

use super::reply::Reply;
use super::request::Request;
use crate::auth::{AuthRequest, Authenticator, Verdict, token};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

/// How long an accepted admin login is remembered.
pub(super) const REMEMBER: Duration = Duration::from_secs(30);

/// Most logins remembered at once (beyond, all are forgotten).
const REMEMBERED: usize = 64;

/// The rule of one admin listener, by the address it is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Guard {
    /// A loopback address: no login, a loopback `Host`.
    Loopback,
    /// Any other address: an admin user's login; passwords only when `tls`.
    Login {
        /// The listener speaks HTTPS.
        tls: bool,
    },
}

impl Guard {
    /// The rule for a listener bound to `addr` (`tls`: it speaks HTTPS).
    pub(super) fn for_addr(addr: SocketAddr, tls: bool) -> Guard {
        match addr.ip().is_loopback() {
            true => Guard::Loopback,
            false => Guard::Login { tls },
        }
    }
}

/// Decides admin logins and remembers the accepted ones.
#[derive(Debug, Default)]
pub(super) struct Gate {
    remembered: Mutex<Remembered>,
}

/// Accepted logins by digest, with when they are forgotten; for one authenticator.
#[derive(Debug, Default)]
struct Remembered {
    /// The authenticator that accepted them (a reload makes another).
    by: Weak<Authenticator>,
    logins: HashMap<[u8; 32], Instant>,
}

impl Gate {
    /// Lets `request` from `peer` through, or says why not (a 401).
    pub(super) async fn check(
        &self,
        guard: Guard,
        auth: &Arc<Authenticator>,
        peer: SocketAddr,
        request: &Request,
    ) -> Result<(), Reply> {
        match guard {
            Guard::Loopback => match request.header("host") {
                Some(host) if is_loopback_host(host) => Ok(()),
                _ => Err(Reply::unauthorized(
                    "the Host header must name a loopback address",
                )),
            },
            Guard::Login { tls } => self.login(tls, auth, peer, request).await,
        }
    }

    /// [`Guard::Login`]: an admin user's Basic credentials.
    async fn login(
        &self,
        tls: bool,
        auth: &Arc<Authenticator>,
        peer: SocketAddr,
        request: &Request,
    ) -> Result<(), Reply> {
        if !auth.has_admins() {
            return Err(Reply::unauthorized(
                "no admin user: configure a user with admin = true",
            ));
        }
        let (login, passcode) = basic(request.header("authorization"))?;
        if !tls && !token::is_token(&passcode) {
            return Err(Reply::unauthorized("passwords need TLS: use a token"));
        }
        let digest = digest(&login, &passcode);
        if self.remembers(auth, &digest) {
            return Ok(());
        }
        let credentials = AuthRequest {
            login: Some(login.clone()),
            passcode: Some(passcode),
        };
        match auth.authenticate(peer, credentials).await {
            Verdict::Accepted(p) if p.login.as_deref() == Some(&login) && auth.is_admin(&login) => {
                self.remember(auth, digest);
                Ok(())
            }
            Verdict::Accepted(_) => {
                tracing::warn!(%peer, login, "admin API refused: not an admin user");
                Err(Reply::unauthorized("not an admin user"))
            }
            Verdict::Refused => Err(Reply::unauthorized("login refused")),
        }
    }

    /// Whether `auth` accepted these credentials less than [`REMEMBER`] ago.
    fn remembers(&self, auth: &Arc<Authenticator>, digest: &[u8; 32]) -> bool {
        let mut remembered = self.lock();
        if !Weak::ptr_eq(&remembered.by, &Arc::downgrade(auth)) {
            *remembered = Remembered {
                by: Arc::downgrade(auth),
                logins: HashMap::new(),
            };
            return false;
        }
        let now = Instant::now();
        remembered.logins.retain(|_, until| *until > now);
        remembered.logins.contains_key(digest)
    }

    fn remember(&self, auth: &Arc<Authenticator>, digest: [u8; 32]) {
        let mut remembered = self.lock();
        if !Weak::ptr_eq(&remembered.by, &Arc::downgrade(auth)) {
            return;
        }
        if remembered.logins.len() >= REMEMBERED {
            remembered.logins.clear();
        }
        remembered.logins.insert(digest, Instant::now() + REMEMBER);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Remembered> {
        self.remembered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The login and passcode of `Authorization: Basic base64(login:passcode)`.
fn basic(header: Option<&str>) -> Result<(String, String), Reply> {
    let header = header.ok_or_else(|| Reply::unauthorized("login needed"))?;
    let malformed = || Reply::unauthorized("malformed Authorization header: use Basic");
    let (scheme, encoded) = header.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (login, passcode) = text.split_once(':').ok_or_else(malformed)?;
    if login.is_empty() {
        return Err(malformed());
    }
    Ok((login.to_owned(), passcode.to_owned()))
}

/// SHA-256 of the login, a separator and the passcode.
fn digest(login: &str, passcode: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(login.as_bytes());
    hasher.update([0]);
    hasher.update(passcode.as_bytes());
    hasher.finalize().into()
}

/// Whether a `Host` value names a loopback address: `localhost`, an IPv4
/// address in 127.0.0.0/8 or `[::1]`, with or without a port.
pub(super) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        let Some((ip, port)) = rest.split_once(']') else {
            return false;
        };
        return (port.is_empty() || port.strip_prefix(':').is_some_and(is_port))
            && ip.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    let name = match host.split_once(':') {
        Some((name, port)) if is_port(port) => name,
        Some(_) => return false,
        None => host,
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST:61680",
            "127.0.0.1",
            "127.1.2.3:80",
            "[::1]",
            "[::1]:61680",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "",
            "evil.example",
            "evil.example:61680",
            "localhost.evil.example",
            "128.0.0.1",
            "0.0.0.0",
            "[::2]:80",
            "[::1",
            "localhost:",
            "localhost:x",
            "127.0.0.1:80:80",
            "[::1]x",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn basic_credentials() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("ops:pa:ss");
        let header = format!("Basic {encoded}");
        assert_eq!(
            basic(Some(&header)).unwrap(),
            ("ops".into(), "pa:ss".into())
        );
        let lower = format!("basic {encoded}");
        assert!(basic(Some(&lower)).is_ok());
        let no_login = base64::engine::general_purpose::STANDARD.encode(":x");
        for bad in [
            None,
            Some("Bearer abc"),
            Some("Basic !!!"),
            Some("Basic"),
            Some(&*format!("Basic {no_login}")),
        ] {
            assert_eq!(basic(bad).unwrap_err().status, 401, "{bad:?}");
        }
    }

    #[test]
    fn the_guard_follows_the_bound_address() {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 1));
        let any = SocketAddr::from(([0, 0, 0, 0], 1));
        assert_eq!(Guard::for_addr(loopback, true), Guard::Loopback);
        assert_eq!(Guard::for_addr(any, false), Guard::Login { tls: false });
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, 1));
        assert_eq!(Guard::for_addr(v6, false), Guard::Loopback);
    }
}
