//! The process's own figures for `/metrics`: resident memory, open file
//! descriptors and their limit.
//!
//! Owns reading them, on Linux from `/proc/self` (`status`'s `VmRSS`, the
//! entries of `fd`) and `RLIMIT_NOFILE`; on other systems, and for any figure
//! that cannot be read, the figure is left out rather than made up.

/// What could be read of the process now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sample {
    /// Resident memory, in bytes.
    pub(crate) resident_bytes: Option<u64>,
    /// Open file descriptors.
    pub(crate) open_fds: Option<u64>,
    /// The soft limit on open file descriptors.
    pub(crate) max_fds: Option<u64>,
}

/// Reads the process's figures now.
#[cfg(target_os = "linux")]
pub(crate) fn sample() -> Sample {
    let resident_bytes = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| resident_bytes(&status));
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|entries| entries.count() as u64);
    let max_fds = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _)| soft);
    Sample {
        resident_bytes,
        open_fds,
        max_fds,
    }
}

/// Reads the process's figures now (none outside Linux).
#[cfg(not(target_os = "linux"))]
pub(crate) fn sample() -> Sample {
    Sample::default()
}

/// The `VmRSS:` line of `/proc/self/status` (`VmRSS:   12345 kB`), in bytes.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut words = line.split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next()? {
        "kB" => value.checked_mul(1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read_from_the_vmrss_line() {
        let status =
            "Name:\tstompkit-broker\nVmPeak:\t  9000 kB\nVmRSS:\t    2048 kB\nThreads:\t4\n";
        assert_eq!(resident_bytes(status), Some(2048 * 1024));
        assert_eq!(resident_bytes("Name:\tx\n"), None);
        assert_eq!(resident_bytes("VmRSS:\tlots kB\n"), None);
        assert_eq!(resident_bytes("VmRSS:\t12 MB\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_memory_and_open_files() {
        let s = sample();
        assert!(s.resident_bytes.unwrap() > 1024 * 1024, "{s:?}");
        // At least stdin, stdout, stderr.
        assert!(s.open_fds.unwrap() >= 3, "{s:?}");
        assert!(s.max_fds.unwrap() >= s.open_fds.unwrap(), "{s:?}");
    }
}
