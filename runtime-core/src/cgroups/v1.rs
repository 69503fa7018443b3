//! cgroup v1: each controller has its own hierarchy and its own files. This
//! module writes the spec's values into them, in an order the kernel accepts,
//! and reads them back for stats. Every function gets the cgroup directory
//! of the right hierarchy; which one is the caller's business.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory};

use super::fs::{read, read_opt, write};
use super::stats::{self, CpuStats, IoStats, MemoryStats, Throttling};
use super::{CgroupError, devices};

const MEMORY_LIMIT: &str = "memory.limit_in_bytes";
const MEMSW_LIMIT: &str = "memory.memsw.limit_in_bytes";
const FREEZER_STATE: &str = "freezer.state";

/// A new cpuset cgroup starts with no CPU and no memory node, and no process
/// can join it until both are set: copy them from the parent, top-down, for
/// each directory `create` just made, and for an existing leaf left empty.
pub(super) fn init_cpuset(
    mount: &Path,
    leaf: &Path,
    created: &[PathBuf],
) -> Result<(), CgroupError> {
    for dir in created {
        copy_cpuset_from_parent(mount, dir)?;
    }
    if !created.iter().any(|d| d == leaf)
        && (read(leaf, "cpuset.cpus")?.trim().is_empty()
            || read(leaf, "cpuset.mems")?.trim().is_empty())
    {
        copy_cpuset_from_parent(mount, leaf)?;
    }
    Ok(())
}

fn copy_cpuset_from_parent(mount: &Path, dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent().filter(|p| p.starts_with(mount)) else {
        return Ok(());
    };
    let read_both = || -> Result<(String, String), CgroupError> {
        Ok((
            read(parent, "cpuset.cpus")?.trim().to_owned(),
            read(parent, "cpuset.mems")?.trim().to_owned(),
        ))
    };
    let (mut cpus, mut mems) = read_both()?;
    // An earlier run may have died between making the parent and filling it.
    if (cpus.is_empty() || mems.is_empty()) && parent != mount {
        copy_cpuset_from_parent(mount, parent)?;
        (cpus, mems) = read_both()?;
    }
    write(dir, "cpuset.cpus", &cpus)?;
    write(dir, "cpuset.mems", &mems)
}

pub(super) fn set_memory(dir: &Path, memory: &LinuxMemory) -> Result<(), CgroupError> {
    if let Some(reservation) = memory.reservation() {
        write(dir, "memory.soft_limit_in_bytes", &reservation.to_string())?;
    }
    let limit = memory.limit();
    // As runc: an unlimited memory with no word on swap means unlimited swap
    // too, else the old memsw limit would cap the memory.
    let swap = match (limit, memory.swap()) {
        (Some(-1), None) => Some(-1),
        (_, swap) => swap.filter(|&s| s != 0),
    };
    match (limit, swap) {
        (Some(limit), Some(swap)) => {
            // memsw must stay >= memory after every write: lowering needs the
            // memory limit first, raising needs memsw first. Fresh cgroups
            // are unlimited, so memory first is right on create.
            let memory_first =
                write(dir, MEMORY_LIMIT, &limit.to_string()).and_then(|()| write_swap(dir, swap));
            match memory_first {
                Err(e) if e.errno() == Some(libc::EINVAL) => {
                    write_swap(dir, swap)?;
                    write(dir, MEMORY_LIMIT, &limit.to_string())?;
                }
                other => other?,
            }
        }
        (Some(limit), None) => write(dir, MEMORY_LIMIT, &limit.to_string())?,
        (None, Some(swap)) => write_swap(dir, swap)?,
        (None, None) => {}
    }
    if let Some(swappiness) = memory.swappiness() {
        if swappiness > 100 {
            return Err(CgroupError::InvalidValue {
                what: "memory swappiness".to_owned(),
                reason: format!("{swappiness} is above 100"),
            });
        }
        write(dir, "memory.swappiness", &swappiness.to_string())?;
    }
    if memory.disable_oom_killer() == Some(true) {
        write(dir, "memory.oom_control", "1")?;
    }
    if memory.kernel().is_some() || memory.kernel_tcp().is_some() {
        tracing::debug!(
            "ignoring kernel memory limits: deprecated, and unsupported by recent kernels"
        );
    }
    Ok(())
}

fn write_swap(dir: &Path, swap: i64) -> Result<(), CgroupError> {
    match write(dir, MEMSW_LIMIT, &swap.to_string()) {
        // Without swap accounting, unlimited is the only state there is.
        Err(e) if e.errno() == Some(libc::ENOENT) && swap == -1 => Ok(()),
        Err(e) if e.errno() == Some(libc::ENOENT) => Err(CgroupError::Unsupported {
            what: "memory+swap limit".to_owned(),
            reason: format!(
                "{} is missing: the kernel does not account swap (boot with swapaccount=1)",
                dir.join(MEMSW_LIMIT).display()
            ),
        }),
        other => other,
    }
}

/// Writes `first` then `second`; when the kernel refuses `first` (EINVAL)
/// because it does not fit the current `second`, writes it again after.
/// That is how cfs quota/period and rt runtime/period must be updated.
fn write_pair(
    dir: &Path,
    first: (&str, Option<String>),
    second: (&str, Option<String>),
) -> Result<(), CgroupError> {
    let mut retry_first = None;
    if let Some(value) = &first.1 {
        match write(dir, first.0, value) {
            Err(e) if e.errno() == Some(libc::EINVAL) && second.1.is_some() => {
                retry_first = Some(value)
            }
            other => other?,
        }
    }
    if let Some(value) = &second.1 {
        write(dir, second.0, value)?;
    }
    if let Some(value) = retry_first {
        write(dir, first.0, value)?;
    }
    Ok(())
}

/// The cpu controller part of `linux.resources.cpu` (not cpus/mems).
pub(super) fn set_cpu(dir: &Path, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(shares) = cpu.shares().filter(|&s| s != 0) {
        write(dir, "cpu.shares", &shares.to_string())?;
    }
    write_pair(
        dir,
        (
            "cpu.cfs_period_us",
            cpu.period().filter(|&p| p != 0).map(|p| p.to_string()),
        ),
        (
            "cpu.cfs_quota_us",
            cpu.quota().filter(|&q| q != 0).map(|q| q.to_string()),
        ),
    )?;
    if let Some(burst) = cpu.burst() {
        write(dir, "cpu.cfs_burst_us", &burst.to_string())?;
    }
    write_pair(
        dir,
        (
            "cpu.rt_period_us",
            cpu.realtime_period()
                .filter(|&p| p != 0)
                .map(|p| p.to_string()),
        ),
        (
            "cpu.rt_runtime_us",
            cpu.realtime_runtime()
                .filter(|&r| r != 0)
                .map(|r| r.to_string()),
        ),
    )?;
    if let Some(idle) = cpu.idle() {
        write(dir, "cpu.idle", &idle.to_string())?;
    }
    Ok(())
}

/// Files are named alike on v1 and v2.
pub(super) fn set_cpuset(dir: &Path, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(cpus) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
        write(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
        write(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// Writes to `files[0]`, or to `files[1]` when the first does not exist:
/// CFQ shows `blkio.weight*`, BFQ `blkio.bfq.weight*`.
fn write_weight(dir: &Path, files: [&str; 2], value: &str) -> Result<(), CgroupError> {
    match write(dir, files[0], value) {
        Err(e) if e.errno() == Some(libc::ENOENT) => match write(dir, files[1], value) {
            Err(e) if e.errno() == Some(libc::ENOENT) => Err(CgroupError::Unsupported {
                what: "block IO weight".to_owned(),
                reason: format!(
                    "{} has neither {} nor {} (no CFQ or BFQ I/O scheduler)",
                    dir.display(),
                    files[0],
                    files[1]
                ),
            }),
            other => other,
        },
        other => other,
    }
}

pub(super) fn set_blkio(dir: &Path, blkio: &LinuxBlockIo) -> Result<(), CgroupError> {
    if let Some(weight) = blkio.weight().filter(|&w| w != 0) {
        write_weight(
            dir,
            ["blkio.weight", "blkio.bfq.weight"],
            &weight.to_string(),
        )?;
    }
    if let Some(weight) = blkio.leaf_weight().filter(|&w| w != 0) {
        write(dir, "blkio.leaf_weight", &weight.to_string())?;
    }
    for device in blkio.weight_device().iter().flatten() {
        let (major, minor) = (device.major(), device.minor());
        if let Some(weight) = device.weight() {
            write_weight(
                dir,
                ["blkio.weight_device", "blkio.bfq.weight_device"],
                &format!("{major}:{minor} {weight}"),
            )?;
        }
        if let Some(weight) = device.leaf_weight() {
            write(
                dir,
                "blkio.leaf_weight_device",
                &format!("{major}:{minor} {weight}"),
            )?;
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            blkio.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            blkio.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            blkio.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            blkio.throttle_write_iops_device(),
        ),
    ];
    for (file, devices) in throttles {
        for device in devices.iter().flatten() {
            write(
                dir,
                file,
                &format!("{}:{} {}", device.major(), device.minor(), device.rate()),
            )?;
        }
    }
    Ok(())
}

pub(super) fn set_devices(dir: &Path, rules: &[devices::DeviceRule]) -> Result<(), CgroupError> {
    let mut files = super::fs::Writer::new(dir);
    for (file, line) in devices::v1_lines(rules) {
        files.write(file, &line)?;
    }
    Ok(())
}

/// Freezes and waits until the kernel says FROZEN. A task in vfork or in
/// the middle of exiting can hold the cgroup in FREEZING, so the request is
/// repeated while waiting; on timeout the cgroup is thawed again rather than
/// left half frozen.
pub(super) fn freeze(dir: &Path, timeout: Duration) -> Result<(), CgroupError> {
    write(dir, FREEZER_STATE, "FROZEN")?;
    let start = Instant::now();
    let mut delay = Duration::from_micros(50);
    loop {
        if read(dir, FREEZER_STATE)?.trim() == "FROZEN" {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            let _ = write(dir, FREEZER_STATE, "THAWED");
            return Err(CgroupError::Timeout {
                path: dir.join(FREEZER_STATE),
                state: "FROZEN",
                waited_ms: start.elapsed().as_millis() as u64,
            });
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
        write(dir, FREEZER_STATE, "FROZEN")?;
    }
}

pub(super) fn thaw(dir: &Path) -> Result<(), CgroupError> {
    write(dir, FREEZER_STATE, "THAWED")
}

pub(super) fn is_frozen(dir: &Path) -> Result<bool, CgroupError> {
    Ok(read(dir, FREEZER_STATE)?.trim() == "FROZEN")
}

pub(super) fn memory_stats(dir: &Path) -> Result<MemoryStats, CgroupError> {
    let number = |name: &str| -> Result<Option<u64>, CgroupError> {
        read_opt(dir, name)?
            .map(|text| stats::parse_u64(&dir.join(name), &text))
            .transpose()
    };
    let usage = stats::parse_u64(
        &dir.join("memory.usage_in_bytes"),
        &read(dir, "memory.usage_in_bytes")?,
    )?;
    let limit = stats::parse_limit(&dir.join(MEMORY_LIMIT), &read(dir, MEMORY_LIMIT)?)?;
    let memsw_usage = number("memory.memsw.usage_in_bytes")?;
    let memsw_limit = match read_opt(dir, MEMSW_LIMIT)? {
        Some(text) => stats::parse_limit(&dir.join(MEMSW_LIMIT), &text)?,
        None => None,
    };
    let oom_kills = match read_opt(dir, "memory.oom_control")? {
        Some(text) => stats::flat_keyed(&text).get("oom_kill").copied(),
        None => None,
    };
    Ok(MemoryStats {
        usage,
        max_usage: number("memory.max_usage_in_bytes")?,
        limit,
        swap_usage: memsw_usage.map(|memsw| memsw.saturating_sub(usage)),
        swap_limit: memsw_limit
            .zip(limit)
            .map(|(memsw, limit)| memsw.saturating_sub(limit)),
        oom_kills,
        stat: stats::flat_keyed(&read(dir, "memory.stat")?),
    })
}

/// CPU time from the cpuacct hierarchy, throttling from the cpu one.
pub(super) fn cpu_stats(
    cpuacct: Option<&Path>,
    cpu: Option<&Path>,
) -> Result<CpuStats, CgroupError> {
    let mut stats = CpuStats::default();
    if let Some(dir) = cpuacct {
        // usage_all (Linux 4.7+) has user and system per CPU in one read.
        match read_opt(dir, "cpuacct.usage_all")? {
            Some(text) => {
                let path = dir.join("cpuacct.usage_all");
                let (mut user, mut system) = (0u64, 0u64);
                for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let [_cpu, u, s] = fields[..] else {
                        return Err(stats::parse_error(
                            &path,
                            format!("unexpected line {line:?}"),
                        ));
                    };
                    let (u, s) = (stats::parse_u64(&path, u)?, stats::parse_u64(&path, s)?);
                    user += u;
                    system += s;
                    stats.per_cpu_ns.push(u + s);
                }
                stats.usage_ns = user + system;
                stats.user_ns = Some(user);
                stats.system_ns = Some(system);
            }
            None => {
                let path = dir.join("cpuacct.usage");
                stats.usage_ns = stats::parse_u64(&path, &read(dir, "cpuacct.usage")?)?;
            }
        }
    }
    if let Some(dir) = cpu {
        let map = stats::flat_keyed(&read(dir, "cpu.stat")?);
        let get = |key: &str| map.get(key).copied().unwrap_or(0);
        stats.throttling = Some(Throttling {
            periods: get("nr_periods"),
            throttled_periods: get("nr_throttled"),
            throttled_ns: get("throttled_time"),
        });
    }
    Ok(stats)
}

/// Bytes and operations per device, from the throttle policy's counters,
/// which exist whatever the I/O scheduler.
pub(super) fn io_stats(dir: &Path) -> Result<Option<IoStats>, CgroupError> {
    let files = [
        "blkio.throttle.io_service_bytes_recursive",
        "blkio.throttle.io_serviced_recursive",
    ];
    let mut io = IoStats::default();
    for (index, file) in files.into_iter().enumerate() {
        let Some(text) = read_opt(dir, file)? else {
            return Ok(None);
        };
        let path = dir.join(file);
        for line in text.lines() {
            // "8:0 Read 4096"; "Total 4096" closes the list.
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [device, op, value] = fields[..] else {
                continue;
            };
            let (major, minor) = stats::parse_device(&path, device)?;
            let value = stats::parse_u64(&path, value)?;
            let entry = stats::device_entry(&mut io.devices, major, minor);
            match (index, op) {
                (0, "Read") => entry.read_bytes = value,
                (0, "Write") => entry.write_bytes = value,
                (1, "Read") => entry.read_ios = value,
                (1, "Write") => entry.write_ios = value,
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

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        hooks::reset();
        let tmp = tempfile::tempdir().expect("tempdir");
        for (name, content) in files {
            std::fs::write(tmp.path().join(name), content).expect("seed file");
        }
        tmp
    }

    fn memory(json: &str) -> LinuxMemory {
        serde_json::from_str(json).expect("memory json")
    }

    fn names(writes: &[(PathBuf, String)]) -> Vec<(String, String)> {
        writes
            .iter()
            .map(|(p, v)| {
                (
                    p.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    v.clone(),
                )
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    const MEMORY_FILES: &[(&str, &str)] = &[
        ("memory.limit_in_bytes", ""),
        ("memory.memsw.limit_in_bytes", ""),
        ("memory.soft_limit_in_bytes", ""),
        ("memory.swappiness", ""),
        ("memory.oom_control", ""),
    ];

    #[test]
    fn memory_values_and_order() {
        let tmp = dir_with(MEMORY_FILES);
        set_memory(
            tmp.path(),
            &memory(r#"{"limit": 1048576, "reservation": 524288, "swap": 2097152, "swappiness": 10, "disableOOMKiller": true, "kernel": 1}"#),
        )
        .expect("set");
        assert_eq!(
            names(&hooks::writes()),
            pairs(&[
                ("memory.soft_limit_in_bytes", "524288"),
                ("memory.limit_in_bytes", "1048576"),
                ("memory.memsw.limit_in_bytes", "2097152"),
                ("memory.swappiness", "10"),
                ("memory.oom_control", "1"),
            ])
        );
    }

    #[test]
    fn memory_raise_retries_with_memsw_first() {
        let tmp = dir_with(MEMORY_FILES);
        hooks::fail_next("memory.limit_in_bytes", libc::EINVAL);
        set_memory(tmp.path(), &memory(r#"{"limit": 300, "swap": 400}"#)).expect("set");
        assert_eq!(
            names(&hooks::writes()),
            pairs(&[
                ("memory.memsw.limit_in_bytes", "400"),
                ("memory.limit_in_bytes", "300")
            ])
        );
    }

    #[test]
    fn memory_unlimited_implies_unlimited_swap_even_without_swap_accounting() {
        let tmp = dir_with(MEMORY_FILES);
        set_memory(tmp.path(), &memory(r#"{"limit": -1}"#)).expect("set");
        assert_eq!(
            names(&hooks::writes()),
            pairs(&[
                ("memory.limit_in_bytes", "-1"),
                ("memory.memsw.limit_in_bytes", "-1")
            ])
        );

        let tmp = dir_with(&[("memory.limit_in_bytes", "")]);
        set_memory(tmp.path(), &memory(r#"{"limit": -1}"#)).expect("no memsw, unlimited");
        let err = set_memory(tmp.path(), &memory(r#"{"limit": 100, "swap": 200}"#)).unwrap_err();
        assert!(err.to_string().contains("swapaccount"), "{err}");
    }

    #[test]
    fn memory_rejects_bad_swappiness() {
        let tmp = dir_with(MEMORY_FILES);
        assert!(set_memory(tmp.path(), &memory(r#"{"swappiness": 101}"#)).is_err());
        assert!(hooks::writes().is_empty());
    }

    #[test]
    fn cpu_values_and_period_retry() {
        let tmp = dir_with(&[
            ("cpu.shares", ""),
            ("cpu.cfs_quota_us", ""),
            ("cpu.cfs_period_us", ""),
            ("cpu.cfs_burst_us", ""),
            ("cpu.rt_period_us", ""),
            ("cpu.rt_runtime_us", ""),
            ("cpu.idle", ""),
        ]);
        let cpu: LinuxCpu = serde_json::from_str(
            r#"{"shares": 512, "quota": 50000, "period": 100000, "burst": 1000,
                "realtimePeriod": 1000000, "realtimeRuntime": 950000, "idle": 0}"#,
        )
        .expect("cpu");
        hooks::fail_next("cpu.cfs_period_us", libc::EINVAL);
        set_cpu(tmp.path(), &cpu).expect("set");
        assert_eq!(
            names(&hooks::writes()),
            pairs(&[
                ("cpu.shares", "512"),
                ("cpu.cfs_quota_us", "50000"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_burst_us", "1000"),
                ("cpu.rt_period_us", "1000000"),
                ("cpu.rt_runtime_us", "950000"),
                ("cpu.idle", "0"),
            ])
        );
    }

    #[test]
    fn period_alone_does_not_swallow_einval() {
        let tmp = dir_with(&[("cpu.cfs_period_us", "")]);
        let cpu: LinuxCpu = serde_json::from_str(r#"{"period": 1000}"#).expect("cpu");
        hooks::fail_next("cpu.cfs_period_us", libc::EINVAL);
        let err = set_cpu(tmp.path(), &cpu).unwrap_err();
        assert_eq!(err.errno(), Some(libc::EINVAL));
    }

    #[test]
    fn blkio_falls_back_to_bfq() {
        let tmp = dir_with(&[
            ("blkio.bfq.weight", ""),
            ("blkio.bfq.weight_device", ""),
            ("blkio.throttle.read_bps_device", ""),
            ("blkio.throttle.write_iops_device", ""),
        ]);
        let blkio: LinuxBlockIo = serde_json::from_str(
            r#"{"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 500}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}]}"#,
        )
        .expect("blkio");
        set_blkio(tmp.path(), &blkio).expect("set");
        assert_eq!(
            names(&hooks::writes()),
            pairs(&[
                ("blkio.bfq.weight", "300"),
                ("blkio.bfq.weight_device", "8:0 500"),
                ("blkio.throttle.read_bps_device", "8:0 1048576"),
                ("blkio.throttle.write_iops_device", "8:16 100"),
            ])
        );
        let none = dir_with(&[]);
        let err = set_blkio(none.path(), &blkio).unwrap_err();
        assert!(matches!(err, CgroupError::Unsupported { .. }), "{err}");
    }

    #[test]
    fn freezer_on_fake_files() {
        let tmp = dir_with(&[(FREEZER_STATE, "THAWED\n")]);
        assert!(!is_frozen(tmp.path()).expect("state"));
        freeze(tmp.path(), Duration::from_secs(1)).expect("freeze");
        assert!(is_frozen(tmp.path()).expect("state"));
        thaw(tmp.path()).expect("thaw");
        assert!(!is_frozen(tmp.path()).expect("state"));
    }

    #[test]
    fn freeze_that_never_completes_thaws_and_fails() {
        let tmp = dir_with(&[(FREEZER_STATE, "FREEZING\n")]);
        hooks::ignore_writes(FREEZER_STATE, "FROZEN");
        let err = freeze(tmp.path(), Duration::from_millis(30)).unwrap_err();
        assert!(matches!(err, CgroupError::Timeout { .. }), "{err}");
        let writes = names(&hooks::writes());
        assert!(writes.len() > 2, "the request is repeated: {writes:?}");
        assert_eq!(
            writes.last(),
            Some(&(FREEZER_STATE.to_owned(), "THAWED".to_owned()))
        );
        assert!(!is_frozen(tmp.path()).expect("state"));
    }

    #[test]
    fn stats_from_v1_files() {
        let tmp = dir_with(&[
            ("memory.usage_in_bytes", "1000\n"),
            ("memory.max_usage_in_bytes", "2000\n"),
            ("memory.limit_in_bytes", "4096\n"),
            ("memory.memsw.usage_in_bytes", "1500\n"),
            ("memory.memsw.limit_in_bytes", "9223372036854771712\n"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
            ),
            ("memory.stat", "cache 10\ntotal_inactive_file 5\n"),
            ("cpuacct.usage_all", "cpu user system\n0 100 10\n1 200 20\n"),
            (
                "cpu.stat",
                "nr_periods 7\nnr_throttled 3\nthrottled_time 900\n",
            ),
            (
                "blkio.throttle.io_service_bytes_recursive",
                "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n8:0 Total 4608\nTotal 4608\n",
            ),
            (
                "blkio.throttle.io_serviced_recursive",
                "8:0 Read 2\n8:0 Write 1\nTotal 3\n",
            ),
        ]);
        let memory = memory_stats(tmp.path()).expect("memory");
        assert_eq!(
            (memory.usage, memory.max_usage, memory.limit),
            (1000, Some(2000), Some(4096))
        );
        assert_eq!(
            (memory.swap_usage, memory.swap_limit, memory.oom_kills),
            (Some(500), None, Some(2))
        );
        assert_eq!(memory.stat.get("total_inactive_file"), Some(&5));

        let cpu = cpu_stats(Some(tmp.path()), Some(tmp.path())).expect("cpu");
        assert_eq!(
            (cpu.usage_ns, cpu.user_ns, cpu.system_ns),
            (330, Some(300), Some(30))
        );
        assert_eq!(cpu.per_cpu_ns, [110, 220]);
        assert_eq!(
            cpu.throttling,
            Some(Throttling {
                periods: 7,
                throttled_periods: 3,
                throttled_ns: 900
            })
        );

        let io = io_stats(tmp.path()).expect("io").expect("blkio counters");
        assert_eq!(io.devices.len(), 1);
        let d = &io.devices[0];
        assert_eq!(
            (
                d.major,
                d.minor,
                d.read_bytes,
                d.write_bytes,
                d.read_ios,
                d.write_ios
            ),
            (8, 0, 4096, 512, 2, 1)
        );
    }

    #[test]
    fn stats_fail_when_the_cgroup_is_gone() {
        let tmp = dir_with(&[]);
        assert!(memory_stats(&tmp.path().join("gone")).is_err());
        assert!(cpu_stats(Some(&tmp.path().join("gone")), None).is_err());
    }
}
