//! `stompkit-broker check-config FILE`.

use crate::broker::{Broker, Scratch, command, hash, run};
use std::process::Output;

fn check(file: &std::path::Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = command();
    cmd.arg("check-config").arg(file);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd)
}

/// Exit 2 and one line on stderr containing `wanted`.
fn assert_refused(output: &Output, wanted: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("stompkit-broker: "), "{stderr}");
    assert!(stderr.contains(wanted), "{wanted:?} not in {stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn a_valid_file_prints_the_effective_configuration_with_secrets_masked() {
    let scratch = Scratch::new("check-valid");
    let alice = hash("wonderland");
    let bob = hash("builder");
    let users_file = scratch.write(
        "users.toml",
        &format!("[[users]]\nlogin = \"bob\"\npassword_hash = {bob:?}\n"),
    );
    let config = scratch.write(
        "broker.toml",
        &format!(
            "[server]\nlisten = [\"127.0.0.1:0\", \"ws://localhost:0\"]\n\n\
             [limits]\nmax_body = 4096\n\n\
             [auth]\ntoken_secret = \"0123456789abcdef-secret\"\nusers_file = {:?}\n\n\
             [[auth.users]]\nlogin = \"alice\"\npassword_hash = {alice:?}\nsend = [\"/queue/a\"]\n",
            users_file.display().to_string()
        ),
    );
    let output = check(&config, &[("STOMPKIT_LIMITS_MAX_HEADERS", "77")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    for secret in ["0123456789abcdef-secret", alice.as_str(), "$argon2id"] {
        assert!(!stdout.contains(secret), "{secret} shown:\n{stdout}");
    }
    // The output is the configuration: TOML the broker reads back.
    let effective = stompkit_broker::BrokerConfig::from_toml(&stdout).unwrap();
    assert_eq!(effective.limits.max_body, 4096);
    assert_eq!(effective.limits.max_headers, 77, "the variable applies");
    assert_eq!(
        effective.auth.token_secret.expose(),
        stompkit_broker::MASKED
    );
    assert_eq!(effective.auth.users.len(), 1);
    assert_eq!(effective.auth.users[0].login, "alice");
    assert_eq!(
        effective.auth.users[0].password_hash,
        stompkit_broker::MASKED
    );
    assert_eq!(
        effective.auth.users[0].send.as_deref(),
        Some(&["/queue/a".to_owned()][..])
    );
    assert_eq!(effective.auth.users_file, users_file.display().to_string());
    assert_eq!(effective.server.listen, ["127.0.0.1:0", "ws://localhost:0"]);
}

/// A file name, its text, the variables set, and what the error line says.
type Case = (
    &'static str,
    String,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

#[test]
fn an_invalid_configuration_is_one_line_and_exit_2() {
    let scratch = Scratch::new("check-invalid");
    let cases: Vec<Case> = vec![
        ("toml.toml", "[limits\n".into(), vec![], "toml.toml"),
        (
            "unknown-key.toml",
            "[limits]\nmax_bogus = 1\n".into(),
            vec![],
            "max_bogus",
        ),
        (
            "unknown-var.toml",
            String::new(),
            vec![("STOMPKIT_LIMITS_MAX_CONECTIONS", "5")],
            "unknown configuration variable STOMPKIT_LIMITS_MAX_CONECTIONS \
             (no key max_conections in [limits])",
        ),
        (
            "bad-hash.toml",
            "[[auth.users]]\nlogin = \"alice\"\npassword_hash = \"plain\"\n".into(),
            vec![],
            "alice",
        ),
        (
            "users-file.toml",
            "[auth]\nusers_file = \"/nonexistent/users.toml\"\n".into(),
            vec![],
            "/nonexistent/users.toml",
        ),
        (
            "short-secret.toml",
            "[auth]\ntoken_secret = \"short\"\n".into(),
            vec![],
            "token_secret",
        ),
        (
            "listen.toml",
            "[server]\nlisten = [\"http://127.0.0.1:1\"]\n".into(),
            vec![],
            "http://127.0.0.1:1",
        ),
        (
            "anonymous.toml",
            "[server]\nlisten = [\"0.0.0.0:0\"]\n".into(),
            vec![],
            "anonymous",
        ),
        (
            "relay.toml",
            "[relay]\nupstream = \"amqp://x:1\"\n".into(),
            vec![],
            "relay.upstream",
        ),
        (
            "tls.toml",
            "[server]\nlisten = [\"stomp+ssl://127.0.0.1:0\"]\n\
             [tls]\ncert_file = \"/nonexistent/cert.pem\"\nkey_file = \"/nonexistent/key.pem\"\n"
                .into(),
            vec![],
            "/nonexistent/cert.pem",
        ),
    ];
    for (name, text, env, wanted) in cases {
        let file = scratch.write(name, &text);
        assert_refused(&check(&file, &env), wanted);
    }
    assert_refused(&check(&scratch.path("missing.toml"), &[]), "missing.toml");
}

#[test]
fn check_config_refuses_what_the_start_refuses_and_only_that() {
    let scratch = Scratch::new("check-agree");
    // Broker::start adds --in-memory; `run` waits for an exit.
    let start = |file: &std::path::Path| {
        let mut cmd = command();
        cmd.args(["--listen", "127.0.0.1:0", "--config"]).arg(file);
        cmd
    };
    let refused_start = |file: &std::path::Path| {
        let mut cmd = start(file);
        cmd.arg("--in-memory");
        run(cmd)
    };
    // A log filter the broker cannot read: both refuse it, naming the key.
    let bad_filter = scratch.write("filter.toml", "[server]\nlog_level = \"info,==bad[\"\n");
    assert_refused(&check(&bad_filter, &[]), "log_level");
    assert_refused(&refused_start(&bad_filter), "log_level");
    // An admin listener in relay mode (it would show an empty broker): both
    // refuse it, the start with its flags as with the file.
    let relay_admin = scratch.write(
        "relay-admin.toml",
        "[relay]\nupstream = \"stomp://127.0.0.1:1\"\n[admin]\nlisten = \"127.0.0.1:0\"\n",
    );
    let wanted = "[admin] listen cannot be used with [relay] upstream";
    assert_refused(&check(&relay_admin, &[]), wanted);
    assert_refused(&refused_start(&relay_admin), wanted);
    let mut flags = command();
    flags.args(["--listen", "127.0.0.1:0", "--in-memory"]);
    flags.args([
        "--upstream",
        "stomp://127.0.0.1:1",
        "--admin",
        "127.0.0.1:0",
    ]);
    assert_refused(&run(flags), wanted);
    // [tls] files that no listener presents are not read: both accept them
    // (a build without TLS refuses the keys in both).
    let unused_tls = scratch.write(
        "unused-tls.toml",
        "[tls]\ncert_file = \"/nonexistent/cert.pem\"\nkey_file = \"/nonexistent/key.pem\"\n",
    );
    let checked = check(&unused_tls, &[]);
    if cfg!(feature = "tls") {
        let stderr = String::from_utf8_lossy(&checked.stderr);
        assert!(checked.status.success(), "{stderr}");
        let mut broker = Broker::start(start(&unused_tls), scratch.path("broker.log"), false);
        broker.assert_running();
    } else {
        assert_refused(&checked, "[tls] cert_file");
        assert_refused(&refused_start(&unused_tls), "[tls] cert_file");
    }
}
