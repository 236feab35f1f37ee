//! `STOMPKIT_<SECTION>_<KEY>` variables at start.

use crate::broker::{Broker, Scratch, command, run};
use crate::harness::Conn;

#[test]
fn an_unknown_variable_of_a_known_section_stops_the_start() {
    let mut cmd = command();
    cmd.args(["--listen", "127.0.0.1:0", "--in-memory"])
        .env("STOMPKIT_LIMITS_MAX_CONECTIONS", "10");
    let output = run(cmd);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "stompkit-broker: unknown configuration variable STOMPKIT_LIMITS_MAX_CONECTIONS \
         (no key max_conections in [limits])"
    );
}

#[tokio::test]
async fn the_cli_and_tool_variables_do_not_stop_the_start() {
    let scratch = Scratch::new("variables");
    let mut cmd = command();
    cmd.args(["--listen", "127.0.0.1:0"]);
    for (k, v) in [
        ("STOMPKIT_URL", "stomp://127.0.0.1:1"),
        ("STOMPKIT_LOGIN", "alice"),
        ("STOMPKIT_PASSCODE", "secret"),
        ("STOMPKIT_TOKEN", "v1.1.x"),
        ("STOMPKIT_CA_FILE", "/nonexistent/ca.pem"),
        ("STOMPKIT_ADMIN_URL", "http://127.0.0.1:61680"),
        ("STOMPKIT_WS_URL", "ws://127.0.0.1:1/ws"),
        ("STOMPKIT_CHROMIUM", "/usr/bin/chromium"),
        ("STOMPKIT_SCREENSHOT_DIR", "/tmp"),
        ("STOMPKIT_STORE_PERF_DIR", "/tmp"),
        ("STOMPKIT_INTEROP_ADDR", "127.0.0.1:1"),
        ("STOMPKIT_JS_TIMEOUT_MS", "1"),
        // A key with underscores of a known section applies.
        ("STOMPKIT_LIMITS_MAX_BODY", "16"),
    ] {
        cmd.env(k, v);
    }
    let broker = Broker::start(cmd, scratch.path("broker.log"), false);
    let mut conn = Conn::connect(broker.addr).await;
    let big = crate::harness::transient("/queue/v", &"x".repeat(64), &[]);
    let (answer, _) = conn.request_or_error(big).await;
    assert_eq!(answer.message(), Some("body too large"), "{answer:?}");
}
