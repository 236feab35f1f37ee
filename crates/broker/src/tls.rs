//! TLS on listeners: rustls (through tokio-rustls) with the `ring` provider.
//!
//! Owns `[tls]` (certificate chain and private key PEM files), building the
//! rustls server config from them (one readable line when a file is missing or
//! holds nothing usable), the [`Certificates`] a reload replaces (new
//! handshakes see the new ones), and the server handshake with a deadline. What runs on
//! the decrypted stream (STOMP, WebSocket, or both told apart by their first
//! bytes) is the listener's business, exactly as on a plain socket.
//!
//! All of it needs the `tls` feature (on by default). Without it `[tls]` still
//! parses, so that a configured certificate is refused at start with one line
//! ([`check_no_tls_keys`]) rather than ignored.

use crate::config::{BrokerConfig, ConfigError, TlsConfig};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
#[cfg(feature = "tls")]
use tokio_rustls::rustls;
#[cfg(feature = "tls")]
use tokio_rustls::rustls::pki_types::pem::PemObject;
#[cfg(feature = "tls")]
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
#[cfg(feature = "tls")]
use tokio_rustls::rustls::sign::CertifiedKey;
#[cfg(feature = "tls")]
use tokio_rustls::server::TlsStream;

/// What accepts TLS on a listener: a `tokio_rustls::TlsAcceptor`.
#[cfg(feature = "tls")]
pub(crate) type Acceptor = tokio_rustls::TlsAcceptor;

/// What accepts TLS on a listener: without the `tls` feature there is none (a
/// type with no values).
#[cfg(not(feature = "tls"))]
#[derive(Clone)]
pub(crate) enum Acceptor {}

/// The one-line refusal of `what` (a listen entry, an upstream URL, a key) in a
/// build without the `tls` feature.
#[cfg_attr(feature = "tls", allow(dead_code))]
pub(crate) fn unavailable(what: impl Into<String>) -> ConfigError {
    ConfigError::TlsUnavailable(what.into())
}

/// In a build without the `tls` feature, refuses a configuration that sets a TLS
/// key (`[tls] cert_file`/`key_file`, `[relay] ca_file`/`tls_server_name`):
/// one line naming the first such key. With the feature, always `Ok`.
pub(crate) fn check_no_tls_keys(config: &BrokerConfig) -> Result<(), ConfigError> {
    if cfg!(feature = "tls") {
        return Ok(());
    }
    let keys = [
        ("[tls] cert_file", &config.tls.cert_file),
        ("[tls] key_file", &config.tls.key_file),
        ("[relay] ca_file", &config.relay.ca_file),
        ("[relay] tls_server_name", &config.relay.tls_server_name),
    ];
    match keys.iter().find(|(_, value)| !value.trim().is_empty()) {
        Some((key, value)) => Err(ConfigError::TlsUnavailable(format!("{key} = {value:?}"))),
        None => Ok(()),
    }
}

/// Why TLS listeners cannot get their certificate: one line naming the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// This build has no TLS (the `tls` feature is off).
    #[error(transparent)]
    Unavailable(#[from] ConfigError),
    /// `cert_file` or `key_file` is not set.
    #[error("TLS listeners need [tls] cert_file and key_file (PEM files)")]
    MissingFiles,
    /// A file cannot be read.
    #[error("cannot read TLS {what} file {path}: {error}")]
    Unreadable {
        /// `certificate` or `key`.
        what: &'static str,
        /// The configured path.
        path: String,
        /// Why it cannot be read.
        error: io::Error,
    },
    /// The certificate file is not PEM.
    #[error("TLS certificate file {path}: {error}")]
    BadCertificate {
        /// The configured path.
        path: String,
        /// The PEM error.
        error: String,
    },
    /// The certificate file holds no certificate.
    #[error("TLS certificate file {0} holds no PEM certificate")]
    NoCertificate(String),
    /// The key file holds no private key.
    #[error("TLS key file {0} holds no PEM private key")]
    NoKey(String),
    /// The key file is not PEM.
    #[error("TLS key file {path}: {error}")]
    BadKey {
        /// The configured path.
        path: String,
        /// The PEM error.
        error: String,
    },
    /// rustls refused the protocol versions.
    #[error("TLS: {0}")]
    Protocols(String),
    /// rustls refused the certificate with the key (they do not match, say).
    #[error("TLS certificate {cert} and key {key}: {error}")]
    Refused {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// rustls's reason.
        error: String,
    },
}

impl TlsConfig {
    /// The acceptor for TLS listeners and the certificates it presents:
    /// without the `tls` feature, always an error.
    #[cfg(not(feature = "tls"))]
    pub(crate) fn reloadable(&self) -> Result<(Acceptor, Arc<Certificates>), TlsSetupError> {
        Err(unavailable("TLS listeners").into())
    }

    /// The acceptor for TLS listeners: the ring provider, TLS 1.2 and 1.3, no
    /// client certificates. Errors are one line naming the file.
    #[cfg(feature = "tls")]
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, TlsSetupError> {
        Ok(self.reloadable()?.0)
    }

    /// [`acceptor`](TlsConfig::acceptor), and the [`Certificates`] it
    /// presents: replacing them changes what new handshakes see.
    #[cfg(feature = "tls")]
    pub(crate) fn reloadable(&self) -> Result<(Acceptor, Arc<Certificates>), TlsSetupError> {
        let certificates = Arc::new(Certificates {
            current: std::sync::RwLock::new(self.certified_key()?),
        });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Protocols(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(certificates.clone());
        Ok((Acceptor::from(Arc::new(config)), certificates))
    }

    /// The certificate chain and key from the files, checked to belong together.
    #[cfg(feature = "tls")]
    fn certified_key(&self) -> Result<Arc<CertifiedKey>, TlsSetupError> {
        if self.cert_file.is_empty() || self.key_file.is_empty() {
            return Err(TlsSetupError::MissingFiles);
        }
        let read = |path: &str, what: &'static str| {
            std::fs::read(path).map_err(|error| TlsSetupError::Unreadable {
                what,
                path: path.to_owned(),
                error,
            })
        };
        let pem = read(&self.cert_file, "certificate")?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsSetupError::BadCertificate {
                path: self.cert_file.clone(),
                error: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsSetupError::NoCertificate(self.cert_file.clone()));
        }
        let pem = read(&self.key_file, "key")?;
        let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                TlsSetupError::NoKey(self.key_file.clone())
            }
            e => TlsSetupError::BadKey {
                path: self.key_file.clone(),
                error: e.to_string(),
            },
        })?;
        let provider = rustls::crypto::ring::default_provider();
        CertifiedKey::from_der(certs, key, &provider)
            .map(Arc::new)
            .map_err(|e| TlsSetupError::Refused {
                cert: self.cert_file.clone(),
                key: self.key_file.clone(),
                error: e.to_string(),
            })
    }
}

/// The certificate TLS listeners present, replaceable while they run (a
/// configuration reload): each handshake takes the one current then, so a
/// connection already open keeps the one it was made with.
#[cfg(feature = "tls")]
pub(crate) struct Certificates {
    current: std::sync::RwLock<Arc<CertifiedKey>>,
}

/// Without the `tls` feature there are no certificates (a type with no values).
#[cfg(not(feature = "tls"))]
pub(crate) enum Certificates {}

/// A certificate and key read from `[tls]`'s files and checked, not yet
/// presented (see [`Certificates::present`]).
#[cfg(feature = "tls")]
pub(crate) struct Loaded(Arc<CertifiedKey>);

/// Without the `tls` feature nothing loads (a type with no values).
#[cfg(not(feature = "tls"))]
pub(crate) enum Loaded {}

impl Certificates {
    /// Reads and checks `config`'s files (blocking file reads: call it off
    /// the async threads). Errors are one line naming the file.
    pub(crate) fn load(config: &TlsConfig) -> Result<Loaded, TlsSetupError> {
        #[cfg(feature = "tls")]
        {
            Ok(Loaded(config.certified_key()?))
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = config;
            Err(unavailable("TLS listeners").into())
        }
    }

    /// Presents `loaded` from the next handshake on (connections already
    /// open keep theirs).
    pub(crate) fn present(&self, loaded: Loaded) {
        #[cfg(feature = "tls")]
        {
            *self
                .current
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = loaded.0;
        }
        #[cfg(not(feature = "tls"))]
        match loaded {}
    }
}

#[cfg(feature = "tls")]
impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Certificates")
    }
}

#[cfg(feature = "tls")]
impl rustls::server::ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The server side of the TLS handshake on `stream`, given at most `timeout` (a
/// peer that opens a socket and says nothing is dropped like one that never
/// sends CONNECT).
#[cfg(feature = "tls")]
pub(crate) async fn handshake<S>(
    acceptor: &Acceptor,
    stream: S,
    timeout: Duration,
) -> io::Result<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tokio::time::timeout(timeout, acceptor.accept(stream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
}

/// Without the `tls` feature there is no acceptor, so this is never called.
#[cfg(not(feature = "tls"))]
pub(crate) async fn handshake<S>(
    acceptor: &Acceptor,
    _stream: S,
    _timeout: Duration,
) -> io::Result<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match *acceptor {}
}

#[cfg(all(test, not(feature = "tls")))]
mod no_tls_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const NO_TLS: &str =
        "this build of stompkit has no TLS support (built without the \"tls\" feature)";

    #[test]
    fn tls_keys_are_refused_with_one_line() {
        assert!(check_no_tls_keys(&BrokerConfig::default()).is_ok());
        let mut config = BrokerConfig::default();
        config.tls.cert_file = "/etc/stompkit/cert.pem".into();
        let e = check_no_tls_keys(&config).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("[tls] cert_file = \"/etc/stompkit/cert.pem\": {NO_TLS}")
        );
        let mut config = BrokerConfig::default();
        config.relay.ca_file = "ca.pem".into();
        let e = check_no_tls_keys(&config).unwrap_err().to_string();
        assert!(
            e.starts_with("[relay] ca_file") && e.ends_with(NO_TLS),
            "{e}"
        );
        assert!(TlsConfig::default().reloadable().is_err());
    }

    #[tokio::test]
    async fn bind_refuses_a_tls_certificate() {
        let mut config = BrokerConfig::default();
        config.server.listen = vec!["127.0.0.1:0".into()];
        config.tls.key_file = "key.pem".into();
        let e = crate::Broker::bind(config).await.err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let text = e.to_string();
        assert!(
            text.contains("[tls] key_file") && text.ends_with(NO_TLS),
            "{text}"
        );
        assert!(!text.contains('\n'));
    }
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Files {
        dir: std::path::PathBuf,
        config: TlsConfig,
        cert: rustls::pki_types::CertificateDer<'static>,
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn files(name: &str) -> Files {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let dir = std::env::temp_dir().join(format!("stompkit-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert_file = dir.join("cert.pem");
        let key_file = dir.join("key.pem");
        std::fs::write(&cert_file, ck.cert.pem()).unwrap();
        std::fs::write(&key_file, ck.signing_key.serialize_pem()).unwrap();
        Files {
            config: TlsConfig {
                cert_file: cert_file.display().to_string(),
                key_file: key_file.display().to_string(),
            },
            cert: ck.cert.der().clone(),
            dir,
        }
    }

    #[test]
    fn missing_empty_and_mismatched_files_are_one_line_errors() {
        let unset = TlsConfig::default();
        assert!(!unset.is_configured());
        assert!(
            unset
                .acceptor()
                .err()
                .unwrap()
                .to_string()
                .contains("cert_file")
        );
        let f = files("errors");
        let missing = TlsConfig {
            cert_file: "/nonexistent/cert.pem".into(),
            ..f.config.clone()
        };
        let e = missing.acceptor().err().unwrap().to_string();
        assert!(
            e.contains("/nonexistent/cert.pem") && !e.contains('\n'),
            "{e}"
        );
        // The key file holds a certificate, the certificate file a key.
        let swapped = TlsConfig {
            cert_file: f.config.key_file.clone(),
            key_file: f.config.cert_file.clone(),
        };
        assert!(
            swapped
                .acceptor()
                .err()
                .unwrap()
                .to_string()
                .contains("no PEM certificate")
        );
        // A key that does not belong to the certificate.
        let other = files("other");
        let mismatched = TlsConfig {
            cert_file: f.config.cert_file.clone(),
            key_file: other.config.key_file.clone(),
        };
        assert!(mismatched.acceptor().is_err());
        assert!(f.config.acceptor().is_ok());
    }

    #[tokio::test]
    async fn handshake_then_bytes_flow_and_a_silent_peer_times_out() {
        let f = files("handshake");
        let acceptor = f.config.acceptor().unwrap();
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let mut tls = handshake(&acceptor, server_io, Duration::from_secs(10))
                .await
                .unwrap();
            let mut buf = [0u8; 5];
            tls.read_exact(&mut buf).await.unwrap();
            tls.write_all(&buf).await.unwrap();
            tls.flush().await.unwrap();
            (acceptor, tls)
        });
        let mut roots = rustls::RootCertStore::empty();
        roots.add(f.cert.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, client_io).await.unwrap();
        tls.write_all(b"hello").await.unwrap();
        let mut echo = [0u8; 5];
        tls.read_exact(&mut echo).await.unwrap();
        assert_eq!(&echo, b"hello");
        let (acceptor, _keep) = server.await.unwrap();

        let (_silent, server_io) = tokio::io::duplex(1024);
        let e = handshake(&acceptor, server_io, Duration::from_millis(50))
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
