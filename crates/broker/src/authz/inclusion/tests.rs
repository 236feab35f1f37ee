//! Inclusion tests: the README's examples, unions, and agreement with brute
//! force over a small alphabet.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::authz::Permissions;
use crate::wildcard::wildcard_may_match;
use proptest::prelude::*;

fn find(pattern: &str, globs: &[&str]) -> Found {
    let pattern = TopicPattern::parse(pattern).unwrap().unwrap();
    let globs: Vec<Glob> = globs.iter().map(|g| Glob::new(g)).collect();
    search(&PatternNfa::new(&pattern), &Globs::new(&globs))
}

fn allowed(pattern: &str, globs: &[&str]) -> bool {
    Permissions::new(&["**"], globs).may_subscribe(pattern)
}

/// Whether the pattern matches `destination`, by the definition.
fn pattern_matches(pattern: &str, destination: &str) -> bool {
    fn rec(p: &[&str], t: &[&str]) -> bool {
        let ok = |s: &[&str]| s.iter().all(|s| wildcard_may_match(s));
        match p {
            [] => t.is_empty(),
            ["#", rest @ ..] => (0..=t.len()).any(|k| ok(&t[..k]) && rec(rest, &t[k..])),
            [">", rest @ ..] => (1..=t.len()).any(|k| ok(&t[..k]) && rec(rest, &t[k..])),
            ["*", rest @ ..] => t.first().is_some_and(|s| ok(&[s])) && rec(rest, &t[1..]),
            [l, rest @ ..] => t.first() == Some(l) && rec(rest, &t[1..]),
        }
    }
    let (Some(p), Some(t)) = (
        pattern.strip_prefix("/topic/"),
        destination.strip_prefix("/topic/"),
    ) else {
        return false;
    };
    !t.is_empty()
        && rec(
            &p.split('.').collect::<Vec<_>>(),
            &t.split('.').collect::<Vec<_>>(),
        )
}

#[test]
fn the_issue_examples() {
    let chat = ["/topic/chat.*"];
    assert!(allowed("/topic/chat.*", &chat));
    assert!(allowed("/topic/chat.lobby", &chat));
    assert!(!allowed("/topic/chat.#", &chat), "matches /topic/chat");
    assert!(!allowed("/topic/#", &chat));
    assert_eq!(
        find("/topic/chat.#", &chat),
        Found::Uncovered(b"/topic/chat".to_vec())
    );
}

#[test]
fn more_patterns_under_one_glob() {
    let chat = ["/topic/chat.*"];
    // `>` is one or more segments: never `/topic/chat` itself.
    assert!(allowed("/topic/chat.>", &chat));
    assert!(allowed("/topic/chat.*.*", &chat));
    assert!(
        allowed("/topic/chat.#.x", &chat),
        "chat.x, chat.a.x, ... all start chat."
    );
    assert!(!allowed("/topic/#.x", &chat), "matches /topic/x");
    assert!(!allowed("/topic/*", &chat));
    assert!(!allowed("/topic/*.lobby", &chat));
    assert!(allowed("/topic/chat.room.#", &chat));
    // A wildcard never crosses `/`, as a glob's `*` does not.
    assert!(allowed("/topic/a/b.*", &["/topic/a/b.*"]));
    assert!(!allowed("/topic/a.*", &["/topic/a.b"]));
    assert!(allowed("/topic/#", &["/topic/*"]));
    assert!(allowed("/topic/#", &["**"]));
    assert!(!allowed("/topic/#", &["/queue/**"]));
    assert!(!allowed("/topic/#", &[]));
}

#[test]
fn a_union_of_globs_covers_what_none_does_alone() {
    let globs = ["/topic/chat", "/topic/chat.**"];
    assert!(allowed("/topic/chat.#", &globs));
    assert!(!allowed("/topic/chat.#", &globs[..1]));
    assert!(!allowed("/topic/chat.#", &globs[1..]));
    let rooms = ["/topic/a.x*", "/topic/a.y*", "/topic/a.z*"];
    assert!(!allowed("/topic/a.*", &rooms), "a.b is in none of them");
}

#[test]
fn a_huge_search_refuses_in_bounded_time() {
    let pattern = format!("/topic/{}", vec!["#"; 60].join("."));
    let globs: Vec<String> = (0..40).map(|i| format!("/topic/*{i}*.*x*")).collect();
    let globs: Vec<&str> = globs.iter().map(String::as_str).collect();
    let start = std::time::Instant::now();
    assert!(!allowed(&pattern, &globs));
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
}

/// Every string over `alphabet` of length up to `max`.
fn strings(alphabet: &[char], max: usize) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut layer = vec![String::new()];
    for _ in 0..max {
        layer = layer
            .iter()
            .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
            .collect();
        out.extend(layer.iter().cloned());
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn agrees_with_brute_force(
        segments in prop::collection::vec(prop::sample::select(vec!["a", "b", "ab", "*", "#", "a/b"]), 1..4),
        last_more in any::<bool>(),
        globs in prop::collection::vec(
            prop::collection::vec(prop::sample::select(vec!["a", "b", ".", "/", "*", "**"]), 0..5),
            0..3,
        ),
    ) {
        let mut segments = segments;
        if last_more {
            segments.push(">");
        }
        let pattern = format!("/topic/{}", segments.join("."));
        prop_assume!(matches!(TopicPattern::parse(&pattern), Ok(Some(_))));
        let globs: Vec<String> = globs.iter().map(|g| format!("/topic/{}", g.concat())).collect();
        let globs: Vec<&str> = globs.iter().map(String::as_str).collect();
        let compiled: Vec<Glob> = globs.iter().map(|g| Glob::new(g)).collect();
        match find(&pattern, &globs) {
            Found::Covered => {
                for name in strings(&['a', 'b', '.', '/', 'c'], 6) {
                    let d = format!("/topic/{name}");
                    prop_assert!(
                        !pattern_matches(&pattern, &d) || compiled.iter().any(|g| g.matches(&d)),
                        "{pattern} under {globs:?} said covered, but {d} is not"
                    );
                }
            }
            Found::Uncovered(witness) => {
                let d = String::from_utf8(witness).unwrap();
                prop_assert!(pattern_matches(&pattern, &d), "{d} not matched by {pattern}");
                prop_assert!(!compiled.iter().any(|g| g.matches(&d)), "{d} allowed by {globs:?}");
            }
            Found::TooLarge => prop_assert!(false, "small cases never hit the bound"),
        }
    }
}
