//! cgroup v2: one tree, controllers enabled per subtree. This module enables
//! controllers along the container's path, converts the spec's v1-flavoured
//! values to v2 ones (the conversions are pure functions, as in runc and
//! crun), writes them, and reads stats.
//!
//! A controller file that does not exist means the controller is not enabled
//! for the cgroup; writing a value to it is a `ControllerUnavailable` error
//! naming the file.

use std::path::Path;
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory};

use super::CgroupError;
use super::fs::{read, read_opt, write};
use super::stats::{self, CpuStats, IoStats, MemoryStats, Throttling};

/// Makes every controller of the hierarchy available to `leaf`: each
/// ancestor from the mount down to the parent gets them in its
/// `cgroup.subtree_control`. When the parent has them all already (the usual
/// case once the first container ran), that is two reads and no write.
///
/// Errors enabling a controller are not fatal, as in runc: a parent may have
/// processes or not be delegated to us; the write of a value that needs the
/// controller reports it, and a container that sets no such value runs.
pub(super) fn enable_controllers(mount: &Path, leaf: &Path) -> Result<(), CgroupError> {
    let available = read(mount, "cgroup.controllers")?;
    let wanted: Vec<&str> = available.split_whitespace().collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let Some(parent) = leaf.parent().filter(|p| p.starts_with(mount)) else {
        return Ok(());
    };
    let enabled = read(parent, "cgroup.subtree_control")?;
    let has = |c: &&str| {
        enabled
            .split_whitespace()
            .any(|e| e.trim_start_matches('+') == *c)
    };
    if wanted.iter().all(has) {
        return Ok(());
    }
    let all: Vec<String> = wanted.iter().map(|c| format!("+{c}")).collect();
    let all = all.join(" ");
    let mut chain: Vec<&Path> = parent
        .ancestors()
        .take_while(|a| a.starts_with(mount))
        .collect();
    chain.reverse();
    for dir in chain {
        if let Err(e) = write(dir, "cgroup.subtree_control", &all) {
            tracing::debug!("{e}; enabling controllers one by one");
            for controller in &wanted {
                if let Err(e) = write(dir, "cgroup.subtree_control", &format!("+{controller}")) {
                    tracing::debug!("{e}");
                }
            }
        }
    }
    Ok(())
}

/// Writes a controller file; a missing file is the controller missing.
pub(super) fn write_ctl(
    dir: &Path,
    controller: &str,
    file: &str,
    value: &str,
) -> Result<(), CgroupError> {
    write(dir, file, value).map_err(|e| {
        if e.errno() == Some(libc::ENOENT) {
            CgroupError::ControllerUnavailable {
                controller: controller.to_owned(),
                path: dir.join(file),
            }
        } else {
            e
        }
    })
}

fn limit(value: i64) -> String {
    if value < 0 {
        "max".to_owned()
    } else {
        value.to_string()
    }
}

/// memory.swap.max from the spec's memory+swap `swap` and memory `limit`, as
/// runc converts it. `None`: leave swap alone.
pub(super) fn swap_max(
    swap: Option<i64>,
    limit: Option<i64>,
) -> Result<Option<String>, CgroupError> {
    let invalid = |reason: &str| CgroupError::InvalidValue {
        what: "memory swap".to_owned(),
        reason: reason.to_owned(),
    };
    match (swap, limit) {
        // Unlimited memory with no word on swap: unlimited swap too, as v1.
        (None | Some(0), Some(-1)) => Ok(Some("max".to_owned())),
        (None | Some(0), _) => Ok(None),
        (Some(swap), _) if swap < 0 => Ok(Some("max".to_owned())),
        (Some(_), None | Some(0)) | (Some(_), Some(-1)) => {
            Err(invalid("a swap limit needs a memory limit"))
        }
        (Some(_), Some(limit)) if limit < 0 => Err(invalid("the memory limit is negative")),
        (Some(swap), Some(limit)) if swap < limit => {
            Err(invalid("memory+swap must be at least the memory limit"))
        }
        (Some(swap), Some(limit)) => Ok(Some((swap - limit).to_string())),
    }
}

pub(super) fn set_memory(dir: &Path, memory: &LinuxMemory) -> Result<(), CgroupError> {
    if let Some(swap) = swap_max(memory.swap(), memory.limit())? {
        match write_ctl(dir, "memory", "memory.swap.max", &swap) {
            // No swap accounting: "unlimited" and "none" already hold.
            Err(CgroupError::ControllerUnavailable { .. }) if swap == "max" || swap == "0" => {}
            other => other?,
        }
    }
    if let Some(value) = memory.limit() {
        write_ctl(dir, "memory", "memory.max", &limit(value))?;
    }
    if let Some(value) = memory.reservation() {
        write_ctl(dir, "memory", "memory.low", &limit(value))?;
    }
    if memory.swappiness().is_some() {
        tracing::warn!("memory swappiness has no cgroup v2 equivalent: ignored");
    }
    if memory.disable_oom_killer() == Some(true) {
        tracing::warn!("disabling the OOM killer is not possible on cgroup v2: ignored");
    }
    Ok(())
}

/// cpu.weight (1..=10000) from v1 shares (2..=262144), runc's and crun's linear map.
pub(super) fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// cpu.max: "$QUOTA $PERIOD", quota "max" when unlimited; `None` when neither is set.
/// As runc, a period alone writes "max $PERIOD": v2 cannot set one without the other.
pub(super) fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    let quota = quota.filter(|&q| q != 0);
    let period = period.filter(|&p| p != 0);
    if quota.is_none() && period.is_none() {
        return None;
    }
    let mut value = match quota {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".to_owned(),
    };
    if let Some(period) = period {
        value.push_str(&format!(" {period}"));
    }
    Some(value)
}

pub(super) fn set_cpu(dir: &Path, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    if cpu.realtime_period().is_some_and(|p| p != 0)
        || cpu.realtime_runtime().is_some_and(|r| r != 0)
    {
        return Err(CgroupError::Unsupported {
            what: "real-time CPU scheduling limits".to_owned(),
            reason: "cgroup v2 has no cpu.rt_* files".to_owned(),
        });
    }
    if let Some(shares) = cpu.shares().filter(|&s| s != 0) {
        write_ctl(
            dir,
            "cpu",
            "cpu.weight",
            &shares_to_weight(shares).to_string(),
        )?;
    }
    if let Some(max) = cpu_max(cpu.quota(), cpu.period()) {
        write_ctl(dir, "cpu", "cpu.max", &max)?;
    }
    if let Some(burst) = cpu.burst() {
        write_ctl(dir, "cpu", "cpu.max.burst", &burst.to_string())?;
    }
    if let Some(idle) = cpu.idle() {
        write_ctl(dir, "cpu", "cpu.idle", &idle.to_string())?;
    }
    Ok(())
}

pub(super) fn set_cpuset(dir: &Path, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(cpus) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
        write_ctl(dir, "cpuset", "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
        write_ctl(dir, "cpuset", "cpuset.mems", mems)?;
    }
    Ok(())
}

/// io.weight (1..=10000) from blkio weight (10..=1000), as runc converts it.
pub(super) fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    let weight = u64::from(weight.clamp(10, 1000));
    1 + (weight - 10) * 9999 / 990
}

/// BFQ takes blkio weights as they are; io.weight (io.cost) takes converted ones.
fn write_io_weight(dir: &Path, device: Option<(i64, i64)>, weight: u16) -> Result<(), CgroupError> {
    let prefix = device.map_or_else(String::new, |(major, minor)| format!("{major}:{minor} "));
    match write(dir, "io.bfq.weight", &format!("{prefix}{weight}")) {
        Err(e) if e.errno() == Some(libc::ENOENT) => write_ctl(
            dir,
            "io",
            "io.weight",
            &format!("{prefix}{}", blkio_weight_to_io_weight(weight)),
        ),
        other => other,
    }
}

pub(super) fn set_io(dir: &Path, blkio: &LinuxBlockIo) -> Result<(), CgroupError> {
    let leaf = blkio.leaf_weight().is_some_and(|w| w != 0)
        || blkio
            .weight_device()
            .iter()
            .flatten()
            .any(|d| d.leaf_weight().is_some());
    if leaf {
        return Err(CgroupError::Unsupported {
            what: "block IO leaf weights".to_owned(),
            reason: "cgroup v2 has no leaf weights".to_owned(),
        });
    }
    if let Some(weight) = blkio.weight().filter(|&w| w != 0) {
        write_io_weight(dir, None, weight)?;
    }
    for device in blkio.weight_device().iter().flatten() {
        if let Some(weight) = device.weight() {
            write_io_weight(dir, Some((device.major(), device.minor())), weight)?;
        }
    }
    let throttles = [
        ("rbps", blkio.throttle_read_bps_device()),
        ("wbps", blkio.throttle_write_bps_device()),
        ("riops", blkio.throttle_read_iops_device()),
        ("wiops", blkio.throttle_write_iops_device()),
    ];
    for (key, devices) in throttles {
        for device in devices.iter().flatten() {
            // v1 reads a rate of 0 as "no limit".
            let rate = match device.rate() {
                0 => "max".to_owned(),
                rate => rate.to_string(),
            };
            write_ctl(
                dir,
                "io",
                "io.max",
                &format!("{}:{} {key}={rate}", device.major(), device.minor()),
            )?;
        }
    }
    Ok(())
}

/// Freezes (or thaws) and waits until cgroup.events says so. The kernel
/// signals the change through the file, but a short sleep loop costs
/// little here and also works on a fake tree.
pub(super) fn set_frozen(dir: &Path, frozen: bool, timeout: Duration) -> Result<(), CgroupError> {
    write(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    let start = Instant::now();
    let mut delay = Duration::from_micros(50);
    loop {
        if is_frozen(dir)? == frozen {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            if frozen {
                let _ = write(dir, "cgroup.freeze", "0");
            }
            return Err(CgroupError::Timeout {
                path: dir.join("cgroup.events"),
                state: if frozen { "frozen 1" } else { "frozen 0" },
                waited_ms: start.elapsed().as_millis() as u64,
            });
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
    }
}

pub(super) fn is_frozen(dir: &Path) -> Result<bool, CgroupError> {
    let events = read(dir, "cgroup.events")?;
    Ok(events.lines().any(|l| l.trim() == "frozen 1"))
}

/// cpu.stat exists in every v2 cgroup, controller or not: its absence means
/// the cgroup is gone.
pub(super) fn cpu_stats(dir: &Path) -> Result<CpuStats, CgroupError> {
    let map = stats::flat_keyed(&read(dir, "cpu.stat")?);
    let usec = |key: &str| map.get(key).map(|v| v.saturating_mul(1000));
    let throttling = map.get("nr_periods").map(|&periods| Throttling {
        periods,
        throttled_periods: map.get("nr_throttled").copied().unwrap_or(0),
        throttled_ns: usec("throttled_usec").unwrap_or(0),
    });
    Ok(CpuStats {
        usage_ns: usec("usage_usec").unwrap_or(0),
        user_ns: usec("user_usec"),
        system_ns: usec("system_usec"),
        per_cpu_ns: Vec::new(),
        throttling,
    })
}

pub(super) fn memory_stats(dir: &Path) -> Result<Option<MemoryStats>, CgroupError> {
    let Some(current) = read_opt(dir, "memory.current")? else {
        return Ok(None);
    };
    let number = |name: &str| -> Result<Option<u64>, CgroupError> {
        read_opt(dir, name)?
            .map(|text| stats::parse_u64(&dir.join(name), &text))
            .transpose()
    };
    let max = |name: &str| -> Result<Option<u64>, CgroupError> {
        Ok(match read_opt(dir, name)? {
            Some(text) => stats::parse_limit(&dir.join(name), &text)?,
            None => None,
        })
    };
    let oom_kills = read_opt(dir, "memory.events")?
        .and_then(|text| stats::flat_keyed(&text).get("oom_kill").copied());
    Ok(Some(MemoryStats {
        usage: stats::parse_u64(&dir.join("memory.current"), &current)?,
        max_usage: number("memory.peak")?,
        limit: max("memory.max")?,
        swap_usage: number("memory.swap.current")?,
        swap_limit: max("memory.swap.max")?,
        oom_kills,
        stat: stats::flat_keyed(&read(dir, "memory.stat")?),
    }))
}

/// io.stat: `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0` per device.
pub(super) fn io_stats(dir: &Path) -> Result<Option<IoStats>, CgroupError> {
    let Some(text) = read_opt(dir, "io.stat")? else {
        return Ok(None);
    };
    let path = dir.join("io.stat");
    let mut io = IoStats::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(device) = fields.next() else {
            continue;
        };
        let (major, minor) = stats::parse_device(&path, device)?;
        let entry = stats::device_entry(&mut io.devices, major, minor);
        for field in fields {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let value = stats::parse_u64(&path, value)?;
            match key {
                "rbytes" => entry.read_bytes = value,
                "wbytes" => entry.write_bytes = value,
                "rios" => entry.read_ios = value,
                "wios" => entry.write_ios = value,
                _ => {}
            }
        }
    }
    Ok(Some(io))
}

#[cfg(test)]
mod tests {
    use super::super::fs::hooks;
    use super::*;

    #[test]
    fn shares_to_weight_matches_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(512), 1 + (510 * 9999) / 262_142);
        // Out of range values are clamped, not wrapped.
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(1_000_000), 10_000);
    }

    #[test]
    fn blkio_weight_conversion() {
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 1 + 490 * 9999 / 990);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(1), 1);
    }

    #[test]
    fn cpu_max_values() {
        assert_eq!(cpu_max(None, None), None);
        assert_eq!(cpu_max(Some(0), Some(0)), None);
        assert_eq!(
            cpu_max(Some(50_000), Some(100_000)).as_deref(),
            Some("50000 100000")
        );
        assert_eq!(cpu_max(Some(50_000), None).as_deref(), Some("50000"));
        assert_eq!(
            cpu_max(Some(-1), Some(100_000)).as_deref(),
            Some("max 100000")
        );
        assert_eq!(cpu_max(None, Some(20_000)).as_deref(), Some("max 20000"));
    }

    #[test]
    fn swap_conversion() {
        let ok = |swap, limit| swap_max(swap, limit).expect("valid");
        assert_eq!(ok(Some(300), Some(100)).as_deref(), Some("200"));
        assert_eq!(ok(Some(100), Some(100)).as_deref(), Some("0"));
        assert_eq!(ok(Some(-1), Some(100)).as_deref(), Some("max"));
        assert_eq!(ok(None, Some(-1)).as_deref(), Some("max"));
        assert_eq!(ok(None, Some(100)), None);
        assert_eq!(ok(Some(0), Some(100)), None);
        for (swap, limit) in [
            (Some(300), None),
            (Some(300), Some(-1)),
            (Some(50), Some(100)),
            (Some(300), Some(-5)),
        ] {
            assert!(swap_max(swap, limit).is_err(), "{swap:?} {limit:?}");
        }
    }

    #[test]
    fn memory_without_swap_accounting() {
        hooks::reset();
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(tmp.path().join("memory.max"), "max").expect("seed");
        let memory: LinuxMemory =
            serde_json::from_str(r#"{"limit": 100, "swap": 100}"#).expect("json");
        set_memory(tmp.path(), &memory).expect("swap 0 without swap files is fine");
        let memory: LinuxMemory =
            serde_json::from_str(r#"{"limit": 100, "swap": 300}"#).expect("json");
        let err = set_memory(tmp.path(), &memory).unwrap_err();
        assert!(
            matches!(&err, CgroupError::ControllerUnavailable { path, .. } if path.ends_with("memory.swap.max")),
            "{err}"
        );
    }

    #[test]
    fn freeze_waits_for_the_event() {
        hooks::reset();
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(tmp.path().join("cgroup.freeze"), "0").expect("seed");
        std::fs::write(tmp.path().join("cgroup.events"), "populated 1\nfrozen 0\n").expect("seed");
        let err = set_frozen(tmp.path(), true, Duration::from_millis(20)).unwrap_err();
        assert!(matches!(err, CgroupError::Timeout { .. }), "{err}");
        // The failed freeze is undone.
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("cgroup.freeze")).expect("read"),
            "0"
        );

        std::fs::write(tmp.path().join("cgroup.events"), "populated 1\nfrozen 1\n").expect("seed");
        set_frozen(tmp.path(), true, Duration::from_millis(20)).expect("frozen");
        assert!(is_frozen(tmp.path()).expect("events"));
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("cgroup.freeze")).expect("read"),
            "1"
        );
    }

    #[test]
    fn stats_from_v2_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for (name, content) in [
            (
                "cpu.stat",
                "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 4\nnr_throttled 1\nthrottled_usec 7\n",
            ),
            ("memory.current", "4096\n"),
            ("memory.max", "max\n"),
            ("memory.swap.current", "0\n"),
            ("memory.swap.max", "8192\n"),
            ("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"),
            ("memory.stat", "anon 100\ninactive_file 20\n"),
            (
                "io.stat",
                "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=5 wbytes=0 rios=1 wios=0\n",
            ),
        ] {
            std::fs::write(tmp.path().join(name), content).expect("seed");
        }
        let cpu = cpu_stats(tmp.path()).expect("cpu");
        assert_eq!(
            (cpu.usage_ns, cpu.user_ns, cpu.system_ns),
            (5000, Some(3000), Some(2000))
        );
        assert_eq!(
            cpu.throttling,
            Some(Throttling {
                periods: 4,
                throttled_periods: 1,
                throttled_ns: 7000
            })
        );
        let memory = memory_stats(tmp.path())
            .expect("memory")
            .expect("memory controller");
        assert_eq!(
            (memory.usage, memory.limit, memory.max_usage),
            (4096, None, None)
        );
        assert_eq!(
            (memory.swap_usage, memory.swap_limit, memory.oom_kills),
            (Some(0), Some(8192), Some(1))
        );
        let io = io_stats(tmp.path()).expect("io").expect("io.stat");
        assert_eq!(io.devices.len(), 2);
        assert_eq!((io.devices[0].read_bytes, io.devices[0].write_ios), (10, 2));
        assert_eq!(
            (
                io.devices[1].major,
                io.devices[1].minor,
                io.devices[1].read_bytes
            ),
            (253, 1, 5)
        );

        std::fs::remove_file(tmp.path().join("memory.current")).expect("rm");
        assert_eq!(memory_stats(tmp.path()).expect("no controller"), None);
        assert!(cpu_stats(&tmp.path().join("gone")).is_err());
    }
}
