//! Who may SEND to and SUBSCRIBE to which destination, and how a refusal is
//! worded.
//!
//! Owns the question put to a [`Principal`]'s permissions and the body of ERROR
//! `forbidden`. Does not log (each session logs its refusals its own way) nor
//! decide whether a session checks permissions at all (a relay without its own
//! login leaves that to the upstream).

use crate::auth::Principal;
use stompkit_frame::Command;

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
