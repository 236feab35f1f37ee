//! Who may SEND to and SUBSCRIBE to which destination, and how a refusal is
//! worded.
//!
//! Owns the question put to a [`Principal`]'s permissions, what a
//! configuration reload makes of them ([`reauthorize`]), and the body of ERROR
//! `forbidden`. Does not log (each session logs its refusals its own way) nor
//! decide whether a session checks permissions at all (a relay without its own
//! login leaves that to the upstream).

use super::ProtocolError;
use crate::auth::{Authenticator, Principal, Recheck};
use stompkit_frame::Command;

/// A configuration reload: `principal` as `auth` (the new authenticator)
/// sees it. Its permissions are replaced (they apply from the next frame), or
/// the ERROR that closes its session is returned (a removed user, or an
/// anonymous client once anonymous access is off).
pub(crate) fn reauthorize(
    auth: &Authenticator,
    principal: &mut Principal,
) -> Result<(), ProtocolError> {
    match auth.recheck(principal) {
        Recheck::Permissions(permissions) => {
            principal.permissions = permissions;
            Ok(())
        }
        Recheck::UserRemoved => Err(ProtocolError::UserRemoved),
        Recheck::AnonymousRemoved => Err(ProtocolError::AnonymousRemoved),
    }
}

/// Whether `principal` may SEND to (for [`Command::Send`]) or SUBSCRIBE to
/// (any other command) `destination`.
pub(crate) fn may(principal: &Principal, command: Command, destination: &str) -> bool {
    match command {
        Command::Send => principal.permissions.may_send(destination),
        _ => principal.permissions.may_subscribe(destination),
    }
}

/// The principal as a refusal names it: its login, or `anonymous clients`.
pub(crate) fn who(principal: Option<&Principal>) -> &str {
    match principal.and_then(|p| p.login.as_deref()) {
        None | Some("") => "anonymous clients",
        Some(login) => login,
    }
}

/// The body of ERROR `forbidden`: who may not do what where.
pub(crate) fn forbidden_body(
    principal: Option<&Principal>,
    command: Command,
    destination: &str,
) -> String {
    let action = if command == Command::Send {
        "send to"
    } else {
        "subscribe to"
    };
    format!("{} may not {action} {destination}", who(principal))
}
