//! `Client::request` against the real `stompkit-broker` binary (`--in-memory`,
//! `127.0.0.1:0`): a requester sends with `reply-to:/temp-queue/…` (rewritten
//! by the broker to a private `/reply-queue/…`), a responder client answers to
//! the `reply-to` it receives, copying `correlation-id`
//! (`Message::reply_frame`), and each request resolves with its own reply,
//! delivered without any SUBSCRIBE on subscription `/temp-queue/…`; a request
//! nobody answers times out and the session goes on.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)] // the durable tests' harness: only the broker process is used here
#[path = "durable/harness.rs"]
mod harness;

use futures_util::StreamExt;
use futures_util::future::join_all;
use harness::{Scratch, WAIT};
use std::net::SocketAddr;
use std::time::Duration;
use stompkit_frame::{AckMode, Frame};
use stompkit_tokio::{Client, ClientConfig, ClientError, REPLY_QUEUE};
use tokio::sync::mpsc;

async fn client(addr: SocketAddr) -> Client {
    Client::connect_tcp(addr.to_string(), ClientConfig::new("localhost"))
        .await
        .unwrap()
}

/// A responder on `/queue/service`: answers `re: <body>` to each request's
/// `reply-to`, and reports the `reply-to` it saw.
async fn responder(addr: SocketAddr) -> (Client, mpsc::UnboundedReceiver<String>) {
    let client = client(addr).await;
    let (sub, receipt) = client
        .subscribe_with_receipt(stompkit_tokio::SubscribeOptions::new("/queue/service"))
        .await
        .unwrap();
    receipt.await.unwrap();
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let answering = client.clone();
    tokio::spawn(async move {
        let mut sub = sub;
        while let Some(Ok(request)) = sub.next().await {
            let _ = seen_tx.send(request.header("reply-to").unwrap_or("").to_string());
            let body = format!("re: {}", String::from_utf8_lossy(request.body()));
            let Some(reply) = request.reply_frame() else {
                continue;
            };
            answering.send(reply.with_body(body)).await.unwrap();
        }
    });
    (client, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_resolves_with_its_own_reply() {
    let scratch = Scratch::new("client-request");
    let broker = scratch.in_memory().start();
    let (service, mut seen) = responder(broker.addr).await;
    let requester = client(broker.addr).await;

    let questions: Vec<String> = (0..8).map(|i| format!("question {i}")).collect();
    let asked = questions.iter().map(|q| {
        let frame = Frame::send("/queue/service").with_body(q.clone());
        requester.request(frame, WAIT)
    });
    let replies = join_all(asked).await;
    for (question, reply) in questions.iter().zip(replies) {
        let reply = reply.unwrap();
        assert_eq!(reply.body(), format!("re: {question}").as_bytes());
        assert_eq!(reply.subscription(), REPLY_QUEUE);
        assert_eq!(reply.header("subscription"), Some(REPLY_QUEUE));
        // A reply is not acknowledged (delivered as auto-ack).
        assert!(matches!(reply.ack().await, Err(ClientError::CannotAck(_))));
    }
    // The responder saw the broker's private name, never the requester's.
    for _ in 0..questions.len() {
        let reply_to = seen.recv().await.unwrap();
        assert!(reply_to.starts_with("/reply-queue/"), "{reply_to:?}");
    }

    // Nobody answers: the request times out, the session goes on.
    let unanswered = Frame::send("/queue/nobody").with_body("hello?");
    let started = std::time::Instant::now();
    let e = requester
        .request(unanswered, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Timeout), "{e:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let again = requester
        .request(Frame::send("/queue/service").with_body("again"), WAIT)
        .await
        .unwrap();
    assert_eq!(again.body(), b"re: again");

    // Only SEND frames are requests.
    let e = requester
        .request(Frame::subscribe("/queue/x", "1", AckMode::Auto), WAIT)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::UnexpectedFrame(_)), "{e:?}");
    requester.disconnect().await.unwrap();
    service.disconnect().await.unwrap();
}
