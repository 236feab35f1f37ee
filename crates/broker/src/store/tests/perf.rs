//! Measurements, ignored by default. Run them in release:
//! `cargo test --release -p stompkit-broker --lib store::tests::perf -- --ignored --nocapture --test-threads 1`

use super::*;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};

fn perf_message(id: u64, body: &Bytes) -> StoredMessage {
    let mut headers = Headers::with_capacity(4);
    headers.push("destination", "/queue/perf");
    headers.push("message-id", &id.to_string());
    headers.push("persistent", "true");
    headers.push("content-type", "application/octet-stream");
    StoredMessage {
        id,
        queue: "/queue/perf".to_owned(),
        headers,
        body: body.clone(),
        expires: 0,
        deliveries: 0,
    }
}

/// Writes `count` Puts of `body_len`-byte bodies as 64 MiB segment files.
fn write_segments(log: &Path, count: u64, body_len: usize) {
    std::fs::create_dir_all(log).unwrap();
    let body = Bytes::from(vec![b'x'; body_len]);
    let mut number = 1;
    let mut out = super::super::codec::header().to_vec();
    for id in 1..=count {
        encode_unit(&unit(id, vec![Op::Put(perf_message(id, &body))]), &mut out);
        if out.len() >= 64 << 20 || id == count {
            let path = log.join(format!("{number:016x}.seg"));
            std::fs::write(path, &out).unwrap();
            number += 1;
            out = super::super::codec::header().to_vec();
        }
    }
}

/// CPU time of this process so far (user + system), from `/proc/self/stat`
/// (Linux; in clock ticks of 10 ms).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Recovery of 1,000,000 Puts of 1 KiB bodies. `STOMPKIT_STORE_PERF_DIR`
/// keeps the data between runs (written once).
#[test]
#[ignore = "measurement: run in release"]
fn recovery_of_a_million_1k_puts() {
    const COUNT: u64 = 1_000_000;
    let tmp = tempfile::tempdir().unwrap();
    let dir =
        std::env::var_os("STOMPKIT_STORE_PERF_DIR").map_or(tmp.path().to_path_buf(), PathBuf::from);
    if !dir.join("log").exists() {
        let started = Instant::now();
        write_segments(&dir.join("log"), COUNT, 1024);
        println!("wrote {COUNT} puts in {:?}", started.elapsed());
    }
    let bytes: u64 = segment_files(&dir).iter().map(|f| f.1).sum();
    println!(
        "{} MiB in {} segments",
        bytes >> 20,
        segment_files(&dir).len()
    );
    let cold = std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok();
    for run in [if cold { "cold cache" } else { "warm cache" }, "warm cache"] {
        let (started, cpu) = (Instant::now(), cpu_time());
        let (store, r, _rx) = Store::open(&dir, StoreOptions::default()).unwrap();
        let elapsed = started.elapsed();
        let cpu = cpu_time().zip(cpu).map(|(after, before)| after - before);
        assert_eq!(r.queues.len(), 1);
        assert_eq!(r.queues[0].1.len(), COUNT as usize);
        assert_eq!(r.max_id, COUNT);
        println!("recovered {COUNT} x 1 KiB puts ({run}): open took {elapsed:?} (CPU {cpu:?})");
        let started = Instant::now();
        drop((store, r));
        println!(
            "  (dropping the store and the recovered state: {:?})",
            started.elapsed()
        );
    }
    // Each open started a segment; keep the kept data as it was.
    for (name, len) in segment_files(&dir) {
        if len < 100 {
            std::fs::remove_file(dir.join("log").join(name)).unwrap();
        }
    }
}

/// The highest durable seq, for publishers to wait on.
#[derive(Default)]
struct Durable {
    seq: Mutex<u64>,
    moved: Condvar,
}

impl Durable {
    fn wait_for(&self, seq: u64) {
        let mut durable = self.seq.lock().unwrap();
        while *durable < seq {
            durable = self.moved.wait(durable).unwrap();
        }
    }
}

/// `threads` publishers, each with up to `window` units in flight, for `run`.
/// Returns units per second and units per write (batch).
fn group_commit(threads: usize, window: u64, run: Duration) -> (f64, f64) {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _, mut rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    let store = Arc::new(store);
    let durable = Arc::new(Durable::default());
    let next_seq = Arc::new(Mutex::new(0u64));
    let watcher = {
        let durable = durable.clone();
        std::thread::spawn(move || {
            let mut batches = 0u64;
            while let Some(c) = rx.blocking_recv() {
                let Completion::Durable(seq) = c else {
                    panic!("{c:?}");
                };
                batches += 1;
                *durable.seq.lock().unwrap() = seq;
                durable.moved.notify_all();
            }
            batches
        })
    };
    let body = Bytes::from(vec![b'x'; 1024]);
    let started = Instant::now();
    let publishers: Vec<_> = (0..threads)
        .map(|_| {
            let (store, durable, next_seq, body) = (
                store.clone(),
                durable.clone(),
                next_seq.clone(),
                body.clone(),
            );
            std::thread::spawn(move || {
                let mut mine = std::collections::VecDeque::new();
                let mut sent = 0u64;
                while started.elapsed() < run {
                    if mine.len() as u64 >= window {
                        durable.wait_for(mine.pop_front().unwrap());
                    }
                    let mut seq = next_seq.lock().unwrap();
                    *seq += 1;
                    store.submit(vec![unit(*seq, vec![Op::Put(perf_message(*seq, &body))])]);
                    mine.push_back(*seq);
                    sent += 1;
                }
                if let Some(last) = mine.pop_back() {
                    durable.wait_for(last);
                }
                sent
            })
        })
        .collect();
    let sent: u64 = publishers.into_iter().map(|p| p.join().unwrap()).sum();
    let elapsed = started.elapsed();
    drop(Arc::into_inner(store).unwrap());
    let batches = watcher.join().unwrap();
    (
        sent as f64 / elapsed.as_secs_f64(),
        sent as f64 / batches as f64,
    )
}

#[test]
#[ignore = "measurement: run in release"]
fn group_commit_throughput() {
    let run = Duration::from_secs(3);
    for window in [1, 16, 256] {
        let (rate, batch) = group_commit(4, window, run);
        println!(
            "4 publishers, {window} unit(s) in flight each, 1 KiB puts: {rate:.0} units/s, \
             {batch:.1} units per write+fdatasync"
        );
    }
}

#[test]
#[ignore = "measurement: run in release"]
fn fsync_latency() {
    let tmp = tempfile::tempdir().unwrap();
    let mut file = std::fs::File::create(tmp.path().join("f")).unwrap();
    let block = vec![b'x'; 1024];
    let mut samples: Vec<Duration> = (0..2000)
        .map(|_| {
            file.write_all(&block).unwrap();
            let started = Instant::now();
            file.sync_data().unwrap();
            started.elapsed()
        })
        .collect();
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "fdatasync after a 1 KiB append: p50 {:?}, p99 {:?}, max {:?}",
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
