//! WebSocket sub-protocols for STOMP and what each allows.
//!
//! Owns the four names we offer (`v12.stomp`, `v11.stomp`, `v10.stomp`, `stomp`),
//! choosing the highest one a client offered, and the cap a sub-protocol puts on
//! the STOMP versions a CONNECT may then negotiate ([`Negotiated::allowed_versions`]).

use stompkit_frame::Version;

/// A STOMP WebSocket sub-protocol (`Sec-WebSocket-Protocol` value).
///
/// ```
/// use stompkit_ws::SubProtocol;
/// use stompkit_frame::Version;
/// assert_eq!(SubProtocol::choose(["v10.stomp, v11.stomp", "chat"]), Some(SubProtocol::V11));
/// assert_eq!(SubProtocol::V11.max_version(), Version::V1_1);
/// assert_eq!(SubProtocol::Stomp.allowed_versions(), &Version::ALL);
/// assert_eq!(SubProtocol::choose(["mqtt"]), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubProtocol {
    /// `stomp`: no version cap (ranked lowest only because it says nothing).
    Stomp,
    /// `v10.stomp`: STOMP 1.0 only.
    V10,
    /// `v11.stomp`: STOMP 1.0 and 1.1.
    V11,
    /// `v12.stomp`: every version.
    V12,
}

impl SubProtocol {
    /// Every sub-protocol we offer, in our order of preference.
    pub const ALL: [SubProtocol; 4] = [
        SubProtocol::V12,
        SubProtocol::V11,
        SubProtocol::V10,
        SubProtocol::Stomp,
    ];

    /// The `Sec-WebSocket-Protocol` spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            SubProtocol::Stomp => "stomp",
            SubProtocol::V10 => "v10.stomp",
            SubProtocol::V11 => "v11.stomp",
            SubProtocol::V12 => "v12.stomp",
        }
    }

    /// Reads one sub-protocol token (case-insensitive, as HTTP tokens compare).
    pub fn from_token(token: &str) -> Option<SubProtocol> {
        SubProtocol::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(token.trim()))
    }

    /// The highest STOMP version a CONNECT may negotiate under this sub-protocol.
    pub const fn max_version(self) -> Version {
        match self {
            SubProtocol::V10 => Version::V1_0,
            SubProtocol::V11 => Version::V1_1,
            SubProtocol::V12 | SubProtocol::Stomp => Version::V1_2,
        }
    }

    /// The STOMP versions a CONNECT may negotiate under this sub-protocol,
    /// oldest first (the shape `stompkit_negotiate::negotiate_version` takes).
    pub fn allowed_versions(self) -> &'static [Version] {
        versions_up_to(self.max_version())
    }

    /// The sub-protocol to answer with, given the client's
    /// `Sec-WebSocket-Protocol` header values (each a comma-separated list): our
    /// preferred one among those offered (`v12.stomp` over `v11.stomp` over
    /// `v10.stomp` over `stomp`), `None` when the client offered none of ours.
    pub fn choose<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<SubProtocol> {
        offered
            .into_iter()
            .flat_map(|value| value.split(','))
            .filter_map(SubProtocol::from_token)
            .max_by_key(|p| SubProtocol::ALL.len() - rank(*p))
    }
}

/// Position in [`SubProtocol::ALL`] (0 = preferred).
fn rank(p: SubProtocol) -> usize {
    SubProtocol::ALL
        .iter()
        .position(|q| *q == p)
        .unwrap_or(SubProtocol::ALL.len())
}

fn versions_up_to(max: Version) -> &'static [Version] {
    match max {
        Version::V1_0 => &Version::ALL[..1],
        Version::V1_1 => &Version::ALL[..2],
        Version::V1_2 => &Version::ALL[..],
    }
}

impl std::fmt::Display for SubProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the opening handshake settled, for the server's CONNECT handling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The sub-protocol we answered with; `None` when the client offered none of
    /// ours (or none at all): then every STOMP version is allowed.
    pub subprotocol: Option<SubProtocol>,
    /// The request path (without the query).
    pub path: String,
    /// The request's `Origin` header, if any (already checked against the policy).
    pub origin: Option<String>,
    /// The request's `Host` header, if any.
    pub host: Option<String>,
}

impl Negotiated {
    /// The highest STOMP version the CONNECT may negotiate: `v10.stomp` → 1.0,
    /// `v11.stomp` → 1.1, `v12.stomp`, `stomp` or none → 1.2.
    pub fn max_version(&self) -> Version {
        self.subprotocol
            .map_or(Version::V1_2, SubProtocol::max_version)
    }

    /// The STOMP versions the CONNECT may negotiate, oldest first: pass this to
    /// `stompkit_negotiate::negotiate_version` as the server's supported list.
    pub fn allowed_versions(&self) -> &'static [Version] {
        versions_up_to(self.max_version())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_offered_wins_whatever_the_order() {
        assert_eq!(
            SubProtocol::choose(["stomp, v10.stomp", "v12.stomp"]),
            Some(SubProtocol::V12)
        );
        assert_eq!(
            SubProtocol::choose(["stomp,v10.stomp"]),
            Some(SubProtocol::V10)
        );
        assert_eq!(SubProtocol::choose(["STOMP"]), Some(SubProtocol::Stomp));
        assert_eq!(SubProtocol::choose(["v13.stomp", "x"]), None);
        assert_eq!(SubProtocol::choose([]), None);
    }

    #[test]
    fn caps() {
        assert_eq!(SubProtocol::V10.allowed_versions(), &[Version::V1_0]);
        assert_eq!(
            SubProtocol::V11.allowed_versions(),
            &[Version::V1_0, Version::V1_1]
        );
        assert_eq!(SubProtocol::V12.allowed_versions(), &Version::ALL);
        let none = Negotiated {
            subprotocol: None,
            path: "/ws".into(),
            origin: None,
            host: None,
        };
        assert_eq!(none.max_version(), Version::V1_2);
        assert_eq!(none.allowed_versions(), &Version::ALL);
    }
}
