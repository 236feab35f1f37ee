//! End-to-end tests of the `stompkit admin` binary against the real broker
//! (`admin_support`: in memory, ephemeral STOMP and admin ports): every
//! subcommand as a table and as `--json`, its effects on live clients and
//! queues, and the one-line errors of an unreachable or refusing listener.
#![allow(clippy::unwrap_used)]

mod admin_support;
#[allow(dead_code)]
mod support;

use admin_support::{
    Broker, Stomp, WAIT, admin, admin_fails, admin_json, admin_ok, admin_with_env,
};
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use stompkit_broker::auth::{password, token};
use stompkit_broker::{BrokerConfig, Secret, UserConfig};

/// The row of `table` whose first column is `first` (panics without one).
fn row<'t>(table: &'t str, first: &str) -> Vec<&'t str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&first))
        .unwrap_or_else(|| panic!("no row {first:?} in:\n{table}"))
}

/// The first `Some` of `probe`, asked again until it gives one (panics
/// after [`WAIT`]).
fn eventually<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "not so within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The objects of a JSON list.
fn list(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not a list: {v}"))
}

/// The object of `items` whose `key` is `value`.
fn find<'v>(items: &'v Value, key: &str, value: &str) -> &'v Value {
    list(items)
        .iter()
        .find(|i| i[key] == value)
        .unwrap_or_else(|| panic!("no {key} = {value:?} in {items}"))
}

#[test]
fn overview_connections_queues_topics_and_subscriptions_as_tables_and_json() {
    let broker = Broker::start();
    let url = broker.admin.as_str();
    let mut client = Stomp::connect(broker.stomp);
    client.subscribe("work", "/queue/work", "client-individual");
    client.subscribe("news", "/topic/news", "auto");
    for body in ["1", "22", "333"] {
        client.send("/queue/orders", &[], body);
    }

    let overview = admin_ok(url, &["overview"]);
    assert_eq!(row(&overview, "connections"), ["connections", "1"]);
    assert_eq!(row(&overview, "queues")[1], "2", "{overview}");
    assert!(row(&overview, "version").len() == 2, "{overview}");
    let json = admin_json(url, &["overview"]);
    assert_eq!(json["connections"], 1);
    assert_eq!(json["subscriptions"], 2);
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));

    let connections = admin_ok(url, &["connections"]);
    assert!(connections.starts_with("ID  PEER"), "{connections}");
    let json = admin_json(url, &["connections"]);
    assert_eq!(list(&json).len(), 1);
    let c = &json[0];
    assert_eq!(
        (c["subscriptions"].as_u64(), c["messages_in"].as_u64()),
        (Some(2), Some(3))
    );
    let id = c["id"].to_string();
    let cells = row(&connections, &id);
    assert_eq!(cells[1], c["peer"].as_str().unwrap());
    assert_eq!(&cells[3..7], ["1.2", "tcp", "2", "3"], "{connections}");

    let queues = admin_ok(url, &["queues"]);
    assert!(queues.starts_with("NAME"), "{queues}");
    assert_eq!(&row(&queues, "orders")[1..4], ["3", "0", "0"], "{queues}");
    assert_eq!(&row(&queues, "work")[1..4], ["0", "0", "1"], "{queues}");
    let json = admin_json(url, &["queues"]);
    let orders = find(&json, "name", "orders");
    assert_eq!(orders["destination"], "/queue/orders");
    assert_eq!(
        (orders["ready"].as_u64(), orders["durable"].as_bool()),
        (Some(3), Some(false))
    );

    let topics = admin_ok(url, &["topics"]);
    assert_eq!(row(&topics, "/topic/news")[1..], ["1", "0"], "{topics}");
    let json = admin_json(url, &["topics"]);
    assert_eq!(find(&json, "destination", "/topic/news")["subscribers"], 1);

    let subscriptions = admin_ok(url, &["subscriptions"]);
    let work = row(&subscriptions, &format!("{id}/work"));
    assert_eq!(
        &work[1..5],
        [id.as_str(), "/queue/work", "client-individual", "0"]
    );
    let json = admin_json(url, &["subscriptions"]);
    assert_eq!(list(&json).len(), 2);
    let news = find(&json, "id", &format!("{id}/news"));
    assert_eq!(
        (news["ack"].as_str(), news["durable"].as_bool()),
        (Some("auto"), Some(false))
    );
    assert!(news["selector"].is_null());
}

#[test]
fn peek_shows_messages_without_consuming_them() {
    let broker = Broker::start();
    let url = broker.admin.as_str();
    let mut client = Stomp::connect(broker.stomp);
    client.send("/queue/peeked", &["color:red"], "first body");
    client.send("/queue/peeked", &[], &"y".repeat(2000));

    let one = admin_ok(url, &["peek", "peeked", "--count", "1"]);
    assert!(one.starts_with("--- message 1 (10 bytes)\n"), "{one}");
    assert!(one.contains("\ndestination:/queue/peeked\n"), "{one}");
    assert!(one.contains("\ncolor:red\n\nfirst body\n"), "{one}");
    assert!(!one.contains("message 2"), "{one}");

    let json = admin_json(url, &["peek", "/queue/peeked"]);
    assert_eq!(list(&json).len(), 2);
    assert_eq!(json[0]["body"], "first body");
    assert_eq!(json[0]["headers"]["color"], "red");
    assert_eq!(json[1]["body_len"], 2000);
    assert_eq!(json[1]["body"].as_str().unwrap().len(), 1024);
    let both = admin_ok(url, &["peek", "peeked"]);
    assert!(
        both.contains("--- message 2 (2000 bytes, the first shown)\n"),
        "{both}"
    );

    // Nothing was consumed.
    let queue = find(&admin_json(url, &["queues"]), "name", "peeked").clone();
    assert_eq!(queue["ready"], 2);
    let line = admin_fails(url, &["peek", "nothing-here"]);
    assert!(
        line.contains("/api/queues/nothing-here/messages?count=10: 404"),
        "{line}"
    );
}

#[test]
fn client_text_reaches_the_terminal_escaped() {
    let broker = Broker::start();
    let url = broker.admin.as_str();
    let mut client = Stomp::connect(broker.stomp);
    // STOMP 1.2 header escapes: `\n` is a line feed; ESC needs no escape.
    let destination = "/queue/odd\\nNAME 9 9 9";
    let header = "x-evil:\u{1b}[2J\\nforged:yes";
    client.send(destination, &[header], "body\u{1b}]0;title\u{7}\nline 2");

    let queues = admin_ok(url, &["queues"]);
    assert_eq!(queues.lines().count(), 2, "{queues}");
    assert!(queues.contains("\nodd\\nNAME 9 9 9      1  "), "{queues}");
    let peeked = admin_ok(url, &["peek", "odd\nNAME 9 9 9"]);
    assert!(
        !peeked.contains('\u{1b}') && !peeked.contains('\u{7}'),
        "{peeked:?}"
    );
    assert!(
        peeked.contains("\ndestination:/queue/odd\\nNAME 9 9 9\n"),
        "{peeked}"
    );
    assert!(
        peeked.contains("\nx-evil:\\x1b[2J\\nforged:yes\n"),
        "{peeked}"
    );
    assert!(
        peeked.ends_with("\n\nbody\\x1b]0;title\\x07\nline 2\n"),
        "{peeked}"
    );
    // --json stays the API's own (JSON-escaped) text.
    let json = admin_json(url, &["peek", "odd\nNAME 9 9 9"]);
    assert_eq!(json[0]["headers"]["x-evil"], "\u{1b}[2J\nforged:yes");
}

#[test]
fn peek_refuses_a_count_out_of_range() {
    let out = admin("http://127.0.0.1:9", &["peek", "q", "--count", "1001"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("1001"));
}

#[test]
fn purge_empties_a_queue_and_keeps_its_consumers_unacked_messages() {
    let broker = Broker::start();
    let url = broker.admin.as_str();
    let mut client = Stomp::connect(broker.stomp);
    for i in 0..3 {
        client.send("/queue/purged", &[], &i.to_string());
    }
    let out = admin_ok(url, &["purge", "purged"]);
    assert_eq!(out, "purged 3 message(s) from /queue/purged\n");
    let queues = admin_ok(url, &["queues"]);
    assert_eq!(
        &row(&queues, "purged")[1..5],
        ["0", "0", "0", "0"],
        "{queues}"
    );

    // With --json, the API's answer; a consumer's unacked message stays.
    let mut consumer = Stomp::connect(broker.stomp);
    consumer.write(
        "SUBSCRIBE\nid:c\ndestination:/queue/held\nack:client\nprefetch-count:1\nreceipt:c\n\n",
    );
    assert!(consumer.frame().unwrap().starts_with("RECEIPT\n"));
    client.send("/queue/held", &[], "delivered");
    client.send("/queue/held", &[], "ready");
    let message = consumer.frame().unwrap();
    assert!(message.starts_with("MESSAGE\n"), "{message}");
    let json = admin_json(url, &["purge", "/queue/held"]);
    assert_eq!(json, serde_json::json!({"purged": 1}));
    let held = find(&admin_json(url, &["queues"]), "name", "held").clone();
    assert_eq!(
        (held["ready"].as_u64(), held["unacked"].as_u64()),
        (Some(0), Some(1))
    );
}

#[test]
fn delete_queue_disconnects_its_consumers_with_an_error() {
    let broker = Broker::start();
    let url = broker.admin.as_str();
    let mut consumer = Stomp::connect(broker.stomp);
    consumer.subscribe("s", "/queue/doomed", "auto");
    let out = admin_ok(url, &["delete-queue", "doomed"]);
    assert_eq!(out, "deleted /queue/doomed\n");
    let error = consumer.error_then_closed();
    assert!(error.contains("\nmessage:queue deleted\n"), "{error}");
    let queues = admin_json(url, &["queues"]);
    assert!(
        list(&queues).iter().all(|q| q["name"] != "doomed"),
        "{queues}"
    );
    let line = admin_fails(url, &["delete-queue", "doomed"]);
    assert!(line.starts_with("stompkit: "), "{line}");
    assert!(line.contains("404"), "{line}");
}

#[test]
fn kick_disconnects_a_live_client() {
    let broker = Broker::start();
    let url = broker.admin.as_str();
    let mut victim = Stomp::connect(broker.stomp);
    let _bystander = Stomp::connect(broker.stomp);
    victim.subscribe("s", "/topic/t", "auto");
    let connections = admin_json(url, &["connections"]);
    let id = list(&connections)
        .iter()
        .find(|c| c["subscriptions"] == 1)
        .unwrap()["id"]
        .to_string();

    let out = admin_ok(url, &["kick", &id]);
    assert_eq!(out, format!("closed connection {id}\n"));
    let error = victim.error_then_closed();
    assert!(
        error.contains("\nmessage:closed by administrator\n"),
        "{error}"
    );
    // The kicked session leaves the list once its connection task ends.
    let left = eventually(|| {
        let left = admin_json(url, &["connections"]);
        (list(&left).len() == 1).then_some(left)
    });
    assert_ne!(left[0]["id"].to_string(), id);

    let json = admin(url, &["--json", "kick", "999999"]);
    assert!(!json.status.success());
    let line = admin_fails(url, &["kick", "999999"]);
    assert!(line.contains("/api/connections/999999: 404"), "{line}");
}

#[test]
fn an_unreachable_admin_url_is_one_line_and_a_failure() {
    // A port nobody listens on (just released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    for args in [&["queues"][..], &["--json", "overview"], &["kick", "1"]] {
        let line = admin_fails(&url, args);
        assert!(
            line.starts_with(&format!(
                "stompkit: cannot reach the admin listener at {url}: "
            )),
            "{line}"
        );
    }
    let line = admin_fails("ftp://127.0.0.1:1", &["queues"]);
    assert!(line.contains("expected http://HOST:PORT"), "{line}");
}

#[test]
fn a_listener_that_is_not_the_admin_api_is_one_line_and_a_failure() {
    // The STOMP port does not speak HTTP.
    let broker = Broker::start();
    let line = admin_fails(&format!("http://{}", broker.stomp), &["queues"]);
    assert!(line.starts_with("stompkit: "), "{line}");
}

const SECRET: &str = "cli-admin-tests-token-secret-0123456789";

/// The admin listener on a non-loopback address (`0.0.0.0:0`, reached on
/// 127.0.0.1), a token secret and the admin user `ops` (password `ops-pass`).
fn secured(config: &mut BrokerConfig) {
    config.admin.listen = "0.0.0.0:0".into();
    config.auth.users = vec![UserConfig {
        login: "ops".into(),
        password_hash: password::hash("ops-pass").unwrap(),
        send: None,
        subscribe: None,
        admin: true,
    }];
    config.auth.token_secret = Secret::new(SECRET);
    config.auth.failure_delay_ms = 10;
    config.auth.max_failure_delay_ms = 50;
}

#[test]
fn a_refusing_listener_is_one_line_and_a_token_gets_in() {
    let broker = Broker::start_with(secured);
    let url = broker.admin.as_str();

    let line = admin_fails(url, &["queues"]);
    assert!(
        line.starts_with(&format!("stompkit: {url}/api/queues: 401 Unauthorized")),
        "{line}"
    );
    let line = admin_fails(
        url,
        &["--login", "ops", "--passcode", "ops-pass", "overview"],
    );
    assert!(line.contains("401") && line.contains("TLS"), "{line}");
    let line = admin_fails(url, &["--login", "ops", "--token", "v1.1.bad", "topics"]);
    assert!(line.contains("401"), "{line}");

    let minted = ops_token();
    let json = admin_json(url, &["--login", "ops", "--token", &minted, "overview"]);
    assert_eq!(json["connections"], 0);
    // Credentials from the environment, options after the subcommand.
    let out = admin_with_env(
        &["queues", "--admin-url", url, "--json"],
        &[("STOMPKIT_LOGIN", "ops"), ("STOMPKIT_TOKEN", &minted)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}

/// A token for `ops`, valid for 10 minutes.
fn ops_token() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    token::mint(SECRET.as_bytes(), "ops", now + 600)
}

/// The one stderr line of a failed `out` (exit 1, as every error of ours).
fn one_line_failure(out: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    err.trim_end().to_owned()
}

#[test]
fn a_password_never_goes_out_in_clear_off_loopback() {
    // A listener reached as 0.0.0.0 (which Linux connects to this machine):
    // not a loopback name, so a password must not be sent to it over http://.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://0.0.0.0:{}", listener.local_addr().unwrap().port());
    let refused = |named: &str| {
        format!(
            "stompkit: --admin-url {url} is plain http:// off loopback: the password ({named}) \
             would cross the network in clear; use an https:// URL or --token"
        )
    };
    let flags = [
        "--admin-url",
        &url,
        "--login",
        "ops",
        "--passcode",
        "ops-pass",
    ];
    let out = admin_with_env(&[&flags[..], &["queues"]].concat(), &[]);
    assert_eq!(one_line_failure(&out), refused("--passcode"));
    let env = [("STOMPKIT_LOGIN", "ops"), ("STOMPKIT_PASSCODE", "ops-pass")];
    let out = admin_with_env(&["--admin-url", &url, "overview"], &env);
    assert_eq!(one_line_failure(&out), refused("$STOMPKIT_PASSCODE"));
    // Not even a connection was made.
    let accepted = listener.accept().map(|(_, peer)| peer);
    assert!(
        accepted
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "{accepted:?}"
    );

    // A token may go over plain http:// (as --token or as the passcode).
    let broker = Broker::start_with(secured);
    let url = broker.admin.replace("127.0.0.1", "0.0.0.0");
    let minted = ops_token();
    for secret in ["--token", "--passcode"] {
        let args = ["--login", "ops", secret, &minted, "overview"];
        let json = admin_json(&url, &args);
        assert_eq!(json["connections"], 0);
    }
}

#[test]
fn the_stomp_commands_passcode_in_the_environment_does_not_get_in_the_way() {
    // On loopback no login is needed: a $STOMPKIT_PASSCODE without
    // $STOMPKIT_LOGIN is not used (nor an error).
    let broker = Broker::start();
    let args = ["--admin-url", &broker.admin, "--json", "queues"];
    let out = admin_with_env(&args, &[("STOMPKIT_PASSCODE", "stomp-pass")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");

    // --token wins over $STOMPKIT_PASSCODE (the listener takes no password
    // over plain http://, so only the token gets in).
    let broker = Broker::start_with(secured);
    let minted = ops_token();
    let env = [("STOMPKIT_LOGIN", "ops"), ("STOMPKIT_PASSCODE", "ops-pass")];
    let args = ["--admin-url", &broker.admin, "--token", &minted, "topics"];
    let out = admin_with_env(&args, &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("NAME"));
    // So does $STOMPKIT_TOKEN, with the login from the command line.
    let env = [
        ("STOMPKIT_PASSCODE", "ops-pass"),
        ("STOMPKIT_TOKEN", &minted),
    ];
    let args = ["--admin-url", &broker.admin, "--login", "ops", "topics"];
    let out = admin_with_env(&args, &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    // Mistakes on the command line are one line each.
    let args = ["--admin-url", &broker.admin, "--token", &minted, "topics"];
    let out = admin_with_env(&args, &[("STOMPKIT_PASSCODE", "ops-pass")]);
    assert_eq!(
        one_line_failure(&out),
        "stompkit: --token needs --login (the admin user it belongs to)"
    );
    let both = [
        "--login",
        "ops",
        "--passcode",
        "p",
        "--token",
        &minted,
        "topics",
    ];
    let out = admin_with_env(&both, &[]);
    assert_eq!(
        one_line_failure(&out),
        "stompkit: give --passcode or --token, not both"
    );
}

#[cfg(feature = "tls")]
#[test]
fn https_trusts_the_ca_file() {
    // The loopback admin listener behind a TLS front with a certificate for
    // localhost (the broker's own https is the admin listener's tests').
    let broker = Broker::start();
    let backend = broker.admin.trim_start_matches("http://").parse().unwrap();
    let (front, ca) = support::start_tls_front(backend);
    let url = format!("https://localhost:{}", front.port());
    let ca = ca.to_str().unwrap();

    let json = admin_json(&url, &["--ca-file", ca, "overview"]);
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    let out = admin_with_env(
        &["queues", "--admin-url", &url],
        &[("STOMPKIT_CA_FILE", ca)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("NAME"));
    // Without the CA file the system's roots do not know the certificate.
    let line = admin_fails(&url, &["queues"]);
    let unreachable = format!("stompkit: cannot reach the admin listener at {url}: ");
    assert!(line.starts_with(&unreachable), "{line}");
    let line = admin_fails(&url, &["--ca-file", "/nonexistent/ca.pem", "queues"]);
    assert!(line.contains("/nonexistent/ca.pem"), "{line}");
}
