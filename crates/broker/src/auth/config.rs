//! `[auth]`: users, tokens, anonymous access, login throttling, destination rules.
//!
//! Owns the configuration types only; [`Authenticator`](super::Authenticator)
//! checks them (hash format, secret length, duplicate logins) when the broker
//! starts. The users file (`users_file`) is TOML with the same `[[users]]` tables
//! as the main file, so hashes can live apart from the rest of the config.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A secret string: serialized as itself, never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no secret is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "Secret(\"\")"
        } else {
            "Secret(<redacted>)"
        })
    }
}

/// `[auth]`: who may connect and what they may do. See the sample config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Accept clients without a `login` header (default false). With no users and
    /// no token secret configured, every client is anonymous; the broker then
    /// starts only when every listener is on a loopback address, unless this is
    /// true.
    pub allow_anonymous: bool,
    /// A TOML file of more `[[users]]` tables (default none).
    pub users_file: String,
    /// The HMAC-SHA256 key for `v1.<expiry>.<signature>` token passcodes, at least
    /// 16 bytes (default empty: tokens off). Better set by
    /// `STOMPKIT_AUTH_TOKEN_SECRET` than written in a file.
    pub token_secret: Secret,
    /// Longest token lifetime accepted, in seconds: a token expiring further ahead
    /// is refused (default 86400).
    pub token_max_ttl_s: u64,
    /// A failed login waits this long before its ERROR, doubled for each recent
    /// failure from the same address (default 500 ms).
    pub failure_delay_ms: u64,
    /// The longest failure delay (default 16000 ms).
    pub max_failure_delay_ms: u64,
    /// Password verifications running at once (default 2). Each takes about the
    /// hash's memory cost (19 MiB by default) and one core.
    pub verify_concurrency: usize,
    /// Destination patterns users may SEND to when their entry has no `send`
    /// list, and token logins not listed as users (default `["**"]`: any).
    pub default_send: Vec<String>,
    /// Destination patterns users may SUBSCRIBE to when their entry has no
    /// `subscribe` list, and token logins not listed as users (default `["**"]`).
    pub default_subscribe: Vec<String>,
    /// Destination patterns anonymous clients may SEND to (default `["**"]`).
    pub anonymous_send: Vec<String>,
    /// Destination patterns anonymous clients may SUBSCRIBE to (default `["**"]`).
    pub anonymous_subscribe: Vec<String>,
    /// Users (`[[auth.users]]`), default none.
    pub users: Vec<UserConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        let any = || vec!["**".to_owned()];
        AuthConfig {
            allow_anonymous: false,
            users_file: String::new(),
            token_secret: Secret::default(),
            token_max_ttl_s: 86_400,
            failure_delay_ms: 500,
            max_failure_delay_ms: 16_000,
            verify_concurrency: 2,
            default_send: any(),
            default_subscribe: any(),
            anonymous_send: any(),
            anonymous_subscribe: any(),
            users: Vec::new(),
        }
    }
}

/// One `[[auth.users]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The `login` header value.
    pub login: String,
    /// argon2id PHC string from `stompkit-broker passwd LOGIN`; empty = this user
    /// logs in with tokens only.
    #[serde(default)]
    pub password_hash: String,
    /// Destination patterns this user may SEND to (default `default_send`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<Vec<String>>,
    /// Destination patterns this user may SUBSCRIBE to (default `default_subscribe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<Vec<String>>,
    /// May use the admin API on a non-loopback admin listener (default false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admin: bool,
}

/// The users file: `[[users]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsersFile {
    #[serde(default)]
    pub(crate) users: Vec<UserConfig>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted_in_debug_output() {
        let c = AuthConfig {
            token_secret: Secret::new("hunter2hunter2hunter2"),
            ..AuthConfig::default()
        };
        let text = format!("{c:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn users_parse_with_optional_rules() {
        let c: AuthConfig = toml::from_str(
            r#"
            [[users]]
            login = "alice"
            password_hash = "$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
            send = ["/topic/chat.*"]

            [[users]]
            login = "web"
            "#,
        )
        .unwrap();
        assert_eq!(c.users.len(), 2);
        assert_eq!(
            c.users[0].send.as_deref(),
            Some(&["/topic/chat.*".to_owned()][..])
        );
        assert_eq!(c.users[0].subscribe, None);
        assert_eq!(c.users[1].password_hash, "");
        assert!(toml::from_str::<AuthConfig>("[[users]]\nlogin = \"x\"\nbogus = 1\n").is_err());
    }
}
