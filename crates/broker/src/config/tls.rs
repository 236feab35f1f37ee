//! `[tls]`: the certificate and key TLS listeners present. Only the settings;
//! building the acceptor and the handshake are `tls.rs`'s.

use serde::{Deserialize, Serialize};

/// `[tls]`: the certificate TLS listeners present.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the certificate chain, leaf first (default none).
    pub cert_file: String,
    /// PEM file with the private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) (default none).
    pub key_file: String,
}

impl TlsConfig {
    /// Whether a certificate is configured.
    pub fn is_configured(&self) -> bool {
        !self.cert_file.is_empty() || !self.key_file.is_empty()
    }
}
