//! Relay mode: the broker as a protocol-aware front end of another STOMP broker.
//!
//! With `--upstream stomp://HOST:PORT` (or `stomp+ssl://`, `[relay] upstream`,
//! `STOMPKIT_RELAY_UPSTREAM`) every client session, over TCP or WebSocket, is
//! relayed to its own upstream STOMP session (RabbitMQ, ActiveMQ, Artemis, ...)
//! instead of the local router:
//! - the client's CONNECT goes upstream with the client's own `login`/`passcode`
//!   and `accept-version` (so both sides speak the same version and no header
//!   needs translating), and `host` = the client's, or [`RelayConfig::vhost`](crate::RelayConfig::vhost). A
//!   configured [`RelayConfig::login`](crate::RelayConfig::login) replaces the client's credentials only
//!   when set, for deployments that authenticate at the relay (`[auth]` users
//!   or tokens, with their send/subscribe rules, checked before the session
//!   goes upstream); by default the relay is never an open proxy for a shared
//!   upstream login;
//! - frames are parsed, validated and size-limited in both directions with the
//!   broker's parser and `[limits]`;
//! - heart-beats are negotiated and kept separately on each side;
//! - an upstream failure (refused, closed, ERROR, silent) reaches the client as
//!   an ERROR frame, then the client is closed; a client that goes closes its
//!   upstream session;
//! - back-pressure both ways: each direction stops reading once the bytes
//!   queued toward the other side reach `max_outbox_bytes`.
//!
//! Owns: the sans-IO per-client state machine (`session.rs`) and its
//! wiring on the broker's connection driver (`connection.rs`: the upstream
//! peer; the client side is the driver's). The listeners, the transports (TCP or
//! WebSocket) and shutdown are the server's; the upstream's address and
//! connection are `upstream.rs`'s, `[relay]` is `config/relay.rs`.

mod connection;
mod session;

pub(crate) use connection::serve;
