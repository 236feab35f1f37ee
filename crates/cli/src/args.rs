//! Options shared by several commands: where the broker is, how to log in, ack
//! modes, `name:value` headers.

use crate::bench::proto::Credentials;
use crate::transport::{TlsConfig, tls_config};
use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use stompkit_frame::AckMode;
use stompkit_tokio::StompUrl;

/// Where the broker is and how to log in.
#[derive(Args, Clone, Debug)]
pub struct BrokerArgs {
    /// Broker address: stomp://HOST:PORT (TCP), stomp+ssl://HOST:PORT (TLS),
    /// ws://HOST:PORT/PATH or wss://HOST:PORT/PATH (STOMP over WebSocket). TLS
    /// needs a build with the "tls" feature (the default). Repeat it to name
    /// several brokers: send and sub connect to the first that answers, and
    /// sub fails over to the next when its connection is lost (bench takes one).
    #[arg(long, env = "STOMPKIT_URL", default_value = "stomp://127.0.0.1:61613")]
    pub url: Vec<String>,
    /// User name sent in CONNECT's login header.
    #[arg(long, env = "STOMPKIT_LOGIN")]
    pub login: Option<String>,
    /// Password sent in CONNECT's passcode header.
    #[arg(long, env = "STOMPKIT_PASSCODE", hide_env_values = true)]
    pub passcode: Option<String>,
    /// Value of CONNECT's host header (for RabbitMQ: the virtual host).
    #[arg(long, default_value = "/")]
    pub vhost: String,
    /// PEM file with the CA certificate(s) that signed the broker's certificate,
    /// for stomp+ssl:// and wss://: only these are trusted. Optional: without it
    /// the system's root certificates are trusted (e.g. /etc/ssl/certs).
    #[arg(long, value_name = "PEM", env = "STOMPKIT_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

impl BrokerArgs {
    /// The parsed `--url` and, for TLS URLs, the client configuration built from
    /// `--ca-file` (or the system's roots); an error when several `--url`s
    /// were given. A build without the `tls` feature refuses TLS URLs with one line.
    pub fn target(&self) -> Result<(StompUrl, Option<TlsConfig>)> {
        match self.targets()?.as_slice() {
            [one] => Ok(one.clone()),
            _ => bail!(
                "{} --url options given: this command takes one",
                self.url.len()
            ),
        }
    }

    /// Every `--url`, parsed, each with its TLS configuration (as [`target`](BrokerArgs::target)).
    pub fn targets(&self) -> Result<Vec<(StompUrl, Option<TlsConfig>)>> {
        if self.url.is_empty() {
            bail!("no --url given");
        }
        self.url
            .iter()
            .map(|url| {
                let target = StompUrl::parse(url)?;
                let tls = tls_config(&target, self.ca_file.as_deref())?;
                Ok((target, tls))
            })
            .collect()
    }

    /// The `--url`s as one text (for messages and reports).
    pub fn urls(&self) -> String {
        self.url.join(", ")
    }

    /// The CONNECT credentials.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            vhost: self.vhost.clone(),
            login: self.login.clone(),
            passcode: self.passcode.clone(),
        }
    }
}

/// A subscription's ack mode, as a command-line value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AckArg {
    /// The broker considers a message acknowledged once sent.
    Auto,
    /// The client ACKs; an ACK also covers every earlier message (cumulative).
    Client,
    /// The client ACKs each message on its own (STOMP 1.1+).
    ClientIndividual,
}

impl AckArg {
    /// The STOMP ack mode.
    pub fn mode(self) -> AckMode {
        match self {
            AckArg::Auto => AckMode::Auto,
            AckArg::Client => AckMode::Client,
            AckArg::ClientIndividual => AckMode::ClientIndividual,
        }
    }
}

/// Parses `name:value` (split at the first colon; the value may contain colons).
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("expected name:value, got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use stompkit_tokio::Scheme;

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_urls_are_refused_without_the_tls_feature() {
        for url in [
            "stomp+ssl://host:61614",
            "stomp+tls://host",
            "ssl://host:1",
            "tls://host:1",
            "wss://host/ws",
        ] {
            let e = anyhow::Error::from(StompUrl::parse(url).unwrap_err());
            assert_eq!(
                format!("{e:#}"),
                format!(
                    "{url}: this build of stompkit has no TLS support (built without the \"tls\" feature)"
                )
            );
        }
        assert!(StompUrl::parse("stomp://host").is_ok());
        assert!(StompUrl::parse("ws://host/ws").is_ok());
    }

    #[test]
    fn parses_the_schemes() {
        let tcp = StompUrl::parse("stomp://127.0.0.1:1234").unwrap();
        assert_eq!(
            (tcp.scheme(), tcp.host(), tcp.port()),
            (Scheme::Stomp, "127.0.0.1", 1234)
        );
        let tls = StompUrl::parse_any("stomp+ssl://broker.example").unwrap();
        assert_eq!(
            (tls.scheme(), tls.host(), tls.port()),
            (Scheme::StompSsl, "broker.example", 61614)
        );
        assert_eq!(
            StompUrl::parse("stomp://[::1]").unwrap().authority(),
            "[::1]:61613"
        );
        let ws = StompUrl::parse("ws://h:15674/ws").unwrap();
        assert_eq!(
            (ws.scheme(), ws.as_str(), ws.is_tls()),
            (Scheme::Ws, "ws://h:15674/ws", false)
        );
        // (`parse` refuses these two in a build without the `tls` feature.)
        let wss = StompUrl::parse_any("wss://h/ws").unwrap();
        assert!(wss.is_tls() && StompUrl::parse_any("stomp+ssl://h").unwrap().is_tls());
        assert!(!StompUrl::parse("stomp://h").unwrap().is_tls());
        assert_eq!(wss.to_string(), "wss://h/ws");
        assert!(StompUrl::parse("http://h").is_err());
        assert!(StompUrl::parse("stomp://h:x").is_err());
        assert!(StompUrl::parse("localhost:61613").is_err());
    }

    #[test]
    fn headers_split_at_the_first_colon() {
        assert_eq!(parse_header("a:b:c"), Ok(("a".into(), "b:c".into())));
        assert_eq!(parse_header("a:"), Ok(("a".into(), String::new())));
        assert!(parse_header(":b").is_err());
        assert!(parse_header("ab").is_err());
    }
}
