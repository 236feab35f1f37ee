//! `--log-format json` and `[server] log_format = "json"`.

use crate::broker::{Broker, Scratch, command};
use crate::harness::Conn;

/// Every stderr line of a broker that started, served a client and stopped
/// parses as one JSON object with a timestamp, a level, a target and a message.
fn assert_json_lines(log: &str) {
    let mut messages = Vec::new();
    for line in log.lines() {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\nlog:\n{log}"));
        for key in ["timestamp", "level", "target"] {
            assert!(value[key].is_string(), "no {key} in {line}");
        }
        let message = value["fields"]["message"].as_str();
        messages.push(
            message
                .unwrap_or_else(|| panic!("no message in {line}"))
                .to_owned(),
        );
    }
    for wanted in ["broker started", "connection accepted", "shutting down"] {
        assert!(
            messages.iter().any(|m| m == wanted),
            "no {wanted:?} in {messages:?}"
        );
    }
}

async fn serve_one_client(broker: &Broker) {
    let conn = Conn::connect(broker.addr).await;
    conn.disconnect().await;
}

#[tokio::test]
async fn log_format_json_writes_one_json_object_per_line() {
    let scratch = Scratch::new("json-flag");
    let mut cmd = command();
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--log-level",
        "info",
        "--log-format",
        "json",
    ]);
    let broker = Broker::start(cmd, scratch.path("broker.log"), false);
    serve_one_client(&broker).await;
    let (status, log) = broker.stop().await;
    assert!(status.success(), "{status}\n{log}");
    assert_json_lines(&log);
    // A level field carries the level, as text logs show it.
    assert!(log.contains(r#""level":"INFO""#), "{log}");
}

#[tokio::test]
async fn log_format_from_the_config_file_and_text_by_default() {
    let scratch = Scratch::new("json-config");
    let config = scratch.write("broker.toml", "[server]\nlog_format = \"json\"\n");
    let mut cmd = command();
    cmd.args(["--listen", "127.0.0.1:0", "--log-level", "info", "--config"])
        .arg(&config);
    let broker = Broker::start(cmd, scratch.path("json.log"), false);
    serve_one_client(&broker).await;
    let (_, log) = broker.stop().await;
    assert_json_lines(&log);

    let mut cmd = command();
    cmd.args(["--listen", "127.0.0.1:0", "--log-level", "info"]);
    let broker = Broker::start(cmd, scratch.path("text.log"), false);
    serve_one_client(&broker).await;
    let (_, log) = broker.stop().await;
    assert!(log.contains("broker started"), "{log}");
    assert!(
        log.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_err()),
        "{log}"
    );
}
