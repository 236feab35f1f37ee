//! The directory lock and the directory layout.

use super::*;

#[test]
fn open_creates_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/data");
    let (store, r, _rx) = Store::open(&dir, StoreOptions::default()).unwrap();
    assert!(dir.join("lock").is_file());
    assert!(dir.join("log").is_dir());
    assert!(r.queues.is_empty() && r.skipped.is_empty());
    // A fresh segment with a header and checkpoint, named by 16 hex digits.
    let files = segment_files(&dir);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "0000000000000001.seg");
    drop(store);
}

#[test]
fn a_second_open_is_refused_until_the_first_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _, _rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    match Store::open(tmp.path(), StoreOptions::default()) {
        Err(StoreError::Locked(dir)) => assert_eq!(dir, tmp.path()),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened twice"),
    }
    let message = StoreError::Locked(tmp.path().to_path_buf()).to_string();
    assert!(message.contains("in use by another broker"), "{message}");
    drop(store);
    let (again, _, _rx) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    drop(again);
}

#[test]
fn an_unusable_directory_is_an_io_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    match Store::open(&file, StoreOptions::default()) {
        Err(StoreError::Io { path, .. }) => assert!(path.starts_with(&file)),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a file as a directory"),
    }
}

#[test]
fn a_store_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Store>();
}
