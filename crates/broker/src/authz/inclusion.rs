//! Whether every destination a topic pattern matches is allowed by a list of
//! permission globs: language inclusion, decided exactly.
//!
//! Owns [`covered`]. The pattern (`wildcard.rs`) and the globs are both
//! automata over bytes; a destination the pattern matches and no glob allows
//! is searched for in their product, the pattern's automaton state by state,
//! the globs' as the set of states they can be in together (a subset
//! construction, built only as far as the search goes). Bytes are taken in
//! classes that behave alike everywhere: each byte some pattern or glob names,
//! `.`, `/`, and one for every other byte. The name `/topic/` itself (empty, no
//! destination) is not counted. The alphabet is all bytes, a superset of what
//! a destination can spell, so any doubt refuses; and a search that grows
//! past [`MAX_STATES`] refuses too.

use super::{Glob, Token};
use crate::wildcard::{Segment, TOPIC_PREFIX, TopicPattern};
use std::collections::HashMap;

/// Most product states a search visits before it gives up (and refuses).
const MAX_STATES: usize = 4096;

/// One part of a pattern, `>` written as `*` then `#`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Item<'a> {
    /// A literal segment's bytes.
    Literal(&'a [u8]),
    /// One segment without `.` or `/`.
    One,
    /// Zero or more such segments.
    Many,
}

/// A state of the pattern's automaton.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum PState {
    /// In `/topic/`, this many bytes read.
    Prefix(usize),
    /// Between segments, before item `i`; `started` once a segment was read
    /// (the next needs a `.` first).
    Boundary { i: usize, started: bool },
    /// At the start of a segment for item `i`.
    Start(usize),
    /// In literal item `i`, this many bytes read.
    Literal(usize, usize),
    /// In a wildcard segment of item `i`.
    Wild(usize),
}

/// The pattern's automaton.
struct PatternNfa<'a> {
    items: Vec<Item<'a>>,
}

impl<'a> PatternNfa<'a> {
    /// The automaton of `pattern` (`>` is one segment, then zero or more).
    fn new(pattern: &TopicPattern<'a>) -> PatternNfa<'a> {
        let mut items = Vec::new();
        for s in pattern.segments() {
            match s {
                Segment::Literal(l) => items.push(Item::Literal(l.as_bytes())),
                Segment::One => items.push(Item::One),
                Segment::ZeroOrMore => items.push(Item::Many),
                Segment::OneOrMore => items.extend([Item::One, Item::Many]),
            }
        }
        PatternNfa { items }
    }

    /// Whether a state accepts (all items read).
    fn accepts(&self, s: PState) -> bool {
        matches!(s, PState::Boundary { i, .. } if i == self.items.len())
    }

    /// `s` and every state reachable from it reading nothing.
    fn closure(&self, s: PState, out: &mut Vec<PState>) {
        let start = out.len();
        out.push(s);
        let mut k = start;
        while k < out.len() {
            let next = self.empty_moves(out[k]);
            for n in next.into_iter().flatten() {
                if !out[start..].contains(&n) {
                    out.push(n);
                }
            }
            k += 1;
        }
    }

    /// The moves from `s` reading nothing.
    fn empty_moves(&self, s: PState) -> [Option<PState>; 2] {
        let n = self.items.len();
        let item = |i: usize| self.items.get(i).copied();
        match s {
            PState::Prefix(off) if off == TOPIC_PREFIX.len() => [
                Some(PState::Boundary {
                    i: 0,
                    started: false,
                }),
                None,
            ],
            PState::Boundary { i, started } if i < n => [
                (!started).then_some(PState::Start(i)),
                (item(i) == Some(Item::Many)).then_some(PState::Boundary { i: i + 1, started }),
            ],
            PState::Start(i) => match item(i) {
                Some(Item::Literal(_)) => [Some(PState::Literal(i, 0)), None],
                _ => [Some(PState::Wild(i)), None],
            },
            PState::Literal(i, off) => match item(i) {
                Some(Item::Literal(l)) if l.len() == off => [
                    Some(PState::Boundary {
                        i: i + 1,
                        started: true,
                    }),
                    None,
                ],
                _ => [None, None],
            },
            PState::Wild(i) => {
                let again = item(i) == Some(Item::Many);
                let i = if again { i } else { i + 1 };
                [Some(PState::Boundary { i, started: true }), None]
            }
            _ => [None, None],
        }
    }

    /// The move from `s` reading `c`.
    fn step(&self, s: PState, c: u8) -> Option<PState> {
        let prefix = TOPIC_PREFIX.as_bytes();
        match s {
            PState::Prefix(off) if prefix.get(off) == Some(&c) => Some(PState::Prefix(off + 1)),
            PState::Boundary { i, started: true } if i < self.items.len() && c == b'.' => {
                Some(PState::Start(i))
            }
            PState::Literal(i, off) => match self.items.get(i) {
                Some(Item::Literal(l)) if l.get(off) == Some(&c) => {
                    Some(PState::Literal(i, off + 1))
                }
                _ => None,
            },
            PState::Wild(i) if c != b'.' && c != b'/' => Some(PState::Wild(i)),
            _ => None,
        }
    }
}

/// The globs' automata together: for each glob, its tokens.
struct Globs {
    tokens: Vec<Vec<Token>>,
}

/// A set of glob states: (glob, position in its tokens), sorted, closed
/// under reading nothing (a star matching nothing).
type GlobSet = Vec<(u32, u32)>;

impl Globs {
    fn new(globs: &[Glob]) -> Globs {
        let tokens = globs
            .iter()
            .map(|g| {
                let mut t: Vec<Token> = g.prefix.iter().map(|&b| Token::Byte(b)).collect();
                t.extend(&g.rest);
                t
            })
            .collect();
        Globs { tokens }
    }

    /// Adds glob `g`'s position `pos` and those after the stars that follow it.
    fn add(&self, g: usize, mut pos: usize, set: &mut GlobSet) {
        let tokens = &self.tokens[g];
        loop {
            set.push((g as u32, pos as u32));
            match tokens.get(pos) {
                Some(Token::Star | Token::Any) => pos += 1,
                _ => break,
            }
        }
    }

    fn start(&self) -> GlobSet {
        let mut set = Vec::new();
        for g in 0..self.tokens.len() {
            self.add(g, 0, &mut set);
        }
        normalize(set)
    }

    fn step(&self, set: &GlobSet, c: u8) -> GlobSet {
        let mut next = Vec::new();
        for &(g, pos) in set {
            let (g, pos) = (g as usize, pos as usize);
            match self.tokens[g].get(pos) {
                Some(Token::Byte(b)) if *b == c => self.add(g, pos + 1, &mut next),
                Some(Token::Star) if c != b'/' => self.add(g, pos, &mut next),
                Some(Token::Any) => self.add(g, pos, &mut next),
                _ => {}
            }
        }
        normalize(next)
    }

    /// Whether some glob has read all its tokens.
    fn accepts(&self, set: &GlobSet) -> bool {
        set.iter()
            .any(|&(g, pos)| pos as usize == self.tokens[g as usize].len())
    }

    /// Whether some glob accepts whatever follows (its rest is `**`).
    fn accepts_anything(&self, set: &GlobSet) -> bool {
        set.iter()
            .any(|&(g, pos)| self.tokens[g as usize][pos as usize..] == [Token::Any])
    }

    /// Every byte some glob names.
    fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.tokens.iter().flatten().filter_map(|t| match t {
            Token::Byte(b) => Some(*b),
            _ => None,
        })
    }
}

fn normalize(mut set: GlobSet) -> GlobSet {
    set.sort_unstable();
    set.dedup();
    set
}

/// Whether every destination `pattern` matches (but `/topic/` itself) is
/// allowed by some glob of `globs`. `false` when the search is too large.
pub(super) fn covered(pattern: &TopicPattern<'_>, globs: &[Glob]) -> bool {
    search(&PatternNfa::new(pattern), &Globs::new(globs)) == Found::Covered
}

/// What the search found.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// Every destination the pattern matches is allowed.
    Covered,
    /// This destination is matched and not allowed.
    Uncovered(Vec<u8>),
    /// The search grew past [`MAX_STATES`].
    TooLarge,
}

/// One product state: the pattern's state, the globs' states, and whether a
/// byte of the name (after `/topic/`) was read.
type State = (PState, GlobSet, bool);

/// Looks for a destination the pattern matches and no glob allows.
fn search(nfa: &PatternNfa<'_>, globs: &Globs) -> Found {
    let classes = byte_classes(nfa, globs);
    let start: State = (PState::Prefix(0), globs.start(), false);
    // Each state seen, with the state and byte it was reached from.
    let mut seen: HashMap<State, Option<(State, u8)>> = HashMap::from([(start.clone(), None)]);
    let mut stack = vec![start];
    let mut closure = Vec::new();
    while let Some(state) = stack.pop() {
        let (p, set, named) = &state;
        if globs.accepts_anything(set) {
            continue;
        }
        closure.clear();
        nfa.closure(*p, &mut closure);
        if *named && closure.iter().any(|&s| nfa.accepts(s)) && !globs.accepts(set) {
            return Found::Uncovered(path_to(&seen, state));
        }
        for &c in &classes {
            let moves: Vec<State> = closure
                .iter()
                .filter_map(|&s| {
                    let in_prefix = matches!(s, PState::Prefix(off) if off < TOPIC_PREFIX.len());
                    nfa.step(s, c)
                        .map(|n| (n, Vec::new(), *named || !in_prefix))
                })
                .collect();
            if moves.is_empty() {
                continue;
            }
            let next = globs.step(set, c);
            for (n, _, named) in moves {
                let reached = (n, next.clone(), named);
                if !seen.contains_key(&reached) {
                    if seen.len() >= MAX_STATES {
                        return Found::TooLarge;
                    }
                    seen.insert(reached.clone(), Some((state.clone(), c)));
                    stack.push(reached);
                }
            }
        }
    }
    Found::Covered
}

/// The bytes read on the way to `state`.
fn path_to(seen: &HashMap<State, Option<(State, u8)>>, mut state: State) -> Vec<u8> {
    let mut bytes = Vec::new();
    while let Some(Some((from, c))) = seen.get(&state) {
        bytes.push(*c);
        state = from.clone();
    }
    bytes.reverse();
    bytes
}

/// One byte per class of bytes that every automaton treats alike.
fn byte_classes(nfa: &PatternNfa<'_>, globs: &Globs) -> Vec<u8> {
    let mut named = [false; 256];
    let literal = nfa.items.iter().flat_map(|i| match i {
        Item::Literal(l) => l.iter().copied(),
        _ => [].iter().copied(),
    });
    for b in TOPIC_PREFIX
        .bytes()
        .chain(literal)
        .chain(globs.bytes())
        .chain([b'.', b'/'])
    {
        named[b as usize] = true;
    }
    let other = (0..=255u8).find(|&b| !named[b as usize]);
    (0..=255u8)
        .filter(|&b| named[b as usize])
        .chain(other)
        .collect()
}

#[cfg(test)]
mod tests;
