//! End-to-end tests of the `stompkit` binary against the real broker, started
//! in-process (`support`): send/sub round trips, output formats, errors, bench runs.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn stompkit(addr: SocketAddr) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stompkit"));
    // The URL as $STOMPKIT_URL, so every subcommand finds it.
    cmd.env("STOMPKIT_URL", format!("stomp://{addr}"))
        .env_remove("STOMPKIT_LOGIN")
        .env_remove("STOMPKIT_PASSCODE");
    cmd
}

/// Starts `stompkit sub` and returns once it reports its subscription active.
fn subscriber(addr: SocketAddr, args: &[&str]) -> Child {
    let mut child = stompkit(addr)
        .arg("sub")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("subscribed to "), "sub said: {line:?}");
    child
}

fn finish(mut child: Child) -> (bool, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            return (status.success(), out);
        }
        assert!(Instant::now() < deadline, "stompkit sub did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn send(addr: SocketAddr, args: &[&str]) -> Output {
    stompkit(addr).arg("send").args(args).output().unwrap()
}

#[test]
fn send_and_sub_round_trip() {
    let addr = support::start_broker();
    let sub = subscriber(addr, &["/topic/chat", "--count", "2"]);
    for body in ["hello", "second line"] {
        let out = send(addr, &["/topic/chat", body]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (ok, out) = finish(sub);
    assert!(ok);
    assert_eq!(out, "hello\nsecond line\n");
}

#[test]
fn sub_json_has_command_headers_and_body() {
    let addr = support::start_broker();
    let sub = subscriber(
        addr,
        &[
            "/queue/j",
            "--json",
            "--count",
            "2",
            "--ack",
            "client-individual",
        ],
    );
    let out = send(
        addr,
        &[
            "/queue/j",
            "{\"id\":7}",
            "-H",
            "x-trace:a:b",
            "--content-type",
            "application/json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A body that is not UTF-8, from stdin.
    let mut child = stompkit(addr)
        .args(["send", "/queue/j", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"\xff\xfe\x00bin")
        .unwrap();
    assert!(child.wait().unwrap().success());

    let (ok, out) = finish(sub);
    assert!(ok);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["command"], "MESSAGE");
    assert_eq!(lines[0]["headers"]["destination"], "/queue/j");
    assert_eq!(lines[0]["headers"]["x-trace"], "a:b");
    assert_eq!(lines[0]["headers"]["content-type"], "application/json");
    assert_eq!(lines[0]["body"], "{\"id\":7}");
    assert_eq!(lines[0]["body_base64"], false);
    assert_eq!(lines[1]["body"], "//4AYmlu");
    assert_eq!(lines[1]["body_base64"], true);
}

#[test]
fn sub_verbose_prints_the_frame() {
    let addr = support::start_broker();
    let sub = subscriber(addr, &["/topic/v", "-v", "--count", "1"]);
    assert!(
        send(addr, &["/topic/v", "hi", "-H", "k:v"])
            .status
            .success()
    );
    let (ok, out) = finish(sub);
    assert!(ok);
    assert!(out.starts_with("MESSAGE\ndestination:/topic/v\n"), "{out}");
    assert!(out.contains("\nk:v\n"), "{out}");
    assert!(out.ends_with("\n\nhi\n\n"), "{out:?}");
}

#[test]
fn send_reports_an_error_frame_in_one_line() {
    let addr = support::start_broker();
    // The broker serves /topic/.. and /queue/.. only: anything else is an ERROR.
    let out = send(addr, &["/nowhere", "x"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("stompkit: send failed: server sent ERROR: "),
        "{stderr}"
    );
}

#[test]
fn send_to_nowhere_fails_quickly() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let started = Instant::now();
    let url = format!("stomp://{addr}");
    let out = Command::new(env!("CARGO_BIN_EXE_stompkit"))
        .args(["send", "/queue/a", "x", "--timeout", "2", "--url", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(5));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("stompkit: cannot connect"), "{stderr}");
}

fn bench(addr: SocketAddr, args: &[&str]) -> Value {
    let out = stompkit(addr)
        .arg("bench")
        .args(args)
        .args(["--json", "--quiet", "--drain-timeout", "5"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

#[test]
fn bench_topic_smoke_run_delivers_everything() {
    let addr = support::start_broker();
    let r = bench(
        addr,
        &[
            "--count", "3000", "-p", "2", "-s", "3", "--size", "64", "--warmup", "0.2",
        ],
    );
    assert_eq!(r["published"], 3000);
    assert_eq!(r["expected"], 9000);
    assert_eq!(r["delivered"], r["expected"]);
    assert_eq!(r["lost"], 0);
    assert!(r["warmup_published"].as_u64().unwrap() > 0);
    assert!(r["msgs_per_sec"].as_f64().unwrap() > 0.0);
    assert!(r["mb_per_sec"].as_f64().unwrap() > 0.0);
    for key in ["p50_us", "p99_us", "p999_us", "max_us"] {
        assert!(r[key].as_f64().unwrap() > 0.0, "{key}: {r}");
    }
    assert!(r["p50_us"].as_f64() <= r["max_us"].as_f64());
    assert!(r["duration_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn bench_queue_with_client_acks_and_a_rate() {
    let addr = support::start_broker();
    let r = bench(
        addr,
        &[
            "--mode",
            "queue",
            "--count",
            "400",
            "-s",
            "2",
            "--ack",
            "client-individual",
            "--rate",
            "2000",
        ],
    );
    assert_eq!(r["expected"], 400);
    assert_eq!(r["delivered"], 400);
    // 400 messages at 2000/s take about 0.2 s.
    assert!(r["publish_duration_s"].as_f64().unwrap() >= 0.15, "{r}");
}

#[test]
fn bench_idle_holds_connections() {
    let addr = support::start_broker();
    let out = stompkit(addr)
        .args([
            "bench",
            "idle",
            "--connections",
            "50",
            "--hold",
            "0",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["connections"], 50);
    assert!(r["connect_s"].as_f64().unwrap() > 0.0);
}

#[cfg(feature = "tls")]
#[test]
fn send_and_sub_over_tls_with_a_ca_file() {
    let addr = support::start_broker();
    let (tls, ca_file) = support::start_tls_front(addr);
    let url = format!("stomp+ssl://localhost:{}", tls.port());
    let ca = ca_file.to_str().unwrap();
    let sub = subscriber(addr, &["/topic/tls", "--count", "1"]);
    let out = stompkit(addr)
        .args([
            "send",
            "/topic/tls",
            "over tls",
            "--url",
            &url,
            "--ca-file",
            ca,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, got) = finish(sub);
    assert!(ok);
    assert_eq!(got, "over tls\n");

    // The bench drives TLS too, and counts every delivery.
    let r = bench(
        addr,
        &[
            "--url",
            &url,
            "--ca-file",
            ca,
            "--count",
            "2000",
            "-s",
            "2",
            "--size",
            "32",
        ],
    );
    assert_eq!(r["delivered"], 4000, "{r}");
    assert_eq!(r["lost"], 0);

    // Without the CA file the system's roots are trusted, and they did not sign
    // this self-signed certificate: refused, one readable line, no hang.
    let out = stompkit(addr)
        .env_remove("STOMPKIT_CA_FILE")
        .args(["send", "/topic/tls", "x", "--url", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("TLS handshake") && stderr.contains("certificate"),
        "{stderr}"
    );
    // A CA that did not sign the broker's certificate: the handshake fails.
    let (_, other_ca) = support::start_tls_front(addr);
    let out = stompkit(addr)
        .args(["send", "/topic/tls", "x", "--url", &url, "--ca-file"])
        .arg(&other_ca)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("TLS handshake"), "{stderr}");
}

/// A build without the `tls` feature refuses TLS URLs with one line and a
/// non-zero exit, before connecting anywhere.
#[cfg(not(feature = "tls"))]
#[test]
fn tls_urls_are_refused_without_the_tls_feature() {
    let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
    for url in ["stomp+ssl://localhost:61614", "wss://localhost/ws"] {
        let out = stompkit(addr)
            .args(["send", "/queue/a", "x", "--url", url])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(
            stderr,
            format!(
                "stompkit: {url}: this build of stompkit has no TLS support (built without the \"tls\" feature)\n"
            )
        );
    }
}

#[test]
fn send_and_sub_over_websocket_with_json_output() {
    let addr = support::start_broker();
    let ws = format!("ws://{addr}/ws");
    // The subscriber over WebSocket, the publisher over TCP and WebSocket.
    let mut sub = stompkit(addr)
        .args(["sub", "/topic/ws", "--json", "--count", "2", "--url", &ws])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(sub.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("subscribed to "), "sub said: {line:?}");
    let out = send(addr, &["/topic/ws", "over tcp", "-H", "k:v"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = stompkit(addr)
        .args(["send", "/topic/ws", "-", "--url", &ws])
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(b"\xffbinary")?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    let (ok, got) = finish(sub);
    assert!(ok);
    let lines: Vec<Value> = got
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{got}");
    assert_eq!(lines[0]["body"], "over tcp");
    assert_eq!(lines[0]["headers"]["k"], "v");
    assert_eq!(lines[0]["headers"]["destination"], "/topic/ws");
    // Not UTF-8: it crossed WebSocket as a binary message, intact.
    assert_eq!(lines[1]["body"], "/2JpbmFyeQ==");
    assert_eq!(lines[1]["body_base64"], true);
}

#[test]
fn bench_over_websocket_counts_every_delivery() {
    let addr = support::start_broker();
    let ws = format!("ws://{addr}/ws");
    for mode in ["topic", "queue"] {
        let r = bench(
            addr,
            &[
                "--url", &ws, "--mode", mode, "--count", "5000", "-p", "2", "-s", "2", "--size",
                "100",
            ],
        );
        let expected = if mode == "topic" { 10_000 } else { 5000 };
        assert_eq!(r["expected"], expected, "{r}");
        assert_eq!(r["delivered"], expected, "{r}");
        assert_eq!(r["lost"], 0);
        assert!(r["url"].as_str().unwrap().starts_with("ws://"));
    }
    // Idle connections over WebSocket too.
    let out = stompkit(addr)
        .args([
            "bench", "idle", "-c", "20", "--hold", "0", "--json", "--url", &ws,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["connections"], 20);
}

#[test]
fn the_window_keeps_publishers_close_to_their_subscribers() {
    let addr = support::start_broker();
    let r = bench(
        addr,
        &[
            "--count", "20000", "-s", "1", "--size", "20", "--window", "100",
        ],
    );
    assert_eq!(r["window"], 100);
    assert_eq!(r["delivered"], 20_000);
    // At most the window (plus one batch) in flight: nothing waits behind a
    // long backlog, so even the slowest delivery is quick.
    assert!(r["max_us"].as_f64().unwrap() < 2_000_000.0, "{r}");
}

#[test]
fn sub_with_several_urls_fails_over_when_the_connection_is_lost() {
    let (a, b) = (support::start_broker(), support::start_broker());
    let (relay, cut) = support::cuttable_relay(a);
    // Nothing listens here: the first round skips it.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let urls = [dead, relay, b].map(|addr| format!("stomp://{addr}"));
    let mut sub = stompkit(a)
        .args(["sub", "/queue/fo", "--count", "2"])
        .args(urls.iter().flat_map(|url| ["--url", url.as_str()]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(sub.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert_eq!(line, "subscribed to /queue/fo\n");
    let out = send(a, &["/queue/fo", "through the relay to a"]);
    assert!(out.status.success());
    let mut stdout = BufReader::new(sub.stdout.take().unwrap());
    let mut got = String::new();
    stdout.read_line(&mut got).unwrap();
    assert_eq!(got, "through the relay to a\n");
    cut();
    line.clear();
    stderr.read_line(&mut line).unwrap();
    assert!(
        line.starts_with(&format!("stompkit: connection to tcp {relay} lost")),
        "{line:?}"
    );
    line.clear();
    stderr.read_line(&mut line).unwrap();
    // The round after the lost server starts with the next one: b.
    assert_eq!(line, format!("stompkit: reconnected to tcp {b}\n"));
    let out = send(b, &["/queue/fo", "from b"]);
    assert!(out.status.success());
    got.clear();
    stdout.read_to_string(&mut got).unwrap();
    assert_eq!(got, "from b\n");
    assert!(sub.wait().unwrap().success());
    // More than one --url is refused where there is no failover.
    let out = stompkit(a)
        .args([
            "bench", "--count", "1", "--url", &urls[1], "--url", &urls[2],
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        "stompkit: 2 --url options given: this command takes one\n"
    );
}
