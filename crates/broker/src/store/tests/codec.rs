//! The record format: round trips, and every way a record can be bad.

use super::super::codec::{self, DiskOp, Next};
use super::*;

fn every_op() -> Vec<Op> {
    let mut big = msg(u64::MAX, "/queue/ünï", "");
    big.expires = 1_700_000_000_000;
    big.deliveries = u32::MAX;
    big.headers.push("x-note", "repeated");
    big.headers.push("", "");
    vec![
        put(1, "/queue/a", "hello"),
        Op::Put(big),
        Op::Delivered { id: 1 },
        Op::Remove { id: 300 },
        Op::Subscribe(sub("client-1:durable", "/topic/t")),
        Op::Subscribe(StoredSubscription {
            key: "k2".to_owned(),
            destination: "/topic/*".to_owned(),
            selector: Some("color = 'red'".to_owned()),
        }),
        Op::Unsubscribe {
            key: "client-1:durable".to_owned(),
        },
    ]
}

fn read_all(data: &[u8]) -> (Vec<Vec<DiskOp>>, Option<(usize, &'static str)>) {
    let data = Bytes::copy_from_slice(data);
    let mut pos = codec::HEADER_LEN;
    let mut units = Vec::new();
    let mut ops = Vec::new();
    loop {
        match codec::read_record(&data, pos, &mut ops) {
            Next::End => return (units, None),
            Next::Record(end) => {
                units.push(ops.drain(..).map(|(op, _)| op).collect());
                pos = end;
            }
            Next::Bad(reason) => return (units, Some((pos, reason))),
        }
    }
}

fn as_disk(op: Op) -> DiskOp {
    match op {
        Op::Put(m) => DiskOp::Put(m),
        Op::Delivered { id } => DiskOp::Delivered(id),
        Op::Remove { id } => DiskOp::Remove(id),
        Op::Subscribe(s) => DiskOp::Subscribe(s, None),
        Op::Unsubscribe { key } => DiskOp::Unsubscribe(key),
    }
}

#[test]
fn every_op_round_trips() {
    let units = vec![
        unit(7, every_op()),
        unit(8, vec![]),
        unit(u64::MAX, every_op()),
    ];
    let (read, bad) = read_all(&segment(&units));
    assert_eq!(bad, None);
    let expected: Vec<Vec<DiskOp>> = units
        .into_iter()
        .map(|u| u.ops.into_iter().map(as_disk).collect())
        .collect();
    assert_eq!(read, expected);
}

#[test]
fn record_layout_is_length_checksum_payload() {
    let mut out = Vec::new();
    encode_unit(&unit(5, vec![Op::Remove { id: 9 }]), &mut out);
    // seq 5, one op, REMOVE tag 3, id 9.
    let payload = [5, 1, 3, 9];
    assert_eq!(out[..4], 4u32.to_le_bytes());
    assert_eq!(out[4..8], crc32fast::hash(&payload).to_le_bytes());
    assert_eq!(out[8..], payload);
}

#[test]
fn the_writers_own_ops_round_trip() {
    let mut out = codec::header().to_vec();
    let start = codec::begin_record(&mut out, 0, 2);
    codec::encode_checkpoint(41, 3, &mut out);
    codec::encode_subscribe_at(2, &sub("k", "/topic/x"), &mut out);
    codec::finish_record(&mut out, start).expect("small");
    let (read, bad) = read_all(&out);
    assert_eq!(bad, None);
    assert_eq!(
        read,
        vec![vec![
            DiskOp::Checkpoint {
                max_id: 41,
                next_ordinal: 3
            },
            DiskOp::Subscribe(sub("k", "/topic/x"), Some(2)),
        ]]
    );
}

#[test]
fn bodies_are_slices_of_the_segment() {
    let data = Bytes::from(segment(&[unit(1, vec![put(1, "/queue/a", "body!")])]));
    let mut ops = Vec::new();
    let Next::Record(_) = codec::read_record(&data, codec::HEADER_LEN, &mut ops) else {
        panic!("record");
    };
    let DiskOp::Put(m) = &ops[0].0 else {
        panic!("put");
    };
    let inside = data.as_ptr_range();
    assert!(inside.contains(&m.body.as_ptr()), "body was copied");
}

/// Two good units, then `bad`'s effect on a third: recovery keeps the two.
fn third_spoiled(spoil: impl Fn(&mut Vec<u8>, usize)) -> Recovered {
    let units = [
        unit(1, vec![put(1, "/queue/a", "one")]),
        unit(2, vec![put(2, "/queue/a", "two")]),
        unit(3, vec![put(3, "/queue/a", "three")]),
    ];
    let mut data = segment(&units[..2]);
    let third = data.len();
    encode_unit(&units[2], &mut data);
    spoil(&mut data, third);
    let r = recover_from_segments(&[&data]);
    assert_eq!(ids(&r), vec![("/queue/a".to_owned(), vec![1, 2])]);
    assert_eq!(r.skipped.len(), 1);
    assert_eq!(r.skipped[0].offset, third as u64);
    assert_eq!(r.skipped[0].bytes, (data.len() - third) as u64);
    assert_eq!(r.skipped[0].segment, PathBuf::from("segment-0"));
    r
}

#[test]
fn corrupt_checksum_is_skipped() {
    let r = third_spoiled(|d, at| d[at + 4] ^= 0xff);
    assert_eq!(r.skipped[0].reason, "checksum mismatch");
}

#[test]
fn bit_flip_in_the_payload_is_skipped() {
    for bit in 0..8 {
        let r = third_spoiled(|d, at| {
            let last = d.len() - 1;
            d[(at + 9 + bit).min(last)] ^= 1 << bit;
        });
        assert_eq!(r.skipped[0].reason, "checksum mismatch");
    }
}

#[test]
fn truncated_tail_is_skipped() {
    for keep in [1, 7, 8, 9, 20] {
        let r = third_spoiled(|d, at| d.truncate(at + keep));
        assert_eq!(r.skipped[0].reason, "truncated record");
    }
}

#[test]
fn length_beyond_the_end_is_truncated() {
    let r = third_spoiled(|d, at| d[at + 3] = 0x7f);
    assert_eq!(r.skipped[0].reason, "truncated record");
}

#[test]
fn zeroed_tail_is_a_bad_record() {
    let r = third_spoiled(|d, at| {
        d.truncate(at);
        d.extend_from_slice(&[0; 64]);
    });
    assert_eq!(r.skipped[0].reason, "bad record");
}

/// A record with a valid checksum around `payload`.
fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

#[test]
fn undecodable_payloads_are_bad_records() {
    let payloads: [&[u8]; 8] = [
        &[1, 1, 99],      // unknown tag
        &[1, 2, 3, 9],    // two ops, one present
        &[1, 1, 3, 9, 0], // trailing byte
        &[
            1, 1, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ], // varint overflow
        &[1, 1, 5, 2, 0xff, 0xfe], // key not UTF-8
        &[1, 1, 5, 9, b'a'], // key longer than the payload
        &[1, 1, 4, 1, b'k', 1, b'd', 2], // selector flag 2
        &[1, 1, 1, 1, 0, 0, 1, b'q', 0xff, 0xff, 0xff, 0xff, 0x0f], // header count, no headers
    ];
    for payload in payloads {
        let r = third_spoiled(|d, at| {
            d.truncate(at);
            d.extend_from_slice(&framed(payload));
        });
        assert_eq!(r.skipped[0].reason, "bad record", "{payload:?}");
    }
}

#[test]
fn a_bad_record_ends_only_its_segment() {
    let mut first = segment(&[unit(1, vec![put(1, "/queue/a", "a")])]);
    let cut = first.len();
    encode_unit(&unit(2, vec![put(2, "/queue/a", "b")]), &mut first);
    first[cut + 10] ^= 4;
    encode_unit(&unit(3, vec![put(3, "/queue/a", "c")]), &mut first);
    let second = segment(&[unit(4, vec![put(4, "/queue/a", "d")])]);
    let r = recover_from_segments(&[&first, &second]);
    assert_eq!(ids(&r), vec![("/queue/a".to_owned(), vec![1, 4])]);
    assert_eq!(r.skipped.len(), 1);
    assert_eq!(r.skipped[0].offset, cut as u64);
    assert_eq!(r.skipped[0].bytes, (first.len() - cut) as u64);
}

#[test]
fn unknown_magic_or_version_is_not_read() {
    let good = segment(&[unit(1, vec![put(1, "/queue/a", "a")])]);
    let mut magic = good.clone();
    magic[0] = b'X';
    let mut version = good.clone();
    version[codec::MAGIC.len()] = codec::VERSION + 1;
    for bad in [magic, version, b"garbage".to_vec()] {
        let r = recover_from_segments(&[&bad, &good]);
        assert_eq!(r.skipped.len(), 1);
        assert_eq!(r.skipped[0].reason, "unknown segment format");
        assert_eq!(r.skipped[0].offset, 0);
        assert_eq!(r.skipped[0].segment, PathBuf::from("segment-0"));
        assert_eq!(ids(&r), vec![("/queue/a".to_owned(), vec![1])]);
    }
}

#[test]
fn torn_header_holds_nothing() {
    let header = codec::header();
    let r = recover_from_segments(&[&[], &header[..5]]);
    assert_eq!(r.skipped.len(), 1, "{:?}", r.skipped);
    assert_eq!(r.skipped[0].reason, "truncated record");
    let r = recover_from_segments(&[&header]);
    assert!(r.skipped.is_empty());
    assert!(r.queues.is_empty());
}
