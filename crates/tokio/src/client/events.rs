//! Connection events: what an application can show its users about the link
//! to the server.
//!
//! Owns [`ConnectionEvent`], the stream a [`Client`](crate::Client) hands out
//! ([`ConnectionEvents`]) and the hub the connection task reports through. The
//! hub remembers the latest event, so a stream opened at any time starts with
//! the current state and then gets every later event, in order, none dropped.
//! It does not decide anything: the connection task says what happened.

use crate::client::error::ClientError;
use futures_util::Stream;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// A change in a client's connection to its server.
///
/// `server` names the server as its [`Connector`](crate::Connector) describes
/// it (`tcp 127.0.0.1:61613`, `tls broker.example:61614`, a `ws://` URL, the
/// name given to [`Connector::named`](crate::Connector::named); `(stream)` for
/// a client made with [`Client::connect`](crate::Client::connect)).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// The session opened on its first connection.
    Connected {
        /// The server connected to.
        server: Arc<str>,
    },
    /// The connection to `server` was lost. With reconnect on,
    /// [`Reconnecting`](ConnectionEvent::Reconnecting) follows; otherwise
    /// [`Closed`](ConnectionEvent::Closed).
    Disconnected {
        /// The server the connection was to.
        server: Arc<str>,
        /// Why it was lost (I/O error, heart-beat timeout, closed by the server...).
        reason: ClientError,
    },
    /// A reconnect attempt starts after `delay` (the jittered backoff).
    Reconnecting {
        /// 1 for the first attempt after the loss.
        attempt: u32,
        /// How long the client waits before trying.
        delay: Duration,
    },
    /// The session goes on over a new connection to `server`; live
    /// subscriptions were sent again. Messages received before are stale
    /// ([`ClientError::StaleAck`]).
    Reconnected {
        /// The server connected to.
        server: Arc<str>,
        /// How many attempts it took.
        attempts: u32,
    },
    /// The session is over for good; the stream ends after this event.
    Closed {
        /// [`ClientError::Disconnected`] after
        /// [`Client::disconnect`](crate::Client::disconnect), else the error that
        /// ended it (reconnect off, given up, an ERROR frame).
        reason: ClientError,
    },
}

/// The stream of a client's [`ConnectionEvent`]s, from
/// [`Client::events`](crate::Client::events): first the latest event (the
/// current state), then every later one in order. It ends after
/// [`ConnectionEvent::Closed`]. Events wait in the stream until read (they are
/// rare: one per connection change); drop it when no longer interested.
#[derive(Debug)]
pub struct ConnectionEvents {
    first: Option<ConnectionEvent>,
    rx: Option<mpsc::UnboundedReceiver<ConnectionEvent>>,
}

impl Stream for ConnectionEvents {
    type Item = ConnectionEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(first));
        }
        match &mut self.rx {
            Some(rx) => rx.poll_recv(cx),
            None => Poll::Ready(None),
        }
    }
}

/// Where the connection task reports events and clients open streams.
#[derive(Debug)]
pub(crate) struct EventHub {
    state: Mutex<HubState>,
}

#[derive(Debug)]
struct HubState {
    latest: ConnectionEvent,
    listeners: Vec<mpsc::UnboundedSender<ConnectionEvent>>,
    closed: bool,
}

impl EventHub {
    /// A hub whose current state is `first`.
    pub(crate) fn new(first: ConnectionEvent) -> EventHub {
        EventHub {
            state: Mutex::new(HubState {
                latest: first,
                listeners: Vec::new(),
                closed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `event` and hands it to every open stream; a
    /// [`ConnectionEvent::Closed`] ends them all.
    pub(crate) fn emit(&self, event: ConnectionEvent) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        state.listeners.retain(|tx| tx.send(event.clone()).is_ok());
        if matches!(event, ConnectionEvent::Closed { .. }) {
            state.closed = true;
            state.listeners.clear();
        }
        state.latest = event;
    }

    /// A stream starting with the latest event.
    pub(crate) fn subscribe(&self) -> ConnectionEvents {
        let mut state = self.lock();
        let rx = (!state.closed).then(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            state.listeners.push(tx);
            rx
        });
        ConnectionEvents {
            first: Some(state.latest.clone()),
            rx,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn server(event: &ConnectionEvent) -> Option<&str> {
        match event {
            ConnectionEvent::Connected { server } | ConnectionEvent::Reconnected { server, .. } => {
                Some(server)
            }
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_stream_starts_with_the_current_state_and_ends_after_closed() {
        let hub = EventHub::new(ConnectionEvent::Connected {
            server: Arc::from("a"),
        });
        let mut early = hub.subscribe();
        hub.emit(ConnectionEvent::Disconnected {
            server: Arc::from("a"),
            reason: ClientError::PeerDead,
        });
        let mut late = hub.subscribe();
        hub.emit(ConnectionEvent::Reconnected {
            server: Arc::from("b"),
            attempts: 1,
        });
        hub.emit(ConnectionEvent::Closed {
            reason: ClientError::Disconnected,
        });
        assert_eq!(server(&early.next().await.unwrap()), Some("a"));
        assert!(matches!(
            early.next().await,
            Some(ConnectionEvent::Disconnected {
                reason: ClientError::PeerDead,
                ..
            })
        ));
        assert!(matches!(
            late.next().await,
            Some(ConnectionEvent::Disconnected { .. })
        ));
        for stream in [&mut early, &mut late] {
            assert_eq!(server(&stream.next().await.unwrap()), Some("b"));
            assert!(matches!(
                stream.next().await,
                Some(ConnectionEvent::Closed { .. })
            ));
            assert!(stream.next().await.is_none());
        }
        let mut after = hub.subscribe();
        assert!(matches!(
            after.next().await,
            Some(ConnectionEvent::Closed { .. })
        ));
        assert!(after.next().await.is_none());
    }
}
