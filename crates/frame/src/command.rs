//! STOMP commands: the first line of every frame.
//!
//! Owns the closed set of commands that STOMP 1.0–1.2 define and their exact,
//! case-sensitive spelling (rule F4). It does not know which version allows which
//! command; that is the session's business.

use std::fmt;

/// A STOMP command, client or server side. Spelled exactly as on the wire (F4).
///
/// ```
/// use stompkit_frame::Command;
/// assert_eq!(Command::from_bytes(b"SEND"), Some(Command::Send));
/// assert_eq!(Command::from_bytes(b"send"), None); // commands are case-sensitive
/// assert_eq!(Command::Message.as_str(), "MESSAGE");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
    /// Client: open a session (all versions).
    Connect,
    /// Client: open a session; the 1.2 alias of CONNECT (V7).
    Stomp,
    /// Client: publish a message to a destination.
    Send,
    /// Client: register interest in a destination.
    Subscribe,
    /// Client: end a subscription.
    Unsubscribe,
    /// Client: acknowledge a message.
    Ack,
    /// Client: refuse a message (1.1+).
    Nack,
    /// Client: start a transaction.
    Begin,
    /// Client: commit a transaction.
    Commit,
    /// Client: roll back a transaction.
    Abort,
    /// Client: end the session gracefully.
    Disconnect,
    /// Server: the session is open.
    Connected,
    /// Server: a message delivered to a subscription.
    Message,
    /// Server: a frame carrying `receipt` has been processed.
    Receipt,
    /// Server: something went wrong; the connection closes after it.
    Error,
}

impl Command {
    /// Every command, clients' first.
    pub const ALL: [Command; 15] = [
        Command::Connect,
        Command::Stomp,
        Command::Send,
        Command::Subscribe,
        Command::Unsubscribe,
        Command::Ack,
        Command::Nack,
        Command::Begin,
        Command::Commit,
        Command::Abort,
        Command::Disconnect,
        Command::Connected,
        Command::Message,
        Command::Receipt,
        Command::Error,
    ];

    /// The command's exact wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Disconnect => "DISCONNECT",
            Command::Connected => "CONNECTED",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    /// Reads a command from its exact wire spelling; anything else is `None` (F4).
    #[inline]
    pub fn from_bytes(bytes: &[u8]) -> Option<Command> {
        use Command::*;
        // Told apart by length first; within a length each comparison is of a known
        // size, which the compiler turns into one or two word compares.
        let is = |c: Command| (c.as_str().as_bytes() == bytes).then_some(c);
        match bytes.len() {
            3 => is(Ack),
            4 => is(Send).or_else(|| is(Nack)),
            5 => is(Begin)
                .or_else(|| is(Abort))
                .or_else(|| is(Stomp))
                .or_else(|| is(Error)),
            6 => is(Commit),
            7 => is(Message).or_else(|| is(Receipt)).or_else(|| is(Connect)),
            9 => is(Subscribe).or_else(|| is(Connected)),
            10 => is(Disconnect),
            11 => is(Unsubscribe),
            _ => None,
        }
    }

    /// Whether frames of this command may carry a body: only SEND, MESSAGE and ERROR (F7).
    #[inline]
    pub const fn allows_body(self) -> bool {
        matches!(self, Command::Send | Command::Message | Command::Error)
    }

    /// Whether header names and values of this command are escaped in 1.1+:
    /// every command except CONNECT, STOMP and CONNECTED (E1).
    #[inline]
    pub const fn escapes_headers(self) -> bool {
        !matches!(self, Command::Connect | Command::Stomp | Command::Connected)
    }

    /// Whether a client sends this command (as opposed to a server).
    pub const fn is_client_command(self) -> bool {
        !matches!(
            self,
            Command::Connected | Command::Message | Command::Receipt | Command::Error
        )
    }

    /// Whether this command opens a session (CONNECT or its 1.2 alias STOMP, V7).
    pub const fn is_connect(self) -> bool {
        matches!(self, Command::Connect | Command::Stomp)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Command {
    type Err = UnknownCommand;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Command::from_bytes(s.as_bytes()).ok_or(UnknownCommand)
    }
}

/// The text is not one of STOMP's commands (they are case-sensitive, F4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownCommand;

impl fmt::Display for UnknownCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown STOMP command")
    }
}

impl std::error::Error for UnknownCommand {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_round_trips_through_its_spelling() {
        for c in Command::ALL {
            assert_eq!(Command::from_bytes(c.as_str().as_bytes()), Some(c));
            assert_eq!(c.as_str().parse::<Command>(), Ok(c));
        }
    }

    #[test]
    fn only_exact_spellings_are_commands() {
        let spelled = |bytes: &[u8]| {
            Command::ALL
                .into_iter()
                .find(|c| c.as_str().as_bytes() == bytes)
        };
        for c in Command::ALL {
            let spelling = c.as_str().as_bytes();
            for cut in 0..spelling.len() {
                let prefix = &spelling[..cut];
                assert_eq!(Command::from_bytes(prefix), spelled(prefix), "{c}");
            }
            let mut longer = spelling.to_vec();
            longer.push(b'S');
            assert_eq!(Command::from_bytes(&longer), spelled(&longer), "{c}");
            for i in 0..spelling.len() {
                let mut changed = spelling.to_vec();
                changed[i] ^= 0x20;
                assert_eq!(Command::from_bytes(&changed), None, "{c}");
            }
        }
    }

    #[test]
    fn f4_commands_are_case_sensitive() {
        assert_eq!(Command::from_bytes(b"send"), None);
        assert_eq!(Command::from_bytes(b"Send"), None);
        assert_eq!(Command::from_bytes(b"SEND "), None);
        assert_eq!(Command::from_bytes(b""), None);
    }

    #[test]
    fn f7_only_send_message_error_allow_a_body() {
        let with_body: Vec<_> = Command::ALL
            .into_iter()
            .filter(|c| c.allows_body())
            .collect();
        assert_eq!(with_body, [Command::Send, Command::Message, Command::Error]);
    }

    #[test]
    fn e1_connect_stomp_connected_are_never_escaped() {
        let unescaped: Vec<_> = Command::ALL
            .into_iter()
            .filter(|c| !c.escapes_headers())
            .collect();
        assert_eq!(
            unescaped,
            [Command::Connect, Command::Stomp, Command::Connected]
        );
    }
}
