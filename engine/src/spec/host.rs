//! The facts about this host that change the spec: cgroup version, swap
//! accounting, CPUs, hard limits, the kernel's capabilities and version.
//! Read once per spec; every field is public so tests can describe any
//! host.

use std::collections::BTreeMap;
use std::path::PathBuf;

use runtime_core::cgroups::{Layout, Mode};

use crate::config::UlimitName;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Only cgroup2 carries controllers: the container gets a cgroup
    /// namespace, as docker gives it there.
    pub cgroup_v2: bool,
    /// The memory controller limits swap (memsw on v1): a swap limit can
    /// be asked for.
    pub swap_limit: bool,
    /// CPUs the engine may run on (its affinity), the bound of `--cpus`.
    pub cpus: usize,
    /// For `--network host` without `--hostname`.
    pub hostname: String,
    /// The highest capability the kernel knows.
    pub last_cap: u8,
    /// The capabilities the engine holds (permitted and bounding, a bit per
    /// capability): the most a container's init, cloned from it, can keep.
    /// A host whose root lacks some (this one has no CAP_SYS_RESOURCE) gives
    /// `--privileged` and `--cap-add ALL` only these.
    pub holdable_caps: u64,
    /// The engine holds CAP_SYS_RESOURCE, so a container may get hard
    /// limits above the engine's own.
    pub can_raise_rlimits: bool,
    /// The engine's hard limit of each resource (RLIM_INFINITY = u64::MAX).
    pub hard_limits: BTreeMap<UlimitName, u64>,
    /// (major, minor) of the running kernel, for seccomp profiles'
    /// `minKernel`.
    pub kernel: (u32, u32),
    /// Per-CPU `thermal_throttle` folders, which docker masks too (they
    /// leak other tenants' load).
    pub thermal_throttle: Vec<String>,
    /// Where `--privileged` takes the host's devices from.
    pub dev: PathBuf,
}

impl Host {
    /// Reads this host; what cannot be read falls back to the strictest
    /// value (no cgroup namespace, no swap limit, one CPU).
    pub fn detect() -> Host {
        let layout = Layout::detect().ok();
        let cgroup_v2 = layout.as_ref().is_some_and(|l| l.mode() == Mode::V2);
        let swap_limit = layout.as_ref().is_some_and(|l| {
            cgroup_v2
                || l.v1
                    .iter()
                    .filter(|h| h.controllers.iter().any(|c| c == "memory"))
                    .any(|h| h.mount_point.join("memory.memsw.limit_in_bytes").exists())
        });
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let mask = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
                .unwrap_or(0)
        };
        Host {
            cgroup_v2,
            swap_limit,
            cpus: affinity_cpus(),
            hostname: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
            last_cap: runtime_core::capabilities::last_cap(),
            holdable_caps: mask("CapPrm:") & mask("CapBnd:"),
            can_raise_rlimits: mask("CapEff:") & (1 << CAP_SYS_RESOURCE) != 0,
            hard_limits: UlimitName::ALL
                .into_iter()
                .map(|name| (name, hard_limit(name)))
                .collect(),
            kernel: kernel_version(),
            thermal_throttle: thermal_throttle_paths(),
            dev: PathBuf::from("/dev"),
        }
    }
}

/// CPUs in our affinity mask, as Go's runtime.NumCPU (docker's bound).
fn affinity_cpus() -> usize {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..nix::sched::CpuSet::count())
            .filter(|i| set.is_set(*i).unwrap_or(false))
            .count()
            .max(1),
        Err(_) => std::thread::available_parallelism().map_or(1, usize::from),
    }
}

fn hard_limit(name: UlimitName) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass and nothing else.
    if unsafe { libc::getrlimit(name.resource(), &mut limit) } == 0 {
        limit.rlim_max
    } else {
        libc::RLIM_INFINITY
    }
}

/// Its kernel index: raising a hard rlimit needs it.
const CAP_SYS_RESOURCE: u32 = 24;

fn kernel_version() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    parse_kernel(&release).unwrap_or((0, 0))
}

/// "6.1.0-18-amd64" → (6, 1).
pub(crate) fn parse_kernel(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn thermal_throttle_paths() -> Vec<String> {
    let Ok(cpus) = std::fs::read_dir("/sys/devices/system/cpu") else {
        return Vec::new();
    };
    let mut paths: Vec<String> = cpus
        .flatten()
        .filter(|e| {
            e.file_name().to_str().is_some_and(|n| {
                n.strip_prefix("cpu")
                    .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
            })
        })
        .map(|e| e.path().join("thermal_throttle"))
        .filter(|p| p.exists())
        .filter_map(|p| p.to_str().map(str::to_owned))
        .collect();
    paths.sort();
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases() {
        assert_eq!(parse_kernel("6.1.0-18-amd64\n"), Some((6, 1)));
        assert_eq!(parse_kernel("5.15.133.1-microsoft"), Some((5, 15)));
        assert_eq!(parse_kernel("garbage"), None);
    }

    #[test]
    fn this_host_reads() {
        let host = Host::detect();
        assert!(host.cpus >= 1);
        assert!(host.last_cap >= 36, "{host:?}");
        if nix::unistd::geteuid().is_root() {
            // Root holds at least docker's defaults (CAP_CHOWN is bit 0).
            assert_ne!(host.holdable_caps & 1, 0, "{host:?}");
        }
        assert_eq!(host.hard_limits.len(), UlimitName::ALL.len());
    }
}
