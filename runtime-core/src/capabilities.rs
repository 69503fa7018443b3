//! Linux capabilities of the container process: the five sets of the OCI
//! spec's `process.capabilities` made true for the calling thread.
//!
//! The container's init uses them in this order, the way runc does:
//!
//! 1. [`drop_bounding`] while it still holds `CAP_SETPCAP`,
//! 2. [`keep_across_setuid`], then its own setgroups/setgid/setuid,
//! 3. [`apply`] as the last step before exec: effective, permitted and
//!    inheritable in one `capset(2)`, then the ambient set, then
//!    `PR_SET_KEEPCAPS` cleared again.
//!
//! Every step is a handful of raw syscalls with no allocation, so it is safe
//! after fork. A capability the running kernel does not know (above
//! `/proc/sys/kernel/cap_last_cap`) is left out with a warning instead of
//! failing, as runc does, so one config.json works on old and new kernels.
//! [`CapSets::from_spec`] does that resolution once; the free functions
//! resolve on each call for callers that hold only the spec.

use std::fmt;
use std::sync::OnceLock;

use nix::errno::Errno;
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

/// A failed capability syscall, named with the capability it was about.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("prctl(PR_SET_KEEPCAPS, {value}): {errno}")]
    KeepCaps { value: u8, errno: Errno },
    #[error("dropping {cap} from the bounding set (PR_CAPBSET_DROP): {errno}")]
    DropBounding { cap: &'static str, errno: Errno },
    #[error(
        "capset(effective=[{effective}], permitted=[{permitted}], inheritable=[{inheritable}]): {errno}"
    )]
    Capset {
        effective: CapMask,
        permitted: CapMask,
        inheritable: CapMask,
        errno: Errno,
    },
    #[error("clearing the ambient set (PR_CAP_AMBIENT_CLEAR_ALL): {errno}")]
    ClearAmbient { errno: Errno },
    #[error("raising {cap} in the ambient set (PR_CAP_AMBIENT_RAISE): {errno}")]
    RaiseAmbient { cap: &'static str, errno: Errno },
}

/// Capability names by kernel index (`include/uapi/linux/capability.h`):
/// the list docker's `ALL` and `--privileged` draw from.
pub const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default capability set, as `CAP_*` names.
pub fn docker_default() -> Vec<String> {
    [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]
    .iter()
    .map(|name| (*name).to_owned())
    .collect()
}

/// The kernel's `CAP_*` name of a capability, e.g. `CAP_NET_ADMIN`.
pub fn name(cap: Capability) -> &'static str {
    NAMES[usize::from(index(cap))]
}

/// The capability a `CAP_*` name stands for; the prefix and case are
/// optional (`net_admin` works), as docker and Kubernetes accept both.
pub fn from_name(name: &str) -> Option<Capability> {
    let bare = name
        .get(..4)
        .filter(|prefix| prefix.eq_ignore_ascii_case("CAP_"))
        .map_or(name, |_| &name[4..]);
    let position = NAMES
        .iter()
        .position(|known| known[4..].eq_ignore_ascii_case(bare))?;
    ALL.get(position).copied()
}

/// Every capability oci-spec knows, in kernel index order (so that
/// `ALL[i]` has index `i`, which a test checks).
const ALL: [Capability; 41] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::LinuxImmutable,
    Capability::NetBindService,
    Capability::NetBroadcast,
    Capability::NetAdmin,
    Capability::NetRaw,
    Capability::IpcLock,
    Capability::IpcOwner,
    Capability::SysModule,
    Capability::SysRawio,
    Capability::SysChroot,
    Capability::SysPtrace,
    Capability::SysPacct,
    Capability::SysAdmin,
    Capability::SysBoot,
    Capability::SysNice,
    Capability::SysResource,
    Capability::SysTime,
    Capability::SysTtyConfig,
    Capability::Mknod,
    Capability::Lease,
    Capability::AuditWrite,
    Capability::AuditControl,
    Capability::Setfcap,
    Capability::MacOverride,
    Capability::MacAdmin,
    Capability::Syslog,
    Capability::WakeAlarm,
    Capability::BlockSuspend,
    Capability::AuditRead,
    Capability::Perfmon,
    Capability::Bpf,
    Capability::CheckpointRestore,
];

/// The kernel's number for a capability. An exhaustive match, so a new
/// oci-spec variant fails the build here instead of mapping to a wrong bit.
fn index(cap: Capability) -> u8 {
    match cap {
        Capability::Chown => 0,
        Capability::DacOverride => 1,
        Capability::DacReadSearch => 2,
        Capability::Fowner => 3,
        Capability::Fsetid => 4,
        Capability::Kill => 5,
        Capability::Setgid => 6,
        Capability::Setuid => 7,
        Capability::Setpcap => 8,
        Capability::LinuxImmutable => 9,
        Capability::NetBindService => 10,
        Capability::NetBroadcast => 11,
        Capability::NetAdmin => 12,
        Capability::NetRaw => 13,
        Capability::IpcLock => 14,
        Capability::IpcOwner => 15,
        Capability::SysModule => 16,
        Capability::SysRawio => 17,
        Capability::SysChroot => 18,
        Capability::SysPtrace => 19,
        Capability::SysPacct => 20,
        Capability::SysAdmin => 21,
        Capability::SysBoot => 22,
        Capability::SysNice => 23,
        Capability::SysResource => 24,
        Capability::SysTime => 25,
        Capability::SysTtyConfig => 26,
        Capability::Mknod => 27,
        Capability::Lease => 28,
        Capability::AuditWrite => 29,
        Capability::AuditControl => 30,
        Capability::Setfcap => 31,
        Capability::MacOverride => 32,
        Capability::MacAdmin => 33,
        Capability::Syslog => 34,
        Capability::WakeAlarm => 35,
        Capability::BlockSuspend => 36,
        Capability::AuditRead => 37,
        Capability::Perfmon => 38,
        Capability::Bpf => 39,
        Capability::CheckpointRestore => 40,
    }
}

/// The highest capability number the running kernel knows.
///
/// Read once per process and cached: calling it before fork means the
/// container's init never opens a file for it. Falls back to probing the
/// bounding set when /proc is not mounted (inside a fresh rootfs).
pub fn last_cap() -> u8 {
    static LAST_CAP: OnceLock<u8> = OnceLock::new();
    *LAST_CAP.get_or_init(|| {
        crate::kernel_files::read(std::path::Path::new("/proc/sys/kernel/cap_last_cap"))
            .ok()
            .and_then(|text| text.trim().parse::<u8>().ok())
            .filter(|last| *last < 64)
            .unwrap_or_else(probe_last_cap)
    })
}

/// PR_CAPBSET_READ fails with EINVAL past the last capability: a binary
/// search finds it in six calls.
fn probe_last_cap() -> u8 {
    let known = |cap: u8| {
        // SAFETY: PR_CAPBSET_READ only reads the calling thread's bounding set.
        unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0) >= 0 }
    };
    let (mut low, mut high) = (0u8, 63u8);
    while low < high {
        let mid = low + (high - low).div_ceil(2);
        if known(mid) {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    low
}

/// A set of capabilities as the kernel's bitmask, printed as names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapMask(pub u64);

impl CapMask {
    pub fn contains(self, index: u8) -> bool {
        index < 64 && self.0 & (1 << index) != 0
    }

    fn indices(self) -> impl Iterator<Item = u8> {
        (0u8..64).filter(move |i| self.contains(*i))
    }
}

impl fmt::Display for CapMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, i) in self.indices().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            match NAMES.get(usize::from(i)) {
                Some(name) => f.write_str(name)?,
                None => write!(f, "CAP_{i}")?,
            }
        }
        Ok(())
    }
}

/// The five sets of a spec, resolved against the running kernel.
///
/// Build it before fork ([`CapSets::from_spec`] logs the skipped names
/// there), then call [`CapSets::drop_bounding`] and [`CapSets::apply`] in the
/// child: they only make syscalls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: CapMask,
    pub effective: CapMask,
    pub permitted: CapMask,
    pub inheritable: CapMask,
    pub ambient: CapMask,
}

impl CapSets {
    pub fn from_spec(caps: &LinuxCapabilities) -> Self {
        let last = last_cap();
        let mut sets = CapSets {
            bounding: mask("bounding", caps.bounding().as_ref(), last),
            effective: mask("effective", caps.effective().as_ref(), last),
            permitted: mask("permitted", caps.permitted().as_ref(), last),
            inheritable: mask("inheritable", caps.inheritable().as_ref(), last),
            ambient: mask("ambient", caps.ambient().as_ref(), last),
        };
        sets.ambient = ambient_allowed(sets.ambient, sets.permitted, sets.inheritable);
        sets
    }

    /// Drops from the bounding set every capability not in `bounding`.
    /// Needs `CAP_SETPCAP`, so it runs before the user switch.
    pub fn drop_bounding(&self) -> Result<(), CapsError> {
        for cap in 0..=last_cap() {
            if self.bounding.contains(cap) {
                continue;
            }
            // SAFETY: PR_CAPBSET_DROP takes a capability number and changes
            // only the calling thread's bounding set.
            let rc =
                unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
            if rc != 0 {
                return Err(CapsError::DropBounding {
                    cap: NAMES.get(usize::from(cap)).copied().unwrap_or("CAP_?"),
                    errno: Errno::last(),
                });
            }
        }
        Ok(())
    }

    /// Sets effective, permitted and inheritable, then the ambient set, and
    /// clears `PR_SET_KEEPCAPS` again.
    pub fn apply(&self) -> Result<(), CapsError> {
        capset(self.effective, self.permitted, self.inheritable)?;
        // Ambient capabilities the runtime itself may have been started with
        // must not leak into the container: start from an empty set.
        // SAFETY: plain prctl on the calling thread.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0,
                0,
                0,
            )
        };
        if rc != 0 {
            return Err(CapsError::ClearAmbient {
                errno: Errno::last(),
            });
        }
        for cap in self.ambient.indices() {
            // SAFETY: plain prctl on the calling thread.
            let rc = unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    libc::c_ulong::from(cap),
                    0,
                    0,
                )
            };
            if rc != 0 {
                return Err(CapsError::RaiseAmbient {
                    cap: NAMES.get(usize::from(cap)).copied().unwrap_or("CAP_?"),
                    errno: Errno::last(),
                });
            }
        }
        set_keepcaps(false)
    }
}

/// Keeps the permitted set through the coming setuid away from uid 0 (the
/// kernel would clear it otherwise); [`apply`] clears the flag afterwards.
pub fn keep_across_setuid() -> Result<(), CapsError> {
    set_keepcaps(true)
}

/// Drops every capability not in `caps.bounding` from the bounding set; a
/// spec without a bounding set empties it, as runc does.
pub fn drop_bounding(caps: &LinuxCapabilities) -> Result<(), CapsError> {
    CapSets {
        bounding: mask("bounding", caps.bounding().as_ref(), last_cap()),
        ..CapSets::default()
    }
    .drop_bounding()
}

/// Makes the effective, permitted, inheritable and ambient sets exactly the
/// spec's, then clears `PR_SET_KEEPCAPS`. The bounding set is
/// [`drop_bounding`]'s business, done earlier while still privileged.
pub fn apply(caps: &LinuxCapabilities) -> Result<(), CapsError> {
    let last = last_cap();
    let effective = mask("effective", caps.effective().as_ref(), last);
    let permitted = mask("permitted", caps.permitted().as_ref(), last);
    let inheritable = mask("inheritable", caps.inheritable().as_ref(), last);
    let ambient = mask("ambient", caps.ambient().as_ref(), last);
    CapSets {
        bounding: CapMask::default(),
        effective,
        permitted,
        inheritable,
        ambient: ambient_allowed(ambient, permitted, inheritable),
    }
    .apply()
}

fn set_keepcaps(keep: bool) -> Result<(), CapsError> {
    let value = u8::from(keep);
    // SAFETY: plain prctl on the calling thread.
    let rc = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(value), 0, 0, 0) };
    if rc != 0 {
        return Err(CapsError::KeepCaps {
            value,
            errno: Errno::last(),
        });
    }
    Ok(())
}

/// The spec's set as a bitmask, without the capabilities this kernel lacks.
fn mask(set: &str, caps: Option<&Capabilities>, last: u8) -> CapMask {
    let mut bits = 0u64;
    for cap in caps.into_iter().flatten() {
        let i = index(*cap);
        if i > last {
            tracing::warn!(
                "capability {} of the {set} set is unknown to this kernel (last is {}): skipped",
                name(*cap),
                NAMES.get(usize::from(last)).copied().unwrap_or("?"),
            );
            continue;
        }
        bits |= 1 << i;
    }
    CapMask(bits)
}

/// The kernel raises an ambient capability only if it is both permitted
/// and inheritable; the others are left out with a warning (crun ignores
/// them the same way) rather than failing after fork.
fn ambient_allowed(ambient: CapMask, permitted: CapMask, inheritable: CapMask) -> CapMask {
    let allowed = CapMask(ambient.0 & permitted.0 & inheritable.0);
    let refused = CapMask(ambient.0 & !allowed.0);
    if refused.0 != 0 {
        tracing::debug!(
            "ambient capabilities [{refused}] are not both permitted and inheritable: skipped"
        );
    }
    allowed
}

/// One capset(2) for the three base sets (version 3: two 32-bit words).
fn capset(effective: CapMask, permitted: CapMask, inheritable: CapMask) -> Result<(), CapsError> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    // Low words first, then high words; the `as u32` casts keep exactly
    // the 32 bits each word holds.
    let data = [
        Data {
            effective: effective.0 as u32,
            permitted: permitted.0 as u32,
            inheritable: inheritable.0 as u32,
        },
        Data {
            effective: (effective.0 >> 32) as u32,
            permitted: (permitted.0 >> 32) as u32,
            inheritable: (inheritable.0 >> 32) as u32,
        },
    ];
    // SAFETY: header and data are live, correctly laid out v3 structures.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    if rc != 0 {
        return Err(CapsError::Capset {
            effective,
            permitted,
            inheritable,
            errno: Errno::last(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};

    fn set(names: &[&str]) -> Capabilities {
        names.iter().filter_map(|n| from_name(n)).collect()
    }

    #[test]
    fn names_and_indices_agree() {
        for (i, cap) in ALL.iter().enumerate() {
            assert_eq!(usize::from(index(*cap)), i);
            assert_eq!(from_name(NAMES[i]), Some(*cap));
        }
        assert_eq!(from_name("net_admin"), Some(Capability::NetAdmin));
        assert_eq!(from_name("SYS_ADMIN"), Some(Capability::SysAdmin));
        assert_eq!(from_name("CAP_NOPE"), None);
        assert_eq!(name(Capability::NetAdmin), "CAP_NET_ADMIN");
    }

    #[test]
    fn docker_default_has_fourteen_known_caps() {
        let caps = docker_default();
        assert_eq!(caps.len(), 14);
        assert!(caps.iter().all(|c| from_name(c).is_some()), "{caps:?}");
    }

    #[test]
    fn last_cap_matches_probe() {
        assert_eq!(last_cap(), probe_last_cap());
        assert!(last_cap() >= 36);
    }

    #[test]
    fn unknown_to_kernel_is_skipped() {
        let all: Capabilities = ALL.iter().copied().collect();
        // Pretend the kernel stops at CAP_SYS_ADMIN (21).
        let m = mask("bounding", Some(&all), 21);
        assert_eq!(m.0, (1 << 22) - 1);
    }

    #[test]
    fn ambient_needs_permitted_and_inheritable() {
        let got = ambient_allowed(CapMask(0b111), CapMask(0b011), CapMask(0b110));
        assert_eq!(got, CapMask(0b010));
    }

    #[test]
    fn mask_displays_names() {
        assert_eq!(CapMask(1 << 12 | 1).to_string(), "CAP_CHOWN,CAP_NET_ADMIN");
    }

    /// Parses `CapEff:\t000...` style lines out of /proc/self/status without
    /// allocating (the test forks a multi-threaded process).
    fn status_masks(status: &[u8]) -> [u64; 5] {
        let keys: [&[u8]; 5] = [b"CapInh:", b"CapPrm:", b"CapEff:", b"CapBnd:", b"CapAmb:"];
        let mut out = [u64::MAX; 5];
        for line in status.split(|b| *b == b'\n') {
            for (k, key) in keys.iter().enumerate() {
                if let Some(rest) = line.strip_prefix(*key) {
                    let mut value = 0u64;
                    for b in rest.iter().filter(|b| !b.is_ascii_whitespace()) {
                        let digit = match b {
                            b'0'..=b'9' => b - b'0',
                            b'a'..=b'f' => b - b'a' + 10,
                            _ => return [u64::MAX; 5],
                        };
                        value = value << 4 | u64::from(digit);
                    }
                    out[k] = value;
                }
            }
        }
        out
    }

    fn read_status(buf: &mut [u8]) -> usize {
        // SAFETY: open/read/close into a stack buffer; no allocation.
        unsafe {
            let fd = libc::open(c"/proc/self/status".as_ptr(), libc::O_RDONLY);
            if fd < 0 {
                return 0;
            }
            let mut total = 0usize;
            while total < buf.len() {
                let n = libc::read(fd, buf[total..].as_mut_ptr().cast(), buf.len() - total);
                if n <= 0 {
                    break;
                }
                total += n as usize;
            }
            libc::close(fd);
            total
        }
    }

    /// Forks, runs `body` in the child and returns its exit code. The
    /// child only makes syscalls, since the test harness is multi-threaded.
    fn in_child(body: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child runs `body`, which does not allocate or lock,
        // then _exit()s without unwinding.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let code = body();
                // SAFETY: leaving the child without running the parent's atexit.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => match waitpid(child, None).expect("waitpid") {
                WaitStatus::Exited(_, code) => code,
                other => panic!("child ended with {other:?}"),
            },
        }
    }

    #[test]
    fn fork_apply_reduced_set() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let mut caps = LinuxCapabilities::default();
        caps.set_bounding(Some(set(&[
            "CAP_CHOWN",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
            "CAP_SETPCAP",
        ])));
        caps.set_permitted(Some(set(&[
            "CAP_CHOWN",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
        ])));
        caps.set_effective(Some(set(&["CAP_CHOWN", "CAP_KILL"])));
        caps.set_inheritable(Some(set(&["CAP_KILL", "CAP_NET_BIND_SERVICE"])));
        // CAP_CHOWN is not inheritable, so only CAP_KILL and
        // CAP_NET_BIND_SERVICE can become ambient.
        caps.set_ambient(Some(set(&[
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
            "CAP_CHOWN",
        ])));
        let sets = CapSets::from_spec(&caps);
        let bits = |names: &[&str]| {
            names
                .iter()
                .filter_map(|n| from_name(n))
                .fold(0u64, |m, c| m | 1 << index(c))
        };
        let want = [
            bits(&["CAP_KILL", "CAP_NET_BIND_SERVICE"]),
            bits(&["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]),
            bits(&["CAP_CHOWN", "CAP_KILL"]),
            bits(&[
                "CAP_CHOWN",
                "CAP_KILL",
                "CAP_NET_BIND_SERVICE",
                "CAP_SETPCAP",
            ]),
            bits(&["CAP_KILL", "CAP_NET_BIND_SERVICE"]),
        ];
        let code = in_child(|| {
            if sets.drop_bounding().is_err() {
                return 10;
            }
            if keep_across_setuid().is_err() {
                return 11;
            }
            if sets.apply().is_err() {
                return 12;
            }
            let mut buf = [0u8; 8192];
            let n = read_status(&mut buf);
            let got = status_masks(&buf[..n]);
            for (k, (g, w)) in got.iter().zip(want.iter()).enumerate() {
                if g != w {
                    return 20 + k as i32;
                }
            }
            // PR_GET_KEEPCAPS must be back to 0.
            // SAFETY: plain prctl.
            if unsafe { libc::prctl(libc::PR_GET_KEEPCAPS, 0, 0, 0, 0) } != 0 {
                return 30;
            }
            0
        });
        // 20..=24: CapInh, CapPrm, CapEff, CapBnd or CapAmb differs.
        assert_eq!(code, 0, "child exit code");
    }

    #[test]
    fn fork_apply_through_setuid() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let mut caps = LinuxCapabilities::default();
        let docker: Vec<String> = docker_default();
        let names: Vec<&str> = docker.iter().map(String::as_str).collect();
        caps.set_bounding(Some(set(&names)));
        caps.set_permitted(Some(set(&names)));
        caps.set_effective(Some(set(&names)));
        caps.set_inheritable(Some(Capabilities::new()));
        caps.set_ambient(Some(Capabilities::new()));
        let sets = CapSets::from_spec(&caps);
        let docker_bits = sets.permitted.0;
        let code = in_child(|| {
            if sets.drop_bounding().is_err() || keep_across_setuid().is_err() {
                return 10;
            }
            // SAFETY: plain syscalls; uid/gid 1000 need not exist.
            if unsafe { libc::setresgid(1000, 1000, 1000) } != 0
                || unsafe { libc::setresuid(1000, 1000, 1000) } != 0
            {
                return 11;
            }
            if sets.apply().is_err() {
                return 12;
            }
            let mut buf = [0u8; 8192];
            let n = read_status(&mut buf);
            let [inh, prm, eff, bnd, amb] = status_masks(&buf[..n]);
            if prm != docker_bits
                || eff != docker_bits
                || bnd != docker_bits
                || inh != 0
                || amb != 0
            {
                return 20;
            }
            0
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn drop_bounding_error_names_the_capability() {
        let err = CapsError::DropBounding {
            cap: "CAP_NET_ADMIN",
            errno: Errno::EPERM,
        };
        assert_eq!(
            err.to_string(),
            "dropping CAP_NET_ADMIN from the bounding set (PR_CAPBSET_DROP): EPERM: Operation not permitted"
        );
    }
}
