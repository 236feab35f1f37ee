//! The broker for the tests of `stompkit admin`: the real broker, as
//! `support` starts it (in-process on ephemeral ports, its store in memory),
//! with its admin listener on; and
//! a small raw STOMP client (a live connection to list, kick or subscribe).
#![allow(clippy::unwrap_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output};
use std::time::Duration;
use stompkit_broker::BrokerConfig;

/// How long anything may take (a debug build on a loaded machine).
pub const WAIT: Duration = Duration::from_secs(30);

/// A running broker, on its own runtime thread until the test process exits.
pub struct Broker {
    /// Its STOMP address.
    pub stomp: SocketAddr,
    /// Its admin listener's URL, without the trailing `/`.
    pub admin: String,
}

impl Broker {
    /// `--in-memory --listen 127.0.0.1:0 --admin 127.0.0.1:0`.
    pub fn start() -> Broker {
        Broker::start_with(|_| {})
    }

    /// As [`start`](Broker::start), then `tweak` on the configuration.
    pub fn start_with(tweak: impl FnOnce(&mut BrokerConfig) + Send + 'static) -> Broker {
        let (stomp, admin) = crate::support::start_broker_with(|config| {
            config.admin.listen = "127.0.0.1:0".into();
            tweak(config);
        });
        let admin = admin.expect("no admin listener");
        // A wildcard address is reached on loopback.
        let admin = admin.trim_end_matches('/').replace("0.0.0.0", "127.0.0.1");
        Broker { stomp, admin }
    }
}

/// `stompkit admin ARGS` against `admin_url`, with no credentials or CA
/// from the environment.
pub fn admin(admin_url: &str, args: &[&str]) -> Output {
    admin_with_env(args, &[("STOMPKIT_ADMIN_URL", admin_url)])
}

/// `stompkit admin ARGS` with only the environment variables `env` of the
/// ones it reads (the others removed, whatever the developer's shell set).
pub fn admin_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stompkit"));
    command.arg("admin").args(args);
    for name in [
        "STOMPKIT_ADMIN_URL",
        "STOMPKIT_LOGIN",
        "STOMPKIT_PASSCODE",
        "STOMPKIT_TOKEN",
        "STOMPKIT_CA_FILE",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied()).output().unwrap()
}

/// The stdout of a `stompkit admin` that must succeed.
pub fn admin_ok(admin_url: &str, args: &[&str]) -> String {
    let out = admin(admin_url, args);
    assert!(
        out.status.success(),
        "stompkit admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The JSON of `stompkit admin --json ARGS`.
pub fn admin_json(admin_url: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = admin_ok(admin_url, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

/// The one stderr line of a `stompkit admin` that must fail.
pub fn admin_fails(admin_url: &str, args: &[&str]) -> String {
    let out = admin(admin_url, args);
    assert!(!out.status.success(), "stompkit admin {args:?} succeeded");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    err.trim_end().to_owned()
}

/// A raw STOMP 1.2 connection.
pub struct Stomp {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Stomp {
    /// CONNECTs (anonymously) and waits for CONNECTED.
    pub fn connect(addr: SocketAddr) -> Stomp {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut stomp = Stomp {
            stream,
            buf: Vec::new(),
        };
        stomp.write("CONNECT\naccept-version:1.2\nhost:localhost\n\n");
        let connected = stomp.frame().unwrap();
        assert!(connected.starts_with("CONNECTED\n"), "{connected:?}");
        stomp
    }

    /// Writes one frame (`text` is its command, headers and blank line, then body).
    pub fn write(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).unwrap();
        self.stream.write_all(b"\0").unwrap();
    }

    /// SENDs `body` to `destination` with a receipt, and waits for it.
    pub fn send(&mut self, destination: &str, headers: &[&str], body: &str) {
        let extra: String = headers.iter().map(|h| format!("{h}\n")).collect();
        self.write(&format!(
            "SEND\ndestination:{destination}\nreceipt:r\n{extra}\n{body}"
        ));
        let receipt = self.frame().unwrap();
        assert!(receipt.starts_with("RECEIPT\n"), "{receipt:?}");
    }

    /// SUBSCRIBEs (with a receipt, waited for).
    pub fn subscribe(&mut self, id: &str, destination: &str, ack: &str) {
        self.write(&format!(
            "SUBSCRIBE\nid:{id}\ndestination:{destination}\nack:{ack}\nreceipt:s-{id}\n\n"
        ));
        let receipt = self.frame().unwrap();
        assert!(receipt.starts_with("RECEIPT\n"), "{receipt:?}");
    }

    /// The next frame's text (without its NUL); `None` once the broker closed
    /// the connection.
    pub fn frame(&mut self) -> Option<String> {
        loop {
            while self.buf.first().is_some_and(|&b| b == b'\n' || b == b'\r') {
                self.buf.remove(0);
            }
            if let Some(end) = self.buf.iter().position(|&b| b == 0) {
                let frame: Vec<u8> = self.buf.drain(..=end).collect();
                return Some(String::from_utf8_lossy(&frame[..end]).into_owned());
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!("no frame within {WAIT:?}")
                }
                Err(_) => return None,
            }
        }
    }

    /// Reads frames until the broker closes the connection: the last one
    /// must be an ERROR; returns it.
    pub fn error_then_closed(&mut self) -> String {
        let mut last = None;
        while let Some(frame) = self.frame() {
            last = Some(frame);
        }
        let last = last.expect("closed without an ERROR");
        assert!(last.starts_with("ERROR\n"), "{last:?}");
        last
    }
}
