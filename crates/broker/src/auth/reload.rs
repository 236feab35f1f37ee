//! A configuration reload's authenticator: what changes for the sessions that
//! are already open.
//!
//! Owns [`Authenticator::reloaded`] (the new users and rules, with the login
//! throttling of the old one kept) and [`Authenticator::recheck`] (an open
//! session's principal under the new rules: new permissions, or its access is
//! gone).

use super::{AuthSetupError, Authenticator, Credential, Principal};
use crate::auth::config::AuthConfig;
use crate::authz::Permissions;
use std::sync::Arc;

/// What a reloaded configuration says of an open session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recheck {
    /// It stays, with these permissions from its next frame on.
    Permissions(Arc<Permissions>),
    /// Its login is no user any more: ERROR and close.
    UserRemoved,
    /// It is anonymous and anonymous access is off now: ERROR and close.
    AnonymousRemoved,
}

impl Authenticator {
    /// The authenticator of a reloaded `[auth]`, checked as at start. It keeps
    /// this one's login throttling (failures per address, the verification
    /// slots and their memory): a reload does not forgive recent failures.
    pub fn reloaded(&self, config: &AuthConfig) -> Result<Authenticator, AuthSetupError> {
        let mut next = Authenticator::new(config)?;
        next.failures = self.failures.clone();
        next.verify_slots = self.verify_slots.clone();
        next.memory = self.memory.clone();
        Ok(next)
    }

    /// `principal` (a session opened before a reload) under this
    /// authenticator's rules, checked the way its login was: a configured
    /// user gets its entry's permissions; a password login that is no user
    /// any more is removed; a token login of no user gets the token logins'
    /// default permissions while tokens are accepted, and is removed when
    /// they are not; an anonymous session gets the anonymous permissions, or
    /// is removed when anonymous access is off.
    pub fn recheck(&self, principal: &Principal) -> Recheck {
        let Some(login) = principal.login.as_deref() else {
            return match &self.anonymous {
                Some(permissions) => Recheck::Permissions(permissions.clone()),
                None => Recheck::AnonymousRemoved,
            };
        };
        if let Some(user) = self.users.get(login) {
            return Recheck::Permissions(user.permissions.clone());
        }
        match principal.credential {
            Credential::Token if self.token_secret.is_some() => {
                Recheck::Permissions(self.default_permissions.clone())
            }
            _ => Recheck::UserRemoved,
        }
    }
}
