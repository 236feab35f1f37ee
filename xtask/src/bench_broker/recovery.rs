//! The recovery row: fill a durable queue of a fresh broker with persistent
//! messages (`stompkit bench`, receipted, each broker's fastest way: see
//! [`Plan::fill_args`]), kill the broker with SIGKILL, start it again on the
//! same files, and time from that spawn until a consumer's SUBSCRIBE gets the
//! first message. For stompkit that includes its `listening` line, which it
//! prints once the store is recovered; the peers are polled with CONNECT from
//! the spawn on.
//!
//! Owns the broker handles for the row ([`Node`]: its own stompkit process, or
//! the peers' throwaway instances from [`crate::activemq`] and
//! [`xtask::rabbitmq`], each started fresh) and the consumer probe
//! ([`first_message`]); measures one run per broker.

use super::rows::{Plan, Sample, run_json};
use super::stompkit;
use crate::activemq::{self, ActiveMq};
use crate::cmd;
use anyhow::{Context, Result, bail};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};
use xtask::rabbitmq::RabbitMq;

/// How long a restarted broker may take to hand out the first message.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(600);

/// A broker for the recovery row.
pub enum Node {
    /// stompkit-broker with its own data directory.
    Stompkit(stompkit::Node),
    /// A throwaway RabbitMQ.
    Rabbit(RabbitMq),
    /// A throwaway ActiveMQ with KahaDB.
    Active(ActiveMq),
}

impl Node {
    /// Starts a fresh broker named `name` (`stompkit`, `rabbitmq`, `activemq`).
    pub fn start(name: &str, bin: &Path) -> Result<Node> {
        let target = cmd::target_dir();
        Ok(match name {
            "stompkit" => Node::Stompkit(stompkit::Node::start(bin, &target)?),
            "rabbitmq" => Node::Rabbit(RabbitMq::start(&target)?),
            _ => Node::Active(
                ActiveMq::start(&target, activemq::Store::KahaDb)?
                    .context("ActiveMQ is not installed")?,
            ),
        })
    }

    /// Where STOMP is served now.
    fn stomp(&self) -> SocketAddr {
        match self {
            Node::Stompkit(node) => node.addr,
            Node::Rabbit(rabbit) => rabbit.stomp,
            Node::Active(active) => active.stomp,
        }
    }

    /// SIGKILL, then start again on the same files: the instant of the new
    /// spawn, and (stompkit) when it printed its `listening` line.
    fn crash_and_respawn(&mut self) -> Result<(Instant, Option<Instant>)> {
        match self {
            Node::Stompkit(node) => {
                node.kill();
                let (spawned, listening) = node.respawn(RECOVERY_TIMEOUT)?;
                Ok((spawned, Some(listening)))
            }
            Node::Rabbit(rabbit) => {
                rabbit.kill();
                let spawned = Instant::now();
                rabbit.respawn()?;
                Ok((spawned, None))
            }
            Node::Active(active) => {
                active.kill();
                let spawned = Instant::now();
                active.respawn()?;
                Ok((spawned, None))
            }
        }
    }
}

/// The recovery row on broker `name` with `messages` bodies of `size` bytes.
pub fn measure(name: &str, bin: &Path, plan: &Plan<'_>, messages: u64, size: usize) -> Sample {
    match run(name, bin, plan, messages, size) {
        Ok(seconds) => Sample::Seconds(seconds),
        Err(error) => Sample::Failed(format!("{error:#}")),
    }
}

fn run(name: &str, bin: &Path, plan: &Plan<'_>, messages: u64, size: usize) -> Result<f64> {
    let mut node = Node::start(name, bin)?;
    let destination = format!("/queue/bench-recovery-{}", plan.run_id);
    let url = format!("stomp://{}", node.stomp());
    let mut args: Vec<String> = vec!["bench".into(), "--url".into(), url];
    args.extend(plan.login_args());
    args.extend(plan.fill_args());
    args.extend([
        "--mode".into(),
        "queue".into(),
        "-s".into(),
        "0".into(),
        "--size".into(),
        size.to_string(),
        "--count".into(),
        messages.to_string(),
        "--drain-timeout".into(),
        "60".into(),
        "--destination".into(),
        destination.clone(),
        "--json".into(),
        "--quiet".into(),
    ]);
    let limit = Duration::from_secs(300 + messages / 500);
    let report = run_json(plan.stompkit, &args, limit).context("filling the queue")?;
    if let Some(error) = report["errors"].as_array().and_then(|e| e.first()) {
        bail!("filling the queue: {}", error.as_str().unwrap_or("failed"));
    }
    let stored = report["published"].as_u64().unwrap_or(0);
    if stored != messages {
        bail!("filling the queue: {stored} of {messages} receipted");
    }
    println!(
        "bench-broker: {name}: {messages} persistent messages stored at {:.0}/s; SIGKILL and restart",
        report["publish_msgs_per_sec"].as_f64().unwrap_or(0.0)
    );
    let (spawned, listening) = node.crash_and_respawn()?;
    let got = first_message(
        node.stomp(),
        plan.login,
        &destination,
        plan.prefetch_header,
        spawned + RECOVERY_TIMEOUT,
    )?;
    let seconds = got.duration_since(spawned).as_secs_f64();
    match listening {
        Some(at) => println!(
            "bench-broker: {name}: listening {:.2} s after the spawn, first message at {seconds:.2} s",
            at.duration_since(spawned).as_secs_f64()
        ),
        None => println!("bench-broker: {name}: first message {seconds:.2} s after the spawn"),
    }
    Ok(seconds)
}

/// Connects to `addr` again and again (every 20 ms) until a SUBSCRIBE to
/// `destination` (ack `client-individual`, prefetch 1) gets a MESSAGE, or
/// `deadline` passes; returns when the MESSAGE was read.
pub fn first_message(
    addr: SocketAddr,
    login: Option<(&str, &str)>,
    destination: &str,
    prefetch_header: &str,
    deadline: Instant,
) -> Result<Instant> {
    loop {
        match try_first_message(addr, login, destination, prefetch_header, deadline) {
            Ok(at) => return Ok(at),
            Err(error) if Instant::now() >= deadline => {
                return Err(error.context(format!("no message from {addr} in time")));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn try_first_message(
    addr: SocketAddr,
    login: Option<(&str, &str)>,
    destination: &str,
    prefetch_header: &str,
    deadline: Instant,
) -> Result<Instant> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_nodelay(true)?;
    let mut connect = String::from("CONNECT\naccept-version:1.2\nhost:/\nheart-beat:0,0\n");
    if let Some((login, passcode)) = login {
        connect.push_str(&format!("login:{login}\npasscode:{passcode}\n"));
    }
    connect.push_str("\n\0");
    stream.write_all(connect.as_bytes())?;
    let mut frames = Frames::default();
    let until = |stream: &TcpStream| -> Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        stream.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        Ok(())
    };
    until(&stream)?;
    match frames.next(&mut stream)?.as_str() {
        "CONNECTED" => {}
        other => bail!("CONNECT answered with {other}"),
    }
    stream.write_all(
        format!(
            "SUBSCRIBE\nid:0\ndestination:{destination}\nack:client-individual\n{prefetch_header}:1\n\n\0"
        )
        .as_bytes(),
    )?;
    loop {
        until(&stream)?;
        match frames.next(&mut stream)?.as_str() {
            "MESSAGE" => return Ok(Instant::now()),
            "ERROR" => bail!("SUBSCRIBE answered with ERROR"),
            _ => {}
        }
    }
}

/// Splits what a broker sends into frames; only their commands are kept.
#[derive(Default)]
struct Frames {
    buf: Vec<u8>,
}

impl Frames {
    /// The command of the next frame (reading as needed).
    fn next(&mut self, stream: &mut impl Read) -> Result<String> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == 0) {
                let frame: Vec<u8> = self.buf.drain(..=end).collect();
                let text = String::from_utf8_lossy(&frame);
                let command = text
                    .trim_start_matches(['\r', '\n'])
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim_end()
                    .to_string();
                return Ok(command);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = match stream.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    bail!("nothing received in time")
                }
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                bail!("the broker closed the connection");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_split_at_nul_and_named_by_their_command() -> Result<()> {
        let mut input: &[u8] = b"CONNECTED\nversion:1.2\n\n\0\n\nMESSAGE\r\nid:1\n\nbody\0ERR";
        let mut frames = Frames::default();
        assert_eq!(frames.next(&mut input)?, "CONNECTED");
        assert_eq!(frames.next(&mut input)?, "MESSAGE");
        assert!(
            frames.next(&mut input).is_err(),
            "an unfinished frame, then EOF"
        );
        Ok(())
    }

    #[test]
    fn the_probe_gives_up_at_its_deadline() {
        // A port nothing listens on (bound, then released).
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let started = Instant::now();
        let deadline = started + Duration::from_millis(100);
        let result = first_message(addr, None, "/queue/x", "prefetch-count", deadline);
        assert!(result.is_err());
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
