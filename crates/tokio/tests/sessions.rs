//! What the client does across connections and for requests, against an
//! in-process scripted peer (no broker), where every byte the client writes
//! can be checked: a stale ACK never reaches the wire, connection events come
//! in order, replies on `/temp-queue/…` go to the request with their
//! `correlation-id`.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod peer;

use futures_util::StreamExt;
use peer::{Peer, pair};
use std::sync::Arc;
use std::time::Duration;
use stompkit_frame::{AckMode, Command, Frame};
use stompkit_tokio::{
    Client, ClientConfig, ClientError, ConnectionEvent, Connector, Jitter, REPLY_QUEUE, Reconnect,
};
use tokio::io::DuplexStream;
use tokio::sync::{mpsc, oneshot};

fn config() -> ClientConfig {
    ClientConfig::new("vhost").heart_beat(Duration::ZERO, Duration::ZERO)
}

type PeerRequest = oneshot::Sender<DuplexStream>;

/// A connector whose every connection is handed to the next peer the test asks
/// for with [`next_peer`].
fn scripted() -> (Connector, mpsc::UnboundedSender<PeerRequest>) {
    let (tx, rx) = mpsc::unbounded_channel::<PeerRequest>();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let connector = Connector::new(move || {
        let rx = rx.clone();
        async move {
            let (client, server) = tokio::io::duplex(64 * 1024);
            match rx.lock().await.recv().await {
                Some(reply) => {
                    let _ = reply.send(server);
                    Ok(client)
                }
                None => Err(std::io::Error::other("no more peers")),
            }
        }
    })
    .named("scripted");
    (connector, tx)
}

fn next_peer(tx: &mpsc::UnboundedSender<PeerRequest>) -> impl Future<Output = Peer> + use<> {
    let (reply, server) = oneshot::channel();
    tx.send(reply).unwrap();
    async move { Peer::new(server.await.unwrap()) }
}

#[tokio::test]
async fn a_stale_ack_is_refused_and_never_written() {
    let (connector, peers) = scripted();
    let first = next_peer(&peers);
    let config = config().reconnect(Reconnect {
        initial_delay: Duration::from_millis(5),
        jitter: Jitter::None,
        ..Reconnect::default()
    });
    let script = tokio::spawn(async move {
        let mut peer = first.await;
        peer.accept("1.2", "0,0").await;
        peer
    });
    let client = Client::connect_with(connector, config).await.unwrap();
    let mut events = client.events();
    let mut peer = script.await.unwrap();
    let mut sub = client
        .subscribe("/queue/a", AckMode::ClientIndividual)
        .await
        .unwrap();
    peer.expect(Command::Subscribe).await;
    peer.message(sub.id(), "1", "before").await;
    let before = sub.next().await.unwrap().unwrap();
    let tx = client.begin().await.unwrap();
    assert_eq!(
        peer.expect(Command::Begin).await.get("transaction"),
        Some(tx.id())
    );

    let second = next_peer(&peers);
    drop(peer);
    let mut peer = second.await;
    peer.accept("1.2", "0,0").await;
    peer.expect(Command::Subscribe).await;
    // Connected (the state when the stream opened), then the loss, the attempt
    // and the new connection.
    let mut seen = Vec::new();
    while seen.len() < 4 {
        seen.push(events.next().await.unwrap());
    }
    assert!(matches!(&seen[0], ConnectionEvent::Connected { server } if &**server == "scripted"));
    assert!(matches!(
        &seen[1],
        ConnectionEvent::Disconnected { reason: ClientError::ConnectionClosed, server } if &**server == "scripted"
    ));
    assert!(matches!(
        &seen[2],
        ConnectionEvent::Reconnecting { attempt: 1, delay } if *delay == Duration::from_millis(5)
    ));
    assert!(matches!(
        &seen[3],
        ConnectionEvent::Reconnected { attempts: 1, .. }
    ));

    assert!(matches!(before.ack().await, Err(ClientError::StaleAck)));
    assert!(matches!(before.nack().await, Err(ClientError::StaleAck)));
    assert!(matches!(tx.ack(&before).await, Err(ClientError::StaleAck)));
    assert!(matches!(
        tx.send(Frame::send("/queue/b")).await,
        Err(ClientError::StaleAck)
    ));
    drop(tx); // no ABORT for a transaction of an earlier connection
    peer.message(sub.id(), "2", "after").await;
    let after = sub.next().await.unwrap().unwrap();
    after.ack().await.unwrap();
    // The first frame written on the new connection after SUBSCRIBE is the
    // ACK of the new message: nothing of the old connection was sent.
    let ack = peer.expect(Command::Ack).await;
    assert_eq!(ack.get("id"), Some("ack-2"));
}

#[tokio::test]
async fn replies_go_to_their_request_by_correlation_id() {
    let (io, mut peer) = pair();
    let script = tokio::spawn(async move {
        peer.accept("1.2", "0,0").await;
        peer
    });
    let client = Client::connect(io, config()).await.unwrap();
    let mut peer = script.await.unwrap();
    let first = tokio::spawn({
        let client = client.clone();
        async move {
            let frame = Frame::send("/queue/svc").with_body("one");
            client.request(frame, Duration::from_secs(10)).await
        }
    });
    let one = peer.expect(Command::Send).await;
    let second = tokio::spawn({
        let client = client.clone();
        async move {
            let frame = Frame::send("/queue/svc")
                .header("correlation-id", "mine")
                .with_body("two");
            client.request(frame, Duration::from_secs(10)).await
        }
    });
    let two = peer.expect(Command::Send).await;
    for request in [&one, &two] {
        assert_eq!(request.get("reply-to"), Some(REPLY_QUEUE));
        assert_eq!(request.headers().get_all("correlation-id").count(), 1);
    }
    let (id1, id2) = (
        one.get("correlation-id").unwrap().to_string(),
        two.get("correlation-id").unwrap().to_string(),
    );
    assert_ne!(id1, id2);
    assert_ne!(id2, "mine", "the client's own id replaces the caller's");
    let reply = |id: &str, body: &str| {
        format!(
            "MESSAGE\ndestination:/reply-queue/x\nmessage-id:{body}\nsubscription:{REPLY_QUEUE}\ncorrelation-id:{id}\n\n{body}\0\n"
        )
    };
    // Answered in the other order, plus a reply nobody waits for.
    peer.write(reply("unknown", "stray")).await;
    peer.write(reply(&id2, "for two")).await;
    peer.write(reply(&id1, "for one")).await;
    let got_two = second.await.unwrap().unwrap();
    let got_one = first.await.unwrap().unwrap();
    assert_eq!(got_one.body(), b"for one");
    assert_eq!(got_two.body(), b"for two");
    assert_eq!(got_one.subscription(), REPLY_QUEUE);

    // A request that is not answered in time; its late reply is dropped.
    let late = client
        .request(Frame::send("/queue/svc"), Duration::from_millis(50))
        .await;
    assert!(matches!(late, Err(ClientError::Timeout)), "{late:?}");
    let sent = peer.expect(Command::Send).await;
    peer.write(reply(sent.get("correlation-id").unwrap(), "late"))
        .await;
    // The responder's side: a reply frame for a request.
    let request = {
        let mut sub = client.subscribe("/queue/in", AckMode::Auto).await.unwrap();
        peer.expect(Command::Subscribe).await;
        peer.write(format!(
            "MESSAGE\ndestination:/queue/in\nmessage-id:9\nsubscription:{}\nreply-to:/reply-queue/abc\ncorrelation-id:c-9\n\nq\0\n",
            sub.id()
        ))
        .await;
        sub.next().await.unwrap().unwrap()
    };
    let answer = request.reply_frame().unwrap();
    assert_eq!(answer.command, Command::Send);
    assert_eq!(answer.destination(), Some("/reply-queue/abc"));
    assert_eq!(answer.get("correlation-id"), Some("c-9"));
    assert!(client.closed_error().is_none());
}

#[tokio::test]
async fn after_an_error_frame_reconnect_only_when_asked() {
    for after_error in [false, true] {
        let (connector, peers) = scripted();
        let first = next_peer(&peers);
        let config = config().reconnect(Reconnect {
            initial_delay: Duration::from_millis(1),
            after_error,
            ..Reconnect::default()
        });
        let script = tokio::spawn(async move {
            let mut peer = first.await;
            peer.accept("1.2", "0,0").await;
            peer
        });
        let client = Client::connect_with(connector, config).await.unwrap();
        let mut events = client.events();
        let mut peer = script.await.unwrap();
        let sub = client.subscribe("/topic/a", AckMode::Auto).await.unwrap();
        peer.expect(Command::Subscribe).await;
        let second = next_peer(&peers);
        peer.write("ERROR\nmessage:server shutting down\n\n\0")
            .await;
        assert!(matches!(
            events.next().await,
            Some(ConnectionEvent::Connected { .. })
        ));
        match events.next().await {
            Some(ConnectionEvent::Disconnected { reason, .. }) => assert_eq!(
                reason.server_frame().and_then(|f| f.get("message")),
                Some("server shutting down")
            ),
            other => panic!("{other:?}"),
        }
        if after_error {
            let mut peer = second.await;
            peer.accept("1.2", "0,0").await;
            let again = peer.expect(Command::Subscribe).await;
            assert_eq!(again.id(), Some(sub.id()));
            assert!(matches!(
                events.next().await,
                Some(ConnectionEvent::Reconnecting { .. })
            ));
            assert!(matches!(
                events.next().await,
                Some(ConnectionEvent::Reconnected { .. })
            ));
            assert!(client.closed_error().is_none());
        } else {
            assert!(matches!(
                events.next().await,
                Some(ConnectionEvent::Closed {
                    reason: ClientError::Server(_)
                })
            ));
            assert!(events.next().await.is_none());
            assert!(client.closed_error().is_some());
        }
    }
}
