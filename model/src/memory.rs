//! How much memory the checker uses and may use.
//!
//! The exhaustive search keeps every state it has seen, so a configuration too large for the
//! machine would otherwise run until the kernel's out-of-memory killer ends it with no verdict
//! at all. The checker instead reads its own resident set size while it runs and stops cleanly
//! before it reaches a budget ([`Budget`]); `check` then reports what it settled so far.

use bytesize::ByteSize;
use std::fmt;

/// The resident set size of this process, in bytes (Linux: `/proc/self/statm`). `None` where
/// it cannot be read; a budget is then not enforced.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions; it returns -1 on error.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

/// The machine's physical memory (`MemTotal` of `/proc/meminfo`), if known.
pub fn machine_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A memory budget for one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Budget {
    pub bytes: u64,
}

impl Budget {
    /// The default: half the machine's memory (8 GiB where that cannot be read).
    pub fn default_for_machine() -> Budget {
        Budget {
            bytes: machine_bytes().map_or(8 << 30, |m| m / 2),
        }
    }

    /// Parses a size such as `1GiB`, `512 MiB`, `2G` or a plain byte count.
    pub fn parse(text: &str) -> Result<Budget, String> {
        let size: ByteSize = text
            .trim()
            .parse()
            .map_err(|e| format!("not a size (like 4GiB or 512MiB): {e}"))?;
        if size.as_u64() < 64 << 20 {
            return Err(format!(
                "{} is too small: at least 64 MiB",
                Budget::show(size.as_u64())
            ));
        }
        Ok(Budget {
            bytes: size.as_u64(),
        })
    }

    /// The resident size at which a search stops: the budget less a margin for what the
    /// search still allocates while it winds down and reports.
    pub fn stop_at(&self) -> u64 {
        self.bytes - self.bytes / 8
    }

    /// Whether the process is now over [`Budget::stop_at`].
    pub fn exceeded(&self) -> Option<u64> {
        resident_bytes().filter(|&rss| rss >= self.stop_at())
    }

    /// Bytes in IEC units (`1.5 GiB`).
    pub fn show(bytes: u64) -> String {
        ByteSize(bytes).display().iec().to_string()
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&Budget::show(self.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_iec_and_si_units() {
        assert_eq!(Budget::parse("1GiB").unwrap().bytes, 1 << 30);
        assert_eq!(Budget::parse("512 MiB").unwrap().bytes, 512 << 20);
        assert_eq!(Budget::parse("2GB").unwrap().bytes, 2_000_000_000);
        assert!(Budget::parse("lots").is_err());
        assert!(Budget::parse("1KiB").unwrap_err().contains("too small"));
    }

    #[test]
    fn this_process_has_a_resident_size() {
        let rss = resident_bytes().expect("Linux /proc");
        assert!(rss > 1 << 20 && rss < machine_bytes().unwrap());
    }
}
