//! STOMP over TLS (`stomp+ssl://`) with `tokio-rustls` and the `ring` provider.
//!
//! Owns building a `rustls::ClientConfig` from a CA file (PEM) or from the
//! system's root certificates ([`client_config_with_native_roots`], read with
//! `rustls-native-certs`: on Linux `/etc/ssl/certs` or `SSL_CERT_FILE` /
//! `SSL_CERT_DIR`), and the TLS [`Connector`]. It bundles no root certificates
//! of its own. Only with the `tls` feature (on by default).

use crate::client::Client;
use crate::client::config::ClientConfig;
use crate::client::connector::{Connector, Transport};
use crate::client::error::ClientError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The CA file could not be read.
    #[error("cannot read CA file {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The CA file is not valid PEM.
    #[error("invalid PEM in CA file {path}: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: rustls::pki_types::pem::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("no usable CA certificate in {0}")]
    NoCertificates(PathBuf),
    /// No root certificate could be loaded from the system's store.
    #[error("no usable root certificate in the system's store{}", native_errors(.0))]
    NoNativeRoots(Vec<String>),
    /// rustls refused the configuration or the handshake.
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
    /// The host is not a valid DNS name or IP address for certificate checking.
    #[error("invalid server name {0:?}")]
    ServerName(String),
    /// The TLS handshake failed.
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
}

/// A client config trusting the CA certificates in the PEM file `path`, with the
/// `ring` provider and rustls's safe default protocol versions.
pub fn client_config_from_ca_file(
    path: impl AsRef<Path>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let path = path.as_ref();
    let io = |source| TlsError::CaFile {
        path: path.to_path_buf(),
        source,
    };
    let pem = std::fs::read(path).map_err(io)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|source| TlsError::Pem {
            path: path.to_path_buf(),
            source,
        })?;
        roots.add(cert)?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoCertificates(path.to_path_buf()));
    }
    client_config_with_roots(roots)
}

/// The system's root certificates (`rustls-native-certs`: on Linux the
/// OpenSSL locations, `/etc/ssl/certs` and friends, or `SSL_CERT_FILE` /
/// `SSL_CERT_DIR`). Certificates rustls cannot parse are skipped; an error when
/// none is left.
pub fn native_roots() -> Result<rustls::RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(TlsError::NoNativeRoots(
            found.errors.iter().map(ToString::to_string).collect(),
        ));
    }
    if ignored > 0 || !found.errors.is_empty() {
        tracing::debug!(
            added,
            ignored,
            errors = ?found.errors,
            "system root certificates loaded with some skipped"
        );
    }
    Ok(roots)
}

/// A client config trusting the system's root certificates ([`native_roots`]),
/// with the `ring` provider: what to use when no CA file is given.
pub fn client_config_with_native_roots() -> Result<Arc<rustls::ClientConfig>, TlsError> {
    client_config_with_roots(native_roots()?)
}

/// A client config trusting the CA certificates in `ca_file` (only those) when
/// one is given, else the system's root certificates.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    match ca_file {
        Some(path) => client_config_from_ca_file(path),
        None => client_config_with_native_roots(),
    }
}

fn native_errors(errors: &[String]) -> String {
    match errors {
        [] => String::new(),
        errors => format!(": {}", errors.join("; ")),
    }
}

/// A client config trusting `roots`, with the `ring` provider.
pub fn client_config_with_roots(
    roots: rustls::RootCertStore,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A [`Connector`] for TLS over TCP to `addr`, checking the certificate for
/// `server_name`.
pub fn connector(
    addr: impl Into<String>,
    server_name: &str,
    tls: Arc<rustls::ClientConfig>,
) -> Connector {
    let addr: Arc<str> = Arc::from(addr.into());
    let server_name = server_name.to_string();
    let tls = TlsConnector::from(tls);
    Connector::from_fn(format!("tls {addr}"), move || {
        let (addr, server_name, tls) = (addr.clone(), server_name.clone(), tls.clone());
        async move {
            let name = ServerName::try_from(server_name.clone())
                .map_err(|_| TlsError::ServerName(server_name))?;
            let tcp = tokio::net::TcpStream::connect(&*addr).await?;
            tcp.set_nodelay(true)?;
            let stream = tls.connect(name, tcp).await.map_err(TlsError::Handshake)?;
            Ok(Box::new(stream) as Box<dyn Transport>)
        }
    })
}

/// Opens a session over TLS to `addr`, checking the certificate for `server_name`.
pub async fn connect(
    addr: impl Into<String>,
    server_name: &str,
    tls: Arc<rustls::ClientConfig>,
    config: ClientConfig,
) -> Result<Client, ClientError> {
    Client::connect_with(connector(addr, server_name, tls), config).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_empty_ca_file_is_an_error() {
        assert!(matches!(
            client_config_from_ca_file("/nonexistent/ca.pem"),
            Err(TlsError::CaFile { .. })
        ));
        let dir = std::env::temp_dir().join(format!("stompkit-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(
            client_config_from_ca_file(&empty),
            Err(TlsError::NoCertificates(_))
        ));
        let broken = dir.join("broken.pem");
        std::fs::write(&broken, b"-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
        let e = client_config_from_ca_file(&broken).unwrap_err();
        assert!(matches!(e, TlsError::Pem { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("broken.pem") && !text.contains('\n'),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn without_a_ca_file_the_system_roots_are_trusted() {
        // This machine's store (e.g. /etc/ssl/certs) has public roots.
        let roots = native_roots().unwrap();
        assert!(!roots.is_empty());
        assert!(client_config(None).is_ok());
        assert!(client_config_with_native_roots().is_ok());
    }
}
