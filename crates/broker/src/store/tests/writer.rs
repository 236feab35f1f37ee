//! The writer: group commit, completions, failures, segments, and what a
//! reopen finds.

use super::super::writer::{LogFile, roll_back, write_synced};
use super::*;
use std::io;
use std::sync::atomic::Ordering;

fn puts(seqs: std::ops::RangeInclusive<u64>) -> Vec<Unit> {
    seqs.map(|s| unit(s, vec![put(s, "/queue/a", &format!("m{s}"))]))
        .collect()
}

#[test]
fn submitted_units_become_durable_in_order_and_survive_a_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _, mut rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    for s in 1..=100 {
        store.submit(puts(s..=s));
    }
    store.submit(vec![]);
    let seen = settle(&mut rx, 100);
    let mut last = 0;
    for c in &seen {
        let Completion::Durable(s) = c else {
            panic!("{c:?}");
        };
        assert!(*s > last, "{seen:?}");
        last = *s;
    }
    drop(store);
    let (_store, r, _rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    assert_eq!(ids(&r), vec![("/queue/a".to_owned(), (1..=100).collect())]);
    assert_eq!(r.queues[0].1[41], msg(42, "/queue/a", "m42"));
    assert_eq!(r.max_id, 100);
}

#[test]
fn drop_writes_everything_submitted() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _, mut rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    for s in 1..=500 {
        store.submit(puts(s..=s));
    }
    drop(store);
    let mut last = 0;
    while let Ok(c) = rx.try_recv() {
        let Completion::Durable(s) = c else {
            panic!("{c:?}");
        };
        last = s;
    }
    assert_eq!(last, 500);
    let (_store, r, _rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    assert_eq!(r.queues[0].1.len(), 500);
}

#[test]
fn new_appends_go_to_a_new_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _, mut rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    store.submit(puts(1..=3));
    settle(&mut rx, 3);
    drop(store);
    let before = segment_files(tmp.path());
    let (store, _, mut rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    store.submit(puts(4..=4));
    settle(&mut rx, 4);
    let after = segment_files(tmp.path());
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[0], before[0], "the old segment is not appended to");
    drop(store);
    let (_store, r, _rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    assert_eq!(ids(&r), vec![("/queue/a".to_owned(), vec![1, 2, 3, 4])]);
}

#[test]
fn segments_rotate_past_their_size() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _, mut rx) = open_small(tmp.path(), 1024);
    for s in 1..=40 {
        store.submit(vec![unit(s, vec![put(s, "/queue/a", &"b".repeat(200))])]);
        settle(&mut rx, s);
    }
    let files = segment_files(tmp.path());
    assert!(files.len() >= 8, "{files:?}");
    assert!(files.iter().all(|(_, len)| *len <= 1024 + 300), "{files:?}");
    drop(store);
    let (_store, r, _rx) = open_small(tmp.path(), 1024);
    assert_eq!(r.queues[0].1.len(), 40);
    assert!(r.skipped.is_empty());
}

#[test]
fn a_failed_write_is_reported_cut_back_and_later_units_go_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _, mut rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    store.submit(puts(1..=2));
    assert_eq!(settle(&mut rx, 2), vec![Completion::Durable(2)]);
    let size = segment_files(tmp.path())[0].1;
    store.faults.fail_writes.store(1, Ordering::SeqCst);
    store.submit(puts(3..=5));
    let failed = settle(&mut rx, 5);
    let [
        Completion::Failed {
            first: 3,
            last: 5,
            error,
        },
    ] = &failed[..]
    else {
        panic!("{failed:?}");
    };
    assert!(error.contains("injected write failure"), "{error}");
    assert_eq!(segment_files(tmp.path())[0].1, size, "cut back");
    store.submit(puts(6..=7));
    assert_eq!(settle(&mut rx, 7), vec![Completion::Durable(7)]);
    drop(store);
    let (_store, r, _rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    assert_eq!(ids(&r), vec![("/queue/a".to_owned(), vec![1, 2, 6, 7])]);
}

#[test]
fn when_the_cut_fails_too_a_new_segment_is_started() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _, mut rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    store.submit(puts(1..=1));
    settle(&mut rx, 1);
    store.faults.fail_writes.store(1, Ordering::SeqCst);
    store.faults.fail_truncate.store(true, Ordering::SeqCst);
    store.submit(puts(2..=2));
    assert!(matches!(
        settle(&mut rx, 2)[..],
        [Completion::Failed {
            first: 2,
            last: 2,
            ..
        }]
    ));
    store.faults.fail_truncate.store(false, Ordering::SeqCst);
    store.submit(puts(3..=3));
    assert_eq!(settle(&mut rx, 3), vec![Completion::Durable(3)]);
    assert_eq!(segment_files(tmp.path()).len(), 2);
    drop(store);
    // The half-written record is skipped (and cut) once.
    let (store, r, _rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    assert_eq!(r.skipped.len(), 1, "{:?}", r.skipped);
    assert_eq!(r.skipped[0].reason, "truncated record");
    assert!(r.skipped[0].segment.ends_with("log/0000000000000001.seg"));
    assert_eq!(ids(&r), vec![("/queue/a".to_owned(), vec![1, 3])]);
    drop(store);
    let (_store, r, _rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    assert_eq!(ids(&r), vec![("/queue/a".to_owned(), vec![1, 3])]);
}

#[test]
fn a_corrupt_tail_is_reported_once_and_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _, mut rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    store.submit(puts(1..=3));
    settle(&mut rx, 3);
    drop(store);
    let path = tmp.path().join("log/0000000000000001.seg");
    let mut data = std::fs::read(&path).unwrap();
    let good = data.len();
    data.extend_from_slice(b"\x10\0\0\0garbage");
    std::fs::write(&path, &data).unwrap();
    let (store, r, _rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    assert_eq!(r.skipped.len(), 1);
    assert_eq!(r.skipped[0].offset, good as u64);
    assert_eq!(r.skipped[0].bytes, 11);
    assert_eq!(r.skipped[0].segment, path);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good as u64);
    drop(store);
    let (_store, r, _rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    assert!(r.skipped.is_empty());
    assert_eq!(r.queues[0].1.len(), 3);
}

#[test]
fn a_torn_segment_is_removed_and_an_unknown_one_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    std::fs::create_dir_all(&log).unwrap();
    std::fs::write(log.join("0000000000000007.seg"), b"STOMPK").unwrap();
    std::fs::write(log.join("notes.txt"), b"left alone").unwrap();
    let (store, r, _rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    assert_eq!(r.skipped.len(), 1);
    drop(store);
    let names: Vec<String> = segment_files(tmp.path()).into_iter().map(|f| f.0).collect();
    assert_eq!(names, ["0000000000000008.seg", "notes.txt"]);
    std::fs::write(log.join("0000000000000009.seg"), b"OTHER-FORMAT-LOG").unwrap();
    match Store::open(tmp.path(), StoreOptions::default()) {
        Err(StoreError::Io { path, source }) => {
            assert_eq!(path, log.join("0000000000000009.seg"));
            assert_eq!(source.kind(), io::ErrorKind::InvalidData);
            assert!(source.to_string().contains("unknown magic"), "{source}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened an unknown format"),
    }
}

/// A segment file in memory that fails as told.
#[derive(Default)]
struct FakeFile {
    data: Vec<u8>,
    pos: usize,
    fail_write_after: Option<usize>,
    fail_sync: bool,
    fail_set_len: bool,
}

impl LogFile for FakeFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let n = self
            .fail_write_after
            .map_or(buf.len(), |n| n.min(buf.len()));
        self.data.truncate(self.pos);
        self.data.extend_from_slice(&buf[..n]);
        self.pos += n;
        if n < buf.len() {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left"));
        }
        Ok(())
    }
    fn sync_data(&mut self) -> io::Result<()> {
        if self.fail_sync {
            return Err(io::Error::other("EIO"));
        }
        Ok(())
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        if self.fail_set_len {
            return Err(io::Error::other("cannot truncate"));
        }
        self.data.resize(len as usize, 0);
        Ok(())
    }
    fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        self.pos = pos as usize;
        Ok(())
    }
}

#[test]
fn roll_back_restores_the_length_and_position() {
    let mut f = FakeFile::default();
    write_synced(&mut f, b"header").unwrap();
    f.fail_write_after = Some(3);
    assert!(write_synced(&mut f, b"batch-1").is_err());
    assert_eq!(f.data, b"headerbat");
    roll_back(&mut f, 6).unwrap();
    f.fail_write_after = None;
    f.fail_sync = true;
    assert!(write_synced(&mut f, b"batch-2").is_err());
    roll_back(&mut f, 6).expect_err("sync still fails");
    f.fail_sync = false;
    roll_back(&mut f, 6).unwrap();
    write_synced(&mut f, b"batch-3").unwrap();
    assert_eq!(f.data, b"headerbatch-3");
    f.fail_set_len = true;
    assert!(roll_back(&mut f, 6).is_err());
}

#[test]
fn a_segment_that_cannot_be_started_fails_its_batch_and_the_store_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _, mut rx) = open_small(tmp.path(), 256);
    store.submit(vec![unit(1, vec![put(1, "/queue/a", &"x".repeat(300))])]);
    assert_eq!(settle(&mut rx, 1), vec![Completion::Durable(1)]);
    // The next batch needs a new segment, in a directory that is gone.
    let log = tmp.path().join("log");
    let away = tmp.path().join("away");
    std::fs::rename(&log, &away).unwrap();
    store.submit(puts(2..=2));
    let failed = settle(&mut rx, 2);
    let [
        Completion::Failed {
            first: 2,
            last: 2,
            error,
        },
    ] = &failed[..]
    else {
        panic!("{failed:?}");
    };
    assert!(error.contains("cannot start a log segment"), "{error}");
    std::fs::rename(&away, &log).unwrap();
    store.submit(puts(3..=3));
    assert_eq!(settle(&mut rx, 3), vec![Completion::Durable(3)]);
    drop(store);
    let (_store, r, _rx) = open_small(tmp.path(), 256);
    assert!(r.skipped.is_empty());
    assert_eq!(ids(&r), vec![("/queue/a".to_owned(), vec![1, 3])]);
}
