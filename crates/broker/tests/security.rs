//! Safe defaults, authentication and authorization, end to end: the broker
//! in-process on 127.0.0.1:0 (and the binary for its startup refusal and the
//! `passwd` / `token` subcommands), real argon2 hashes, real sockets.
#![allow(clippy::unwrap_used)]

mod support;

use futures_util::StreamExt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use stompkit_broker::auth::{password, token};
use stompkit_broker::{Broker, BrokerConfig, RunningBroker, Secret, UserConfig};
use stompkit_frame::{Command, Frame, Version};
use stompkit_tokio::{AckMode, Client, ClientConfig, ClientError};
use stompkit_wire::Encoder;
use support::{Raw, start};

const SECRET: &str = "test secret, thirty-two bytes ok";
const BROKER: &str = env!("CARGO_BIN_EXE_stompkit-broker");

/// A cheap argon2id hash (the cost parameters do not change the code path).
fn hash(password: &str) -> String {
    password::hash_with(password, argon2::Params::new(1024, 1, 1, None).unwrap()).unwrap()
}

fn user(login: &str, pw: &str, send: &[&str], subscribe: &[&str]) -> UserConfig {
    let list = |l: &[&str]| (!l.is_empty()).then(|| l.iter().map(|s| s.to_string()).collect());
    UserConfig {
        login: login.into(),
        password_hash: hash(pw),
        send: list(send),
        subscribe: list(subscribe),
        admin: false,
    }
}

/// A broker with alice (chat only), bob (defaults), tokens, 200 ms failure delay.
async fn secured(tweak: impl FnOnce(&mut BrokerConfig)) -> RunningBroker {
    start(|config| {
        config.auth.users = vec![
            user(
                "alice",
                "wonderland",
                &["/topic/chat.*"],
                &["/topic/chat.*"],
            ),
            user("bob", "builder", &[], &[]),
        ];
        config.auth.token_secret = Secret::new(SECRET);
        config.auth.failure_delay_ms = 200;
        config.auth.max_failure_delay_ms = 400;
        tweak(config);
    })
    .await
}

fn stomp_addr(broker: &RunningBroker) -> SocketAddr {
    broker.local_addrs()[0]
}

/// The stompkit-tokio client logging in as `login` / `passcode`.
async fn connect_as(addr: SocketAddr, login: &str, passcode: &str) -> Result<Client, ClientError> {
    let config = ClientConfig::new("localhost").login(login, passcode);
    Client::connect_tcp(addr.to_string(), config).await
}

/// Opens a raw connection and sends a STOMP 1.2 CONNECT with these headers.
async fn connect_with(addr: SocketAddr, headers: &[(&str, &str)]) -> Raw {
    let mut raw = Raw::open(addr).await;
    raw.parser.set_version(Version::V1_2);
    let headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    raw.write(format!("CONNECT\naccept-version:1.2\nhost:localhost\n{headers}\n\0").as_bytes())
        .await;
    raw
}

/// Writes `frame` encoded for STOMP 1.2.
async fn send(raw: &mut Raw, frame: Frame) {
    let mut bytes = Vec::new();
    Encoder::new(Some(Version::V1_2))
        .encode(&frame, &mut bytes)
        .unwrap();
    raw.write(&bytes).await;
}

// ---------------------------------------------------------------- safe defaults

#[tokio::test]
async fn safe_defaults_refuse_anonymous_on_a_public_address() {
    let mut config = BrokerConfig::default();
    config.server.listen = vec!["127.0.0.1:0".into(), "0.0.0.0:0".into()];
    support::in_memory(&mut config);
    let e = Broker::bind(config.clone()).await.err().unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let text = e.to_string();
    assert!(
        text.starts_with("refusing to listen on 0.0.0.0:") && text.contains("allow_anonymous"),
        "{text}"
    );
    assert!(!text.contains('\n'));

    let mut open = config.clone();
    open.auth.allow_anonymous = true;
    Broker::bind(open).await.unwrap().shutdown().await;
    let mut with_users = config.clone();
    with_users.auth.users = vec![user("u", "p", &[], &[])];
    Broker::bind(with_users).await.unwrap().shutdown().await;
    let mut loopback = config;
    loopback.server.listen = vec!["127.0.0.1:0".into(), "[::1]:0".into()];
    if let Ok(b) = Broker::bind(loopback).await {
        b.shutdown().await; // ::1 may be unavailable in a container; 127.0.0.1 alone is covered above
    }
}

#[test]
fn binary_refuses_in_one_line_and_starts_when_anonymous_is_allowed() {
    let out = Process::new(BROKER)
        .args(["--listen", "0.0.0.0:0", "--in-memory"])
        .env_remove("STOMPKIT_AUTH_ALLOW_ANONYMOUS")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("stompkit-broker: cannot start: refusing to listen on 0.0.0.0:"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    // The same address with STOMPKIT_AUTH_ALLOW_ANONYMOUS=true starts.
    let mut child = Process::new(BROKER)
        .args([
            "--listen",
            "0.0.0.0:0",
            "--in-memory",
            "--log-level",
            "warn",
        ])
        .env("STOMPKIT_AUTH_ALLOW_ANONYMOUS", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        line.starts_with("stompkit-broker listening on stomp://0.0.0.0:"),
        "{line}"
    );
}

#[test]
fn passwd_hashes_a_password_from_stdin() {
    let mut child = Process::new(BROKER)
        .args(["passwd", "alice"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let hash = printed.trim_end();
    assert_eq!(printed.lines().count(), 1);
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(password::verify(hash, "correct horse"));
    assert!(!password::verify(hash, "correct horse\n"));

    let empty = Process::new(BROKER)
        .args(["passwd", "alice"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(empty.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("empty password"));
}

#[test]
fn token_subcommand_mints_a_token_the_broker_accepts() {
    let out = Process::new(BROKER)
        .args(["token", "webuser", "--ttl", "15m"])
        .env("STOMPKIT_AUTH_TOKEN_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = String::from_utf8(out.stdout).unwrap().trim_end().to_owned();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(
        token::verify(SECRET.as_bytes(), "webuser", &t, now, 900),
        Ok(())
    );
    assert_eq!(
        token::verify(SECRET.as_bytes(), "webuser", &t, now + 901, 86_400),
        Err(token::TokenError::Expired)
    );

    let no_secret = Process::new(BROKER)
        .args(["token", "webuser"])
        .env_remove("STOMPKIT_AUTH_TOKEN_SECRET")
        .output()
        .unwrap();
    assert_eq!(no_secret.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_secret.stderr).contains("token_secret"));
    let too_long = Process::new(BROKER)
        .args(["token", "webuser", "--ttl", "2d"])
        .env("STOMPKIT_AUTH_TOKEN_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(too_long.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&too_long.stderr).contains("token_max_ttl_s"));
}

// ---------------------------------------------------------------- authentication

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_login_right_wrong_unknown_and_anonymous() {
    let broker = secured(|_| {}).await;
    let addr = stomp_addr(&broker);
    let client = connect_as(addr, "bob", "builder").await.unwrap();
    client.disconnect().await.unwrap();

    let mut times = Vec::new();
    for (login, passcode) in [("bob", "wrong"), ("nobody", "builder")] {
        // From distinct connections; the second failure from this address waits longer.
        let start = Instant::now();
        let mut raw = connect_with(addr, &[("login", login), ("passcode", passcode)]).await;
        let e = raw.expect_error("access refused").await;
        assert!(!e.body().is_empty());
        times.push(start.elapsed());
    }
    assert!(times[0] >= Duration::from_millis(200), "{times:?}");
    assert!(
        times[1] >= Duration::from_millis(200 + 400),
        "second failure from the address is slowed before and after: {times:?}"
    );
    let mut anonymous = connect_with(addr, &[]).await;
    anonymous.expect_error("access refused").await;

    // The right password still works from the same address, after its penalty
    // (that success clears the address: see the authenticator's unit tests).
    let client = connect_as(addr, "alice", "wonderland").await.unwrap();
    client.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_clients_follow_the_anonymous_rules_when_allowed() {
    let broker = secured(|c| {
        c.auth.allow_anonymous = true;
        c.auth.anonymous_send = vec![];
        c.auth.anonymous_subscribe = vec!["/topic/news".into()];
    })
    .await;
    let addr = stomp_addr(&broker);
    let mut raw = connect_with(addr, &[]).await;
    assert_eq!(raw.frame().await.command, Command::Connected);
    send(
        &mut raw,
        Frame::subscribe("/topic/news", "1", stompkit_frame::AckMode::Auto).header("receipt", "r"),
    )
    .await;
    assert_eq!(raw.frame().await.receipt_id(), Some("r"));
    send(&mut raw, Frame::send("/topic/news").with_body("x")).await;
    let e = raw.expect_error("forbidden").await;
    assert_eq!(
        String::from_utf8_lossy(e.body()).trim(),
        "anonymous clients may not send to /topic/news"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_log_in_until_they_expire() {
    let broker = secured(|c| c.auth.token_max_ttl_s = 3600).await;
    let addr = stomp_addr(&broker);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let t = token::mint(SECRET.as_bytes(), "webuser", now + 600);
    let web = connect_as(addr, "webuser", &t).await.unwrap();
    // Token logins not listed as users get the default rules (everything here).
    let mut sub = web.subscribe("/queue/web", AckMode::Auto).await.unwrap();
    web.send_with_receipt(Frame::send("/queue/web").with_body("hi"))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(sub.next().await.unwrap().unwrap().body(), b"hi");

    for (l, t) in [
        (
            "webuser",
            token::mint(SECRET.as_bytes(), "webuser", now - 1),
        ),
        (
            "webuser",
            token::mint(SECRET.as_bytes(), "webuser", now + 7200),
        ),
        ("other", t.clone()),
        (
            "webuser",
            token::mint(b"not the broker's secret!", "webuser", now + 60),
        ),
    ] {
        match connect_as(addr, l, &t).await {
            Err(ClientError::Server(e)) => assert_eq!(e.message(), Some("access refused")),
            Err(other) => panic!("{l} {t}: {other}"),
            Ok(_) => panic!("{l} {t}: accepted"),
        }
    }
}

// ---------------------------------------------------------------- authorization

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_rules_allow_their_destinations_and_forbid_the_rest() {
    let broker = secured(|_| {}).await;
    let addr = stomp_addr(&broker);
    let alice = [("login", "alice"), ("passcode", "wonderland")];

    let mut raw = connect_with(addr, &alice).await;
    assert_eq!(raw.frame().await.command, Command::Connected);
    send(
        &mut raw,
        Frame::subscribe("/topic/chat.lobby", "1", stompkit_frame::AckMode::Auto)
            .header("receipt", "s"),
    )
    .await;
    assert_eq!(raw.frame().await.receipt_id(), Some("s"));
    send(
        &mut raw,
        Frame::send("/topic/chat.lobby").with_body("hello"),
    )
    .await;
    assert_eq!(raw.frame().await.body(), b"hello");
    send(
        &mut raw,
        Frame::subscribe(
            "/topic/chat.lobby/private",
            "2",
            stompkit_frame::AckMode::Auto,
        )
        .header("receipt", "p"),
    )
    .await;
    let e = raw.expect_error("forbidden").await;
    assert_eq!(e.receipt_id(), Some("p"));
    assert_eq!(
        String::from_utf8_lossy(e.body()).trim(),
        "alice may not subscribe to /topic/chat.lobby/private"
    );

    let mut raw = connect_with(addr, &alice).await;
    raw.frame().await;
    send(&mut raw, Frame::send("/queue/orders").with_body("x")).await;
    let e = raw.expect_error("forbidden").await;
    assert!(String::from_utf8_lossy(e.body()).contains("may not send to /queue/orders"));

    // bob has the defaults (everything).
    let mut raw = connect_with(addr, &[("login", "bob"), ("passcode", "builder")]).await;
    raw.frame().await;
    send(
        &mut raw,
        Frame::send("/queue/orders").header("receipt", "ok"),
    )
    .await;
    assert_eq!(raw.frame().await.receipt_id(), Some("ok"));
}

// ---------------------------------------------------------------- docs

/// The Python minting example in SECURITY.md makes the tokens the broker expects.
#[test]
fn documented_python_token_example_matches_the_broker() {
    let doc = include_str!("../SECURITY.md");
    let code = doc
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("SECURITY.md has a python example");
    let script = format!(
        "{code}\nprint(stomp_token({SECRET:?}.encode(), 'alice', ttl=3600, now=1700000000))\n"
    );
    let out = match Process::new("python3").args(["-c", &script]).output() {
        Ok(out) => out,
        Err(e) if std::env::var_os("CI").is_none() => {
            println!("skipped: python3 not available ({e})");
            return;
        }
        Err(e) => panic!("python3 is required in CI: {e}"),
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim_end(),
        token::mint(SECRET.as_bytes(), "alice", 1_700_003_600)
    );
}
