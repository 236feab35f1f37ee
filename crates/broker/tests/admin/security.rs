//! Who may use the admin listener: the loopback `Host` check, and on a
//! non-loopback address (`0.0.0.0:0`, reached on 127.0.0.1: the rule follows
//! the address the listener is bound to) the logins of users with
//! `admin = true`: tokens over plain HTTP, passwords only over HTTPS.

use crate::client::{Admin, basic};
use crate::harness::{BrokerProcess, Scratch};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};
use stompkit_broker::auth::{password, token};

const SECRET: &str = "admin-tests-token-secret-0123456789";

/// `[auth]` with a token secret, `ops` (admin) and `dev` (not), passwords
/// `ops-pass` and `dev-pass`; short failure delays; plus `extra`.
fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let ops = password::hash("ops-pass").unwrap();
    let dev = password::hash("dev-pass").unwrap();
    let text = format!(
        "[auth]\ntoken_secret = \"{SECRET}\"\nfailure_delay_ms = 10\nmax_failure_delay_ms = 50\n\
         [[auth.users]]\nlogin = \"ops\"\npassword_hash = \"{ops}\"\nadmin = true\n\
         [[auth.users]]\nlogin = \"dev\"\npassword_hash = \"{dev}\"\n{extra}"
    );
    let path = dir.join("broker.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A token for `login`, valid for an hour.
fn token_for(login: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    token::mint(SECRET.as_bytes(), login, now + 3600)
}

/// A broker with its admin listener on `0.0.0.0:0` and `config`, if any.
fn start_public(scratch: &Scratch, config: Option<&Path>) -> (BrokerProcess, String) {
    let mut launch = scratch.in_memory().admin("0.0.0.0:0");
    if let Some(config) = config {
        launch = launch.arg("--config").arg(config);
    }
    let broker = launch.start();
    let url = broker.admin.clone().unwrap();
    (broker, url)
}

#[tokio::test]
async fn loopback_answers_only_loopback_host_names() {
    let scratch = Scratch::new("admin-host");
    let broker = scratch.in_memory().admin("127.0.0.1:0").start();
    let admin = Admin::new(broker.admin.as_deref().unwrap());
    for host in [
        "evil.example",
        "evil.example:61680",
        "localhost.evil.example",
        "10.0.0.1",
    ] {
        let answer = admin
            .send("GET", "/api/overview", &[("Host", host)], b"")
            .await;
        answer.assert_refused("Host");
    }
    // State changes and pages are refused alike, before anything is looked at.
    let kick = admin
        .send(
            "DELETE",
            "/api/connections/1",
            &[("Host", "evil.example")],
            b"",
        )
        .await;
    kick.assert_refused("Host");
    let page = admin
        .send("GET", "/", &[("Host", "evil.example")], b"")
        .await;
    page.assert_refused("Host");
    let no_host = admin.raw(b"GET /api/overview HTTP/1.0\r\n\r\n").await;
    no_host.assert_refused("Host");
    for host in [
        "localhost",
        "localhost:61680",
        "127.0.0.1",
        "127.9.9.9:1",
        "[::1]:61680",
    ] {
        let answer = admin
            .send("GET", "/api/overview", &[("Host", host)], b"")
            .await;
        assert_eq!(answer.status, 200, "{host}: {}", answer.text());
    }
}

#[tokio::test]
async fn a_public_address_without_admin_users_refuses_everything() {
    let scratch = Scratch::new("admin-no-users");
    let (broker, url) = start_public(&scratch, None);
    assert!(url.starts_with("http://0.0.0.0:"), "{url}");
    let admin = Admin::new(&url);
    for path in ["/api/overview", "/api/queues", "/", "/metrics", "/healthz"] {
        admin.get(path).await.assert_refused("no admin user");
    }
    let credentials = basic("anyone", "anything");
    let answer = admin
        .send(
            "GET",
            "/api/overview",
            &[("Authorization", &credentials)],
            b"",
        )
        .await;
    answer.assert_refused("no admin user");
    assert!(
        broker.log().contains("every request is refused"),
        "{}",
        broker.log()
    );
}

#[tokio::test]
async fn tokens_over_plain_http() {
    let scratch = Scratch::new("admin-tokens");
    let config = write_config(scratch.root(), "");
    let (_broker, url) = start_public(&scratch, Some(&config));
    assert!(url.starts_with("http://"), "no [tls]: plain HTTP ({url})");
    let admin = Admin::new(&url);
    let with = |login: &str, passcode: &str| basic(login, passcode);

    admin
        .get("/api/overview")
        .await
        .assert_refused("login needed");
    let kick = admin.delete("/api/connections/1").await;
    kick.assert_refused("login needed");
    let bearer = [("Authorization", "Bearer x")];
    let answer = admin.send("GET", "/api/overview", &bearer, b"").await;
    answer.assert_refused("malformed");
    let password = with("ops", "ops-pass");
    let answer = admin
        .send("GET", "/api/overview", &[("Authorization", &password)], b"")
        .await;
    answer.assert_refused("passwords need TLS: use a token");

    let ops = with("ops", &token_for("ops"));
    for _ in 0..2 {
        // Twice: the second is the remembered login.
        let answer = admin
            .send("GET", "/api/overview", &[("Authorization", &ops)], b"")
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert!(answer.json()["uptime_s"].is_u64());
    }
    // Off loopback the Host does not matter: the login does.
    let headers = [("Authorization", ops.as_str()), ("Host", "admin.example")];
    assert_eq!(
        admin.send("GET", "/api/queues", &headers, b"").await.status,
        200
    );

    let dev = with("dev", &token_for("dev"));
    let answer = admin
        .send("GET", "/api/overview", &[("Authorization", &dev)], b"")
        .await;
    answer.assert_refused("not an admin user");
    let forged = with("ops", &token_for("dev"));
    let answer = admin
        .send("GET", "/api/overview", &[("Authorization", &forged)], b"")
        .await;
    answer.assert_refused("login refused");
    let unknown = with("nobody", &token_for("nobody"));
    let answer = admin
        .send("GET", "/api/overview", &[("Authorization", &unknown)], b"")
        .await;
    answer.assert_refused("not an admin user");

    // Each refusal of credentials above counts as an authentication failure
    // (the two requests without any do not).
    let answer = admin
        .send("GET", "/metrics", &[("Authorization", &ops)], b"")
        .await;
    assert!(
        answer.text().contains("\nstompkit_auth_failures_total 5\n"),
        "{}",
        answer.text()
    );
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn passwords_over_https() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let scratch = Scratch::new("admin-https");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (
        scratch.root().join("cert.pem"),
        scratch.root().join("key.pem"),
    );
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let tls = format!(
        "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let config = write_config(scratch.root(), &tls);
    let (_broker, url) = start_public(&scratch, Some(&config));
    assert!(url.starts_with("https://0.0.0.0:"), "{url}");
    let client = stompkit_tokio::tls::client_config_from_ca_file(&cert).unwrap();
    let admin = Admin::new(&url).with_tls(client);

    admin
        .get("/api/overview")
        .await
        .assert_refused("login needed");
    let ops = basic("ops", "ops-pass");
    let answer = admin
        .send("GET", "/api/overview", &[("Authorization", &ops)], b"")
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(answer.json()["version"].is_string());
    let token = basic("ops", &token_for("ops"));
    let answer = admin
        .send("GET", "/api/queues", &[("Authorization", &token)], b"")
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let wrong = basic("ops", "not-the-password");
    let answer = admin
        .send("GET", "/api/overview", &[("Authorization", &wrong)], b"")
        .await;
    answer.assert_refused("login refused");
    let dev = basic("dev", "dev-pass");
    let answer = admin
        .send("GET", "/api/overview", &[("Authorization", &dev)], b"")
        .await;
    answer.assert_refused("not an admin user");

    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(admin.addr).await.unwrap();
    plain
        .write_all(b"GET /api/overview HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    // Closed (by a TLS alert or a reset: either way no HTTP) within WAIT.
    let _ = tokio::time::timeout(crate::harness::WAIT, plain.read_to_end(&mut got))
        .await
        .expect("the connection is closed");
    assert!(
        !got.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );

    // On loopback nobody logs in: plain HTTP even with [tls].
    let local = scratch
        .in_memory()
        .admin("127.0.0.1:0")
        .arg("--config")
        .arg(&config)
        .start();
    let url = local.admin.clone().unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(Admin::new(&url).get("/api/overview").await.status, 200);
}

#[tokio::test]
async fn a_reload_takes_admin_rights_away() {
    let scratch = Scratch::new("admin-reload");
    let config = write_config(scratch.root(), "");
    let broker = scratch
        .in_memory()
        .admin("0.0.0.0:0")
        .arg("--config")
        .arg(&config)
        .log_level("info")
        .start();
    let admin = Admin::new(broker.admin.as_deref().unwrap());
    let ops = basic("ops", &token_for("ops"));
    let answer = admin
        .send("GET", "/api/queues", &[("Authorization", &ops)], b"")
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    // ops loses the flag, dev (the last table) gets it: the login remembered
    // a moment ago is forgotten.
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace("admin = true", "admin = false") + "admin = true\n";
    std::fs::write(&config, text).unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &broker.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = std::time::Instant::now() + crate::harness::WAIT;
    while !broker.log().contains("configuration reloaded") {
        assert!(std::time::Instant::now() < deadline, "{}", broker.log());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let answer = admin
        .send("GET", "/api/queues", &[("Authorization", &ops)], b"")
        .await;
    answer.assert_refused("not an admin user");
    let dev = basic("dev", &token_for("dev"));
    let answer = admin
        .send("GET", "/api/queues", &[("Authorization", &dev)], b"")
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
}
