//! Choosing the protocol version of a session (V1–V4).
//!
//! Owns reading the client's `accept-version` header and picking the highest
//! version both sides support. It does not build the CONNECTED or ERROR frame;
//! for the ERROR frame's `version` header see
//! [`NegotiateError::supported_versions_header`].

use crate::{NegotiateError, grammar};
use stompkit_frame::Version;

/// Reads an `accept-version` value: a comma-separated list of version numbers (V1).
///
/// Returns the known versions (`1.0`, `1.1`, `1.2`) in the order given, without
/// repeats. A well-formed version number that is not one of those (`2.0`, `1.3`,
/// `3`) is ignored, so the result may be empty. A version number is digits
/// separated by single dots (`1*DIGIT *("." 1*DIGIT)`).
///
/// # Errors
/// [`NegotiateError::BadAcceptVersion`] for a malformed list: empty, an empty
/// element (`1.0,`, `1.0,,1.1`), spaces anywhere, letters or other characters.
///
/// ```
/// use stompkit_frame::Version;
/// use stompkit_negotiate::parse_accept_version;
///
/// assert_eq!(parse_accept_version("1.1,2.0,1.0").unwrap(), [Version::V1_1, Version::V1_0]);
/// assert!(parse_accept_version("1.0, 1.1").is_err());
/// ```
pub fn parse_accept_version(value: &str) -> Result<Vec<Version>, NegotiateError> {
    let tokens = grammar::version_list(value).ok_or(NegotiateError::BadAcceptVersion)?;
    let mut versions = Vec::with_capacity(tokens.len().min(Version::ALL.len()));
    for version in tokens.into_iter().filter_map(|t| t.parse::<Version>().ok()) {
        if !versions.contains(&version) {
            versions.push(version);
        }
    }
    Ok(versions)
}

/// Picks the highest version in both the client's `accept-version` header and
/// this side's `supported` list (V3).
///
/// `accept_version` is the header's value, `None` when the CONNECT frame has no
/// such header, which means the client speaks 1.0 only (V2).
///
/// # Errors
/// - [`NegotiateError::BadAcceptVersion`] when the header is malformed (see
///   [`parse_accept_version`]).
/// - [`NegotiateError::NoCommonVersion`] when nothing is shared (V4); it carries
///   `supported` (sorted, without repeats) for the ERROR frame.
///
/// ```
/// use stompkit_frame::Version;
/// use stompkit_negotiate::negotiate_version;
///
/// assert_eq!(negotiate_version(Some("1.0,1.1,1.2"), &Version::ALL).unwrap(), Version::V1_2);
/// assert_eq!(negotiate_version(None, &Version::ALL).unwrap(), Version::V1_0);
/// ```
pub fn negotiate_version(
    accept_version: Option<&str>,
    supported: &[Version],
) -> Result<Version, NegotiateError> {
    let offered = match accept_version {
        Some(value) => parse_accept_version(value)?,
        None => vec![Version::V1_0],
    };
    offered
        .into_iter()
        .filter(|v| supported.contains(v))
        .max()
        .ok_or_else(|| {
            let mut supported = supported.to_vec();
            supported.sort_unstable();
            supported.dedup();
            NegotiateError::NoCommonVersion { supported }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Version::{V1_0, V1_1, V1_2};

    #[test]
    fn v1_parses_lists() {
        assert_eq!(
            parse_accept_version("1.0,1.1,1.2").unwrap(),
            [V1_0, V1_1, V1_2]
        );
        assert_eq!(parse_accept_version("1.2").unwrap(), [V1_2]);
        assert_eq!(parse_accept_version("1.2,1.0").unwrap(), [V1_2, V1_0]);
        assert_eq!(parse_accept_version("1.1,1.1").unwrap(), [V1_1]);
    }

    #[test]
    fn v1_unknown_well_formed_versions_are_ignored() {
        assert_eq!(parse_accept_version("2.0,1.1").unwrap(), [V1_1]);
        assert_eq!(parse_accept_version("1.3,1.0,10.0.1").unwrap(), [V1_0]);
        assert_eq!(parse_accept_version("2.0").unwrap(), []);
        assert_eq!(parse_accept_version("1.00").unwrap(), []);
    }

    #[test]
    fn v1_malformed_lists_are_errors() {
        for bad in [
            "", ",", "1.0,", ",1.2", "1.0,,1.1", "1.0, 1.1", " 1.0", "1.0 ", "1.1\t", "a", "1.x",
            "v1.2", "1.", ".1", "1.0;1.1", "-1.0",
        ] {
            assert_eq!(
                parse_accept_version(bad),
                Err(NegotiateError::BadAcceptVersion),
                "{bad:?}"
            );
            assert_eq!(
                negotiate_version(Some(bad), &Version::ALL),
                Err(NegotiateError::BadAcceptVersion),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn v2_missing_header_means_1_0() {
        assert_eq!(negotiate_version(None, &Version::ALL), Ok(V1_0));
        assert_eq!(negotiate_version(None, &[V1_0]), Ok(V1_0));
        assert_eq!(
            negotiate_version(None, &[V1_1, V1_2]),
            Err(NegotiateError::NoCommonVersion {
                supported: vec![V1_1, V1_2]
            })
        );
    }

    #[test]
    fn v3_highest_common_version() {
        assert_eq!(
            negotiate_version(Some("1.0,1.1,1.2"), &[V1_0, V1_1, V1_2]),
            Ok(V1_2)
        );
        assert_eq!(
            negotiate_version(Some("1.2,1.0,1.1"), &[V1_0, V1_1, V1_2]),
            Ok(V1_2)
        );
        assert_eq!(
            negotiate_version(Some("1.0,1.1,1.2"), &[V1_0, V1_1]),
            Ok(V1_1)
        );
        assert_eq!(negotiate_version(Some("1.0,1.1"), &Version::ALL), Ok(V1_1));
        assert_eq!(negotiate_version(Some("1.0"), &Version::ALL), Ok(V1_0));
        assert_eq!(negotiate_version(Some("2.0,1.1"), &Version::ALL), Ok(V1_1));
    }

    #[test]
    fn v4_no_common_version_lists_the_servers_versions() {
        let err = negotiate_version(Some("1.1"), &[V1_2]).unwrap_err();
        assert_eq!(
            err,
            NegotiateError::NoCommonVersion {
                supported: vec![V1_2]
            }
        );
        assert_eq!(err.supported_versions_header().as_deref(), Some("1.2"));
        assert_eq!(err.to_string(), "supported protocol versions are 1.2");

        // As in the RabbitMQ capture: accept-version:2.0 -> version:1.0,1.1,1.2.
        let err = negotiate_version(Some("2.0"), &[V1_2, V1_0, V1_1, V1_2]).unwrap_err();
        assert_eq!(
            err.supported_versions_header().as_deref(),
            Some("1.0,1.1,1.2")
        );

        assert_eq!(
            negotiate_version(Some("1.0,1.1,1.2"), &[]),
            Err(NegotiateError::NoCommonVersion { supported: vec![] })
        );
    }
}
