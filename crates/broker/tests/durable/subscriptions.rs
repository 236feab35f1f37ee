//! Durable topic subscriptions, in the ActiveMQ convention (`client-id` +
//! `activemq.subscriptionName`) and the RabbitMQ one (`durable:true` +
//! `auto-delete:false` + `id`).

use super::harness::*;
use std::time::Duration;
use stompkit_frame::Command;

/// Kept while the subscriber is disconnected, through a SIGKILL (the
/// subscription itself and its messages), and delivered when it comes back.
#[tokio::test]
async fn a_durable_subscription_keeps_messages_while_away_and_across_a_restart() {
    let scratch = Scratch::new("away");
    let broker = scratch.start();
    for convention in CONVENTIONS {
        let durable = Durable::new(convention, "away");
        let mut sub = durable.connect(broker.addr).await;
        durable.subscribe(&mut sub).await;
        sub.disconnect().await;
        let mut publisher = Conn::connect(broker.addr).await;
        publisher
            .request(persistent(&durable.topic, "before-crash", &[]))
            .await;
    }
    broker.crash();

    let broker = scratch.start();
    for convention in CONVENTIONS {
        let durable = Durable::new(convention, "away");
        // Still away after the restart: kept as well.
        let mut publisher = Conn::connect(broker.addr).await;
        publisher
            .request(persistent(&durable.topic, "after-restart", &[]))
            .await;
        let mut sub = durable.connect(broker.addr).await;
        let before = durable.subscribe(&mut sub).await;
        let got = until_topic_marker(broker.addr, &mut sub, before, &durable.topic).await;
        assert_eq!(
            bodies(&got),
            ["before-crash", "after-restart"],
            "{convention:?}"
        );
        for m in &got {
            assert_eq!(m.destination(), Some(durable.topic.as_str()), "{m:?}");
            assert_eq!(m.subscription(), Some(durable.id.as_str()), "{m:?}");
        }
        // And it is a live subscription again.
        publisher
            .request(persistent(&durable.topic, "live", &[]))
            .await;
        assert_eq!(bodies(&sub.messages(1).await), ["live"], "{convention:?}");
    }
}

/// A plain UNSUBSCRIBE (without the durable headers) only detaches the
/// subscriber: messages published meanwhile are kept for it.
#[tokio::test]
async fn a_plain_unsubscribe_keeps_the_durable_subscription() {
    let scratch = Scratch::new("plain-unsub");
    let broker = scratch.start();
    for convention in CONVENTIONS {
        let durable = Durable::new(convention, "plain");
        let mut sub = durable.connect(broker.addr).await;
        durable.subscribe(&mut sub).await;
        durable.unsubscribe_plain(&mut sub).await;
        let mut publisher = Conn::connect(broker.addr).await;
        publisher
            .request(persistent(&durable.topic, "kept", &[]))
            .await;
        sub.assert_quiet(Duration::from_millis(200)).await;
        let before = durable.subscribe(&mut sub).await;
        let got = until_topic_marker(broker.addr, &mut sub, before, &durable.topic).await;
        assert_eq!(bodies(&got), ["kept"], "{convention:?}");
    }
}

/// UNSUBSCRIBE with the durable headers removes the subscription for good,
/// also across a restart: subscribing again starts a new, empty one.
#[tokio::test]
async fn unsubscribing_with_the_durable_headers_removes_it_for_good() {
    let scratch = Scratch::new("unsub-for-good");
    let broker = scratch.start();
    for convention in CONVENTIONS {
        let durable = Durable::new(convention, "gone");
        let mut sub = durable.connect(broker.addr).await;
        durable.subscribe(&mut sub).await;
        // Durable indeed: detached, it keeps what is published meanwhile.
        durable.unsubscribe_plain(&mut sub).await;
        let mut publisher = Conn::connect(broker.addr).await;
        publisher
            .request(persistent(&durable.topic, "kept", &[]))
            .await;
        let before = durable.subscribe(&mut sub).await;
        let got = until_topic_marker(broker.addr, &mut sub, before, &durable.topic).await;
        assert_eq!(bodies(&got), ["kept"], "{convention:?}");
        durable.unsubscribe_for_good(&mut sub).await;
        sub.disconnect().await;
        publisher
            .request(persistent(&durable.topic, "nobody-wanted-this", &[]))
            .await;
    }
    broker.crash();

    let broker = scratch.start();
    for convention in CONVENTIONS {
        let durable = Durable::new(convention, "gone");
        let mut publisher = Conn::connect(broker.addr).await;
        publisher
            .request(persistent(&durable.topic, "nor-this", &[]))
            .await;
        let mut sub = durable.connect(broker.addr).await;
        let before = durable.subscribe(&mut sub).await;
        let got = until_topic_marker(broker.addr, &mut sub, before, &durable.topic).await;
        assert!(got.is_empty(), "{convention:?}: {:?}", bodies(&got));
    }
}

/// While one connection holds a durable subscription, another subscribing to
/// it gets an ERROR; the holder is undisturbed; once it left, another may.
#[tokio::test]
async fn a_second_connection_cannot_take_an_active_durable_subscription() {
    let scratch = Scratch::new("taken");
    let broker = scratch.start();
    for convention in CONVENTIONS {
        let durable = Durable::new(convention, "taken");
        let mut holder = durable.connect(broker.addr).await;
        durable.subscribe(&mut holder).await;

        let mut intruder = durable.connect(broker.addr).await;
        let (answer, _) = intruder.request_or_error(durable.subscribe_frame()).await;
        assert_eq!(answer.command, Command::Error, "{convention:?}: {answer:?}");
        let message = answer.message().unwrap_or_default();
        assert!(
            message.contains("durable subscription"),
            "{convention:?}: {answer:?}"
        );

        let mut publisher = Conn::connect(broker.addr).await;
        publisher
            .request(persistent(&durable.topic, "to-the-holder", &[]))
            .await;
        assert_eq!(bodies(&holder.messages(1).await), ["to-the-holder"]);
        holder.disconnect().await;

        let mut next = durable.connect(broker.addr).await;
        let before = durable.subscribe(&mut next).await;
        assert!(before.is_empty(), "{:?}", bodies(&before));
    }
}

/// Durable subscriptions are scoped per login: alice's and bob's with the same
/// client-id, name and id are two subscriptions.
#[tokio::test]
async fn durable_subscriptions_are_scoped_per_login() {
    let scratch = Scratch::new("scope");
    let config = scratch.root().join("users.toml");
    // A cheap argon2id cost: the cost parameters do not change the code path.
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    let users: String = [("alice", "alice-pw"), ("bob", "bob-pw")]
        .iter()
        .map(|(login, pw)| {
            let hash = stompkit_broker::auth::password::hash_with(pw, params.clone()).unwrap();
            format!("[[auth.users]]\nlogin = {login:?}\npassword_hash = {hash:?}\n\n")
        })
        .collect();
    std::fs::write(&config, users).unwrap();
    let broker = scratch.launch().arg("--config").arg(&config).start();
    let alice = Some(("alice", "alice-pw"));
    let bob = Some(("bob", "bob-pw"));

    for convention in CONVENTIONS {
        let durable = Durable::new(convention, "scoped");
        let mut a = durable.connect_as(broker.addr, alice).await;
        durable.subscribe(&mut a).await;
        // Not alice's (active) subscription: no ERROR.
        let mut b = durable.connect_as(broker.addr, bob).await;
        durable.subscribe(&mut b).await;
        durable.unsubscribe_for_good(&mut b).await;
        b.disconnect().await;
        a.disconnect().await;

        let mut publisher =
            Conn::connect_with(broker.addr, &[("login", "alice"), ("passcode", "alice-pw")]).await;
        publisher
            .request(persistent(&durable.topic, "for-alice", &[]))
            .await;
        publisher.disconnect().await;

        // Bob's subscription is gone; alice's kept the message.
        let mut b = durable.connect_as(broker.addr, bob).await;
        let before = durable.subscribe(&mut b).await;
        let end = marker();
        let mut a = durable.connect_as(broker.addr, alice).await;
        let mut a_before = durable.subscribe(&mut a).await;
        // Its own marker may reach `a` before the RECEIPT.
        let early = a.request(transient(&durable.topic, &end, &[])).await;
        a_before.extend(early);
        let got_b = b.until_body(before, &end).await;
        assert!(
            got_b.is_empty(),
            "{convention:?}: bob got {:?}",
            bodies(&got_b)
        );
        let got_a = a.until_body(a_before, &end).await;
        assert_eq!(bodies(&got_a), ["for-alice"], "{convention:?}");
    }
}
