//! Options shared by several commands: where the broker is, how to log in, ack
//! modes, `name:value` headers.

use crate::bench::proto::Credentials;
use crate::target::Target;
use crate::transport::{TlsConfig, tls_config};
use anyhow::Result;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use stompkit_frame::AckMode;

/// Where the broker is and how to log in.
#[derive(Args, Clone, Debug)]
pub struct BrokerArgs {
    /// Broker address: stomp://HOST:PORT (TCP), stomp+ssl://HOST:PORT (TLS),
    /// ws://HOST:PORT/PATH or wss://HOST:PORT/PATH (STOMP over WebSocket). TLS
    /// needs a build with the "tls" feature (the default).
    #[arg(long, env = "STOMPKIT_URL", default_value = "stomp://127.0.0.1:61613")]
    pub url: String,
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
    /// `--ca-file` (or the system's roots).
    pub fn target(&self) -> Result<(Target, Option<TlsConfig>)> {
        let target = Target::parse(&self.url)?;
        let tls = tls_config(&target, self.ca_file.as_deref())?;
        Ok((target, tls))
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
    use super::*;

    #[test]
    fn headers_split_at_the_first_colon() {
        assert_eq!(parse_header("a:b:c"), Ok(("a".into(), "b:c".into())));
        assert_eq!(parse_header("a:"), Ok(("a".into(), String::new())));
        assert!(parse_header(":b").is_err());
        assert!(parse_header("ab").is_err());
    }
}
