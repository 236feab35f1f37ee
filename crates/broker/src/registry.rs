//! The connection registry: who is connected, for the admin API.
//!
//! Owns the table of the broker's own CONNECTed sessions (id, peer, login,
//! STOMP version, [`TransportKind`], when the session opened, and its outbox
//! for the bytes waiting to be written). A session is registered once its
//! CONNECT is accepted (`connection/local.rs`) and unregistered when its
//! [`Registration`] is dropped (the connection task ends, however it ends).
//! Nothing here is on a frame's path: the table's lock is taken at CONNECT,
//! at close and when the admin API asks. What the router counts per
//! connection (subscriptions, messages) is the router's (`router/admin.rs`);
//! the admin API joins the two (`admin/`).

use crate::outbox::Outbox;
use crate::router::ConnId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};
use stompkit_frame::Version;

/// What carries a connection's STOMP bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TransportKind {
    /// STOMP over plain TCP.
    Tcp,
    /// STOMP over a WebSocket on plain TCP.
    Ws,
    /// STOMP over TLS.
    Tls,
    /// STOMP over a WebSocket over TLS.
    Wss,
}

impl TransportKind {
    /// The kind over a byte stream (`tls`: a TLS stream) or a WebSocket on it.
    pub(crate) fn of(tls: bool, websocket: bool) -> TransportKind {
        match (tls, websocket) {
            (false, false) => TransportKind::Tcp,
            (false, true) => TransportKind::Ws,
            (true, false) => TransportKind::Tls,
            (true, true) => TransportKind::Wss,
        }
    }

    /// Its name in the admin API: `tcp`, `ws`, `tls` or `wss`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TransportKind::Tcp => "tcp",
            TransportKind::Ws => "ws",
            TransportKind::Tls => "tls",
            TransportKind::Wss => "wss",
        }
    }
}

/// One open session, as registered.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    /// The connection id (the router's).
    pub(crate) id: ConnId,
    /// The peer's address.
    pub(crate) peer: SocketAddr,
    /// The authenticated login; `None` for an anonymous client.
    pub(crate) login: Option<String>,
    /// The negotiated STOMP version.
    pub(crate) version: Version,
    /// What carries it.
    pub(crate) transport: TransportKind,
    /// When the session opened, in Unix milliseconds.
    pub(crate) connected_at: u64,
    /// Its outbox (bytes waiting to be written: [`Outbox::queued`]).
    pub(crate) outbox: Arc<Outbox>,
}

impl Session {
    /// Bytes waiting to be written to the client now.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.outbox.queued()
    }
}

/// The broker's open sessions, by id (one per broker, in `Shared`).
#[derive(Debug, Default)]
pub(crate) struct Registry {
    sessions: Mutex<BTreeMap<ConnId, Session>>,
}

impl Registry {
    /// Registers an open session; it stays listed until the returned
    /// [`Registration`] is dropped.
    pub(crate) fn register(self: &Arc<Self>, session: Session) -> Registration {
        let id = session.id;
        self.lock().insert(id, session);
        Registration {
            registry: self.clone(),
            id,
        }
    }

    /// Every open session, by id.
    pub(crate) fn sessions(&self) -> Vec<Session> {
        self.lock().values().cloned().collect()
    }

    /// One open session.
    pub(crate) fn get(&self, id: ConnId) -> Option<Session> {
        self.lock().get(&id).cloned()
    }

    /// Locks the table, whether or not a thread panicked holding it (every
    /// critical section is one map operation).
    fn lock(&self) -> MutexGuard<'_, BTreeMap<ConnId, Session>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A session's place in the [`Registry`]: dropping it unregisters the session.
#[derive(Debug)]
pub(crate) struct Registration {
    registry: Arc<Registry>,
    id: ConnId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

/// Now, in Unix milliseconds.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: ConnId) -> Session {
        Session {
            id,
            peer: SocketAddr::from(([127, 0, 0, 1], 5000)),
            login: None,
            version: Version::V1_2,
            transport: TransportKind::Tcp,
            connected_at: unix_ms(),
            outbox: Arc::new(Outbox::new(1024)),
        }
    }

    #[test]
    fn a_session_is_listed_until_its_registration_is_dropped() {
        let registry = Arc::new(Registry::default());
        let second = registry.register(session(9));
        let first = registry.register(session(3));
        let ids: Vec<ConnId> = registry.sessions().iter().map(|s| s.id).collect();
        assert_eq!(ids, [3, 9], "listed by id");
        drop(second);
        assert!(registry.get(9).is_none());
        assert_eq!(registry.sessions().len(), 1);
        drop(first);
        assert!(registry.sessions().is_empty());
    }

    #[test]
    fn pending_bytes_are_the_outbox_queue() {
        let s = session(1);
        assert!(s.outbox.append(|buf| buf.extend_from_slice(b"0123456789")));
        assert_eq!(s.pending_bytes(), 10);
    }

    #[test]
    fn transport_names() {
        let names: Vec<&str> = [(false, false), (false, true), (true, false), (true, true)]
            .into_iter()
            .map(|(tls, ws)| TransportKind::of(tls, ws).as_str())
            .collect();
        assert_eq!(names, ["tcp", "ws", "tls", "wss"]);
    }
}
