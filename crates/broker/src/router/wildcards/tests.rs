//! Wildcard routing tests: the trie against a reference matcher, and the
//! router delivering through patterns.
#![allow(clippy::unwrap_used)]

use super::super::tests::Harness;
use super::*;
use crate::router::{RouterCommand, RouterConfig};
use proptest::prelude::*;
use stompkit_frame::{AckMode, Frame};

/// The definition, by recursion over segments (for small cases).
fn reference(pattern: &[&str], topic: &[&str]) -> bool {
    let wild = |s: &str| wildcard_may_match(s);
    match pattern {
        [] => topic.is_empty(),
        ["#", rest @ ..] => (0..=topic.len())
            .any(|k| topic[..k].iter().all(|s| wild(s)) && reference(rest, &topic[k..])),
        [">", rest @ ..] => (1..=topic.len())
            .any(|k| topic[..k].iter().all(|s| wild(s)) && reference(rest, &topic[k..])),
        ["*", rest @ ..] => topic.first().is_some_and(|s| wild(s)) && reference(rest, &topic[1..]),
        [lit, rest @ ..] => topic.first() == Some(lit) && reference(rest, &topic[1..]),
    }
}

fn matches(trie: &mut Wildcards, topic: &str) -> Vec<DestKey> {
    trie.find(topic);
    let mut out = trie.matched.clone();
    out.sort_unstable();
    out
}

fn trie_of(patterns: &[&str]) -> Wildcards {
    let mut trie = Wildcards::new();
    for (i, p) in patterns.iter().enumerate() {
        trie.insert(&format!("/topic/{p}"), i);
    }
    trie
}

#[test]
fn each_wildcard_matches_as_defined() {
    let patterns = ["a.*", "a.#", "a.>", "a.#.c", "*", "#", "a*b.*", "a.*.c"];
    let mut trie = trie_of(&patterns);
    let names = |topic: &str, trie: &mut Wildcards| -> Vec<&str> {
        matches(trie, topic)
            .into_iter()
            .map(|i| patterns[i])
            .collect()
    };
    assert_eq!(names("a", &mut trie), ["a.#", "*", "#"]);
    assert_eq!(names("a.b", &mut trie), ["a.*", "a.#", "a.>", "#"]);
    assert_eq!(names("a.c", &mut trie), ["a.*", "a.#", "a.>", "a.#.c", "#"]);
    assert_eq!(names("a.x.y.c", &mut trie), ["a.#", "a.>", "a.#.c", "#"]);
    assert_eq!(
        names("a.x.c", &mut trie),
        ["a.#", "a.>", "a.#.c", "#", "a.*.c"]
    );
    assert_eq!(names("a*b.x", &mut trie), ["#", "a*b.*"]);
    assert_eq!(names("axb.x", &mut trie), ["#"], "a*b is a literal name");
    assert_eq!(
        names("a.b/c", &mut trie),
        Vec::<&str>::new(),
        "no wildcard crosses /"
    );
}

#[test]
fn removing_patterns_prunes_the_trie() {
    let mut trie = trie_of(&["a.b.*", "a.#", "a.b.#"]);
    let before = trie.nodes.len();
    trie.remove("/topic/a.b.*");
    assert_eq!(matches(&mut trie, "a.b.c"), [1, 2]);
    trie.remove("/topic/a.#");
    trie.remove("/topic/a.b.#");
    assert!(trie.is_empty());
    assert!(trie.nodes[ROOT].is_empty(), "every node unlinked");
    assert_eq!(trie.free.len(), before - 1);
    assert_eq!(matches(&mut trie, "a.b.c"), Vec::<DestKey>::new());
    // Slots are reused.
    trie.insert("/topic/x.y.*", 9);
    assert_eq!(trie.nodes.len(), before);
    assert_eq!(matches(&mut trie, "x.y.z"), [9]);
}

#[test]
fn many_hashes_match_in_polynomial_time() {
    let mut trie = Wildcards::new();
    for n in 1..=64 {
        trie.insert(&format!("/topic/{}", vec!["#"; n].join(".")), n);
    }
    let mut p = vec!["#"; 63];
    p.push("z");
    trie.insert(&format!("/topic/{}", p.join(".")), 100);
    let topic = vec!["a"; 10_000].join(".");
    let start = std::time::Instant::now();
    assert_eq!(matches(&mut trie, &topic).len(), 64);
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
}

proptest! {
    #[test]
    fn the_trie_agrees_with_the_definition(
        patterns in prop::collection::vec(
            prop::collection::vec(prop::sample::select(vec!["a", "b", "*", "#", ">", "a/b"]), 1..5),
            1..8,
        ),
        topic in prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "a/b", ""]), 1..6),
    ) {
        let mut trie = Wildcards::new();
        let mut want = Vec::new();
        let topic_name = topic.join(".");
        for (i, p) in patterns.iter().enumerate() {
            let text = format!("/topic/{}", p.join("."));
            if !matches!(TopicPattern::parse(&text), Ok(Some(_))) {
                continue;
            }
            trie.insert(&text, i);
            if reference(p, &topic) && !want.contains(&i) {
                want.push(i);
            }
        }
        // A pattern inserted twice ends at its last key.
        want.retain(|&i| !patterns[i + 1..].contains(&patterns[i]));
        want.sort_unstable();
        prop_assert_eq!(matches(&mut trie, &topic_name), want);
    }
}

fn subscribe(h: &mut Harness, conn: u64, id: &str, dest: &str) {
    h.sub(conn, id, dest, AckMode::Auto, 0);
}

#[test]
fn a_topic_without_subscribers_reaches_its_patterns_naming_itself() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    subscribe(&mut h, 1, "w", "/topic/chat.*");
    h.send(1, "/topic/chat.lobby", "hi");
    let frames = h.frames(1);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].destination(), Some("/topic/chat.lobby"));
    assert_eq!(frames[0].subscription(), Some("w"));
    // The topic was created for the publish only and is gone again.
    assert!(!h.router.names.contains_key("/topic/chat.lobby"));
}

#[test]
fn one_message_per_matching_subscription() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    subscribe(&mut h, 1, "lit", "/topic/a.b");
    subscribe(&mut h, 1, "star", "/topic/a.*");
    subscribe(&mut h, 1, "hash", "/topic/a.#");
    subscribe(&mut h, 1, "star2", "/topic/a.*");
    h.send(1, "/topic/a.b", "m");
    let mut subs: Vec<String> = h
        .frames(1)
        .iter()
        .map(|f| f.subscription().unwrap().to_owned())
        .collect();
    subs.sort();
    assert_eq!(subs, ["hash", "lit", "star", "star2"]);
}

#[test]
fn unsubscribing_the_last_pattern_empties_the_trie() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    subscribe(&mut h, 1, "w", "/topic/a.#");
    assert!(!h.router.wildcards.is_empty());
    h.router.handle(RouterCommand::Unsubscribe {
        conn: 1,
        id: "w".into(),
        forget: false,
        receipt: None,
    });
    assert!(h.router.wildcards.is_empty());
    assert!(h.router.names.is_empty());
    h.send(1, "/topic/a.b", "m");
    assert!(h.frames(1).is_empty());
    // A closed connection's patterns go too.
    subscribe(&mut h, 1, "w", "/topic/a.#");
    h.router.handle(RouterCommand::Closed { conn: 1 });
    assert!(h.router.wildcards.is_empty());
}

#[test]
fn a_send_to_a_pattern_is_refused_by_the_router_too() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.connect(2, Version::V1_2);
    subscribe(&mut h, 2, "w", "/topic/a.*");
    h.router.handle(RouterCommand::Send {
        conn: 1,
        frame: Frame::send("/topic/a.*").with_body("x"),
    });
    let frames = h.frames(1);
    assert_eq!(frames[0].command, stompkit_frame::Command::Error);
    assert!(h.frames(2).is_empty());
    assert!(
        !h.router.wildcards.is_empty(),
        "the subscribed pattern stays"
    );
}

#[test]
fn a_durable_pattern_collects_from_every_matching_topic() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.router.handle(RouterCommand::Subscribe {
        conn: 1,
        id: "d".into(),
        destination: "/topic/news.#".into(),
        ack: AckMode::Client,
        prefetch: 0,
        durable: Some("d1".into()),
        selector: None,
        receipt: None,
    });
    h.router.handle(RouterCommand::Closed { conn: 1 });
    h.connect(2, Version::V1_2);
    h.send(2, "/topic/news.sport", "1");
    h.send(2, "/topic/news", "2");
    h.send(2, "/topic/weather", "x");
    h.router.handle(RouterCommand::Subscribe {
        conn: 2,
        id: "d".into(),
        destination: "/topic/news.#".into(),
        ack: AckMode::Client,
        prefetch: 0,
        durable: Some("d1".into()),
        selector: None,
        receipt: None,
    });
    let frames = h.frames(2);
    let got: Vec<(Option<&str>, &[u8])> =
        frames.iter().map(|f| (f.destination(), f.body())).collect();
    assert_eq!(
        got,
        [
            (Some("/topic/news.sport"), &b"1"[..]),
            (Some("/topic/news"), &b"2"[..])
        ]
    );
}

#[test]
fn a_durable_pattern_dead_letters_to_the_queue_of_the_topic_sent_to() {
    let mut h = Harness::new(RouterConfig::default());
    h.connect(1, Version::V1_2);
    h.connect(2, Version::V1_2);
    h.router.handle(RouterCommand::Subscribe {
        conn: 1,
        id: "d".into(),
        destination: "/topic/news.*".into(),
        ack: AckMode::ClientIndividual,
        prefetch: 0,
        durable: Some("d1".into()),
        selector: None,
        receipt: None,
    });
    h.send(2, "/topic/news.sport", "goal");
    let frames = h.frames(1);
    assert_eq!(frames.len(), 1);
    h.router.handle(RouterCommand::Nack {
        conn: 1,
        ack: crate::router::AckRef {
            id: frames[0].ack().unwrap().to_owned(),
            subscription: None,
            requeue: false,
        },
        receipt: None,
    });
    h.sub(2, "dlq", "/queue/news.sport.dlq", AckMode::Auto, 0);
    let letters = h.frames(2);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].body(), b"goal");
    assert_eq!(
        letters[0].get("original-destination"),
        Some("/topic/news.sport")
    );
}
