//! STOMP over TLS (`stomp+ssl://`) with `tokio-rustls` and the `ring` provider.
//!
//! Owns building a `rustls::ClientConfig` from a CA file (PEM) and the TLS
//! [`Connector`]. It bundles no root certificates: pass a config you built, or a
//! CA file.

use crate::client::Client;
use crate::client::config::ClientConfig;
use crate::client::connector::{Connector, Transport};
use crate::client::error::ClientError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;

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
    /// The CA file holds no usable certificate.
    #[error("no usable CA certificate in {0}")]
    NoCertificates(PathBuf),
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
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        roots.add(cert.map_err(io)?)?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoCertificates(path.to_path_buf()));
    }
    client_config_with_roots(roots)
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
        let _ = std::fs::remove_dir_all(dir);
    }
}
