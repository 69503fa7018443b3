//! Extended attributes of an open file or folder, as pax `SCHILY.xattr.*`
//! records (GNU tar's `--xattrs` spelling).

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd};

/// The pax key prefix GNU tar, bsdtar and docker use.
pub const PAX_PREFIX: &str = "SCHILY.xattr.";

/// Attributes that are not the data's own: the host's SELinux policy labels
/// a volume, and overlayfs's bookkeeping must not be forged by a layer.
pub fn is_kept(name: &str) -> bool {
    name != "security.selinux"
        && !name.starts_with("trusted.overlay.")
        && !name.starts_with("user.overlay.")
}

fn unsupported(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::EOPNOTSUPP)
}

/// Calls a size-probing xattr call twice: once for the size, once to fill.
fn sized(mut call: impl FnMut(&mut [u8]) -> isize) -> std::io::Result<Vec<u8>> {
    loop {
        let size = call(&mut []);
        if size < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut buf = vec![0u8; size as usize];
        let got = call(&mut buf);
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(buf);
        }
        let err = std::io::Error::last_os_error();
        // ERANGE: the attribute grew between the calls; ask again.
        if err.raw_os_error() != Some(libc::ERANGE) {
            return Err(err);
        }
    }
}

/// The kept attributes of `fd`, sorted by name; none where the filesystem
/// has no xattrs.
pub fn read(fd: BorrowedFd<'_>) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let raw = fd.as_raw_fd();
    // SAFETY: the buffer pointer and length describe a live slice.
    let names =
        match sized(|buf| unsafe { libc::flistxattr(raw, buf.as_mut_ptr().cast(), buf.len()) }) {
            Ok(names) => names,
            Err(e) if unsupported(&e) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(text) = std::str::from_utf8(name) else {
            tracing::warn!(
                "skipping xattr {:?}: not UTF-8",
                String::from_utf8_lossy(name)
            );
            continue;
        };
        if !is_kept(text) {
            continue;
        }
        let Ok(c_name) = CString::new(name) else {
            continue;
        };
        // SAFETY: a NUL-terminated name and a live buffer.
        let value = match sized(|buf| unsafe {
            libc::fgetxattr(raw, c_name.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        }) {
            Ok(value) => value,
            // Removed since the listing.
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => continue,
            Err(e) => return Err(e),
        };
        out.push((text.to_owned(), value));
    }
    out.sort();
    Ok(out)
}

/// Sets one attribute; a filesystem without xattrs, or a namespace the
/// caller may not write (`trusted.*` when not root), loses it with a
/// warning rather than failing the whole restore.
pub fn write(fd: BorrowedFd<'_>, name: &CStr, value: &[u8]) -> std::io::Result<()> {
    // SAFETY: a NUL-terminated name and a live value slice.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if unsupported(&err) || err.raw_os_error() == Some(libc::EPERM) {
        tracing::warn!("xattr {name:?} not restored: {err}");
        return Ok(());
    }
    Err(err)
}

/// Sets one attribute and fails if it cannot be set: for the overlay
/// metadata whiteout conversion writes, where a silent loss would let
/// lower content show through.
pub fn write_strict(fd: BorrowedFd<'_>, name: &CStr, value: &[u8]) -> std::io::Result<()> {
    // SAFETY: a NUL-terminated name and a live value slice.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// One attribute's value (at most `N` bytes), None when absent, too long
/// or unsupported: for the overlay markers pack reads back.
pub fn read_small<const N: usize>(fd: BorrowedFd<'_>, name: &CStr) -> Option<Vec<u8>> {
    let mut buf = [0u8; N];
    // SAFETY: a NUL-terminated name and a live buffer of N bytes.
    let n = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).ok()?;
    Some(buf[..n].to_vec())
}
