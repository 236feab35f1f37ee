//! Signed login tokens: short-lived passcodes a web backend mints for a browser.
//!
//! A token is the passcode `v1.<expiry>.<signature>`: `expiry` is a Unix time in
//! seconds (decimal), `signature` is base64url without padding of
//! HMAC-SHA256(key = the shared secret, message = login ‖ 0x00 ‖ expiry as written).
//! It is valid for that login until `expiry`, and only when `expiry` is at most the
//! configured maximum lifetime ahead, so a leaked secret-holder cannot mint
//! everlasting tokens by accident. The signature is checked in constant time.
//! Pure functions: the caller passes the current time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The passcode prefix of a version-1 token.
pub const PREFIX: &str = "v1.";

/// Why a token was not accepted (logged, never sent to the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the form `v1.<expiry>.<signature>`.
    #[error("malformed token")]
    Malformed,
    /// The signature does not match the login and expiry.
    #[error("bad token signature")]
    BadSignature,
    /// `expiry` has passed.
    #[error("token expired")]
    Expired,
    /// `expiry` is further ahead than the configured maximum lifetime.
    #[error("token lifetime exceeds the configured maximum")]
    TooLong,
}

/// Whether `passcode` has the shape of a token (and so is never checked as a password).
pub fn is_token(passcode: &str) -> bool {
    split(passcode).is_some()
}

/// Mints the token for `login` that expires at `expiry` (Unix seconds).
///
/// ```
/// use stompkit_broker::auth::token;
/// let t = token::mint(b"a secret of at least sixteen bytes", "alice", 1_700_000_000);
/// assert!(t.starts_with("v1.1700000000."));
/// assert_eq!(token::verify(b"a secret of at least sixteen bytes", "alice", &t, 1_699_999_000, 3600), Ok(()));
/// ```
pub fn mint(secret: &[u8], login: &str, expiry: u64) -> String {
    let expiry = expiry.to_string();
    let signature = URL_SAFE_NO_PAD.encode(mac(secret, login, &expiry).finalize().into_bytes());
    format!("{PREFIX}{expiry}.{signature}")
}

/// Checks `passcode` as a token for `login` at time `now` (Unix seconds), allowing
/// at most `max_ttl` seconds between `now` and the expiry.
pub fn verify(
    secret: &[u8],
    login: &str,
    passcode: &str,
    now: u64,
    max_ttl: u64,
) -> Result<(), TokenError> {
    let (expiry_text, expiry, signature) = split(passcode).ok_or(TokenError::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed)?;
    // `verify_slice` compares in constant time.
    mac(secret, login, expiry_text)
        .verify_slice(&signature)
        .map_err(|_| TokenError::BadSignature)?;
    if expiry <= now {
        return Err(TokenError::Expired);
    }
    if expiry - now > max_ttl {
        return Err(TokenError::TooLong);
    }
    Ok(())
}

/// `v1.<digits>.<43 base64url characters>` → (expiry as written, expiry, signature).
fn split(passcode: &str) -> Option<(&str, u64, &str)> {
    let rest = passcode.strip_prefix(PREFIX)?;
    let (expiry_text, signature) = rest.split_once('.')?;
    if expiry_text.is_empty()
        || expiry_text.len() > 20
        || !expiry_text.bytes().all(|b| b.is_ascii_digit())
        || signature.len() != 43
    {
        return None;
    }
    Some((expiry_text, expiry_text.parse().ok()?, signature))
}

fn mac(secret: &[u8], login: &str, expiry: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(login.as_bytes());
    mac.update(&[0]);
    mac.update(expiry.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_700_000_000;

    #[test]
    fn signature_is_hmac_sha256_of_login_nul_expiry() {
        // Reference value computed independently:
        // python3 -c 'import hmac,hashlib,base64;print(base64.urlsafe_b64encode(hmac.new(
        //   b"0123456789abcdef0123456789abcdef", b"alice\x001700003600",
        //   hashlib.sha256).digest()).rstrip(b"=").decode())'
        let token = mint(SECRET, "alice", NOW + 3600);
        assert_eq!(
            token,
            "v1.1700003600.vBe3uFAVIvCjVGEivnzG6GFBeiSQ_ZX63u3nLKNT2_Q"
        );
    }

    #[test]
    fn valid_until_expiry() {
        let token = mint(SECRET, "alice", NOW + 60);
        assert_eq!(verify(SECRET, "alice", &token, NOW, 3600), Ok(()));
        assert_eq!(verify(SECRET, "alice", &token, NOW + 59, 3600), Ok(()));
        assert_eq!(
            verify(SECRET, "alice", &token, NOW + 60, 3600),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(SECRET, "alice", &token, NOW + 10_000, 3600),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn other_login_secret_or_expiry_fails_the_signature() {
        let token = mint(SECRET, "alice", NOW + 60);
        assert_eq!(
            verify(SECRET, "bob", &token, NOW, 3600),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(b"another secret of sixteen+", "alice", &token, NOW, 3600),
            Err(TokenError::BadSignature)
        );
        let forged = token.replace(&(NOW + 60).to_string(), &(NOW + 61).to_string());
        assert_eq!(
            verify(SECRET, "alice", &forged, NOW, 3600),
            Err(TokenError::BadSignature)
        );
        // A login that embeds the separator cannot shift bytes into the expiry.
        let t = mint(SECRET, "a", NOW + 60);
        assert_eq!(
            verify(SECRET, "a\u{0}", &t, NOW, 3600),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn lifetime_beyond_the_maximum_is_refused() {
        let token = mint(SECRET, "alice", NOW + 7200);
        assert_eq!(
            verify(SECRET, "alice", &token, NOW, 3600),
            Err(TokenError::TooLong)
        );
        assert_eq!(verify(SECRET, "alice", &token, NOW + 3600, 3600), Ok(()));
    }

    #[test]
    fn malformed_tokens() {
        let good = mint(SECRET, "alice", NOW + 60);
        let sig = good.rsplit('.').next().unwrap();
        for bad in [
            "",
            "v1.",
            "v1..",
            "v2.1700000060.abc",
            &format!("v1.{}", NOW + 60),
            &format!("v1.-5.{sig}"),
            &format!("v1.+5.{sig}"),
            &format!("v1.99999999999999999999999.{sig}"),
            &format!("v1.{}.{}", NOW + 60, &sig[1..]),
            &format!("v1.{}.{sig}=", NOW + 60),
            "password",
        ] {
            assert!(!is_token(bad), "{bad:?}");
            assert_eq!(
                verify(SECRET, "alice", bad, NOW, 3600),
                Err(TokenError::Malformed),
                "{bad:?}"
            );
        }
        // Right shape, characters outside base64url.
        let bad = format!("v1.{}.{}", NOW + 60, "+".repeat(43));
        assert!(is_token(&bad));
        assert_eq!(
            verify(SECRET, "alice", &bad, NOW, 3600),
            Err(TokenError::Malformed)
        );
        assert!(is_token(&good));
    }
}
