//! Why an `[auth]` section does not check out, or why the safe defaults refuse
//! to start: [`AuthSetupError`]. Each message is one line, the one the broker
//! prints before exiting. Why one login is refused is not here: that is a
//! [`Verdict`](super::Verdict), logged with its reason.

use super::MIN_SECRET_LEN;
use super::password::HashError;
use std::io;
use std::net::SocketAddr;

/// Why [`Authenticator::new`](super::Authenticator::new) or
/// [`Authenticator::check_listeners`](super::Authenticator::check_listeners)
/// refused a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthSetupError {
    /// `users_file` cannot be read.
    #[error("cannot read users file {path}: {error}")]
    UsersFileUnreadable {
        /// The configured path.
        path: String,
        /// Why it cannot be read.
        error: io::Error,
    },
    /// `users_file` is not a valid users file.
    #[error("users file {path}: {error}")]
    UsersFileInvalid {
        /// The configured path.
        path: String,
        /// The TOML error.
        error: String,
    },
    /// A user has an empty login.
    #[error("a user has an empty login")]
    EmptyLogin,
    /// A user's `password_hash` is no usable argon2id hash.
    #[error("user {login:?}: password_hash: {error}")]
    PasswordHash {
        /// The user's login.
        login: String,
        /// What is wrong with the hash.
        error: HashError,
    },
    /// Two users have the same login.
    #[error("user {0:?} is configured twice")]
    DuplicateUser(String),
    /// `token_secret` is set but shorter than [`MIN_SECRET_LEN`] bytes.
    #[error(
        "token_secret is {0} bytes; use at least {MIN_SECRET_LEN} (32 random bytes, e.g. `openssl rand -base64 32`)"
    )]
    ShortSecret(usize),
    /// `verify_concurrency` is 0.
    #[error("verify_concurrency must be at least 1")]
    NoVerifyConcurrency,
    /// The dummy hash (for unknown logins) cannot be made.
    #[error("dummy hash: {0}")]
    DummyHash(HashError),
    /// Safe defaults: every client would be anonymous, and this address is not
    /// a loopback one.
    #[error(
        "refusing to listen on {0} without authentication: configure [auth] users or token_secret, or set allow_anonymous = true"
    )]
    AnonymousOnPublicAddress(SocketAddr),
}
