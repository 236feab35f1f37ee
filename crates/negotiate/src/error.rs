//! Why a negotiation failed.
//!
//! Owns [`NegotiateError`] and the text a server puts in the ERROR frame it sends
//! when there is no common version (V4). It does not build that frame.

use stompkit_frame::Version;

/// A negotiation header was malformed, or the two sides have no version in common.
///
/// All three are the peer's fault: a server answers them with an ERROR frame and
/// closes the connection (V4, V8).
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum NegotiateError {
    /// The client's `accept-version` shares no version with `supported` (V3, V4).
    /// Display reads like `supported protocol versions are 1.0,1.1,1.2`.
    #[error("supported protocol versions are {}", join(supported))]
    NoCommonVersion {
        /// This side's versions, oldest first, without repeats.
        supported: Vec<Version>,
    },
    /// The `accept-version` value is not a comma-separated list of version
    /// numbers (V1): empty, an empty element, spaces, letters.
    #[error("malformed accept-version header")]
    BadAcceptVersion,
    /// The `heart-beat` value is not two non-negative integers `cx,cy` that fit in
    /// a `u64` (H1).
    #[error("malformed heart-beat header")]
    BadHeartBeat,
}

impl NegotiateError {
    /// For [`NegotiateError::NoCommonVersion`], this side's versions as an
    /// `accept-version`-style list (`1.0,1.1,1.2`), the value of the `version`
    /// header of the ERROR frame a server sends (V4). `None` for other errors.
    ///
    /// ```
    /// use stompkit_frame::Version;
    /// use stompkit_negotiate::negotiate_version;
    ///
    /// let err = negotiate_version(Some("1.1"), &[Version::V1_2]).unwrap_err();
    /// assert_eq!(err.supported_versions_header().as_deref(), Some("1.2"));
    /// ```
    pub fn supported_versions_header(&self) -> Option<String> {
        match self {
            NegotiateError::NoCommonVersion { supported } => Some(join(supported)),
            _ => None,
        }
    }
}

/// `1.0,1.1,1.2`.
fn join(versions: &[Version]) -> String {
    let mut out = String::with_capacity(versions.len() * 4);
    for (i, v) in versions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(v.as_str());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_no_common_version_lists_supported() {
        let err = NegotiateError::NoCommonVersion {
            supported: Version::ALL.to_vec(),
        };
        assert_eq!(
            err.to_string(),
            "supported protocol versions are 1.0,1.1,1.2"
        );
        assert_eq!(
            err.supported_versions_header().as_deref(),
            Some("1.0,1.1,1.2")
        );
        assert_eq!(
            NegotiateError::BadHeartBeat.supported_versions_header(),
            None
        );
        assert_eq!(
            NegotiateError::BadAcceptVersion.supported_versions_header(),
            None
        );
    }
}
