//! Model check: random units, encoded into random segments, some of them cut
//! short or bit-flipped, recover to what a plain in-memory model of the
//! rules gives for the units that survive.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

/// The rules, written the simplest way.
#[derive(Default)]
struct Model {
    messages: BTreeMap<u64, StoredMessage>,
    subscriptions: Vec<StoredSubscription>,
    max_id: u64,
}

impl Model {
    fn apply(&mut self, op: &Op) {
        match op {
            Op::Put(m) => {
                self.max_id = self.max_id.max(m.id);
                self.messages.insert(m.id, m.clone());
            }
            Op::Delivered { id } => {
                if let Some(m) = self.messages.get_mut(id) {
                    m.deliveries = m.deliveries.saturating_add(1);
                }
            }
            Op::Remove { id } => {
                self.messages.remove(id);
            }
            Op::Subscribe(s) => {
                self.subscriptions.retain(|x| x.key != s.key);
                self.subscriptions.push(s.clone());
            }
            Op::Unsubscribe { key } => {
                self.subscriptions.retain(|x| &x.key != key);
                self.messages.retain(|_, m| &m.queue != key);
            }
        }
    }

    fn state(&self) -> State {
        let mut queues: Vec<(String, Vec<StoredMessage>)> = Vec::new();
        for m in self.messages.values() {
            match queues.iter_mut().find(|(q, _)| *q == m.queue) {
                Some((_, ms)) => ms.push(m.clone()),
                None => queues.push((m.queue.clone(), vec![m.clone()])),
            }
        }
        State {
            queues,
            subscriptions: self.subscriptions.clone(),
            max_id: self.max_id,
        }
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z/:]{1,8}",
        Just("a:b\\c\nd é".to_owned()),
    ]
}

fn message() -> impl Strategy<Value = StoredMessage> {
    let queue = prop_oneof![Just("/queue/a"), Just("/queue/b"), Just("k1"), Just("k2")];
    let headers = proptest::collection::vec((text(), text()), 0..4);
    let body = proptest::collection::vec(any::<u8>(), 0..40);
    (0u64..12, queue, headers, body, any::<u64>(), 0u32..3).prop_map(
        |(id, queue, headers, body, expires, deliveries)| StoredMessage {
            id,
            queue: queue.to_owned(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect(),
            body: Bytes::from(body),
            expires,
            deliveries,
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    let key = || prop_oneof![Just("k1"), Just("k2"), Just("k3")].prop_map(str::to_owned);
    let subscription =
        (key(), text(), proptest::option::of(text())).prop_map(|(key, destination, selector)| {
            StoredSubscription {
                key,
                destination,
                selector,
            }
        });
    prop_oneof![
        4 => message().prop_map(Op::Put),
        2 => (0u64..12).prop_map(|id| Op::Delivered { id }),
        2 => (0u64..12).prop_map(|id| Op::Remove { id }),
        1 => subscription.prop_map(Op::Subscribe),
        1 => key().prop_map(|key| Op::Unsubscribe { key }),
    ]
}

/// Units, each with the segment it goes to (a growing segment index).
fn log() -> impl Strategy<Value = Vec<(Unit, bool)>> {
    proptest::collection::vec(
        (proptest::collection::vec(op(), 0..5), any::<bool>()),
        0..30,
    )
    .prop_map(|units| {
        units
            .into_iter()
            .enumerate()
            .map(|(i, (ops, new_segment))| (unit(i as u64 + 1, ops), new_segment && i % 3 == 0))
            .collect()
    })
}

/// How a segment is damaged: not, cut at a fraction of its length, or a bit
/// flipped at a fraction of it.
#[derive(Clone, Copy, Debug)]
enum Damage {
    None,
    Cut(f64),
    Flip(f64, u8),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        2 => Just(Damage::None),
        1 => (0.0f64..1.0).prop_map(Damage::Cut),
        1 => (0.0f64..1.0, 0u8..8).prop_map(|(at, bit)| Damage::Flip(at, bit)),
    ]
}

/// A segment's bytes and its units, each with where its record ends.
type Laid<'a> = (Vec<u8>, Vec<(usize, &'a Unit)>);

/// Lays the units out in segments, damages them, and applies to the model
/// every unit whose record lies wholly before its segment's damage.
fn lay_out(log: &[(Unit, bool)], damages: &[Damage]) -> (Vec<Vec<u8>>, Model) {
    let mut segments: Vec<Laid<'_>> = Vec::new();
    for (u, new_segment) in log {
        if *new_segment || segments.is_empty() {
            segments.push((super::super::codec::header().to_vec(), Vec::new()));
        }
        let (data, units) = segments.last_mut().unwrap();
        encode_unit(u, data);
        units.push((data.len(), u));
    }
    let mut model = Model::default();
    let mut out = Vec::new();
    for (i, (mut data, units)) in segments.into_iter().enumerate() {
        let header = super::super::codec::HEADER_LEN;
        let intact = match damages.get(i).copied().unwrap_or(Damage::None) {
            Damage::None => data.len(),
            Damage::Cut(at) => {
                let cut = header + ((data.len() - header) as f64 * at) as usize;
                data.truncate(cut);
                cut
            }
            Damage::Flip(at, bit) if data.len() > header => {
                let pos = header + ((data.len() - header) as f64 * at) as usize;
                data[pos] ^= 1 << bit;
                pos
            }
            Damage::Flip(..) => data.len(),
        };
        for (end, u) in units {
            if end <= intact {
                u.ops.iter().for_each(|op| model.apply(op));
            }
        }
        out.push(data);
    }
    (out, model)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn recovery_matches_the_model(log in log(), damages in proptest::collection::vec(damage(), 0..12)) {
        let (segments, model) = lay_out(&log, &damages);
        let slices: Vec<&[u8]> = segments.iter().map(Vec::as_slice).collect();
        let r = recover_from_segments(&slices);
        prop_assert_eq!(state(&r), model.state());
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut segment = super::super::codec::header().to_vec();
        segment.extend_from_slice(&data);
        let r = recover_from_segments(&[&segment, &data]);
        prop_assert!(r.skipped.len() <= 2);
    }
}
