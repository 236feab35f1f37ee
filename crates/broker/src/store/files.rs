//! The data directory: its lock and its segment files.

use super::StoreError;
use super::codec::{self, HeaderCheck};
use super::recovery::{self, Decoded, Segment};
use super::writer::segment_path;
use bytes::Bytes;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::thread;

/// The lock file's name in the data directory.
const LOCK: &str = "lock";
/// The log directory's name in the data directory.
pub(super) const LOG: &str = "log";

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` and its log directory if missing and locks it (`flock`,
/// released when the returned file is closed, by drop or by process death).
pub(super) fn lock(dir: &Path) -> Result<File, StoreError> {
    let log = dir.join(LOG);
    fs::create_dir_all(&log).map_err(io_error(&log))?;
    let path = dir.join(LOCK);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_error(&path))?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => Ok(file),
        Err(fs4::TryLockError::WouldBlock) => Err(StoreError::Locked(dir.to_path_buf())),
        Err(fs4::TryLockError::Error(e)) => Err(io_error(&path)(e)),
    }
}

/// The segment files of `log`, in write order, read whole and decoded, each
/// handed to `each` while the next one is being read and decoded. Other files
/// are left alone; a segment of an unknown format is an error.
pub(super) fn load(
    log: &Path,
    mut each: impl FnMut(&Segment, Decoded),
) -> Result<Vec<Segment>, StoreError> {
    let numbers = list(log)?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::scope(|scope| {
        thread::Builder::new()
            .name("stompkit-store-read".to_owned())
            .spawn_scoped(scope, move || {
                for number in numbers {
                    let seg = read_segment(log, number).map(|seg| {
                        let decoded = recovery::decode(&seg);
                        (seg, decoded)
                    });
                    let failed = seg.is_err();
                    if tx.send(seg).is_err() || failed {
                        break;
                    }
                }
            })
            .map_err(io_error(log))?;
        let mut segments = Vec::new();
        for read in rx.iter() {
            let (seg, decoded) = read?;
            each(&seg, decoded);
            segments.push(seg);
        }
        Ok(segments)
    })
}

/// The numbers of the segment files in `log`, in write order.
fn list(log: &Path) -> Result<Vec<u64>, StoreError> {
    let mut numbers = Vec::new();
    for entry in fs::read_dir(log).map_err(io_error(log))? {
        let entry = entry.map_err(io_error(log))?;
        let name = entry.file_name();
        match name.to_str().and_then(segment_number) {
            Some(number) => numbers.push(number),
            None => {
                tracing::warn!(file = %entry.path().display(), "store: not a log segment; ignored")
            }
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

fn read_segment(log: &Path, number: u64) -> Result<Segment, StoreError> {
    let path = segment_path(log, number);
    let data = fs::read(&path).map_err(io_error(&path))?;
    if codec::check_header(&data) == HeaderCheck::Unknown {
        let error = io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "not a log segment of this broker (unknown magic or format version; \
                 this broker reads version {})",
                codec::VERSION
            ),
        );
        return Err(io_error(&path)(error));
    }
    Ok(Segment {
        number,
        name: path,
        data: Bytes::from(data),
    })
}

/// The number of a segment file name (`<16 hex digits>.seg`).
fn segment_number(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".seg")?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Cuts each segment to its valid length (`valid`, by segment), so a bad
/// stretch is reported once; a segment with nothing valid is deleted.
/// Returns the paths deleted.
pub(super) fn cut(segments: &[Segment], valid: &[u64]) -> Result<Vec<PathBuf>, StoreError> {
    let mut deleted = Vec::new();
    for (seg, &len) in segments.iter().zip(valid) {
        if len == seg.data.len() as u64 && len > 0 {
            continue;
        }
        if len == 0 {
            fs::remove_file(&seg.name).map_err(io_error(&seg.name))?;
            deleted.push(seg.name.clone());
            continue;
        }
        let file = OpenOptions::new()
            .write(true)
            .open(&seg.name)
            .map_err(io_error(&seg.name))?;
        file.set_len(len)
            .and_then(|()| file.sync_data())
            .map_err(io_error(&seg.name))?;
    }
    Ok(deleted)
}
