//! Injected failures for the writer's tests: a segment file that fails its
//! next writes (after writing half the buffer, as a full disk does) or its
//! truncation.

use super::writer::LogFile;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// What to fail.
#[derive(Debug, Default)]
pub(super) struct Faults {
    /// How many of the next writes fail.
    pub fail_writes: AtomicU32,
    /// Whether truncation fails.
    pub fail_truncate: AtomicBool,
    /// How many times live records were copied forward (watched, not injected).
    pub copies: AtomicU32,
}

/// A segment file that fails as [`Faults`] says.
pub(super) struct Faulty {
    file: File,
    faults: Arc<Faults>,
}

impl Faulty {
    pub fn new(file: File, faults: Arc<Faults>) -> Faulty {
        Faulty { file, faults }
    }
}

impl LogFile for Faulty {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let fail = self
            .faults
            .fail_writes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            Write::write_all(&mut self.file, &buf[..buf.len() / 2])?;
            return Err(io::Error::other("injected write failure"));
        }
        Write::write_all(&mut self.file, buf)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        if self.faults.fail_truncate.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected truncate failure"));
        }
        self.file.set_len(len)
    }
    fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(pos)).map(|_| ())
    }
}
