//! Usage numbers of a container's cgroup: what `runc events --stats` and
//! `docker stats` show, the same shape on v1 and v2.
//!
//! A section is `None` when the host has no controller for it; a file that
//! should be there but is not, or does not parse, is an error.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::CgroupError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub cpu: Option<CpuStats>,
    pub memory: Option<MemoryStats>,
    pub pids: Option<PidsStats>,
    pub io: Option<IoStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CpuStats {
    /// CPU time used, user and system, in nanoseconds.
    pub usage_ns: u64,
    pub user_ns: Option<u64>,
    pub system_ns: Option<u64>,
    /// Per CPU, on v1 only (v2 has no per-CPU numbers).
    pub per_cpu_ns: Vec<u64>,
    /// Present when the cpu controller is.
    pub throttling: Option<Throttling>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Throttling {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_ns: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemoryStats {
    /// Bytes charged now (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub usage: u64,
    /// Highest usage seen, when the kernel keeps it (v2 needs 5.19).
    pub max_usage: Option<u64>,
    /// `None` when unlimited.
    pub limit: Option<u64>,
    /// Swap alone, without memory (unlike v1's memsw numbers), when swap is accounted.
    pub swap_usage: Option<u64>,
    /// Swap alone; `None` when unlimited or not accounted.
    pub swap_limit: Option<u64>,
    /// Processes the OOM killer killed in the cgroup, when the kernel counts them.
    pub oom_kills: Option<u64>,
    /// `memory.stat` as is (docker subtracts `inactive_file`, or `total_inactive_file` on v1, from usage).
    pub stat: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PidsStats {
    pub current: u64,
    /// `None` when unlimited.
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IoStats {
    pub devices: Vec<IoDevice>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IoDevice {
    pub major: u32,
    pub minor: u32,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub read_ios: u64,
    pub write_ios: u64,
}

pub(super) fn parse_error(path: &Path, reason: impl Into<String>) -> CgroupError {
    CgroupError::Parse {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

pub(super) fn parse_u64(path: &Path, text: &str) -> Result<u64, CgroupError> {
    let text = text.trim();
    text.parse()
        .map_err(|_| parse_error(path, format!("{text:?} is not a number")))
}

/// v1 shows "no limit" as the largest page-aligned `i64` (which depends on
/// the page size), v2 as `max`.
pub(super) fn parse_limit(path: &Path, text: &str) -> Result<Option<u64>, CgroupError> {
    const V1_UNLIMITED: u64 = 0x7fff_ffff_ffff_0000;
    if text.trim() == "max" {
        return Ok(None);
    }
    let value = parse_u64(path, text)?;
    Ok((value < V1_UNLIMITED).then_some(value))
}

/// `key value` lines (memory.stat, cpu.stat, memory.events); lines whose
/// value is not a number are skipped.
pub(super) fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// `8:0` into (8, 0).
pub(super) fn parse_device(path: &Path, text: &str) -> Result<(u32, u32), CgroupError> {
    let bad = || parse_error(path, format!("{text:?} is not a major:minor device number"));
    let (major, minor) = text.split_once(':').ok_or_else(bad)?;
    Ok((
        major.parse().map_err(|_| bad())?,
        minor.parse().map_err(|_| bad())?,
    ))
}

/// The entry for `(major, minor)`, added at the end on first sight so the
/// order of the file is kept.
pub(super) fn device_entry(devices: &mut Vec<IoDevice>, major: u32, minor: u32) -> &mut IoDevice {
    let index = match devices
        .iter()
        .position(|d| d.major == major && d.minor == minor)
    {
        Some(i) => i,
        None => {
            devices.push(IoDevice {
                major,
                minor,
                ..IoDevice::default()
            });
            devices.len() - 1
        }
    };
    &mut devices[index]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        let p = Path::new("/x/memory.max");
        assert_eq!(parse_limit(p, "max\n").expect("max"), None);
        assert_eq!(
            parse_limit(p, "9223372036854771712\n").expect("v1 4k"),
            None
        );
        assert_eq!(
            parse_limit(p, "9223372036854710272\n").expect("v1 64k"),
            None
        );
        assert_eq!(parse_limit(p, "1048576\n").expect("1M"), Some(1_048_576));
        let err = parse_limit(p, "lots").unwrap_err();
        assert!(err.to_string().contains("/x/memory.max"), "{err}");
    }

    #[test]
    fn flat_keyed_skips_non_numbers() {
        let map = flat_keyed("cache 10\nrss 20\nweird x\n\n");
        assert_eq!(map.len(), 2);
        assert_eq!(map.get("rss"), Some(&20));
    }

    #[test]
    fn devices() {
        let p = Path::new("/x/io.stat");
        assert_eq!(parse_device(p, "259:1").expect("dev"), (259, 1));
        assert!(parse_device(p, "Total").is_err());
        let mut list = Vec::new();
        device_entry(&mut list, 8, 0).read_bytes = 1;
        device_entry(&mut list, 8, 16).read_bytes = 2;
        device_entry(&mut list, 8, 0).write_bytes = 3;
        assert_eq!(list.len(), 2);
        assert_eq!(
            (list[0].read_bytes, list[0].write_bytes, list[1].read_bytes),
            (1, 3, 2)
        );
    }
}
