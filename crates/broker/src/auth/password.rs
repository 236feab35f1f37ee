//! Password hashes: argon2id in the PHC string format.
//!
//! Owns hashing a new password (what `stompkit-broker passwd` prints), checking a
//! configured hash is an argon2id PHC string, verifying a password (slow on
//! purpose: the caller runs it off the network threads) in caller-owned memory
//! ([`verify_in`]), so a server that keeps a few buffers allocates nothing per
//! login, and the dummy hash an unknown login is verified against so it takes as
//! long as a wrong password.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// Why a configured hash is unusable.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Not a PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
    #[error("not a PHC password hash string: {0}")]
    Format(String),
    /// A PHC string of another algorithm.
    #[error("password hash algorithm is {0}, expected argon2id")]
    Algorithm(String),
}

/// Hashes `password` with argon2id, a random salt and the default parameters
/// (19 MiB, 2 passes, 1 lane: OWASP's recommended minimum).
///
/// ```
/// let hash = stompkit_broker::auth::password::hash("correct horse").unwrap();
/// assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
/// assert!(stompkit_broker::auth::password::verify(&hash, "correct horse"));
/// ```
pub fn hash(password: &str) -> Result<String, HashError> {
    hash_with(password, Params::default())
}

/// Hashes `password` with argon2id and the given parameters.
pub fn hash_with(password: &str, params: Params) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Format(e.to_string()))
}

/// Checks that `hash` is an argon2id PHC string this build can verify.
pub fn check(hash: &str) -> Result<(), HashError> {
    params_of(hash).map(|_| ())
}

/// Whether `password` matches `hash` (false for an unusable hash). Slow by design.
pub fn verify(hash: &str, password: &str) -> bool {
    verify_in(hash, password, &mut Vec::new())
}

/// [`verify`] with the argon2 working memory in `memory` (grown to the hash's
/// memory cost when smaller, then kept by the caller for the next check). The
/// result is compared in constant time.
pub fn verify_in(hash: &str, password: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(params), Some(salt), Some(expected)) = (params_of(hash), parsed.salt, parsed.hash)
    else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let argon2 = Argon2::new(Algorithm::Argon2id, version, params);
    let computed = Output::init_with(expected.len(), |out| {
        argon2
            .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory[..blocks])
            .map_err(|_| argon2::password_hash::Error::Password)
    });
    // `Output`'s equality is constant-time.
    computed.is_ok_and(|c| c == expected)
}

/// A hash of a random password with the same cost parameters as `like` (the
/// default parameters when `like` is `None`): verifying an unknown login against
/// it costs what verifying a known login costs.
pub fn dummy(like: Option<&str>) -> Result<String, HashError> {
    let params = match like {
        Some(hash) => params_of(hash)?,
        None => Params::default(),
    };
    let mut secret = [0u8; 24];
    OsRng.fill_bytes(&mut secret);
    let password = SaltString::encode_b64(&secret).map_err(|e| HashError::Format(e.to_string()))?;
    hash_with(password.as_str(), params)
}

fn params_of(hash: &str) -> Result<Params, HashError> {
    let parsed = PasswordHash::new(hash).map_err(|e| HashError::Format(e.to_string()))?;
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return Err(HashError::Algorithm(parsed.algorithm.to_string()));
    }
    if parsed.hash.is_none() {
        return Err(HashError::Format("no hash value".to_owned()));
    }
    Params::try_from(&parsed).map_err(|e| HashError::Format(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters so the tests stay fast; the code paths are the same.
    fn cheap() -> Params {
        Params::new(256, 1, 1, None).unwrap()
    }

    #[test]
    fn hash_then_verify() {
        let h = hash_with("s3cret", cheap()).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=256,t=1,p=1$"), "{h}");
        assert!(verify(&h, "s3cret"));
        assert!(!verify(&h, "s3cret "));
        assert!(!verify(&h, ""));
        check(&h).unwrap();
    }

    #[test]
    fn reused_memory_gives_the_same_answers() {
        let small = hash_with("a", cheap()).unwrap();
        let big = hash_with("b", Params::new(2048, 1, 1, None).unwrap()).unwrap();
        let mut memory = Vec::new();
        assert!(verify_in(&small, "a", &mut memory));
        assert_eq!(memory.len(), 256);
        assert!(verify_in(&big, "b", &mut memory));
        assert_eq!(memory.len(), 2048);
        assert!(verify_in(&small, "a", &mut memory), "larger memory is fine");
        assert!(!verify_in(&small, "b", &mut memory));
        assert_eq!(memory.len(), 2048);
    }

    #[test]
    fn salts_differ() {
        assert_ne!(
            hash_with("same", cheap()).unwrap(),
            hash_with("same", cheap()).unwrap()
        );
    }

    #[test]
    fn default_parameters_are_owasp_minimum() {
        let h = hash("x").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
    }

    #[test]
    fn dummy_copies_cost_parameters() {
        let user = hash_with("pw", Params::new(512, 3, 1, None).unwrap()).unwrap();
        let d = dummy(Some(&user)).unwrap();
        assert!(d.starts_with("$argon2id$v=19$m=512,t=3,p=1$"), "{d}");
        assert!(!verify(&d, "pw"));
        assert!(!verify(&d, ""));
    }

    #[test]
    fn other_algorithms_and_garbage_are_refused() {
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, cheap())
            .hash_password(b"pw", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(matches!(check(&argon2i), Err(HashError::Algorithm(_))));
        assert!(matches!(check("plaintext"), Err(HashError::Format(_))));
        assert!(matches!(check(""), Err(HashError::Format(_))));
        assert!(!verify("plaintext", "plaintext"));
    }
}
