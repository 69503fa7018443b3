//! The mounts: docker's defaults (/proc, a private /dev, devpts, /dev/shm,
//! mqueue, read-only /sys and cgroup), the engine's extra binds, then the
//! user's `-v`/`--mount`/`--tmpfs`; and the masked and read-only paths.

use std::path::Path;

use oci_spec::runtime::Mount;
use storage::mounts::{MountSpec, Propagation};

use super::process::INIT_PATH;
use super::{ExtraBind, Host, ResolvedMounts, Result, SpecError};
use crate::config::ContainerConfig;

/// Docker's masked paths (28+): read as empty (files) or an empty
/// read-only tmpfs (folders). Per-CPU thermal_throttle folders are added
/// from the host.
pub const DEFAULT_MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const DEFAULT_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(destination.into());
    m.set_typ(Some(typ.to_owned()));
    m.set_source(Some(source.into()));
    m.set_options(Some(options.iter().map(|o| (*o).to_owned()).collect()));
    m
}

fn bind(source: &Path, target: &Path, propagation: Propagation, read_only: bool) -> Mount {
    let mut options = vec!["rbind".to_owned(), propagation.as_str().to_owned()];
    if read_only {
        options.push("ro".to_owned());
    }
    let mut m = Mount::default();
    m.set_destination(target.to_path_buf());
    m.set_typ(Some("bind".to_owned()));
    m.set_source(Some(source.to_path_buf()));
    m.set_options(Some(options));
    m
}

/// Docker's default mounts; /sys and the cgroup mount are writable only
/// when privileged.
fn defaults(config: &ContainerConfig) -> Vec<Mount> {
    let sys_mode = if config.privileged { "rw" } else { "ro" };
    let shm_size = format!("size={}", config.resources.shm_size);
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_mode],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &[sys_mode, "nosuid", "noexec", "nodev"],
        ),
    ]
}

/// Every mount in order. A user mount on the target of a default or extra
/// mount replaces it (`-v /host/shm:/dev/shm`, a bind over /etc/hosts);
/// user mounts go shallowest first, so `/a` is mounted before `/a/b`.
pub fn all(config: &ContainerConfig, resolved: &ResolvedMounts) -> Result<Vec<Mount>> {
    let user_targets: Vec<&Path> = config.mounts.iter().map(MountSpec::target).collect();
    let taken = |m: &Mount| user_targets.contains(&m.destination().as_path());
    let mut mounts: Vec<Mount> = defaults(config).into_iter().filter(|m| !taken(m)).collect();

    let init = match (&resolved.init, config.init) {
        (Some(source), true) => Some(ExtraBind {
            source: source.clone(),
            target: INIT_PATH.into(),
            read_only: true,
        }),
        _ => None,
    };
    for extra in resolved.extra_binds.iter().chain(&init) {
        let m = bind(
            &extra.source,
            &extra.target,
            Propagation::RPrivate,
            extra.read_only,
        );
        if !taken(&m) {
            mounts.push(m);
        }
    }

    let mut user: Vec<&MountSpec> = config.mounts.iter().collect();
    user.sort_by_key(|m| m.target().components().count());
    for spec in user {
        mounts.push(match spec {
            MountSpec::Bind(b) => bind(&b.source, &b.target, b.propagation, b.read_only),
            MountSpec::Volume(v) => {
                let source = resolved
                    .volumes
                    .get(&v.target)
                    .ok_or_else(|| SpecError::VolumeNotMounted(v.target.clone()))?;
                bind(source, &v.target, Propagation::RPrivate, v.read_only)
            }
            MountSpec::Tmpfs(t) => {
                let mut options: Vec<String> =
                    ["noexec", "nosuid", "nodev"].map(str::to_owned).to_vec();
                if let Some(size) = t.size.filter(|s| *s > 0) {
                    options.push(format!("size={size}"));
                }
                if let Some(mode) = t.mode {
                    options.push(format!("mode={mode:o}"));
                }
                if t.read_only {
                    options.push("ro".to_owned());
                }
                let mut m = Mount::default();
                m.set_destination(t.target.clone());
                m.set_typ(Some("tmpfs".to_owned()));
                m.set_source(Some("tmpfs".into()));
                m.set_options(Some(options));
                m
            }
        });
    }
    Ok(mounts)
}

/// Masked and read-only paths: docker's, none when privileged or with
/// `systempaths=unconfined`.
pub fn system_paths(config: &ContainerConfig, host: &Host) -> (Vec<String>, Vec<String>) {
    if config.privileged || config.security.unmask_system_paths {
        return (Vec::new(), Vec::new());
    }
    let masked = DEFAULT_MASKED_PATHS
        .iter()
        .map(|p| (*p).to_owned())
        .chain(host.thermal_throttle.iter().cloned())
        .collect();
    let readonly = DEFAULT_READONLY_PATHS
        .iter()
        .map(|p| (*p).to_owned())
        .collect();
    (masked, readonly)
}

/// As docker: a shared bind needs the container's root to propagate
/// (`rshared`), a slave one `rslave`; otherwise the runtime's default.
pub fn rootfs_propagation(config: &ContainerConfig) -> Option<String> {
    let propagations = config.mounts.iter().filter_map(|m| match m {
        MountSpec::Bind(b) => Some(b.propagation),
        _ => None,
    });
    let mut wanted = None;
    for p in propagations {
        match p {
            Propagation::Shared | Propagation::RShared => return Some("rshared".into()),
            Propagation::Slave | Propagation::RSlave => wanted = Some("rslave".into()),
            Propagation::Private | Propagation::RPrivate => {}
        }
    }
    wanted
}
