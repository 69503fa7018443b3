//! The overlay mount itself, through the new mount API (fsopen, fsconfig,
//! fsmount, move_mount): each lower folder is its own `lowerdir+`
//! parameter, so no option string has to fit in mount(2)'s one page
//! (about 40 layers of `ROOT/image/layers/<64 hex>/diff` already fill
//! it), no working directory is changed (the chdir trick for short
//! relative paths is not thread-safe), and the kernel's own message says
//! why a mount failed. Kernels without `lowerdir+` (before 6.8) or without
//! the new API (before 5.2) get mount(2) with the option string, refused
//! clearly when it does not fit.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The mount's source, free text for overlay: `mount` and mountinfo show it.
pub const SOURCE: &str = "muelle";

// <linux/mount.h>: stable kernel ABI values.
const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_SET_FD: libc::c_uint = 5;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
/// fsconfig copies at most 256 bytes of a string value (with its NUL).
const FSCONFIG_STRING_MAX: usize = 255;

/// An overlay to mount: lower folders lowest first, as layers are listed.
pub struct Overlay<'a> {
    pub lowers: &'a [PathBuf],
    pub upper: &'a Path,
    pub work: &'a Path,
    /// overlay's `volatile`: no syncs (see [`super::Rootfs::volatile`]).
    pub volatile: bool,
}

/// Why a mount failed: the call, its errno, and what the kernel logged.
#[derive(Debug)]
pub struct MountError {
    pub step: String,
    pub source: io::Error,
}

impl MountError {
    fn new(step: impl Into<String>, source: io::Error) -> MountError {
        MountError {
            step: step.into(),
            source,
        }
    }

    pub fn into_io(self) -> io::Error {
        io::Error::new(
            self.source.kind(),
            format!("{}: {}", self.step, self.source),
        )
    }
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte"))
}

fn owned(rc: libc::c_long, step: &str) -> Result<OwnedFd, MountError> {
    if rc < 0 {
        return Err(MountError::new(step, io::Error::last_os_error()));
    }
    let fd = RawFd::try_from(rc)
        .map_err(|_| MountError::new(step, io::Error::other("descriptor out of range")))?;
    // SAFETY: the kernel just returned this descriptor to us; nothing else
    // owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An fs context being configured.
struct Context {
    fd: OwnedFd,
}

impl Context {
    fn open() -> Result<Context, MountError> {
        // SAFETY: a NUL-terminated filesystem name and a flag; returns a
        // new descriptor or -1.
        let rc = unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC) };
        owned(rc, "fsopen(overlay)").map(|fd| Context { fd })
    }

    fn call(
        &self,
        cmd: libc::c_uint,
        key: Option<&CStr>,
        value: *const libc::c_void,
        aux: i32,
    ) -> io::Result<()> {
        let key_ptr = key.map_or(std::ptr::null(), CStr::as_ptr);
        // SAFETY: fsconfig on our context descriptor; key is NULL or
        // NUL-terminated, value is NULL, a NUL-terminated string, or unused,
        // as `cmd` requires.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                self.fd.as_raw_fd(),
                cmd,
                key_ptr,
                value,
                aux,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn set_string(&self, key: &CStr, value: &[u8]) -> Result<(), MountError> {
        let shown = || {
            format!(
                "{}={}",
                key.to_string_lossy(),
                String::from_utf8_lossy(value)
            )
        };
        let value = cstring(value).map_err(|e| MountError::new(shown(), e))?;
        self.call(FSCONFIG_SET_STRING, Some(key), value.as_ptr().cast(), 0)
            .map_err(|e| MountError::new(self.explain(shown()), e))
    }

    /// A folder parameter: by path when it fits fsconfig's 255 bytes, else
    /// by descriptor (kernels 6.13+ take overlay's layers that way).
    fn set_dir(&self, key: &CStr, dir: &Path) -> Result<(), MountError> {
        let bytes = dir.as_os_str().as_bytes();
        if bytes.len() <= FSCONFIG_STRING_MAX {
            return self.set_string(key, bytes);
        }
        let shown = || {
            format!(
                "{}={} (by descriptor)",
                key.to_string_lossy(),
                dir.display()
            )
        };
        let file = std::fs::File::open(dir).map_err(|e| MountError::new(shown(), e))?;
        self.call(
            FSCONFIG_SET_FD,
            Some(key),
            std::ptr::null(),
            file.as_raw_fd(),
        )
        .map_err(|e| MountError::new(self.explain(shown()), e))
    }

    fn create(&self) -> Result<(), MountError> {
        self.call(FSCONFIG_CMD_CREATE, None, std::ptr::null(), 0)
            .map_err(|e| MountError::new(self.explain("creating the overlay".into()), e))
    }

    /// The step, with the messages the kernel logged in the context (overlay
    /// says which folder it could not use, and why).
    fn explain(&self, step: String) -> String {
        let mut messages = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            // SAFETY: reading into a live buffer of its length from our own
            // descriptor; the context's log is read one message at a time
            // and ENODATA ends it.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            let Ok(n) = usize::try_from(n) else { break };
            if n == 0 {
                break;
            }
            messages.push(String::from_utf8_lossy(&buf[..n]).trim().to_owned());
        }
        if messages.is_empty() {
            step
        } else {
            format!("{step} ({})", messages.join("; "))
        }
    }

    fn mount(self) -> Result<OwnedFd, MountError> {
        // SAFETY: our configured context; flags and attributes are plain
        // integers; returns a new descriptor or -1.
        let rc =
            unsafe { libc::syscall(libc::SYS_fsmount, self.fd.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
        owned(rc, "fsmount")
    }
}

/// Mounts `overlay` on the folder `target`.
pub fn mount(overlay: &Overlay<'_>, target: &Path) -> Result<(), MountError> {
    let ctx = match Context::open() {
        Ok(ctx) => ctx,
        Err(e) if e.source.raw_os_error() == Some(libc::ENOSYS) => {
            return legacy_mount(overlay, target);
        }
        Err(e) => return Err(e),
    };
    ctx.set_string(c"source", SOURCE.as_bytes())?;
    // Top layer first, as overlay stacks `lowerdir` (and `lowerdir+` in
    // the order given).
    for (i, lower) in overlay.lowers.iter().rev().enumerate() {
        match ctx.set_dir(c"lowerdir+", lower) {
            // Before Linux 6.8 overlay does not know the parameter (its
            // log says so); then the one-string mount(2) is the way.
            Err(e) if i == 0 && e.step.contains("Unknown parameter") => {
                return legacy_mount(overlay, target);
            }
            other => other?,
        }
    }
    ctx.set_dir(c"upperdir", overlay.upper)?;
    ctx.set_dir(c"workdir", overlay.work)?;
    // As docker: the inode index is for hard links copied up across
    // mounts and NFS export, and with it on, lower layers shared between
    // containers could be refused as in use.
    if let Err(e) = ctx.set_string(c"index", b"off") {
        tracing::debug!("overlay without index=off: {}", e.into_io());
    }
    // Before Linux 5.10 overlay syncs regardless.
    if overlay.volatile
        && let Err(e) = ctx.call(FSCONFIG_SET_FLAG, Some(c"volatile"), std::ptr::null(), 0)
    {
        tracing::debug!("overlay without volatile: {e}");
    }
    ctx.create()?;
    let mnt = ctx.mount()?;
    move_to(&mnt, target)
}

fn move_to(mnt: &OwnedFd, target: &Path) -> Result<(), MountError> {
    // The target is opened without following a symlink at its last
    // component, and the mount attached to exactly that folder.
    let target_fd = nix::fcntl::open(
        target,
        nix::fcntl::OFlag::O_PATH
            | nix::fcntl::OFlag::O_DIRECTORY
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| MountError::new(format!("opening {}", target.display()), e.into()))?;
    // SAFETY: two descriptors we own and empty NUL-terminated paths, as
    // the *_EMPTY_PATH flags require.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            target_fd.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(MountError::new(
            format!("move_mount to {}", target.display()),
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// overlay's option syntax: `\` escapes `:` and `,` in a path.
fn escaped(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in path.as_os_str().as_bytes() {
        if matches!(b, b':' | b',' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// mount(2) with the whole option string, for kernels without
/// `lowerdir+`: refused when it exceeds the one page mount(2) copies.
fn legacy_mount(overlay: &Overlay<'_>, target: &Path) -> Result<(), MountError> {
    let mut data = b"lowerdir=".to_vec();
    for (i, lower) in overlay.lowers.iter().rev().enumerate() {
        if i > 0 {
            data.push(b':');
        }
        data.extend(escaped(lower));
    }
    data.extend(b",upperdir=");
    data.extend(escaped(overlay.upper));
    data.extend(b",workdir=");
    data.extend(escaped(overlay.work));
    data.extend(b",index=off");
    if overlay.volatile {
        data.extend(b",volatile");
    }
    // SAFETY: sysconf only reads a constant of the system.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    if data.len() >= page {
        return Err(MountError::new(
            format!(
                "mounting {} layers on {}",
                overlay.lowers.len(),
                target.display()
            ),
            io::Error::other(format!(
                "the overlay options take {} bytes, more than mount(2) accepts ({page}); this kernel lacks overlay's lowerdir+ (Linux 6.8)",
                data.len()
            )),
        ));
    }
    let shown = format!("mount(overlay) on {}", target.display());
    let data = cstring(&data).map_err(|e| MountError::new(shown.clone(), e))?;
    let target_c =
        cstring(target.as_os_str().as_bytes()).map_err(|e| MountError::new(shown.clone(), e))?;
    let source = cstring(SOURCE.as_bytes()).map_err(|e| MountError::new(shown.clone(), e))?;
    // SAFETY: NUL-terminated source, target, type and option strings.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target_c.as_ptr(),
            c"overlay".as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(MountError::new(shown, io::Error::last_os_error()));
    }
    Ok(())
}

/// Unmounts `target`; a mount still busy (a process in it) is detached,
/// as docker does, and goes when its last user does.
pub fn unmount(target: &Path) -> io::Result<()> {
    use nix::mount::{MntFlags, umount2};
    match umount2(target, MntFlags::UMOUNT_NOFOLLOW) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => {
            tracing::warn!("{} is busy: detached", target.display());
            umount2(target, MntFlags::UMOUNT_NOFOLLOW | MntFlags::MNT_DETACH)
                .map_err(io::Error::from)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_paths_escape_separators() {
        assert_eq!(escaped(Path::new("/a:b,c\\d")), b"/a\\:b\\,c\\\\d");
    }
}
