//! CVE-2019-5736: a container process that can ptrace ours (CAP_SYS_PTRACE
//! in the host's user namespace) could open /proc/PID/exe of the runtime's
//! forked children while they set up, and write the runtime binary on the
//! host through it once they are gone. Non-dumpable children stop everyone
//! else. For containers that hold CAP_SYS_PTRACE the runtime first re-runs
//! itself from a sealed in-memory copy, so that its exe can't be written.
//! Containers without it never pay for the copy.

use std::convert::Infallible;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;

use oci_spec::runtime::{Capability, LinuxCapabilities};

use crate::error::{Context, Error, Result};

const NAME: &str = "muelle-runtime";

/// Whether a process with these capabilities could reach our exe.
pub fn needed_for(caps: Option<&LinuxCapabilities>) -> bool {
    caps.and_then(|c| c.bounding().as_ref())
        .is_some_and(|b| b.contains(&Capability::SysPtrace))
}

/// Whether this process already runs from the sealed copy.
pub fn running_sealed() -> bool {
    std::fs::read_link("/proc/self/exe")
        .map(|p| {
            p.as_os_str()
                .as_bytes()
                .starts_with(format!("/memfd:{NAME}").as_bytes())
        })
        .unwrap_or(false)
}

/// The error a verb returns, before it makes anything, when it must run
/// from the sealed copy; the binary then calls `reexec`.
pub fn required() -> Result<()> {
    if running_sealed() {
        Ok(())
    } else {
        Err(Error::SealedExeRequired)
    }
}

/// Copies our binary into a sealed memfd and execs it with the same
/// arguments and environment. Returns only on failure.
pub fn reexec() -> Result<Infallible> {
    let name = CString::new(NAME).map_err(|_| Error::InvalidSpec(NAME.into()))?;
    // SAFETY: memfd_create with a valid name; the fd is owned below.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(nix::Error::last())
            .context(|| "creating the sealed copy of the runtime".into());
    }
    // SAFETY: fd was just returned to us.
    let mut copy = unsafe { File::from_raw_fd(fd) };
    let mut original = File::open("/proc/self/exe").context(|| "opening /proc/self/exe".into())?;
    std::io::copy(&mut original, &mut copy).context(|| "copying the runtime binary".into())?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our own fd.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(nix::Error::last()).context(|| "sealing the runtime copy".into());
    }
    let args: Vec<CString> = std::env::args_os()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let errno = nix::unistd::fexecve(&copy, &args, &env).unwrap_err();
    Err(errno).context(|| "running the sealed copy of the runtime".into())
}
