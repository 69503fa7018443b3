//! Cgroup resources (memory, CPU, pids, the device allow-list), the devices
//! of a privileged container, and rlimits.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxCpu, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxPids,
    LinuxResources, PosixRlimit, PosixRlimitBuilder,
};

use super::{Host, Result, SpecError};
use crate::config::{ContainerConfig, MemorySwap, NanoCpus, Resources, Ulimit};

/// Docker's device cgroup: deny everything, then allow mknod of any node
/// (using one still needs its own rule) and the default devices. `/dev/net/tun`
/// is runc's legacy entry that docker users rely on (VPN containers that
/// add NET_ADMIN and mknod it).
const ALLOWED_DEVICES: [(LinuxDeviceType, Option<i64>, Option<i64>, &str); 12] = [
    (LinuxDeviceType::C, None, None, "m"),
    (LinuxDeviceType::B, None, None, "m"),
    (LinuxDeviceType::C, Some(1), Some(3), "rwm"), // null
    (LinuxDeviceType::C, Some(1), Some(5), "rwm"), // zero
    (LinuxDeviceType::C, Some(1), Some(7), "rwm"), // full
    (LinuxDeviceType::C, Some(1), Some(8), "rwm"), // random
    (LinuxDeviceType::C, Some(1), Some(9), "rwm"), // urandom
    (LinuxDeviceType::C, Some(5), Some(0), "rwm"), // tty
    (LinuxDeviceType::C, Some(5), Some(1), "rwm"), // console
    (LinuxDeviceType::C, Some(5), Some(2), "rwm"), // ptmx
    (LinuxDeviceType::C, Some(136), None, "rwm"),  // pts/*
    (LinuxDeviceType::C, Some(10), Some(200), "rwm"), // net/tun
];

fn device_rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(allow);
    rule.set_typ(typ);
    rule.set_major(major);
    rule.set_minor(minor);
    rule.set_access(Some(access.to_owned()));
    rule
}

pub fn linux_resources(config: &ContainerConfig, host: &Host) -> Result<LinuxResources> {
    let r = &config.resources;
    let mut resources = LinuxResources::default();
    resources.set_devices(Some(if config.privileged {
        vec![device_rule(true, None, None, None, "rwm")]
    } else {
        std::iter::once(device_rule(false, None, None, None, "rwm"))
            .chain(ALLOWED_DEVICES.iter().map(|(typ, major, minor, access)| {
                device_rule(true, Some(*typ), *major, *minor, access)
            }))
            .collect()
    }));
    resources.set_memory(memory(r, host));
    resources.set_cpu(cpu(r));
    if let Some(limit) = r.pids_limit.filter(|l| *l > 0) {
        let mut pids = LinuxPids::default();
        pids.set_limit(limit);
        resources.set_pids(Some(pids));
    }
    Ok(resources)
}

/// The memory limit, and memory+swap: `--memory-swap`, or twice the
/// memory when only `--memory` is given (docker's default).
fn memory(r: &Resources, host: &Host) -> Option<LinuxMemory> {
    let limit = r.memory.filter(|m| *m > 0)?;
    let swap = match r.memory_swap {
        Some(MemorySwap::Unlimited) => Some(-1),
        Some(MemorySwap::Limit(swap)) if swap > 0 => i64::try_from(swap).ok(),
        _ => limit.checked_mul(2).and_then(|s| i64::try_from(s).ok()),
    };
    let swap = if host.swap_limit {
        swap
    } else {
        if r.memory_swap.is_some() {
            // Docker's warning, word for word.
            tracing::warn!(
                "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap."
            );
        }
        None
    };
    let mut memory = LinuxMemory::default();
    memory.set_limit(i64::try_from(limit).ok());
    memory.set_swap(swap);
    Some(memory)
}

fn cpu(r: &Resources) -> Option<LinuxCpu> {
    let shares = r.cpu_shares.filter(|s| *s > 0);
    let cpus = r.cpus.filter(|c| c.0 > 0);
    if shares.is_none() && cpus.is_none() {
        return None;
    }
    let mut cpu = LinuxCpu::default();
    cpu.set_shares(shares);
    if let Some(cpus) = cpus {
        cpu.set_quota(Some(cpus.quota()));
        cpu.set_period(Some(NanoCpus::PERIOD));
    }
    Some(cpu)
}

/// `--ulimit` as rlimits; none given means none set, so the container
/// inherits the engine's (docker's default). A hard limit above the
/// engine's own would fail in the container's init (raising needs
/// CAP_SYS_RESOURCE), so it is refused here with the reason.
pub fn rlimits(r: &Resources, host: &Host) -> Result<Option<Vec<PosixRlimit>>> {
    if r.ulimits.is_empty() {
        return Ok(None);
    }
    let shown = |v: u64| {
        if v == libc::RLIM_INFINITY {
            "unlimited".to_owned()
        } else {
            v.to_string()
        }
    };
    let mut out = Vec::with_capacity(r.ulimits.len());
    for u in &r.ulimits {
        let (soft, hard) = (Ulimit::to_rlim(u.soft), Ulimit::to_rlim(u.hard));
        let host_hard = host
            .hard_limits
            .get(&u.name)
            .copied()
            .unwrap_or(libc::RLIM_INFINITY);
        if hard > host_hard && !host.can_raise_rlimits {
            return Err(SpecError::UlimitAboveHost {
                name: u.name,
                asked: shown(hard),
                host: shown(host_hard),
            });
        }
        out.push(
            PosixRlimitBuilder::default()
                .typ(u.name.rlimit_type())
                .soft(soft)
                .hard(hard)
                .build()?,
        );
    }
    Ok(Some(out))
}

/// With `--privileged`, every device node of the host's /dev, as docker
/// (runc's `HostDevices`): folders of other filesystems or of the
/// container's own making (pts, shm, mqueue, fd) and /dev/console are
/// skipped; /dev/ptmx too, as the container's ptmx is its own devpts's.
pub fn devices(config: &ContainerConfig, host: &Host) -> Option<Vec<LinuxDevice>> {
    if !config.privileged {
        return None;
    }
    let mut found = Vec::new();
    collect_devices(&host.dev, &host.dev, &mut found);
    found.sort_by(|a, b| a.path().cmp(b.path()));
    Some(found)
}

fn collect_devices(root: &Path, dir: &Path, out: &mut Vec<LinuxDevice>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        let file_type = meta.file_type();
        if file_type.is_dir() {
            let skipped = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
            if !skipped.iter().any(|s| name == *s) {
                collect_devices(root, &entry.path(), out);
            }
            continue;
        }
        if name == "console" || name == "ptmx" {
            continue;
        }
        let typ = if file_type.is_char_device() {
            LinuxDeviceType::C
        } else if file_type.is_block_device() {
            LinuxDeviceType::B
        } else {
            continue;
        };
        // The same path in the container as on the host, under /dev.
        let Ok(inside) = entry
            .path()
            .strip_prefix(root)
            .map(|p| PathBuf::from("/dev").join(p))
        else {
            continue;
        };
        let rdev = meta.rdev();
        let mut device = LinuxDevice::default();
        device.set_path(inside);
        device.set_typ(typ);
        device.set_major(i64::from(libc::major(rdev)));
        device.set_minor(i64::from(libc::minor(rdev)));
        device.set_file_mode(Some(meta.mode() & 0o7777));
        device.set_uid(Some(meta.uid()));
        device.set_gid(Some(meta.gid()));
        out.push(device);
    }
}
