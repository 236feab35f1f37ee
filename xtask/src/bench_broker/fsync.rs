//! The machine's fsync latency: how long writing 4 KiB to the end of a file and
//! `fdatasync` take, timed `samples` times in a given directory (the file system
//! the brokers keep their data on). A persistent message's RECEIPT cannot come
//! sooner than one of these, so the durable table shows it and bounds its
//! RECEIPT latency target by it.

use super::table::Fsync;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Bytes per write.
const BLOCK: usize = 4096;

/// Times `samples` appends of 4 KiB, each followed by `fdatasync`, in a
/// scratch file in `dir` (removed afterwards).
pub fn measure(dir: &Path, samples: usize) -> Result<Fsync> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("bench-broker-fsync-{}.tmp", std::process::id()));
    let result = time_writes(&path, samples.max(1));
    let _ = std::fs::remove_file(&path);
    let mut times = result.with_context(|| format!("timing fdatasync in {}", path.display()))?;
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    Ok(Fsync {
        p50_us: us(percentile(&times, 0.50)),
        p99_us: us(percentile(&times, 0.99)),
        samples: times.len(),
        place: format!("{} file system", file_system(dir)),
    })
}

fn time_writes(path: &Path, samples: usize) -> Result<Vec<Duration>> {
    let mut file = std::fs::File::create(path)?;
    let block = vec![b'x'; BLOCK];
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        times.push(start.elapsed());
    }
    Ok(times)
}

/// The value at quantile `q` of sorted `values` (nearest rank).
fn percentile(values: &[Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// The type of the file system holding `dir` (`ext4`), from `/proc/self/mounts`:
/// the longest mount point that contains it.
fn file_system(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            dir.starts_with(point)
                .then(|| (point.len(), kind.to_string()))
        })
        .max()
        .map_or_else(|| "an unknown".into(), |(_, kind)| kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&values, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&values[..1], 0.99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn a_few_fsyncs_are_timed_and_the_file_removed() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("xtask-fsync-{}", std::process::id()));
        let fsync = measure(&dir, 5)?;
        assert_eq!(fsync.samples, 5);
        assert!(fsync.p50_us > 0.0 && fsync.p99_us >= fsync.p50_us);
        assert!(fsync.place.ends_with(" file system"), "{}", fsync.place);
        assert_eq!(std::fs::read_dir(&dir)?.count(), 0);
        std::fs::remove_dir(&dir)?;
        Ok(())
    }
}
