//! The published Rust STOMP parsers against stompkit on the same workloads, in
//! one run so the ratios are comparable. See `src/lib.rs` for what each peer is
//! handed. Each peer is checked once per workload before measuring; one that
//! fails is left out of that workload and the reason is printed and written to
//! `$CRITERION_HOME/peer-status.tsv` (read by `cargo xtask bench --peers`).

#![allow(clippy::unwrap_used, missing_docs)]

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::fmt::Write as _;
use std::hint::black_box;
use stompkit_benches::{reference_scan, workloads};
use stompkit_peer_benches::{Parse, peers, split_frames};

fn compare(c: &mut Criterion) {
    let mut status = String::new();
    for w in workloads::all() {
        let bytes = &w.bytes[..];
        let mut group = c.benchmark_group(w.name);
        group.throughput(Throughput::ElementsAndBytes {
            elements: w.frames as u64,
            bytes: bytes.len() as u64,
        });
        group.bench_function("memchr_reference", |b| {
            b.iter(|| reference_scan(black_box(bytes)))
        });
        for peer in peers() {
            if let Err(reason) = peer.check(bytes, w.frames) {
                let reason = reason.replace(['\n', '\t'], " ");
                let reason: String = reason.chars().take(200).collect();
                eprintln!(
                    "peer {} cannot parse workload {}: {reason}",
                    peer.name, w.name
                );
                writeln!(status, "{}\t{}\t{reason}", w.name, peer.name).unwrap();
                continue;
            }
            writeln!(status, "{}\t{}\tok", w.name, peer.name).unwrap();
            match peer.parse {
                Parse::Buffer(f) => group.bench_function(peer.name, |b| {
                    b.iter_batched_ref(
                        || BytesMut::from(bytes),
                        |buf| f(buf).unwrap(),
                        BatchSize::LargeInput,
                    )
                }),
                Parse::Slice(f) => {
                    group.bench_function(peer.name, |b| b.iter(|| f(black_box(bytes)).unwrap()))
                }
                Parse::Split(f) => group.bench_function(peer.name, |b| {
                    b.iter_batched_ref(
                        || split_frames(bytes),
                        |frames| f(frames).unwrap(),
                        BatchSize::LargeInput,
                    )
                }),
            };
        }
        group.finish();
    }
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        let path = std::path::Path::new(&home).join("peer-status.tsv");
        let _ = std::fs::create_dir_all(&home);
        std::fs::write(&path, status).unwrap();
    }
}

criterion_group!(benches, compare);
criterion_main!(benches);
