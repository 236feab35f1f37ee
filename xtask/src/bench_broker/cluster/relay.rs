//! A TCP relay that places each connection of one `stompkit bench` run on a
//! broker node of its own choosing.
//!
//! `stompkit bench` takes one `--url`, but the cluster rows want a run's
//! subscribers spread over three nodes and its publishers elsewhere. The load
//! generator connects all its subscribers (each SUBSCRIBE confirmed by a
//! RECEIPT) before it connects a publisher, so the order in which the relay
//! accepts connections says which is which: the first `first` go round robin
//! over [`Placement::first_to`], the rest over [`Placement::rest_to`]. Each
//! connection is then copied both ways by two threads (large reads, one
//! `write_all` each, `TCP_NODELAY` on both sides); an end of stream on one side
//! is passed on as a half-close to the other. The relay measures nothing; its
//! own cost is what the single node measured directly and through it differ by.

use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// Bytes read at once per direction of a connection.
const BUFFER: usize = 128 * 1024;

/// Where the relay sends each connection, by the order it arrives in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// How many connections come first (the load generator's subscribers).
    pub first: usize,
    /// Nodes for the first `first` connections, round robin.
    pub first_to: Vec<SocketAddr>,
    /// Nodes for every later connection (the publishers), round robin.
    pub rest_to: Vec<SocketAddr>,
}

impl Placement {
    /// Every connection to `addr`.
    pub fn all_to(addr: SocketAddr) -> Placement {
        Placement {
            first: 0,
            first_to: vec![addr],
            rest_to: vec![addr],
        }
    }

    /// The node of the `k`-th connection (from 0); `None` with no node to go to.
    pub fn target(&self, k: usize) -> Option<SocketAddr> {
        let (nodes, i) = if k < self.first {
            (&self.first_to, k)
        } else {
            (&self.rest_to, k - self.first)
        };
        nodes.get(i.checked_rem(nodes.len())?).copied()
    }
}

/// What the accepting thread shares with the relay's owner.
#[derive(Default)]
struct State {
    /// The node of every connection so far, in arrival order.
    placed: Vec<SocketAddr>,
    /// Both ends of every connection, shut down when the relay is dropped.
    streams: Vec<TcpStream>,
    /// Connections that could not be relayed, and why.
    errors: Vec<String>,
}

/// A running relay on an ephemeral loopback port; stopped (every connection
/// shut down) when dropped.
pub struct Relay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<State>>,
    accepter: Option<JoinHandle<()>>,
}

impl Relay {
    /// Listens on `127.0.0.1:0` and relays every connection as `placement` says.
    pub fn start(placement: Placement) -> Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the relay")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(State::default()));
        let accepter = {
            let (stop, state) = (stop.clone(), state.clone());
            std::thread::Builder::new()
                .name("relay-accept".into())
                .spawn(move || accept_all(&listener, &placement, &stop, &state))
                .context("starting the relay's thread")?
        };
        Ok(Relay {
            addr,
            stop,
            state,
            accepter: Some(accepter),
        })
    }

    /// `stomp://127.0.0.1:<port>`, for the load generator.
    pub fn url(&self) -> String {
        format!("stomp://{}", self.addr)
    }

    /// The node of every connection so far, in arrival order.
    pub fn placed(&self) -> Vec<SocketAddr> {
        lock(&self.state).placed.clone()
    }

    /// Connections that could not be relayed, and why.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.state).errors.clone()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which sees `stop` and ends.
        let _ = TcpStream::connect(self.addr);
        if let Some(accepter) = self.accepter.take() {
            let _ = accepter.join();
        }
        for stream in lock(&self.state).streams.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// The state, also after a thread panicked holding it.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Accepts connections until `stop`, relaying each to its node.
fn accept_all(
    listener: &TcpListener,
    placement: &Placement,
    stop: &AtomicBool,
    state: &Mutex<State>,
) {
    let mut k = 0;
    for incoming in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = incoming else { continue };
        let outcome = placement
            .target(k)
            .context("no node to relay to")
            .and_then(|node| relay(client, node, state).map(|()| node));
        match outcome {
            Ok(node) => lock(state).placed.push(node),
            Err(error) => lock(state)
                .errors
                .push(format!("connection {k}: {error:#}")),
        }
        k += 1;
    }
}

/// Connects to `node` and copies `client` ↔ node on two threads.
fn relay(client: TcpStream, node: SocketAddr, state: &Mutex<State>) -> Result<()> {
    let upstream =
        TcpStream::connect(node).with_context(|| format!("connecting to the node at {node}"))?;
    client.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    {
        let mut state = lock(state);
        state.streams.push(client.try_clone()?);
        state.streams.push(upstream.try_clone()?);
    }
    let (client_read, upstream_read) = (client.try_clone()?, upstream.try_clone()?);
    std::thread::Builder::new()
        .name("relay-up".into())
        .spawn(move || copy(client_read, upstream))?;
    std::thread::Builder::new()
        .name("relay-down".into())
        .spawn(move || copy(upstream_read, client))?;
    Ok(())
}

/// Copies `from` to `to` until `from` ends or either fails, then half-closes `to`.
fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0; BUFFER];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    let _ = from.shutdown(Shutdown::Read);
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    /// A server that answers every line with its own address.
    fn name_server() -> Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let Ok(mut out) = stream.try_clone() else {
                        return;
                    };
                    for line in BufReader::new(stream).lines().map_while(Result::ok) {
                        let _ = writeln!(out, "{line} {addr}");
                    }
                });
            }
        });
        Ok(addr)
    }

    #[test]
    fn the_first_connections_and_the_rest_go_round_robin_to_their_nodes() -> Result<()> {
        let (a, b, c) = (name_server()?, name_server()?, name_server()?);
        let placement = Placement {
            first: 3,
            first_to: vec![a, b],
            rest_to: vec![c, a],
        };
        let relay = Relay::start(placement)?;
        let mut seen = Vec::new();
        for i in 0..5 {
            let mut stream = TcpStream::connect(relay.addr)?;
            writeln!(stream, "hello{i}")?;
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line)?;
            seen.push(line.trim().to_string());
        }
        let expected: Vec<String> = [a, b, a, c, a]
            .iter()
            .enumerate()
            .map(|(i, node)| format!("hello{i} {node}"))
            .collect();
        assert_eq!(seen, expected);
        assert_eq!(relay.placed(), [a, b, a, c, a]);
        assert!(relay.errors().is_empty());
        assert_eq!(Placement::all_to(a).target(7), Some(a));
        let nowhere = Placement {
            first: 0,
            first_to: vec![],
            rest_to: vec![],
        };
        assert_eq!(nowhere.target(0), None);
        Ok(())
    }
}
