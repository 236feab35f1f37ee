//! Wildcard topic subscriptions: which patterns a published topic matches.
//!
//! Owns [`Wildcards`], a trie of the patterns subscribed to (the pattern
//! language is `wildcard.rs`'s): one node per segment, literal children in a
//! hash map beside one `*`, one `#` and one `>` child. A topic is matched by
//! walking only the branches its segments take, one set of nodes per segment,
//! each node at most once per set: the cost grows with the topic's segments
//! and the patterns that match, never with those that do not, and stays
//! polynomial for patterns like `#.#.#.#`. Each pattern is a destination of
//! its own ([`Kind::Wildcard`]) holding its subscriptions and durable
//! subscriptions; a message published to a topic reaches them through the
//! topic's fan-out, naming the topic it was sent to. A durable subscription
//! on a pattern shows each message's own destination.

use super::Router;
use super::destinations::{DestKey, Kind};
use crate::message::{Message, header_line};
use crate::outbox::Outbox;
use crate::wildcard::{Segment, TOPIC_PREFIX, TopicPattern, is_pattern, wildcard_may_match};
use std::collections::HashMap;
use std::sync::Arc;
use stompkit_frame::{Version, names};

/// A node's slot in the trie.
type NodeId = usize;

/// The trie's root.
const ROOT: NodeId = 0;

/// One trie node: the patterns that continue from here.
#[derive(Default)]
struct Node {
    /// Children by literal segment.
    literals: HashMap<Box<str>, NodeId>,
    /// The `*` child.
    one: Option<NodeId>,
    /// The `#` child.
    zero_or_more: Option<NodeId>,
    /// The `>` child.
    one_or_more: Option<NodeId>,
    /// A `#` or `>` node: it takes any number of further segments itself.
    repeats: bool,
    /// The pattern ending here.
    dest: Option<DestKey>,
}

impl Node {
    /// Whether nothing ends here or continues from here.
    fn is_empty(&self) -> bool {
        self.dest.is_none()
            && self.literals.is_empty()
            && self.one.is_none()
            && self.zero_or_more.is_none()
            && self.one_or_more.is_none()
    }
}

/// The subscribed patterns, as a segment trie.
pub(super) struct Wildcards {
    nodes: Vec<Node>,
    free: Vec<NodeId>,
    /// Patterns held.
    patterns: usize,
    /// Per node: the generation of the node set it was last put in.
    marks: Vec<u32>,
    generation: u32,
    /// Scratch node sets (this segment's, the next one's).
    current: Vec<NodeId>,
    next: Vec<NodeId>,
    /// Scratch: the patterns a topic matched.
    matched: Vec<DestKey>,
}

impl Wildcards {
    /// No patterns.
    pub(super) fn new() -> Wildcards {
        Wildcards {
            nodes: vec![Node::default()],
            free: Vec::new(),
            patterns: 0,
            marks: vec![0],
            generation: 0,
            current: Vec::new(),
            next: Vec::new(),
            matched: Vec::new(),
        }
    }

    /// Whether no pattern is subscribed to (publishing skips the trie).
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.patterns == 0
    }

    /// Adds the pattern `destination` (a topic pattern), ending at `dest`.
    /// Anything else is ignored.
    pub(super) fn insert(&mut self, destination: &str, dest: DestKey) {
        let Ok(Some(pattern)) = TopicPattern::parse(destination) else {
            return;
        };
        let mut node = ROOT;
        for &segment in pattern.segments() {
            node = match self.child(node, segment) {
                Some(c) => c,
                None => self.add_child(node, segment),
            };
        }
        if self.nodes[node].dest.replace(dest).is_none() {
            self.patterns += 1;
        }
    }

    /// Removes the pattern `destination`; nodes nothing needs any more go.
    pub(super) fn remove(&mut self, destination: &str) {
        let Ok(Some(pattern)) = TopicPattern::parse(destination) else {
            return;
        };
        let mut path = vec![ROOT];
        for &segment in pattern.segments() {
            let Some(c) = path.last().and_then(|&n| self.child(n, segment)) else {
                return;
            };
            path.push(c);
        }
        let Some(&end) = path.last() else { return };
        if self.nodes[end].dest.take().is_some() {
            self.patterns -= 1;
        }
        // Prune from the end: each empty node is unlinked from its parent.
        for (i, &segment) in pattern.segments().iter().enumerate().rev() {
            let (parent, node) = (path[i], path[i + 1]);
            if !self.nodes[node].is_empty() {
                break;
            }
            let p = &mut self.nodes[parent];
            match segment {
                Segment::Literal(name) => drop(p.literals.remove(name)),
                Segment::One => p.one = None,
                Segment::ZeroOrMore => p.zero_or_more = None,
                Segment::OneOrMore => p.one_or_more = None,
            }
            self.nodes[node] = Node::default();
            self.free.push(node);
        }
    }

    /// The child of `node` for `segment`.
    fn child(&self, node: NodeId, segment: Segment<'_>) -> Option<NodeId> {
        let n = &self.nodes[node];
        match segment {
            Segment::Literal(name) => n.literals.get(name).copied(),
            Segment::One => n.one,
            Segment::ZeroOrMore => n.zero_or_more,
            Segment::OneOrMore => n.one_or_more,
        }
    }

    /// A new child of `node` for `segment`.
    fn add_child(&mut self, node: NodeId, segment: Segment<'_>) -> NodeId {
        let child = Node {
            repeats: matches!(segment, Segment::ZeroOrMore | Segment::OneOrMore),
            ..Node::default()
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id] = child;
                id
            }
            None => {
                self.nodes.push(child);
                self.marks.push(0);
                self.nodes.len() - 1
            }
        };
        let n = &mut self.nodes[node];
        match segment {
            Segment::Literal(name) => drop(n.literals.insert(name.into(), id)),
            Segment::One => n.one = Some(id),
            Segment::ZeroOrMore => n.zero_or_more = Some(id),
            Segment::OneOrMore => n.one_or_more = Some(id),
        }
        id
    }

    /// The patterns the topic named `name` (after `/topic/`) matches, each
    /// once, into `self.matched`.
    fn find(&mut self, name: &str) {
        self.matched.clear();
        self.current.clear();
        self.start_set();
        self.add(ROOT);
        std::mem::swap(&mut self.current, &mut self.next);
        for segment in name.split('.') {
            let wild = wildcard_may_match(segment);
            self.start_set();
            for i in 0..self.current.len() {
                let node = self.current[i];
                let n = &self.nodes[node];
                let (literal, one, more, repeats) = (
                    n.literals.get(segment).copied(),
                    n.one,
                    n.one_or_more,
                    n.repeats,
                );
                if let Some(c) = literal {
                    self.add(c);
                }
                if wild {
                    for c in [one, more, repeats.then_some(node)].into_iter().flatten() {
                        self.add(c);
                    }
                }
            }
            std::mem::swap(&mut self.current, &mut self.next);
            if self.current.is_empty() {
                return;
            }
        }
        let nodes = &self.nodes;
        self.matched
            .extend(self.current.iter().filter_map(|&n| nodes[n].dest));
    }

    /// Starts a new node set in `self.next`.
    fn start_set(&mut self) {
        self.next.clear();
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.fill(0);
            self.generation = 1;
        }
    }

    /// Puts `node` in the next set, with the `#` nodes below it (they match
    /// zero segments); a node already in the set is skipped.
    fn add(&mut self, node: NodeId) {
        let mut at = Some(node);
        while let Some(n) = at {
            if self.marks[n] == self.generation {
                return;
            }
            self.marks[n] = self.generation;
            self.next.push(n);
            at = self.nodes[n].zero_or_more;
        }
    }
}

impl Router {
    /// A message published to the topic `topic`: to every wildcard
    /// subscription whose pattern matches it (durable ones get a copy of
    /// their own), its MESSAGEs naming `topic`. Nothing to do without patterns.
    #[inline]
    pub(super) fn fan_out_wildcards(
        &mut self,
        topic: DestKey,
        message: &mut Message,
        publisher: Option<&Arc<Outbox>>,
    ) {
        if self.wildcards.is_empty() {
            return;
        }
        self.fan_out_matching(topic, message, publisher);
    }

    fn fan_out_matching(
        &mut self,
        topic: DestKey,
        message: &mut Message,
        publisher: Option<&Arc<Outbox>>,
    ) {
        let Some(name) = self.dests[topic].as_ref().map(|d| d.name.clone()) else {
            return;
        };
        let Some(name) = name.strip_prefix(TOPIC_PREFIX) else {
            return;
        };
        self.wildcards.find(name);
        let matched = std::mem::take(&mut self.wildcards.matched);
        for &pattern in &matched {
            self.copy_to_durable_subscriptions(pattern, message, publisher);
            self.fan_out_to(pattern, topic, message, publisher);
        }
        self.wildcards.matched = matched;
    }

    /// Cluster mode: a topic's copies for the durable subscriptions on
    /// patterns matching it (its subscribers get it back from NATS).
    pub(super) fn copy_to_durable_patterns(
        &mut self,
        topic: DestKey,
        message: &Message,
        publisher: Option<&Arc<Outbox>>,
    ) {
        if self.wildcards.is_empty() {
            return;
        }
        if !self.find_patterns(topic) {
            return;
        }
        let matched = std::mem::take(&mut self.wildcards.matched);
        for &pattern in &matched {
            self.copy_to_durable_subscriptions(pattern, message, publisher);
        }
        self.wildcards.matched = matched;
    }

    /// Whether the pattern `pattern` matches the topic `topic`.
    pub(super) fn pattern_matches(&mut self, pattern: DestKey, topic: DestKey) -> bool {
        self.find_patterns(topic) && self.wildcards.matched.contains(&pattern)
    }

    /// Finds the patterns matching the topic `topic` (into
    /// `wildcards.matched`); false if it is no topic.
    fn find_patterns(&mut self, topic: DestKey) -> bool {
        let Some(name) = self.dests[topic].as_ref().map(|d| d.name.clone()) else {
            return false;
        };
        let Some(name) = name.strip_prefix(TOPIC_PREFIX) else {
            return false;
        };
        self.wildcards.find(name);
        true
    }

    /// Whether the queue `key` is a durable subscription on a pattern: its
    /// MESSAGEs name where each message was sent.
    pub(super) fn shows_sent_to(&self, key: DestKey) -> bool {
        self.dests[key]
            .as_ref()
            .and_then(|d| d.durable_of)
            .and_then(|t| self.dests[t].as_ref())
            .is_some_and(|t| t.kind == Kind::Wildcard)
    }
}

/// `destination:` lines naming where `message` was sent (for `version`
/// only), or `None` if it names no destination.
pub(super) fn sent_to_lines(message: &Message, version: Version) -> Option<[Box<[u8]>; 3]> {
    let sent_to = message.headers().get(names::DESTINATION)?;
    let mut lines: [Box<[u8]>; 3] = Default::default();
    lines[version as usize] = header_line(names::DESTINATION, sent_to, version);
    Some(lines)
}

/// The kind of the topic destination `name`: a pattern or a topic.
pub(super) fn topic_kind(name: &str) -> Kind {
    if is_pattern(name) {
        Kind::Wildcard
    } else {
        Kind::Topic
    }
}

#[cfg(test)]
mod tests;
