//! `stompkit-broker`: run the broker.
//!
//! `cargo run --release -p stompkit-broker` listens on 127.0.0.1:61613 with
//! default limits, serving STOMP over TCP and over WebSocket (and the demo page)
//! on the same port, and keeps persistent messages and durable subscriptions in
//! `./stompkit-data` (created on first start). Options: `--data-dir DIR`
//! (`[store] dir`), `--in-memory` (keep nothing on disk), `--listen ADDR` (repeatable;
//! `ws://ADDR` for WebSocket only, `stomp://ADDR` for TCP STOMP only; over TLS
//! with the `[tls]` certificate: `tls://ADDR` for both, `wss://ADDR`,
//! `stomp+ssl://ADDR`),
//! `--ws-only`, `--config FILE` (TOML, see `stompkit.sample.toml`),
//! `--metrics ADDR`, `--log-level LEVEL`, `--log-format text|json` (`[server]
//! log_format`; json: one object per line), `--upstream URL` and
//! `--upstream-ca-file FILE` (relay mode, `[relay]`), `--version`. Every config key can also
//! be set with a `STOMPKIT_<SECTION>_<KEY>` environment variable; command-line
//! flags win. After binding it prints to stdout, per listener,
//! `stompkit-broker listening on stomp://<ip>:<port>` when it serves TCP STOMP and
//! `stompkit-broker websocket on ws://<ip>:<port>/ws` when it serves WebSocket
//! (the first configured path; `stomp+ssl://` and `wss://` on TLS listeners), then
//! `stompkit-broker metrics on http://<ip>:<port>/metrics` when enabled, then
//! `stompkit-broker admin on http://<ip>:<port>/` (`https://` over TLS) with
//! `--admin ADDR`. Logs go to stderr.
//! A configuration that cannot start (e.g. anonymous access on a non-loopback
//! address, an unknown `STOMPKIT_<SECTION>_<KEY>` variable) prints one line to
//! stderr and exits with status 2.
//!
//! SIGINT and SIGTERM shut down gracefully. SIGHUP reloads the configuration
//! (the `--config` file, the environment and the same flags again): users
//! (`[[auth.users]]`, `users_file`), permissions (`default_*`, `anonymous_*`,
//! per-user `send`/`subscribe`, `allow_anonymous`) and the TLS certificate
//! files change without dropping connections; open sessions get their new
//! permissions for their next frame, those of removed users ERROR `user
//! removed` and close (a token login of no user keeps the token logins'
//! rules, as a new token login gets them). Permissions apply to the frames
//! after the reload: a SUBSCRIBE accepted before it keeps receiving, even when
//! the new rules forbid it. Changed keys that need a restart are logged and
//! ignored. The log says `configuration reloaded`, or (error level) why the
//! reload failed, the previous configuration staying in force.
//!
//! Subcommands:
//! - `stompkit-broker passwd LOGIN` reads a password (without echo on a terminal,
//!   else the first line of stdin) and prints its argon2id hash for `[[auth.users]]`.
//! - `stompkit-broker token LOGIN --ttl 1h` prints a signed token passcode made
//!   with `[auth] token_secret` (from `--config` or `STOMPKIT_AUTH_TOKEN_SECRET`).
//! - `stompkit-broker check-config FILE` checks FILE (with the environment and
//!   flags) as a start would, short of binding, and prints the effective
//!   configuration as TOML with its secrets masked; exit status 0, or one line
//!   on stderr and 2.

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use stompkit_broker::auth::{password, token};
use stompkit_broker::{Broker, BrokerConfig, LogFormat, RunningBroker, raise_nofile_limit};

/// A STOMP 1.0/1.1/1.2 broker.
#[derive(Parser, Debug, Clone)]
#[command(name = "stompkit-broker", version, about)]
struct Args {
    /// Address to accept STOMP connections on, over TCP and WebSocket (repeatable; `ws://ADDR`: WebSocket only, `stomp://ADDR`: TCP only; TLS with the [tls] certificate: `tls://ADDR` both, `wss://ADDR`, `stomp+ssl://ADDR`) [default: 127.0.0.1:61613].
    #[arg(long = "listen", value_name = "ADDR")]
    listen: Vec<String>,
    /// Serve only STOMP over WebSocket on every listener: TCP STOMP clients get an ERROR.
    #[arg(long)]
    ws_only: bool,
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics and health at /healthz.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Serve the admin API, dashboard and metrics at http://ADDR/ ([admin] listen).
    #[arg(long, value_name = "ADDR")]
    admin: Option<String>,
    /// Log filter (error, warn, info, debug, trace or tracing directives).
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Log lines on stderr: text, or json (one object per line) ([server] log_format).
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
    /// Relay mode: relay every client session to this broker
    /// (stomp://HOST:PORT or stomp+ssl://HOST:PORT) with the client's own credentials.
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// PEM file of the CA certificates to trust for a stomp+ssl upstream (only
    /// these); default: the system's root certificates.
    #[arg(long, value_name = "FILE")]
    upstream_ca_file: Option<String>,
    /// Cluster mode: act as one broker with every node on this NATS deployment
    /// (nats://HOST:PORT or tls://HOST:PORT; repeatable; [cluster] servers).
    #[arg(long = "cluster", value_name = "URL")]
    cluster: Vec<String>,
    /// Keep persistent messages and durable subscriptions in DIR ([store] dir,
    /// STOMPKIT_STORE_DIR) [default: ./stompkit-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<String>,
    /// Keep nothing on disk: persistent messages and durable subscriptions are
    /// lost on restart ([store] in_memory).
    #[arg(long, conflicts_with = "data_dir")]
    in_memory: bool,
    #[command(subcommand)]
    command: Option<Tool>,
}

/// Helpers for the `[auth]` section, and checking a configuration.
#[derive(Subcommand, Debug, Clone)]
enum Tool {
    /// Check FILE (and the STOMPKIT_* variables and flags) as the broker does
    /// at start, short of binding, and print the effective configuration with
    /// its secrets masked. Exit status 0 when valid, 2 (one line on stderr)
    /// when not.
    CheckConfig {
        /// The TOML configuration file.
        file: PathBuf,
    },
    /// Read a password (no echo; stdin when not a terminal) and print its argon2id
    /// hash, for `password_hash` in `[[auth.users]]`.
    Passwd {
        /// The login the password is for (shown in the prompt).
        login: String,
    },
    /// Print a signed token passcode for LOGIN, made with `[auth] token_secret`.
    Token {
        /// The login the token is for.
        login: String,
        /// Lifetime: seconds, or a number with s, m, h or d (at most
        /// `token_max_ttl_s`).
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: Duration,
    },
}

/// `90`, `90s`, `15m`, `1h`, `2d` → a duration.
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: use e.g. 90s, 15m, 1h, 2d"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "invalid duration unit in {text:?}: use s, m, h or d"
            ));
        }
    };
    n.checked_mul(unit)
        .filter(|&s| s > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("invalid duration {text:?}"))
}

/// Descriptors the broker needs besides one per connection.
const NOFILE_RESERVE: u64 = 64;

fn main() -> ExitCode {
    match start(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the cause chain joined with ": ".
            eprintln!("stompkit-broker: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn start(args: Args) -> anyhow::Result<()> {
    if let Some(Tool::CheckConfig { file }) = &args.command {
        return check_config(&args, file);
    }
    let config = load_config(&args, args.config.as_deref())?;
    match args.command {
        Some(Tool::Passwd { ref login }) => return passwd(login),
        Some(Tool::Token { ref login, ttl }) => return mint_token(&config, login, ttl),
        _ => {}
    }
    init_logging(&config)?;
    // One descriptor per connection, plus listeners, logs and the runtime's own.
    let wanted = config.limits.max_connections as u64 + NOFILE_RESERVE;
    match raise_nofile_limit() {
        Ok(n) if n < wanted => tracing::warn!(
            limit = n,
            max_connections = config.limits.max_connections,
            "open-file limit (raised to the hard limit) is below max_connections: \
             connections beyond about {} will fail; raise the hard limit (ulimit -Hn) \
             or lower limits.max_connections",
            n.saturating_sub(NOFILE_RESERVE)
        ),
        Ok(n) => tracing::debug!(limit = n, "open-file limit raised to the hard limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise RLIMIT_NOFILE"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(config, args))
}

/// The configuration: `file` (when given) or the defaults, then the
/// `STOMPKIT_*` variables, then the command-line flags. A reload reads it again
/// the same way.
fn load_config(args: &Args, file: Option<&Path>) -> anyhow::Result<BrokerConfig> {
    let mut config = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            BrokerConfig::from_toml(&text).with_context(|| path.display().to_string())?
        }
        None => BrokerConfig::default(),
    }
    .with_env(std::env::vars())?;
    if !args.listen.is_empty() {
        config.server.listen = args.listen.clone();
    }
    if args.ws_only {
        config.websocket.ws_only = true;
    }
    if let Some(m) = &args.metrics {
        config.server.metrics = m.clone();
    }
    if let Some(a) = &args.admin {
        config.admin.listen = a.clone();
    }
    if let Some(l) = &args.log_level {
        config.server.log_level = l.clone();
    }
    if let Some(f) = &args.log_format {
        config.server.log_format = match f.as_str() {
            "json" => LogFormat::Json,
            _ => LogFormat::Text,
        };
    }
    if let Some(upstream) = &args.upstream {
        config.relay.upstream = upstream.clone();
    }
    if let Some(ca_file) = &args.upstream_ca_file {
        config.relay.ca_file = ca_file.clone();
    }
    if !args.cluster.is_empty() {
        config.cluster.servers = args.cluster.clone();
    }
    if let Some(dir) = &args.data_dir {
        config.store.dir = dir.clone();
    }
    if args.in_memory {
        config.store.in_memory = true;
    }
    Ok(config)
}

/// `check-config FILE`: checks, then prints the effective configuration.
fn check_config(args: &Args, file: &Path) -> anyhow::Result<()> {
    let config = load_config(args, Some(file))?;
    stompkit_broker::check_config(&config).with_context(|| file.display().to_string())?;
    let text = stompkit_broker::masked_toml(&config)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "# {}: valid. The effective configuration (file, STOMPKIT_* variables, flags), secrets masked:\n",
        file.display()
    )?;
    write!(stdout, "{text}")?;
    stdout.flush()?;
    Ok(())
}

/// Log lines to stderr, filtered by `log_level`, as text or JSON.
fn init_logging(config: &BrokerConfig) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.server.log_level)
        .with_context(|| format!("invalid [server] log_level {:?}", config.server.log_level))?;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.server.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    Ok(())
}

async fn run(config: BrokerConfig, args: Args) -> anyhow::Result<()> {
    catch_file_size_signal()?;
    // Before anything is printed: a SIGHUP from then on reloads.
    let mut signals = Signals::new();
    let ws_path = config.websocket.paths.first().cloned().unwrap_or_default();
    let broker = Broker::bind(config).await.context("cannot start")?;
    {
        let mut stdout = std::io::stdout().lock();
        for listener in broker.listeners() {
            let addr = listener.addr;
            let (stomp, ws) = match listener.tls {
                true => ("stomp+ssl", "wss"),
                false => ("stomp", "ws"),
            };
            if listener.stomp {
                writeln!(stdout, "stompkit-broker listening on {stomp}://{addr}")?;
            }
            if listener.websocket && !ws_path.is_empty() {
                writeln!(
                    stdout,
                    "stompkit-broker websocket on {ws}://{addr}{ws_path}"
                )?;
            }
        }
        if let Some(addr) = broker.metrics_addr() {
            writeln!(stdout, "stompkit-broker metrics on http://{addr}/metrics")?;
        }
        if let Some(url) = broker.admin_url() {
            writeln!(stdout, "stompkit-broker admin on {url}")?;
        }
        stdout.flush()?;
    }
    tracing::info!(addrs = ?broker.local_addrs(), "broker started");
    while signals.next().await == Signal::Reload {
        reload(&broker, &args).await;
    }
    tracing::info!("shutting down");
    broker.shutdown().await;
    Ok(())
}

/// `passwd LOGIN`: the argon2id hash of a password read without echo.
fn passwd(login: &str) -> anyhow::Result<()> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {login}: "))?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        bail!("empty password");
    }
    let hash = password::hash(&password)?;
    writeln!(std::io::stdout(), "{hash}")?;
    Ok(())
}

/// `token LOGIN --ttl T`: a `v1.<expiry>.<signature>` passcode.
fn mint_token(config: &BrokerConfig, login: &str, ttl: Duration) -> anyhow::Result<()> {
    let secret = config.auth.token_secret.expose();
    if secret.is_empty() {
        bail!("no token secret: set [auth] token_secret or STOMPKIT_AUTH_TOKEN_SECRET");
    }
    if ttl.as_secs() > config.auth.token_max_ttl_s {
        bail!(
            "--ttl {}s is longer than token_max_ttl_s ({}s): the broker would refuse it",
            ttl.as_secs(),
            config.auth.token_max_ttl_s
        );
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let token = token::mint(secret.as_bytes(), login, now + ttl.as_secs());
    writeln!(std::io::stdout(), "{token}")?;
    Ok(())
}

/// A write past `RLIMIT_FSIZE` must fail with `EFBIG` (the store reports it
/// and keeps serving) rather than kill the broker: a handler for `SIGXFSZ`
/// replaces the default action (tokio keeps it installed for the process's life).
fn catch_file_size_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        drop(signal(SignalKind::from_raw(libc::SIGXFSZ))?);
    }
    Ok(())
}

/// SIGHUP: read the configuration again and apply what can change while
/// running; one line says what happened.
async fn reload(broker: &RunningBroker, args: &Args) {
    let outcome = match load_config(args, args.config.as_deref()) {
        Ok(config) => broker.reload(config).await.map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(reloaded) => {
            if !reloaded.needs_restart.is_empty() {
                tracing::warn!(
                    keys = reloaded.needs_restart.join(", "),
                    "configuration changes that need a restart were ignored"
                );
            }
            tracing::info!(tls = reloaded.tls, "configuration reloaded");
        }
        Err(e) => tracing::error!("configuration reload failed, the previous one stays: {e:#}"),
    }
}

/// What a signal asks of the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    /// SIGINT (Ctrl-C) or SIGTERM: shut down.
    Stop,
    /// SIGHUP: reload the configuration.
    Reload,
}

/// The signals the broker handles, installed once.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Installs the handlers (a handler that cannot be installed is logged and
    /// its signal keeps its default action).
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let install = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "no {name} handler");
                    None
                }
            };
            Signals {
                term: install(SignalKind::terminate(), "SIGTERM"),
                hup: install(SignalKind::hangup(), "SIGHUP"),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal.
    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        {
            async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = ctrl_c() => Signal::Stop,
                _ = recv(&mut self.term) => Signal::Stop,
                _ = recv(&mut self.hup) => Signal::Reload,
            }
        }
        #[cfg(not(unix))]
        {
            ctrl_c().await;
            Signal::Stop
        }
    }
}

/// Waits for Ctrl-C; if that cannot be waited for, says so and returns (the
/// broker then shuts down).
async fn ctrl_c() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %e, "cannot wait for Ctrl-C");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "h", "1w", "0", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad:?}");
        }
    }
}
