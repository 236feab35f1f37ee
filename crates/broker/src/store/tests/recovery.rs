//! Recovery's rules, one by one, through [`recover_from_segments`].

use super::*;

fn recover(units: Vec<Unit>) -> Recovered {
    let r = recover_from_segments(&[&segment(&units)]);
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    r
}

fn ops(ops: Vec<Op>) -> Recovered {
    recover(vec![unit(1, ops)])
}

#[test]
fn empty_store() {
    let r = recover_from_segments(&[]);
    assert!(r.queues.is_empty() && r.subscriptions.is_empty() && r.skipped.is_empty());
    assert_eq!(r.max_id, 0);
}

#[test]
fn a_later_put_of_the_same_id_replaces_it_and_its_deliveries() {
    let r = ops(vec![
        put(1, "/queue/a", "old"),
        Op::Delivered { id: 1 },
        Op::Delivered { id: 1 },
        put(1, "/queue/b", "new"),
    ]);
    assert_eq!(r.queues.len(), 1);
    let (queue, messages) = &r.queues[0];
    assert_eq!(queue, "/queue/b");
    assert_eq!(messages, &vec![msg(1, "/queue/b", "new")]);
}

#[test]
fn delivered_counts_and_ignores_unknown_ids() {
    let r = recover(vec![
        unit(1, vec![put(1, "/queue/a", "x"), Op::Delivered { id: 9 }]),
        unit(2, vec![Op::Delivered { id: 1 }]),
        unit(3, vec![Op::Delivered { id: 1 }, Op::Delivered { id: 2 }]),
    ]);
    assert_eq!(r.queues[0].1[0].deliveries, 2);
    let mut started = msg(5, "/queue/a", "x");
    started.deliveries = 3;
    let r = ops(vec![Op::Put(started), Op::Delivered { id: 5 }]);
    assert_eq!(r.queues[0].1[0].deliveries, 4);
}

#[test]
fn remove_deletes_and_ignores_unknown_ids() {
    let r = ops(vec![
        put(1, "/queue/a", "x"),
        put(2, "/queue/a", "y"),
        Op::Remove { id: 1 },
        Op::Remove { id: 77 },
        Op::Delivered { id: 1 },
    ]);
    assert_eq!(ids(&r), vec![("/queue/a".to_owned(), vec![2])]);
}

#[test]
fn max_id_counts_removed_messages() {
    let r = ops(vec![
        put(10, "/queue/a", "x"),
        put(3, "/queue/a", "y"),
        Op::Remove { id: 10 },
    ]);
    assert_eq!(r.max_id, 10);
    assert_eq!(ids(&r), vec![("/queue/a".to_owned(), vec![3])]);
}

#[test]
fn queues_in_id_order_and_ordered_by_first_id() {
    let r = ops(vec![
        put(5, "/queue/b", "x"),
        put(9, "/queue/a", "x"),
        put(2, "/queue/a", "x"),
        put(7, "/queue/b", "x"),
        put(4, "/queue/c", "x"),
        Op::Remove { id: 2 },
    ]);
    assert_eq!(
        ids(&r),
        vec![
            ("/queue/c".to_owned(), vec![4]),
            ("/queue/b".to_owned(), vec![5, 7]),
            ("/queue/a".to_owned(), vec![9]),
        ]
    );
}

#[test]
fn subscribe_inserts_and_replaces_by_key() {
    let mut replaced = sub("k1", "/topic/new");
    replaced.selector = Some("a = 1".to_owned());
    let r = ops(vec![
        Op::Subscribe(sub("k1", "/topic/x")),
        Op::Subscribe(sub("k2", "/topic/y")),
        Op::Subscribe(sub("k3", "/topic/z")),
        Op::Subscribe(replaced.clone()),
    ]);
    // A replacement is a new creation: it comes last.
    assert_eq!(
        r.subscriptions,
        vec![sub("k2", "/topic/y"), sub("k3", "/topic/z"), replaced]
    );
}

#[test]
fn unsubscribe_removes_the_subscription_and_its_messages_so_far() {
    let r = recover(vec![
        unit(
            1,
            vec![
                Op::Subscribe(sub("k1", "/topic/x")),
                Op::Subscribe(sub("k2", "/topic/x")),
                put(1, "k1", "a"),
                put(2, "k2", "b"),
                put(3, "k1", "c"),
                put(4, "/queue/k1", "d"),
            ],
        ),
        unit(
            2,
            vec![Op::Unsubscribe {
                key: "k1".to_owned(),
            }],
        ),
        unit(
            3,
            vec![
                put(5, "k1", "after"),
                Op::Unsubscribe {
                    key: "none".to_owned(),
                },
            ],
        ),
    ]);
    assert_eq!(r.subscriptions, vec![sub("k2", "/topic/x")]);
    assert_eq!(
        ids(&r),
        vec![
            ("k2".to_owned(), vec![2]),
            ("/queue/k1".to_owned(), vec![4]),
            ("k1".to_owned(), vec![5]),
        ]
    );
    assert_eq!(r.max_id, 5);
}

#[test]
fn messages_come_back_whole() {
    let mut m = msg(3, "/queue/a", "the body");
    m.expires = 123_456;
    m.headers.push("persistent", "true");
    let r = ops(vec![Op::Put(m.clone())]);
    assert_eq!(r.queues, vec![("/queue/a".to_owned(), vec![m])]);
}

#[test]
fn segments_are_read_in_order() {
    let a = segment(&[unit(
        1,
        vec![put(1, "/queue/a", "x"), put(2, "/queue/a", "y")],
    )]);
    let b = segment(&[unit(2, vec![Op::Remove { id: 1 }, put(3, "/queue/a", "z")])]);
    let r = recover_from_segments(&[&a, &b]);
    assert_eq!(ids(&r), vec![("/queue/a".to_owned(), vec![2, 3])]);
}

#[test]
fn mostly_dead_segments_do_not_pin_their_buffer() {
    use super::super::recovery::{Segment, recover};
    // One live body among many dead ones is copied out; a live segment's are slices.
    let mut dead: Vec<Unit> = (1..=50)
        .map(|i| unit(i, vec![put(i, "/queue/a", &"x".repeat(100))]))
        .collect();
    dead.push(unit(51, (2..=50).map(|id| Op::Remove { id }).collect()));
    let live = [unit(52, vec![put(60, "/queue/a", &"y".repeat(100))])];
    let segments = [
        Segment {
            number: 1,
            name: PathBuf::from("a"),
            data: Bytes::from(segment(&dead)),
        },
        Segment {
            number: 2,
            name: PathBuf::from("b"),
            data: Bytes::from(segment(&live)),
        },
    ];
    let r = recover(&segments).recovered;
    assert_eq!(ids(&r), vec![("/queue/a".to_owned(), vec![1, 60])]);
    let [first, second] = &r.queues[0].1[..] else {
        panic!("two messages");
    };
    assert_eq!(first.body, "x".repeat(100).as_bytes());
    assert!(
        !segments[0]
            .data
            .as_ptr_range()
            .contains(&first.body.as_ptr())
    );
    assert!(
        segments[1]
            .data
            .as_ptr_range()
            .contains(&second.body.as_ptr())
    );
}
