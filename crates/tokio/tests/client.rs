//! Client behaviour against an in-process scripted peer (no broker).
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod peer;

use futures_util::StreamExt;
use peer::{Peer, pair};
use std::sync::Arc;
use std::time::Duration;
use stompkit_frame::{AckMode, Command, Frame, Version};
use stompkit_tokio::{
    Client, ClientConfig, ClientError, Connector, PREFETCH_COUNT, Reconnect, SubscribeOptions,
    SubscriptionError,
};

fn config() -> ClientConfig {
    ClientConfig::new("vhost").heart_beat(Duration::ZERO, Duration::ZERO)
}

/// Connects a client to a peer that answers CONNECTED with `version` and no heart-beats.
async fn connected(version: &str, config: ClientConfig) -> (Client, Peer) {
    let (io, mut peer) = pair();
    let version = version.to_string();
    let server = tokio::spawn(async move {
        peer.accept(&version, "0,0").await;
        peer
    });
    let client = Client::connect(io, config).await.unwrap();
    (client, server.await.unwrap())
}

#[tokio::test]
async fn v1_v6_connect_sends_versions_host_credentials_heart_beat() {
    let (io, mut peer) = pair();
    let server = tokio::spawn(async move { peer.accept("1.1", "0,0").await });
    let config = ClientConfig::new("vhost")
        .login("guest", "secret")
        .heart_beat(Duration::from_millis(4000), Duration::from_millis(5000));
    let client = Client::connect(io, config).await.unwrap();
    let connect = server.await.unwrap();
    assert_eq!(connect.command, Command::Connect);
    assert_eq!(connect.get("accept-version"), Some("1.0,1.1,1.2"));
    assert_eq!(connect.get("host"), Some("vhost"));
    assert_eq!(connect.get("login"), Some("guest"));
    assert_eq!(connect.get("passcode"), Some("secret"));
    assert_eq!(connect.get("heart-beat"), Some("4000,5000"));
    assert_eq!(client.version(), Version::V1_1);
    assert_eq!(client.connected().get("session"), Some("s-1"));
}

#[tokio::test]
async fn v7_stomp_command_and_restricted_versions() {
    let (io, mut peer) = pair();
    let server = tokio::spawn(async move { peer.accept("1.2", "0,0").await });
    let config = config().use_stomp_command(true).versions(&[Version::V1_2]);
    let client = Client::connect(io, config).await.unwrap();
    let connect = server.await.unwrap();
    assert_eq!(connect.command, Command::Stomp);
    assert_eq!(connect.get("accept-version"), Some("1.2"));
    assert_eq!(client.version(), Version::V1_2);
}

#[tokio::test]
async fn v3_server_version_we_did_not_offer_is_refused() {
    let (io, mut peer) = pair();
    tokio::spawn(async move {
        peer.accept("1.0", "0,0").await;
        peer.until_eof().await
    });
    let err = Client::connect(io, config().versions(&[Version::V1_2]))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Negotiate(_)), "{err:?}");
}

#[tokio::test]
async fn v8_error_instead_of_connected_fails_connect_with_the_frame() {
    let (io, mut peer) = pair();
    tokio::spawn(async move {
        peer.frame().await;
        peer.write("ERROR\nmessage:bad login\n\nwho are you\0")
            .await;
    });
    let err = Client::connect(io, config()).await.unwrap_err();
    let frame = err.server_frame().expect("server frame");
    assert_eq!(frame.get("message"), Some("bad login"));
    assert_eq!(frame.body(), b"who are you");
}

#[tokio::test(start_paused = true)]
async fn connect_times_out_without_connected() {
    let (io, mut peer) = pair();
    tokio::spawn(async move {
        peer.frame().await;
        std::future::pending::<()>().await;
    });
    let err = Client::connect(io, config().connect_timeout(Duration::from_secs(3)))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout), "{err:?}");
}

#[tokio::test]
async fn c1_c2_subscribe_send_and_receive() {
    let (client, mut peer) = connected("1.2", config()).await;
    let mut sub = client.subscribe("/queue/a", AckMode::Auto).await.unwrap();
    let subscribe = peer.expect(Command::Subscribe).await;
    assert_eq!(subscribe.destination(), Some("/queue/a"));
    assert_eq!(subscribe.id(), Some(sub.id()));
    assert_eq!(subscribe.get("ack"), None);

    client
        .send(
            Frame::send("/queue/a")
                .header("x", "a:b")
                .with_body("hello"),
        )
        .await
        .unwrap();
    let send = peer.expect(Command::Send).await;
    assert_eq!(send.get("x"), Some("a:b"));
    assert_eq!(send.body(), b"hello");

    peer.message(sub.id(), "m-1", "world").await;
    let msg = sub.next().await.unwrap().unwrap();
    assert_eq!(msg.body(), b"world");
    assert_eq!(msg.destination(), Some("/queue/a"));
    assert_eq!(msg.message_id(), Some("m-1"));
    assert_eq!(msg.subscription(), sub.id());
    // auto-ack messages cannot be acknowledged
    assert!(matches!(msg.ack().await, Err(ClientError::CannotAck(_))));
}

#[tokio::test]
async fn client_frames_that_cannot_be_encoded_fail_at_the_call() {
    let (client, _peer) = connected("1.1", config()).await;
    // F7: SUBSCRIBE cannot have a body; 1.1 cannot carry a CR in a header.
    let bad = Frame::new(Command::Subscribe).with_body("x");
    assert!(matches!(
        client.send(bad).await,
        Err(ClientError::Encode(_))
    ));
    let bad = Frame::send("/q").header("k", "a\rb");
    assert!(matches!(
        client.send(bad).await,
        Err(ClientError::Encode(_))
    ));
    assert!(matches!(
        client.send(Frame::disconnect()).await,
        Err(ClientError::UnexpectedFrame(Command::Disconnect))
    ));
}

async fn ack_round(version: &str) -> (Frame, Result<Frame, ClientError>) {
    let (client, mut peer) = connected(version, config()).await;
    let mut sub = client
        .subscribe("/queue/a", AckMode::ClientIndividual)
        .await
        .unwrap();
    peer.expect(Command::Subscribe).await;
    peer.message(sub.id(), "m-7", "x").await;
    let msg = sub.next().await.unwrap().unwrap();
    msg.ack().await.unwrap();
    let ack = peer.expect(Command::Ack).await;
    let nack = match msg.nack().await {
        Ok(()) => Ok(peer.expect(Command::Nack).await),
        Err(e) => Err(e),
    };
    (ack, nack)
}

#[tokio::test]
async fn c4_ack_and_nack_in_1_2_use_the_message_ack_header() {
    let (ack, nack) = ack_round("1.2").await;
    assert_eq!(
        ack.headers().iter().collect::<Vec<_>>(),
        [("id", "ack-m-7")]
    );
    assert_eq!(
        nack.unwrap().headers().iter().collect::<Vec<_>>(),
        [("id", "ack-m-7")]
    );
}

#[tokio::test]
async fn c4_ack_and_nack_in_1_1_use_message_id_and_subscription() {
    let (ack, nack) = ack_round("1.1").await;
    let sub = ack.subscription().unwrap().to_string();
    assert_eq!(
        ack.headers().iter().collect::<Vec<_>>(),
        [("message-id", "m-7"), ("subscription", sub.as_str())]
    );
    assert_eq!(nack.unwrap().message_id(), Some("m-7"));
}

#[tokio::test]
async fn c4_ack_in_1_0_uses_message_id_and_nack_does_not_exist() {
    let (ack, nack) = ack_round("1.0").await;
    assert_eq!(
        ack.headers().iter().collect::<Vec<_>>(),
        [("message-id", "m-7")]
    );
    assert!(matches!(nack, Err(ClientError::CannotAck(_))));
}

#[tokio::test]
async fn client_ack_subscription_asks_for_prefetch_count_equal_to_its_buffer() {
    let (client, mut peer) = connected("1.2", config().subscription_buffer(32)).await;
    let _a = client.subscribe("/queue/a", AckMode::Client).await.unwrap();
    let f = peer.expect(Command::Subscribe).await;
    assert_eq!(f.get("ack"), Some("client"));
    assert_eq!(f.get(PREFETCH_COUNT), Some("32"));
    let _b = client
        .subscribe_with(
            SubscribeOptions::new("/queue/b")
                .ack(AckMode::ClientIndividual)
                .buffer(5),
        )
        .await
        .unwrap();
    assert_eq!(
        peer.expect(Command::Subscribe).await.get(PREFETCH_COUNT),
        Some("5")
    );
    let _c = client.subscribe("/queue/c", AckMode::Auto).await.unwrap();
    assert_eq!(
        peer.expect(Command::Subscribe).await.get(PREFETCH_COUNT),
        None
    );
}

#[tokio::test]
async fn s3_receipt_resolves_when_the_receipt_arrives() {
    let (client, mut peer) = connected("1.2", config()).await;
    let mut receipt = client
        .send_with_receipt(Frame::send("/queue/a").with_body("x"))
        .await
        .unwrap();
    let send = peer.expect(Command::Send).await;
    assert_eq!(send.receipt(), Some(receipt.id()));
    // not yet
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut receipt)
            .await
            .is_err()
    );
    // an unrelated receipt does not resolve it
    peer.receipt("other").await;
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut receipt)
            .await
            .is_err()
    );
    peer.receipt(receipt.id()).await;
    receipt.await.unwrap();
}

#[tokio::test]
async fn subscribe_with_receipt_and_transactions() {
    let (client, mut peer) = connected("1.2", config()).await;
    let (_sub, receipt) = client
        .subscribe_with_receipt(SubscribeOptions::new("/topic/t"))
        .await
        .unwrap();
    let f = peer.expect(Command::Subscribe).await;
    assert_eq!(f.receipt(), Some(receipt.id()));
    peer.receipt(receipt.id()).await;
    receipt.await.unwrap();

    // C6: BEGIN, SEND in the transaction, COMMIT
    let tx = client.begin().await.unwrap();
    tx.send(Frame::send("/queue/a").with_body("1"))
        .await
        .unwrap();
    let id = tx.id().to_string();
    tx.commit().await.unwrap();
    assert_eq!(
        peer.expect(Command::Begin).await.transaction(),
        Some(id.as_str())
    );
    assert_eq!(
        peer.expect(Command::Send).await.transaction(),
        Some(id.as_str())
    );
    assert_eq!(
        peer.expect(Command::Commit).await.transaction(),
        Some(id.as_str())
    );

    // a dropped transaction is aborted
    let tx = client.begin().await.unwrap();
    let id = tx.id().to_string();
    drop(tx);
    assert_eq!(
        peer.expect(Command::Begin).await.transaction(),
        Some(id.as_str())
    );
    assert_eq!(
        peer.expect(Command::Abort).await.transaction(),
        Some(id.as_str())
    );
}

#[tokio::test]
async fn c5_unsubscribe_ends_the_stream_and_drop_unsubscribes() {
    let (client, mut peer) = connected("1.2", config()).await;
    let mut sub = client.subscribe("/queue/a", AckMode::Auto).await.unwrap();
    let id = sub.id().to_string();
    peer.expect(Command::Subscribe).await;
    peer.message(&id, "1", "a").await;
    assert!(sub.next().await.unwrap().is_ok());
    sub.unsubscribe().await.unwrap();
    assert_eq!(
        peer.expect(Command::Unsubscribe).await.id(),
        Some(id.as_str())
    );

    let sub = client.subscribe("/queue/b", AckMode::Auto).await.unwrap();
    let id = sub.id().to_string();
    peer.expect(Command::Subscribe).await;
    drop(sub);
    assert_eq!(
        peer.expect(Command::Unsubscribe).await.id(),
        Some(id.as_str())
    );
}

#[tokio::test]
async fn s4_error_frame_ends_every_stream_receipt_and_later_call_with_the_frame() {
    let (client, mut peer) = connected("1.2", config()).await;
    let mut a = client.subscribe("/queue/a", AckMode::Auto).await.unwrap();
    let mut b = client.subscribe("/queue/b", AckMode::Client).await.unwrap();
    let receipt = client.send_with_receipt(Frame::send("/q")).await.unwrap();
    peer.expect(Command::Subscribe).await;
    peer.expect(Command::Subscribe).await;
    peer.expect(Command::Send).await;
    peer.write("ERROR\nmessage:malformed frame received\n\ndetails\0")
        .await;
    for sub in [&mut a, &mut b] {
        match sub.next().await {
            Some(Err(SubscriptionError::Closed(e))) => {
                assert_eq!(
                    e.server_frame().unwrap().get("message"),
                    Some("malformed frame received")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(sub.next().await.is_none());
    }
    let e = receipt.await.unwrap_err();
    assert_eq!(e.server_frame().unwrap().body(), b"details");
    let e = client.send(Frame::send("/q")).await.unwrap_err();
    assert!(e.server_frame().is_some(), "{e:?}");
    assert!(client.is_closed());
}

#[tokio::test]
async fn lost_connection_ends_streams_with_an_error() {
    let (client, mut peer) = connected("1.2", config()).await;
    let mut sub = client.subscribe("/queue/a", AckMode::Auto).await.unwrap();
    peer.expect(Command::Subscribe).await;
    drop(peer);
    match sub.next().await {
        Some(Err(SubscriptionError::Closed(ClientError::ConnectionClosed))) => {}
        other => panic!("{other:?}"),
    }
    assert!(sub.next().await.is_none());
}

#[tokio::test]
async fn lagged_auto_ack_subscription_reports_dropped_messages_and_others_keep_flowing() {
    let (client, mut peer) = connected("1.2", config()).await;
    let mut slow = client
        .subscribe_with(SubscribeOptions::new("/topic/fast").buffer(2))
        .await
        .unwrap();
    let mut other = client
        .subscribe("/topic/other", AckMode::Auto)
        .await
        .unwrap();
    let sync = client.send_with_receipt(Frame::send("/x")).await.unwrap();
    peer.expect(Command::Subscribe).await;
    peer.expect(Command::Subscribe).await;
    peer.expect(Command::Send).await;
    for n in 0..5 {
        peer.message(slow.id(), &n.to_string(), "x").await;
    }
    peer.message(other.id(), "o", "y").await;
    peer.receipt(sync.id()).await;
    // the other subscription is not held up by the slow one
    assert_eq!(other.next().await.unwrap().unwrap().message_id(), Some("o"));
    sync.await.unwrap();
    assert!(matches!(
        slow.next().await,
        Some(Err(SubscriptionError::Lagged(3)))
    ));
    assert_eq!(slow.next().await.unwrap().unwrap().message_id(), Some("3"));
    assert_eq!(slow.next().await.unwrap().unwrap().message_id(), Some("4"));
}

#[tokio::test]
async fn c7_disconnect_waits_for_the_receipt_then_closes() {
    let (client, mut peer) = connected("1.2", config()).await;
    let mut sub = client.subscribe("/queue/a", AckMode::Auto).await.unwrap();
    peer.expect(Command::Subscribe).await;
    let server = tokio::spawn(async move {
        let d = peer.expect(Command::Disconnect).await;
        let id = d.receipt().unwrap().to_string();
        tokio::time::sleep(Duration::from_millis(20)).await;
        peer.receipt(&id).await;
        // the client closes its side after the receipt, and sends nothing more
        peer.until_eof().await
    });
    client.disconnect().await.unwrap();
    assert!(server.await.unwrap().is_empty());
    assert!(sub.next().await.is_none(), "graceful end: no error item");
    assert!(matches!(
        client.send(Frame::send("/q")).await,
        Err(ClientError::Disconnected)
    ));
}

#[tokio::test(start_paused = true)]
async fn c7_disconnect_gives_up_after_the_timeout() {
    let (client, mut peer) =
        connected("1.2", config().disconnect_timeout(Duration::from_secs(5))).await;
    let server = tokio::spawn(async move {
        peer.expect(Command::Disconnect).await;
        peer.until_eof().await
    });
    let start = tokio::time::Instant::now();
    assert!(matches!(
        client.disconnect().await,
        Err(ClientError::Timeout)
    ));
    assert!(start.elapsed() >= Duration::from_secs(5));
    server.await.unwrap();
}

#[tokio::test]
async fn dropping_every_handle_sends_disconnect_and_closes() {
    let (client, mut peer) = connected("1.2", config()).await;
    drop(client);
    let frames = peer.until_eof().await;
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].command, Command::Disconnect);
}

#[tokio::test(start_paused = true)]
async fn h5_silent_server_is_declared_dead_and_every_stream_ends() {
    let (io, mut peer) = pair();
    let server = tokio::spawn(async move {
        peer.accept("1.2", "1000,0").await; // server sends every 1 s (H3: max(1000, 1000))
        peer
    });
    let config = ClientConfig::new("h")
        .heart_beat(Duration::ZERO, Duration::from_millis(1000))
        .heart_beat_grace(2.0);
    let client = Client::connect(io, config).await.unwrap();
    let _peer = server.await.unwrap();
    assert_eq!(
        client.heart_beat().receive,
        Some(Duration::from_millis(1000))
    );
    assert_eq!(client.heart_beat().send, None);
    let mut sub = client.subscribe("/queue/a", AckMode::Auto).await.unwrap();
    let receipt = client.send_with_receipt(Frame::send("/q")).await.unwrap();
    let start = tokio::time::Instant::now();
    match sub.next().await {
        Some(Err(SubscriptionError::Closed(ClientError::PeerDead))) => {}
        other => panic!("{other:?}"),
    }
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(1900) && waited <= Duration::from_millis(2100),
        "{waited:?}"
    );
    assert!(matches!(receipt.await, Err(ClientError::PeerDead)));
}

#[tokio::test(start_paused = true)]
async fn h5_heart_beats_from_the_server_keep_the_session_alive() {
    let (io, mut peer) = pair();
    let server = tokio::spawn(async move {
        peer.accept("1.1", "1000,0").await;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(900)).await;
            peer.write("\n").await;
        }
        peer
    });
    let config = ClientConfig::new("h").heart_beat(Duration::ZERO, Duration::from_millis(1000));
    let client = Client::connect(io, config).await.unwrap();
    let _peer = server.await.unwrap(); // 18 s of beats
    assert!(!client.is_closed());
    assert!(client.closed_error().is_none());
}

#[tokio::test(start_paused = true)]
async fn h3_h4_client_sends_heart_beats_when_idle() {
    let (io, mut peer) = pair();
    let server = tokio::spawn(async move {
        peer.accept("1.2", "0,500").await; // server wants beats every 500 ms
        let start = tokio::time::Instant::now();
        let mut beats = Vec::new();
        while beats.len() < 5 {
            match peer.event().await.unwrap() {
                stompkit_tokio::Event::HeartBeat => beats.push(start.elapsed()),
                stompkit_tokio::Event::Frame(f) => panic!("{f:?}"),
            }
        }
        beats
    });
    let config = ClientConfig::new("h").heart_beat(Duration::from_millis(1000), Duration::ZERO);
    let client = Client::connect(io, config).await.unwrap();
    assert_eq!(client.heart_beat().send, Some(Duration::from_millis(1000)));
    let beats = server.await.unwrap();
    for (i, at) in beats.iter().enumerate() {
        let expected = Duration::from_millis(1000 * (i as u64 + 1));
        assert!(
            at.abs_diff(expected) < Duration::from_millis(50),
            "beat {i} at {at:?}"
        );
    }
}

#[tokio::test]
async fn reconnect_resubscribes_live_subscriptions_and_the_stream_continues() {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let connector = Connector::new(move || {
        let rx = rx.clone();
        async move {
            let (client, server) = tokio::io::duplex(64 * 1024);
            rx.lock()
                .await
                .recv()
                .await
                .map(
                    |reply: tokio::sync::oneshot::Sender<tokio::io::DuplexStream>| {
                        let _ = reply.send(server);
                        client
                    },
                )
                .ok_or_else(|| std::io::Error::other("no more peers"))
        }
    });
    // each connection attempt takes a waiting peer
    let next_peer = |tx: &tokio::sync::mpsc::UnboundedSender<_>| {
        let (reply, server) = tokio::sync::oneshot::channel();
        tx.send(reply).unwrap();
        async move { Peer::new(server.await.unwrap()) }
    };
    let first = next_peer(&tx);
    let config = config().reconnect(Reconnect {
        initial_delay: Duration::from_millis(10),
        ..Reconnect::default()
    });
    let script = tokio::spawn(async move {
        let mut peer = first.await;
        peer.accept("1.1", "0,0").await;
        peer
    });
    let client = Client::connect_with(connector, config).await.unwrap();
    let mut peer = script.await.unwrap();
    let mut a = client.subscribe("/queue/a", AckMode::Client).await.unwrap();
    let mut b = client.subscribe("/topic/b", AckMode::Auto).await.unwrap();
    let sub_a = peer.expect(Command::Subscribe).await;
    let sub_b = peer.expect(Command::Subscribe).await;
    peer.message(a.id(), "1", "before").await;
    assert_eq!(a.next().await.unwrap().unwrap().body(), b"before");

    // the first connection drops; the client connects again
    let second = next_peer(&tx);
    drop(peer);
    let mut peer = second.await;
    let connect = peer.accept("1.1", "0,0").await;
    assert_eq!(
        connect.get("accept-version"),
        Some("1.1"),
        "offers the negotiated version"
    );
    let again_a = peer.expect(Command::Subscribe).await;
    let again_b = peer.expect(Command::Subscribe).await;
    assert_eq!(again_a, sub_a);
    assert_eq!(again_b, sub_b);
    peer.message(a.id(), "2", "after").await;
    peer.message(b.id(), "3", "b-after").await;
    let msg = a.next().await.unwrap().unwrap();
    assert_eq!(msg.body(), b"after");
    assert_eq!(b.next().await.unwrap().unwrap().body(), b"b-after");
    // and the handle works on the new connection
    msg.ack().await.unwrap();
    assert_eq!(peer.expect(Command::Ack).await.message_id(), Some("2"));
    assert!(client.closed_error().is_none());
}

#[tokio::test]
async fn without_reconnect_a_lost_connection_is_final() {
    let connector = Connector::new(|| async {
        let (client, server) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            let mut peer = Peer::new(server);
            peer.accept("1.2", "0,0").await;
            // then hang up
        });
        Ok::<_, std::io::Error>(client)
    });
    let client = Client::connect_with(connector, config()).await.unwrap();
    let mut sub = client.subscribe("/q", AckMode::Auto).await.unwrap();
    assert!(matches!(
        sub.next().await,
        Some(Err(SubscriptionError::Closed(_)))
    ));
    assert!(client.closed_error().unwrap().is_connection_loss());
}

#[tokio::test]
async fn reading_goes_on_while_the_server_does_not_read() {
    // A tiny pipe: a 256 KiB SEND cannot be written until the server reads.
    let (io, server) = tokio::io::duplex(1024);
    let mut peer = Peer::new(server);
    let script = tokio::spawn(async move {
        peer.accept("1.2", "0,0").await;
        peer
    });
    let client = Client::connect(io, config()).await.unwrap();
    let mut peer = script.await.unwrap();
    let mut sub = client.subscribe("/queue/a", AckMode::Auto).await.unwrap();
    peer.expect(Command::Subscribe).await;
    client
        .send(Frame::send("/queue/big").with_body(vec![b'x'; 256 * 1024]))
        .await
        .unwrap();
    // The server writes without reading; the client still receives.
    for n in 0..3 {
        peer.message(sub.id(), &n.to_string(), "while blocked")
            .await;
        let m = sub.next().await.unwrap().unwrap();
        assert_eq!(m.message_id(), Some(n.to_string().as_str()));
    }
    // and once the server reads, the big frame arrives whole
    let big = peer.expect(Command::Send).await;
    assert_eq!(big.body().len(), 256 * 1024);
}
