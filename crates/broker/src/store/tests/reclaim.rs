//! Space reclamation: dead segments go, mostly dead ones are copied forward,
//! and a reopen finds exactly the state a log without reclamation gives.

use super::*;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

/// The state recovered from every unit in one segment: no reclamation.
fn reference(units: &[Unit]) -> State {
    let r = recover_from_segments(&[&segment(units)]);
    assert!(r.skipped.is_empty());
    state(&r)
}

fn total_size(dir: &Path) -> u64 {
    segment_files(dir).iter().map(|(_, len)| len).sum()
}

/// Submits `units` one batch, waits for it, and keeps them.
fn write(
    store: &Store,
    rx: &mut mpsc::UnboundedReceiver<Completion>,
    units: Vec<Unit>,
    all: &mut Vec<Unit>,
) {
    let last = units.last().map(|u| u.seq).unwrap();
    all.extend(units.iter().cloned());
    store.submit(units);
    assert_eq!(settle(rx, last).last(), Some(&Completion::Durable(last)));
}

#[test]
fn put_remove_cycles_keep_the_log_small() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _, mut rx) = open_small(tmp.path(), 4096);
    let mut all = Vec::new();
    let mut largest = 0;
    for i in 1..=600u64 {
        let ops = vec![
            put(i, "/queue/a", &"p".repeat(100)),
            Op::Remove {
                id: i.saturating_sub(1),
            },
        ];
        write(&store, &mut rx, vec![unit(i, ops)], &mut all);
        largest = largest.max(total_size(tmp.path()));
    }
    assert!(largest < 4 * 4096, "the log grew to {largest} bytes");
    drop(store);
    let (_store, r, _rx) = open_small(tmp.path(), 4096);
    assert_eq!(state(&r), reference(&all));
    assert_eq!(ids(&r), vec![("/queue/a".to_owned(), vec![600])]);
    assert_eq!(r.max_id, 600);
}

#[test]
fn removed_ids_stay_counted_after_their_segments_are_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _, mut rx) = open_small(tmp.path(), 512);
    let mut all = Vec::new();
    for i in 1..=40u64 {
        let ops = vec![put(i, "/queue/a", &"p".repeat(100)), Op::Remove { id: i }];
        write(&store, &mut rx, vec![unit(i, ops)], &mut all);
    }
    drop(store);
    // Restart twice: the old segments die, the checkpoints keep max_id.
    for _ in 0..2 {
        let (store, r, _rx) = open_small(tmp.path(), 512);
        assert_eq!(r.max_id, 40);
        assert!(r.queues.is_empty());
        drop(store);
    }
    assert!(
        segment_files(tmp.path()).len() <= 2,
        "{:?}",
        segment_files(tmp.path())
    );
}

#[test]
fn long_lived_messages_and_subscriptions_are_copied_forward() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _, mut rx) = open_small(tmp.path(), 2048);
    let mut all = Vec::new();
    let mut first = vec![
        Op::Subscribe(sub("k1", "/topic/a")),
        Op::Subscribe(sub("k2", "/topic/b")),
        put(1, "k1", "kept one"),
        put(2, "/queue/keep", "kept two"),
    ];
    first.push(Op::Delivered { id: 1 });
    write(&store, &mut rx, vec![unit(1, first)], &mut all);
    for i in 3..=300u64 {
        let mut ops = vec![put(i, "/queue/churn", &"c".repeat(150))];
        if i > 3 {
            ops.push(Op::Remove { id: i - 1 });
        }
        if i % 50 == 0 {
            ops.push(Op::Delivered { id: 2 });
            ops.push(Op::Subscribe(sub(&format!("k{i}"), "/topic/c")));
        }
        write(&store, &mut rx, vec![unit(i - 1, ops)], &mut all);
    }
    assert!(store.faults.copies.load(Ordering::SeqCst) > 0);
    let names: Vec<String> = segment_files(tmp.path()).into_iter().map(|f| f.0).collect();
    assert!(
        !names.contains(&"0000000000000001.seg".to_owned()),
        "{names:?}"
    );
    assert!(total_size(tmp.path()) < 6 * 2048, "{names:?}");
    drop(store);
    let (_store, r, _rx) = open_small(tmp.path(), 2048);
    let expected = reference(&all);
    assert_eq!(state(&r), expected);
    let kept = &r.queues.iter().find(|(q, _)| q == "/queue/keep").unwrap().1[0];
    assert_eq!(kept.deliveries, 6);
    assert_eq!(
        r.subscriptions[..2],
        [sub("k1", "/topic/a"), sub("k2", "/topic/b")]
    );
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const QUEUES: [&str; 4] = ["/queue/a", "/queue/b", "sub-1", "sub-2"];
const KEYS: [&str; 3] = ["sub-1", "sub-2", "sub-3"];

fn random_op(rng: &mut Rng, next_id: &mut u64) -> Op {
    let recent = |rng: &mut Rng, next_id: u64| next_id.saturating_sub(rng.below(30));
    match rng.below(100) {
        0..35 => {
            *next_id += 1;
            let body = "b".repeat(rng.below(300) as usize);
            let mut m = msg(*next_id, QUEUES[rng.below(4) as usize], &body);
            m.deliveries = rng.below(3) as u32;
            Op::Put(m)
        }
        35..65 => Op::Remove {
            id: recent(rng, *next_id),
        },
        65..80 => Op::Delivered {
            id: recent(rng, *next_id),
        },
        80..88 => {
            let id = recent(rng, *next_id);
            Op::Put(msg(id, QUEUES[rng.below(4) as usize], "again"))
        }
        88..96 => Op::Subscribe(sub(KEYS[rng.below(3) as usize], "/topic/t")),
        _ => Op::Unsubscribe {
            key: KEYS[rng.below(3) as usize].to_owned(),
        },
    }
}

/// Random units in random batches, with restarts: every reopen must find the
/// state of the same units recovered without reclamation.
fn random_workload(seed: u64, segment_bytes: u64) -> u32 {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng(seed);
    let (mut store, _, mut rx) = open_small(tmp.path(), segment_bytes);
    let mut all = Vec::new();
    let (mut seq, mut next_id, mut copies) = (0, 0, 0);
    let mut seen = BTreeMap::new();
    for round in 1..=120 {
        let units = (0..=rng.below(4))
            .map(|_| {
                seq += 1;
                let ops = (0..=rng.below(3)).map(|_| random_op(&mut rng, &mut next_id));
                unit(seq, ops.collect())
            })
            .collect();
        write(&store, &mut rx, units, &mut all);
        remember(tmp.path(), &mut seen);
        if round % 40 == 0 {
            copies += store.faults.copies.load(Ordering::SeqCst);
            drop(store);
            let r;
            (store, r, rx) = open_small(tmp.path(), segment_bytes);
            assert_eq!(state(&r), reference(&all), "seed {seed}, round {round}");
            assert!(r.skipped.is_empty());
        }
    }
    drop(store);
    let (_store, r, _rx) = open_small(tmp.path(), segment_bytes);
    assert_eq!(state(&r), reference(&all), "seed {seed}");
    // Had no segment ever been deleted (a crash before each deletion), the
    // copies and checkpoints would change nothing either.
    let every: Vec<&[u8]> = seen.values().map(Vec::as_slice).collect();
    let r = recover_from_segments(&every);
    assert!(r.skipped.is_empty());
    assert_eq!(state(&r), reference(&all), "seed {seed}, nothing deleted");
    copies
}

/// Keeps the latest contents of every segment file ever seen in `dir`.
fn remember(dir: &Path, seen: &mut BTreeMap<String, Vec<u8>>) {
    for (name, _) in segment_files(dir) {
        if let Ok(data) = std::fs::read(dir.join("log").join(&name)) {
            seen.insert(name, data);
        }
    }
}

#[test]
fn reclamation_keeps_the_state_of_random_workloads() {
    let mut copies = 0;
    for seed in 1..=6u64 {
        copies += random_workload(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), 1024 + 512 * seed);
    }
    assert!(copies > 0, "no live record was ever copied forward");
}

#[test]
fn restarts_without_writes_leave_no_segments_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _, mut rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    let mut all = Vec::new();
    write(
        &store,
        &mut rx,
        vec![unit(1, vec![put(7, "/queue/a", "stays")])],
        &mut all,
    );
    drop(store);
    for _ in 0..5 {
        let (store, r, _rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
        assert_eq!(state(&r), reference(&all));
        drop(store);
    }
    let files = segment_files(tmp.path());
    assert_eq!(files.len(), 2, "{files:?}");
}
