//! STOMP protocol versions.
//!
//! Owns the three versions and their spelling in `accept-version` and `version`
//! headers. Choosing a version between two peers is `stompkit-negotiate`'s job.

use std::fmt;

/// A STOMP protocol version. Ordered: `V1_0 < V1_1 < V1_2`.
///
/// ```
/// use stompkit_frame::Version;
/// assert_eq!("1.2".parse::<Version>(), Ok(Version::V1_2));
/// assert!(Version::V1_1 < Version::V1_2);
/// assert_eq!(Version::V1_0.to_string(), "1.0");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// STOMP 1.0: no escaping, no heart-beats, no NACK.
    V1_0,
    /// STOMP 1.1: escaping of `\n \c \\`, heart-beats, NACK.
    V1_1,
    /// STOMP 1.2: adds `\r`, CRLF line ends, the MESSAGE `ack` header.
    V1_2,
}

impl Version {
    /// All versions, oldest first.
    pub const ALL: [Version; 3] = [Version::V1_0, Version::V1_1, Version::V1_2];

    /// The spelling used in `accept-version` and `version` headers.
    pub const fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    /// Reads `1.0`, `1.1` or `1.2`; anything else is `None`.
    pub fn from_bytes(bytes: &[u8]) -> Option<Version> {
        match bytes {
            b"1.0" => Some(Version::V1_0),
            b"1.1" => Some(Version::V1_1),
            b"1.2" => Some(Version::V1_2),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Version {
    type Err = UnknownVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::from_bytes(s.as_bytes()).ok_or(UnknownVersion)
    }
}

/// The text is not `1.0`, `1.1` or `1.2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownVersion;

impl fmt::Display for UnknownVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown STOMP version")
    }
}

impl std::error::Error for UnknownVersion {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip_and_order() {
        for v in Version::ALL {
            assert_eq!(v.as_str().parse::<Version>(), Ok(v));
        }
        assert!(Version::V1_0 < Version::V1_1 && Version::V1_1 < Version::V1_2);
        assert_eq!("2.0".parse::<Version>(), Err(UnknownVersion));
        assert_eq!("1.2 ".parse::<Version>(), Err(UnknownVersion));
    }
}
