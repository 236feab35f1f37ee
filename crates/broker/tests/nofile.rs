//! The binary raises its open-file limit and says so when that cannot cover
//! `max_connections`.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn a_max_connections_above_the_open_file_limit_is_warned_about() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stompkit-broker"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--in-memory",
            "--log-level",
            "warn",
        ])
        // More than any hard limit here (the machine allows 20,000).
        .env("STOMPKIT_LIMITS_MAX_CONNECTIONS", "100000000")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("open-file limit"), "{line}");
    assert!(line.contains("below max_connections"), "{line}");
    // The limit it reports is the hard limit it raised the soft one to.
    let hard = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap().1;
    assert!(line.contains(&format!("limit={hard}")), "{line}");
}
