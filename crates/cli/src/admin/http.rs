//! The admin listener over HTTP(S): one request, one answer, or one line
//! saying why not.
//!
//! Owns the HTTP client (`ureq`, blocking, with rustls for https:// trusting
//! `--ca-file` or the system's root certificates), the `Authorization: Basic`
//! header from `--login` and `--passcode`/`--token` (never a password in
//! clear to a host other than loopback), and turning every failure
//! (the listener unreachable, a refusal such as 401, 404 or any other non-2xx
//! status) into one readable error line naming the URL and the API's
//! `{"error": "..."}` text when there is one.

use super::credentials::Credentials;
use super::printable;
use anyhow::{Result, anyhow, bail};
use base64::Engine as _;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;
use ureq::Agent;

/// How long one request may take, connecting included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The most of an answer read (a peek of 1000 messages fits well within).
const MAX_BODY: u64 = 64 << 20;

/// A 2xx answer.
#[derive(Debug)]
pub struct Answer {
    /// Its body (empty for 204).
    pub body: String,
}

/// The admin listener at one base URL, with the credentials to send.
pub struct AdminClient {
    agent: Agent,
    base: String,
    authorization: Option<String>,
}

impl AdminClient {
    /// A client for the admin listener at `url` (`http://` or `https://`,
    /// a path after the address is ignored), sending `credentials` (login and
    /// passcode or token) as HTTP Basic; https:// trusts `ca_file` when given.
    ///
    /// A password is never sent in clear off the machine: with plain http://
    /// to a host other than loopback it is an error before anything is sent.
    pub fn new(
        url: &str,
        credentials: Option<&Credentials<'_>>,
        ca_file: Option<&Path>,
    ) -> Result<Self> {
        let (https, base) = base_url(url)?;
        let in_clear = |c: &&Credentials<'_>| !https && c.is_password() && !is_loopback(&base);
        if let Some(c) = credentials.filter(in_clear) {
            bail!(
                "--admin-url {base} is plain http:// off loopback: the password ({}) \
                 would cross the network in clear; use an https:// URL or --token",
                c.named
            );
        }
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .max_redirects(0);
        let config = match https {
            true => tls::trusting(config, ca_file)?,
            false => config,
        };
        let authorization = credentials.map(|c| {
            let pair = format!("{}:{}", c.login, c.secret);
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            format!("Basic {encoded}")
        });
        Ok(AdminClient {
            agent: config.build().into(),
            base,
            authorization,
        })
    }

    /// `GET path` (from `/api/...`).
    pub fn get(&self, path: &str) -> Result<Answer> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.get(&url);
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        self.answer(&url, request.call())
    }

    /// `DELETE path` (from `/api/...`).
    pub fn delete(&self, path: &str) -> Result<Answer> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.delete(&url);
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        self.answer(&url, request.call())
    }

    /// The answer to the request for `url`: its body when 2xx, else an error
    /// of one line.
    fn answer(
        &self,
        url: &str,
        sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Answer> {
        let mut response = sent.map_err(|e| unreachable_error(&self.base, &e))?;
        let status = response.status();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| {
                anyhow!(
                    "{url}: cannot read the answer: {}",
                    one_line(&e.to_string())
                )
            })?;
        if !status.is_success() {
            bail!("{}", refusal(url, status, &body));
        }
        Ok(Answer { body })
    }
}

/// Whether `url` is https, and its scheme and address without a trailing
/// path (the API's paths are absolute).
fn base_url(url: &str) -> Result<(bool, String)> {
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        bail!("--admin-url {url}: expected http://HOST:PORT or https://HOST:PORT");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        bail!("--admin-url {url}: no host");
    }
    let scheme = if https { "https" } else { "http" };
    Ok((https, format!("{scheme}://{authority}")))
}

/// Whether the host of `base` (`scheme://host[:port]`) is loopback:
/// `localhost`, an address in 127.0.0.0/8 or `[::1]` (the names the admin
/// listener itself takes for loopback; any other name may resolve elsewhere).
fn is_loopback(base: &str) -> bool {
    let authority = base.split_once("://").map_or(base, |(_, a)| a);
    // Anything before an `@` is user information, not the host.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').map_or("", |(ip, _)| ip),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// One line for a request that got no HTTP answer.
fn unreachable_error(base: &str, e: &ureq::Error) -> anyhow::Error {
    let why = match e {
        ureq::Error::Io(io) => io.to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_owned(),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        ureq::Error::Timeout(_) => format!("no answer within {}s", TIMEOUT.as_secs()),
        other => other.to_string(),
    };
    anyhow!(
        "cannot reach the admin listener at {base}: {}",
        one_line(&why)
    )
}

/// One line for a non-2xx answer: its status and the API's error text.
fn refusal(url: &str, status: ureq::http::StatusCode, body: &str) -> String {
    let reason = status.canonical_reason().unwrap_or("");
    let detail = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
        .or_else(|| (!body.trim().is_empty()).then(|| body.trim().chars().take(200).collect()));
    let hint = match status.as_u16() {
        401 => " (give --login with --passcode or --token, as a user with admin = true)",
        _ => "",
    };
    match detail {
        Some(d) => one_line(&format!("{url}: {} {reason}: {d}{hint}", status.as_u16())),
        None => one_line(&format!("{url}: {} {reason}{hint}", status.as_u16())),
    }
}

/// `text` with its line breaks made spaces and its other control
/// characters escaped (an answer's text is the broker's, not ours).
fn one_line(text: &str) -> String {
    let joined = text
        .split(['\r', '\n'])
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    printable::message(&joined)
}

/// TLS settings for https:// admin URLs.
#[cfg(feature = "tls")]
mod tls {
    use anyhow::{Context as _, Result, bail};
    use std::path::Path;
    use ureq::config::ConfigBuilder;
    use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
    use ureq::typestate::AgentScope;

    /// `config` for https://, trusting the CA certificates in `ca_file` only,
    /// when given, else the system's root certificates.
    pub fn trusting(
        config: ConfigBuilder<AgentScope>,
        ca_file: Option<&Path>,
    ) -> Result<ConfigBuilder<AgentScope>> {
        let roots = match ca_file {
            Some(path) => from_ca_file(path)?,
            None => native()?,
        };
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::from(roots))
            .build();
        Ok(config.tls_config(tls))
    }

    /// The certificates of a PEM file.
    fn from_ca_file(path: &Path) -> Result<Vec<Certificate<'static>>> {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read CA file {}", path.display()))?;
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(&pem) {
            let item = item.with_context(|| format!("CA file {}: not PEM", path.display()))?;
            if let PemItem::Certificate(cert) = item {
                certs.push(cert);
            }
        }
        if certs.is_empty() {
            bail!("CA file {}: no certificate in it", path.display());
        }
        Ok(certs)
    }

    /// The system's root certificates.
    fn native() -> Result<Vec<Certificate<'static>>> {
        let found = rustls_native_certs::load_native_certs();
        let certs: Vec<Certificate<'static>> = found
            .certs
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        if certs.is_empty() {
            bail!(
                "cannot load the system's root certificates (give the admin listener's CA with --ca-file)"
            );
        }
        Ok(certs)
    }
}

/// Without the `tls` feature, https:// is refused with one line.
#[cfg(not(feature = "tls"))]
mod tls {
    use anyhow::{Result, bail};
    use std::path::Path;
    use ureq::config::ConfigBuilder;
    use ureq::typestate::AgentScope;

    /// Always an error: this build has no TLS.
    pub fn trusting(
        _config: ConfigBuilder<AgentScope>,
        _ca_file: Option<&Path>,
    ) -> Result<ConfigBuilder<AgentScope>> {
        bail!(
            "https:// admin URLs need TLS: this build of stompkit has none (built without the \"tls\" feature)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_url_keeps_scheme_and_address_only() {
        let base = |u: &str| base_url(u).map_err(|e| e.to_string());
        assert_eq!(
            base("http://127.0.0.1:61680"),
            Ok((false, "http://127.0.0.1:61680".into()))
        );
        assert_eq!(
            base("http://127.0.0.1:61680/"),
            Ok((false, "http://127.0.0.1:61680".into()))
        );
        assert_eq!(base("https://h:1/api?x"), Ok((true, "https://h:1".into())));
        assert!(
            base("stomp://h:1")
                .unwrap_err()
                .contains("expected http://")
        );
        assert!(base("http:///x").unwrap_err().contains("no host"));
    }

    #[test]
    fn loopback_hosts_are_localhost_127_and_ipv6_one() {
        for base in [
            "http://localhost:61680",
            "http://LocalHost",
            "http://127.0.0.1:61680",
            "http://127.9.8.7:1",
            "http://[::1]:61680",
            "http://[::1]",
            "http://ops@127.0.0.1:1",
        ] {
            assert!(is_loopback(base), "{base}");
        }
        for base in [
            "http://0.0.0.0:61680",
            "http://10.0.0.1:61680",
            "http://mq.example.com:61680",
            "http://localhost.example.com:1",
            "http://[::2]:1",
            "http://[::1",
            "http://127.0.0.1@mq.example.com:1",
        ] {
            assert!(!is_loopback(base), "{base}");
        }
    }

    #[test]
    fn a_password_is_refused_before_plain_http_off_loopback() {
        let password = Credentials {
            login: "ops",
            secret: "ops-pass",
            named: "$STOMPKIT_PASSCODE",
        };
        let e = AdminClient::new("http://10.1.2.3:61680", Some(&password), None)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "--admin-url http://10.1.2.3:61680 is plain http:// off loopback: the password \
                 ($STOMPKIT_PASSCODE) would cross the network in clear; use an https:// URL or --token"
            )
        );
        let signature = "s".repeat(43);
        let token = format!("v1.1765000000.{signature}");
        let token = Credentials {
            secret: &token,
            ..password
        };
        assert!(AdminClient::new("http://10.1.2.3:61680", Some(&token), None).is_ok());
        assert!(AdminClient::new("http://127.0.0.1:61680", Some(&password), None).is_ok());
        assert!(AdminClient::new("http://10.1.2.3:61680", None, None).is_ok());
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn https_is_refused_without_the_tls_feature() {
        let e = AdminClient::new("https://h:1", None, None)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("without the \"tls\" feature")));
    }

    #[test]
    fn a_refusal_is_one_line_with_the_apis_error() {
        let status = ureq::http::StatusCode::UNAUTHORIZED;
        let line = refusal(
            "http://h/api/queues",
            status,
            "{\"error\":\"login\\nneeded\"}",
        );
        assert_eq!(
            line,
            "http://h/api/queues: 401 Unauthorized: login needed \
             (give --login with --passcode or --token, as a user with admin = true)"
        );
        let status = ureq::http::StatusCode::NOT_FOUND;
        assert_eq!(
            refusal("u", status, "{\"error\":\"no queue \\u001b[2Jx\\\\y\"}"),
            "u: 404 Not Found: no queue \\x1b[2Jx\\y"
        );
        assert_eq!(refusal("u", status, ""), "u: 404 Not Found");
        assert_eq!(
            refusal("u", status, "no such\nthing"),
            "u: 404 Not Found: no such thing"
        );
    }
}
