//! Parses one workload a number of times, for instruction counts under
//! `valgrind --tool=callgrind` (deterministic, unlike timings on a busy machine):
//!
//! ```text
//! cargo build --release -p stompkit-benches --example parse_loop
//! valgrind --tool=callgrind --toggle-collect='stompkit_benches::stompkit_parse' \
//!     target/release/examples/parse_loop small 10
//! ```
//!
//! Instructions per frame = total / (rounds × frames of the workload). With
//! `--time` it instead times each round and prints the fastest and the median
//! ns/frame: on a shared machine the fastest round is the one least disturbed.

#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use std::time::Instant;
use stompkit_benches::{stompkit_parse, workloads};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let time = args.iter().any(|a| a == "--time");
    let mut args = args.into_iter().filter(|a| a != "--time");
    let name = args.next().unwrap_or_else(|| "small".into());
    let rounds: usize = args.next().map_or(10, |n| n.parse().unwrap());
    let w = workloads::all()
        .into_iter()
        .find(|w| w.name == name)
        .unwrap_or_else(|| panic!("no workload {name}"));
    let mut times = Vec::with_capacity(rounds);
    let mut frames = 0;
    for _ in 0..rounds {
        // Copied just before parsing, as criterion's batched setup does (warm caches).
        let mut buf = BytesMut::from(&w.bytes[..]);
        let start = Instant::now();
        frames += stompkit_parse(&mut buf).unwrap();
        times.push(start.elapsed().as_nanos() as f64 / w.frames as f64);
    }
    assert_eq!(frames, rounds * w.frames);
    if time {
        times.sort_by(f64::total_cmp);
        println!(
            "{name}: fastest {:.1} ns/frame, median {:.1} ns/frame ({rounds} rounds of {} frames)",
            times[0],
            times[rounds / 2],
            w.frames
        );
    } else {
        println!("{name}: {frames} frames");
    }
}
