//! The last steps before a container process execs, shared by the init of a
//! new container and by a process exec'd into a running one: limits,
//! identity, capabilities, the executable, and the file descriptors it may
//! inherit.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxCapabilities, PosixRlimitType, Process};

use crate::error::{Context, Error, Result};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn apply_rlimits(process: &Process) -> Result<()> {
    for limit in process.rlimits().iter().flatten() {
        let resource = rlimit_resource(limit.typ());
        let value = libc::rlimit {
            rlim_cur: limit.soft(),
            rlim_max: limit.hard(),
        };
        // SAFETY: setrlimit with a valid struct.
        if unsafe { libc::setrlimit(resource, &value) } != 0 {
            let errno = nix::Error::last();
            return Err(Error::Sys {
                // Display, not Debug: "RLIMIT_NOFILE" as config.json
                // spells it, not the Rust variant name.
                context: format!(
                    "setting rlimit {} to soft {} hard {} (the hard limit cannot be raised without CAP_SYS_RESOURCE)",
                    limit.typ(),
                    limit.soft(),
                    limit.hard()
                ),
                errno,
            });
        }
    }
    Ok(())
}

fn rlimit_resource(typ: PosixRlimitType) -> libc::__rlimit_resource_t {
    match typ {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

pub fn write_oom_score_adj(process: &Process) -> Result<()> {
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .context(|| format!("setting oomScoreAdj {adj}"))?;
    }
    Ok(())
}

/// Drops to the process's user: supplementary groups, gid, uid, then the
/// capability sets, then no_new_privs. Capabilities survive the uid change
/// through PR_SET_KEEPCAPS and are set to exactly the spec's afterwards.
///
/// A process without `capabilities` gets none, the bounding set included,
/// as under runc. (oci-spec's `LinuxCapabilities::default()` is not "none"
/// but three capabilities, and leaving the bounding set alone let a root
/// process regain every capability of the runtime at exec.)
pub fn switch_user(process: &Process) -> Result<()> {
    let user = process.user();
    let none = no_capabilities();
    let caps = process.capabilities().as_ref().unwrap_or(&none);
    crate::capabilities::drop_bounding(caps)?;
    crate::capabilities::keep_across_setuid()?;
    let groups: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
    // SAFETY: setgroups with a valid slice.
    if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } != 0 {
        // Inside a user namespace with setgroups denied, only an empty
        // list could work and it was asked for: carry on.
        let errno = nix::Error::last();
        if !(groups.is_empty() && errno == nix::errno::Errno::EPERM) {
            return Err(errno).context(|| format!("setting additional groups {groups:?}"));
        }
    }
    let (uid, gid) = (user.uid(), user.gid());
    // SAFETY: plain syscalls.
    if unsafe { libc::setresgid(gid, gid, gid) } != 0 {
        return Err(nix::Error::last()).context(|| format!("setting gid {gid}"));
    }
    if unsafe { libc::setresuid(uid, uid, uid) } != 0 {
        return Err(nix::Error::last()).context(|| format!("setting uid {uid}"));
    }
    crate::capabilities::apply(caps)?;
    if process.no_new_privileges().unwrap_or(false) {
        nix::sys::prctl::set_no_new_privs().context(|| "setting no_new_privs".into())?;
    }
    Ok(())
}

/// Every set empty.
fn no_capabilities() -> LinuxCapabilities {
    let mut none = LinuxCapabilities::default();
    none.set_bounding(None)
        .set_effective(None)
        .set_permitted(None)
        .set_inheritable(None)
        .set_ambient(None);
    none
}

/// Enters the process's cwd and checks that it lies inside the container's
/// root: a cwd reached through a descriptor of the host's (runc's
/// CVE-2024-21626) reads as "(unreachable)", which glibc turns into an
/// error.
pub fn enter_cwd(cwd: &Path) -> Result<()> {
    nix::unistd::chdir(cwd).context(|| format!("entering process.cwd {}", cwd.display()))?;
    match nix::unistd::getcwd() {
        Ok(here) if here.is_absolute() => Ok(()),
        _ => Err(Error::InvalidSpec(format!(
            "process.cwd {} is not inside the container",
            cwd.display()
        ))),
    }
}

/// The executable `args[0]` names, found as execvp would inside the
/// container (after pivot_root), so that a missing command fails `create`
/// with docker's words instead of failing after `start`.
pub fn resolve_executable(process: &Process) -> Result<(CString, Vec<CString>, Vec<CString>)> {
    let args = process.args().as_deref().unwrap_or(&[]);
    let Some(arg0) = args.first() else {
        return Err(Error::InvalidSpec("process.args must not be empty".into()));
    };
    let env: Vec<String> = process.env().clone().unwrap_or_default();
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let found = find_executable(arg0, path_var, process.cwd())?;
    let to_c = |s: &str| {
        CString::new(s).map_err(|_| Error::InvalidSpec(format!("{s:?} contains a NUL byte")))
    };
    let path = CString::new(found.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::InvalidSpec(format!("{arg0:?} contains a NUL byte")))?;
    let argv = args.iter().map(|a| to_c(a)).collect::<Result<Vec<_>>>()?;
    let envp = env.iter().map(|e| to_c(e)).collect::<Result<Vec<_>>>()?;
    Ok((path, argv, envp))
}

/// The message docker prints for these is what users search for, so keep it.
pub fn not_found(name: &str) -> Error {
    Error::Init(format!(
        "exec: \"{name}\": executable file not found in $PATH"
    ))
}

fn find_executable(name: &str, path_var: &str, cwd: &Path) -> Result<PathBuf> {
    let is_executable = |p: &Path| -> std::io::Result<bool> {
        let meta = std::fs::metadata(p)?;
        Ok(meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let candidate = cwd.join(name);
        return match is_executable(&candidate) {
            Ok(true) => Ok(PathBuf::from(name)),
            Ok(false) => Err(Error::Init(format!("exec: \"{name}\": permission denied"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Init(format!(
                "exec: \"{name}\": stat {name}: no such file or directory"
            ))),
            Err(e) => Err(Error::Init(format!("exec: \"{name}\": {e}"))),
        };
    }
    let mut denied = false;
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(name);
        match is_executable(&candidate) {
            Ok(true) => return Ok(candidate),
            Ok(false) => denied |= candidate.is_file(),
            Err(_) => {}
        }
    }
    if denied {
        return Err(Error::Init(format!("exec: \"{name}\": permission denied")));
    }
    Err(not_found(name))
}

/// Marks every descriptor from `first_kept_after` on close-on-exec: the
/// container must not inherit the runtime's descriptors (CVE-2024-21626).
pub fn close_inherited_fds(first_closed: u32) -> Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only flags descriptors.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first_closed,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc != 0 {
        return Err(nix::Error::last())
            .context(|| "marking inherited descriptors close-on-exec".into());
    }
    Ok(())
}

/// Replaces the process image, with every signal unblocked and at its
/// default action (as under runc): what the runtime's caller blocked, and
/// the SIGPIPE Rust's runtime ignores, would otherwise pass through execve
/// into the container. Returns only on failure.
pub fn exec(path: &CString, argv: &[CString], envp: &[CString]) -> Error {
    reset_signals();
    let err = nix::unistd::execve(path, argv, envp).unwrap_err();
    Error::Sys {
        context: format!("exec {}", path.to_string_lossy()),
        errno: err,
    }
}

fn reset_signals() {
    // SAFETY: plain signal syscalls on this process; SIGKILL and SIGSTOP
    // (which cannot be changed) and the real-time signals libc reserves
    // fail harmlessly.
    unsafe {
        for signal in 1..libc::SIGRTMIN() {
            libc::signal(signal, libc::SIG_DFL);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executables_are_found_on_path_as_execvp_would() {
        assert_eq!(
            find_executable("sh", "/nonexistent:/bin", Path::new("/")).expect("sh"),
            PathBuf::from("/bin/sh")
        );
        let err = find_executable("no-such-cmd", "/bin", Path::new("/")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "container init failed: exec: \"no-such-cmd\": executable file not found in $PATH"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "data").expect("write");
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err =
            find_executable(plain.to_str().expect("utf8"), "/bin", Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("permission denied"), "{err}");
        assert!(find_executable("/bin/sh", "", Path::new("/")).is_ok());
    }
}
