//! SIGHUP reloads users and permissions without dropping connections.

use crate::broker::{Broker, Scratch, users, with_config};
use crate::harness::{Conn, WAIT, frame, transient};
use std::sync::Arc;
use std::time::Duration;
use stompkit_frame::Command;

const RELOADED: &str = "configuration reloaded";
const FAILED: &str = "configuration reload failed";

async fn login(broker: &Broker, user: &str, password: &str) -> Conn {
    Conn::connect_with(broker.addr, &[("login", user), ("passcode", password)]).await
}

/// SEND to `destination` with a receipt: `Ok` on RECEIPT, the ERROR's
/// `message` otherwise.
async fn send(conn: &mut Conn, destination: &str) -> Result<(), String> {
    let (answer, _) = conn
        .request_or_error(transient(destination, "x", &[]))
        .await;
    match answer.command {
        Command::Receipt => Ok(()),
        _ => Err(answer.message().unwrap_or("").to_owned()),
    }
}

#[tokio::test]
async fn a_reload_removes_users_and_changes_permissions_for_the_next_frame() {
    let scratch = Scratch::new("reload-users");
    let before = format!(
        "[auth]\nallow_anonymous = true\n\n{}",
        users(&[
            ("alice", "a-pw", Some(&["/queue/a"])),
            ("bob", "b-pw", None),
            ("carol", "c-pw", Some(&["/queue/none"])),
            ("dave", "d-pw", None),
        ])
    );
    let config = scratch.write("broker.toml", &before);
    let broker = Broker::start(with_config(&config), scratch.path("broker.log"), false);
    let mut alice = login(&broker, "alice", "a-pw").await;
    let mut bob = login(&broker, "bob", "b-pw").await;
    let mut carol = login(&broker, "carol", "c-pw").await;
    let mut dave = login(&broker, "dave", "d-pw").await;
    let mut anonymous = Conn::connect(broker.addr).await;
    assert_eq!(send(&mut alice, "/queue/a").await, Ok(()));
    // bob subscribes: his subscription goes with him.
    bob.subscribe("/queue/bob", "s", "auto", &[]).await;

    // alice narrowed, carol widened, bob removed, anonymous access off; a key
    // that needs a restart is reported and ignored.
    let after = format!(
        "[limits]\nmax_body = 100\n\n{}",
        users(&[
            ("alice", "a-pw", Some(&["/queue/b"])),
            ("carol", "c-pw", Some(&["**"])),
            ("dave", "d-pw", None),
        ])
    );
    std::fs::write(&config, after).unwrap();
    let log = broker.reload_async(RELOADED, 1).await;
    let restart = log
        .lines()
        .find(|l| l.contains("need a restart"))
        .unwrap_or_else(|| panic!("no restart line:\n{log}"));
    assert!(
        restart.contains("WARN") && restart.contains("limits.max_body"),
        "{restart}"
    );

    // bob: ERROR without sending anything, then the connection closes.
    let error = bob.r.next().await;
    assert_eq!(error.command, Command::Error, "{error:?}");
    assert_eq!(error.message(), Some("user removed"));
    assert!(
        bob.r.next_within(WAIT).await.is_none(),
        "bob's connection stays open"
    );
    let error = anonymous.r.next().await;
    assert_eq!(
        error.message(),
        Some("anonymous access removed"),
        "{error:?}"
    );
    assert!(anonymous.r.next_within(WAIT).await.is_none());

    assert_eq!(send(&mut carol, "/queue/anything").await, Ok(()));
    assert_eq!(send(&mut dave, "/queue/d").await, Ok(()));
    assert_eq!(
        send(&mut alice, "/queue/a").await,
        Err("forbidden".to_owned())
    );
    let mut alice = login(&broker, "alice", "a-pw").await;
    assert_eq!(send(&mut alice, "/queue/b").await, Ok(()));
    // The body limit was not reloaded.
    let body = "y".repeat(1000);
    let (answer, _) = dave
        .request_or_error(transient("/queue/d", &body, &[]))
        .await;
    assert_eq!(answer.command, Command::Receipt, "{answer:?}");
    // bob and anonymous clients cannot come back.
    let (_, refused) = Conn::open(broker.addr, &[("login", "bob"), ("passcode", "b-pw")]).await;
    assert_eq!(refused.message(), Some("access refused"), "{refused:?}");
    let (_, refused) = Conn::open(broker.addr, &[]).await;
    assert_eq!(refused.message(), Some("access refused"), "{refused:?}");
}

#[tokio::test]
async fn a_broken_configuration_on_reload_keeps_the_old_one() {
    let scratch = Scratch::new("reload-broken");
    let good = users(&[("alice", "a-pw", Some(&["/queue/a"]))]);
    let config = scratch.write("broker.toml", &good);
    let mut broker = Broker::start(with_config(&config), scratch.path("broker.log"), false);
    let mut alice = login(&broker, "alice", "a-pw").await;
    let broken = [
        ("[auth\n".to_owned(), "broker.toml"),
        (
            "[[auth.users]]\nlogin = \"alice\"\npassword_hash = \"not-a-hash\"\n".to_owned(),
            "alice",
        ),
        ("[limits]\nmax_bogus = 1\n".to_owned(), "max_bogus"),
        (
            "[auth]\nusers_file = \"/nonexistent/users.toml\"\n".to_owned(),
            "/nonexistent/users.toml",
        ),
    ];
    for (n, (text, why)) in broken.iter().enumerate() {
        std::fs::write(&config, text).unwrap();
        let log = broker.reload_async(FAILED, n + 1).await;
        let line = log.lines().filter(|l| l.contains(FAILED)).nth(n).unwrap();
        assert!(line.contains("ERROR") && line.contains(why), "{line}");
        broker.assert_running();
        // The old users and rules stay, for open and new connections.
        assert_eq!(send(&mut alice, "/queue/a").await, Ok(()));
        assert_eq!(
            send(&mut login(&broker, "alice", "a-pw").await, "/queue/a").await,
            Ok(())
        );
    }
    assert!(!broker.log().contains(RELOADED));
    // Fixed: the next reload applies.
    std::fs::write(&config, users(&[("alice", "a-pw", Some(&["/queue/b"]))])).unwrap();
    broker.reload_async(RELOADED, 1).await;
    assert_eq!(send(&mut alice, "/queue/b").await, Ok(()));
}

#[tokio::test]
async fn a_reload_under_load_loses_no_message_and_drops_no_connection() {
    let scratch = Scratch::new("reload-load");
    let base = [("producer", "p-pw", None), ("consumer", "c-pw", None)];
    let config = scratch.write("broker.toml", &users(&base));
    let broker = Arc::new(Broker::start(
        with_config(&config),
        scratch.path("broker.log"),
        false,
    ));
    let mut consumer = login(&broker, "consumer", "c-pw").await;
    consumer.subscribe("/queue/load", "s", "auto", &[]).await;
    let mut producer = login(&broker, "producer", "p-pw").await;

    // On its own thread: `reload` blocks. If it panics, the loop below ends
    // (the task is finished) and the panic fails the test at `reloads.await`.
    let reloads = {
        let (broker, config) = (broker.clone(), config.clone());
        tokio::task::spawn_blocking(move || {
            for i in 1..=5 {
                let extra = format!("extra-{i}");
                let mut list = base.to_vec();
                list.push((extra.as_str(), "x", None));
                std::fs::write(&config, users(&list)).unwrap();
                broker.reload(RELOADED, i);
                std::thread::sleep(Duration::from_millis(30));
            }
        })
    };
    // Receipted SENDs, 50 in flight, until every reload is done.
    let mut sent = 0usize;
    while sent < 500 || !reloads.is_finished() {
        let mut receipts = Vec::new();
        for _ in 0..50 {
            let receipt = producer.next_receipt();
            let body = format!("m-{sent}");
            producer
                .w
                .push(&transient("/queue/load", &body, &[("receipt", &receipt)]));
            receipts.push(receipt);
            sent += 1;
        }
        producer.w.flush().await;
        for receipt in receipts {
            let f = producer.r.next().await;
            assert_eq!(f.command, Command::Receipt, "{f:?}");
            assert_eq!(f.receipt_id(), Some(receipt.as_str()));
        }
    }
    reloads.await.unwrap();
    producer
        .request(frame(
            Command::Send,
            &[("destination", "/queue/load")],
            b"end",
        ))
        .await;
    let got = consumer.until_body(Vec::new(), "end").await;
    let bodies: Vec<String> = got.iter().map(crate::harness::body).collect();
    let wanted: Vec<String> = (0..sent).map(|n| format!("m-{n}")).collect();
    assert_eq!(bodies.len(), wanted.len());
    assert!(bodies == wanted, "messages lost, duplicated or reordered");
    assert_eq!(broker.log().matches(RELOADED).count(), 5);
    producer.disconnect().await;
    consumer.disconnect().await;
}

#[tokio::test]
async fn a_subscription_accepted_before_a_reload_keeps_receiving_what_the_new_rules_forbid() {
    // Documented: permissions apply to the frames after the reload; a
    // SUBSCRIBE accepted before it is not dropped.
    let scratch = Scratch::new("reload-subscribed");
    let list = users(&[("alice", "a-pw", None), ("carol", "c-pw", None)]);
    let config = scratch.write("broker.toml", &list);
    let broker = Broker::start(with_config(&config), scratch.path("broker.log"), false);
    let mut alice = login(&broker, "alice", "a-pw").await;
    let mut carol = login(&broker, "carol", "c-pw").await;
    alice.subscribe("/queue/in", "s", "auto", &[]).await;

    let narrowed = format!("[auth]\ndefault_subscribe = [\"/queue/none\"]\n\n{list}");
    std::fs::write(&config, narrowed).unwrap();
    broker.reload_async(RELOADED, 1).await;
    assert_eq!(send(&mut carol, "/queue/in").await, Ok(()));
    let message = alice.r.next().await;
    assert_eq!(message.command, Command::Message, "{message:?}");
    assert_eq!(crate::harness::body(&message), "x");
    // A new SUBSCRIBE is checked against the new rules.
    let (answer, _) = alice
        .request_or_error(frame(
            Command::Subscribe,
            &[("destination", "/queue/in2"), ("id", "t")],
            b"",
        ))
        .await;
    assert_eq!(answer.message(), Some("forbidden"), "{answer:?}");
}

#[tokio::test]
async fn a_reload_while_a_login_is_checked_applies_to_its_session() {
    // bob's password takes long to check; the reload that removes him lands
    // meanwhile, so the old rules accept him and the recheck after the
    // verdict closes him.
    let scratch = Scratch::new("reload-login");
    let slow = stompkit_broker::auth::password::hash_with(
        "b-pw",
        argon2::Params::new(8192, 400, 1, None).unwrap(),
    )
    .unwrap();
    let alice = users(&[("alice", "a-pw", None)]);
    let before = format!("{alice}[[auth.users]]\nlogin = \"bob\"\npassword_hash = {slow:?}\n");
    let config = scratch.write("broker.toml", &before);
    let broker = Broker::start(with_config(&config), scratch.path("broker.log"), false);
    let addr = broker.addr;
    let started = std::time::Instant::now();
    let opening =
        tokio::spawn(
            async move { Conn::open(addr, &[("login", "bob"), ("passcode", "b-pw")]).await },
        );
    // Accepted (its CONNECT follows at once), then time for the check to start.
    broker.wait_for_async("connection accepted", 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(&config, &alice).unwrap();
    broker.reload_async(RELOADED, 1).await;
    assert!(
        !opening.is_finished(),
        "the login was checked before the reload ({:?}): make bob's hash slower",
        started.elapsed()
    );
    let (mut bob, answer) = opening.await.unwrap();
    assert_eq!(answer.command, Command::Connected, "{answer:?}");
    let error = bob.r.next().await;
    assert_eq!(error.message(), Some("user removed"), "{error:?}");
    assert!(bob.r.next_within(WAIT).await.is_none());
}
