//! Parse and encode throughput of `stompkit-wire` on the three workloads, beside
//! the physical reference (a memchr scan for NUL and LF over the same bytes) and a
//! memcpy of the same bytes.
//!
//! Targets (checked by `cargo xtask bench`): small frames ≥ 13M frames/s
//! (< 77 ns/frame); chat ≥ 5x the fastest peer parser; bulk parse within 2x of
//! memcpy; encoding a 3-header SEND ≥ 20M frames/s.

#![allow(clippy::unwrap_used, missing_docs)]

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use stompkit_benches::{
    encode_all, encoder, frames_of, reference_scan, send_frame, stompkit_parse, stompkit_push,
    workloads,
};

fn workloads(c: &mut Criterion) {
    for w in workloads::all() {
        let bytes = &w.bytes[..];
        // Check once, before measuring, that each path really sees every frame.
        assert_eq!(
            stompkit_parse(&mut BytesMut::from(bytes)).unwrap(),
            w.frames,
            "{}",
            w.name
        );
        assert_eq!(stompkit_push(bytes).unwrap(), w.frames, "{}", w.name);
        let frames = frames_of(bytes).unwrap();
        assert_eq!(frames.len(), w.frames);
        let encoder = encoder();
        let mut out = BytesMut::with_capacity(bytes.len());
        encode_all(&encoder, &frames, &mut out).unwrap();
        assert_eq!(
            out.len(),
            bytes.len(),
            "{}: encoding must give back the same bytes",
            w.name
        );

        let mut group = c.benchmark_group(w.name);
        group.throughput(Throughput::ElementsAndBytes {
            elements: w.frames as u64,
            bytes: bytes.len() as u64,
        });
        group.bench_function("stompkit_parse", |b| {
            b.iter_batched_ref(
                || BytesMut::from(bytes),
                |buf| stompkit_parse(buf).unwrap(),
                BatchSize::LargeInput,
            )
        });
        group.bench_function("stompkit_push", |b| {
            b.iter(|| stompkit_push(black_box(bytes)).unwrap())
        });
        group.bench_function("stompkit_encode", |b| {
            b.iter(|| {
                out.clear();
                encode_all(&encoder, black_box(&frames), &mut out).unwrap();
                black_box(out.len())
            })
        });
        group.bench_function("memchr_reference", |b| {
            b.iter(|| reference_scan(black_box(bytes)))
        });
        let mut copy = vec![0u8; bytes.len()];
        group.bench_function("memcpy", |b| {
            b.iter(|| {
                copy.copy_from_slice(black_box(bytes));
                black_box(copy.as_ptr());
            })
        });
        group.finish();
    }
}

fn send(c: &mut Criterion) {
    let frame = send_frame();
    let encoder = encoder();
    let mut out = BytesMut::with_capacity(256);
    encoder.encode(&frame, &mut out).unwrap();
    let len = out.len();
    let mut group = c.benchmark_group("send");
    group.throughput(Throughput::ElementsAndBytes {
        elements: 1,
        bytes: len as u64,
    });
    group.bench_function("stompkit_encode", |b| {
        b.iter(|| {
            out.clear();
            encoder.encode(black_box(&frame), &mut out).unwrap();
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, workloads, send);
criterion_main!(benches);
