//! OCI whiteouts in layer archives (`.wh.NAME`, `.wh..wh..opq`) and
//! overlayfs's own form of them (a 0:0 character device, the
//! `trusted.overlay.opaque` xattr): what a name means, and the writes each
//! mode makes. Every write here goes through the same `Tree` as any entry.

use std::ffi::{CStr, OsStr};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstatat, mknodat};

use super::Failure;
use super::fs::{Tree, clear, empty_dir, is_dir, kind, remove_tree};
use super::xattr;

const PREFIX: &[u8] = b".wh.";
const META_PREFIX: &[u8] = b".wh..wh.";
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
pub const OPAQUE_XATTR: &CStr = c"trusted.overlay.opaque";

/// What an entry's name means when whiteouts are not kept as they are.
#[derive(Debug, PartialEq, Eq)]
pub enum Role<'a> {
    /// An ordinary entry.
    Plain,
    /// `DIR/.wh.NAME`: hides `NAME` of lower layers.
    Whiteout(&'a OsStr),
    /// `DIR/.wh..wh..opq`: hides everything lower layers hold in `DIR`.
    Opaque,
    /// Other `.wh..wh.` metadata (aufs), and whatever is under it: skipped.
    Ignored,
}

/// The role of the entry with components `parts` (checked by `components`).
pub fn role<'a>(parts: &[&'a OsStr]) -> Result<Role<'a>, String> {
    let Some((last, dirs)) = parts.split_last() else {
        return Ok(Role::Plain);
    };
    for dir in dirs {
        let bytes = dir.as_bytes();
        if bytes.starts_with(META_PREFIX) {
            return Ok(Role::Ignored);
        }
        if bytes.starts_with(PREFIX) {
            return Err(format!(
                "the whiteout name {:?} is used as a folder",
                dir.to_string_lossy()
            ));
        }
    }
    let bytes = last.as_bytes();
    if bytes == OPAQUE_MARKER.as_bytes() {
        return Ok(Role::Opaque);
    }
    if bytes.starts_with(META_PREFIX) {
        return Ok(Role::Ignored);
    }
    match bytes.strip_prefix(PREFIX) {
        None => Ok(Role::Plain),
        Some(b"" | b"." | b"..") => Err("a whiteout of `.`, `..` or of nothing".into()),
        Some(name) => Ok(Role::Whiteout(OsStr::from_bytes(name))),
    }
}

/// overlayfs's whiteout: a character device 0:0.
pub fn is_overlay_whiteout(st: &FileStat) -> bool {
    kind(st) == SFlag::S_IFCHR && st.st_rdev == 0
}

/// Marks the folder `name` in `parent` opaque for overlayfs.
pub fn set_opaque(parent: BorrowedFd<'_>, name: &OsStr) -> Result<(), Failure> {
    let fd = openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(Failure::io("opening the folder to make it opaque"))?;
    xattr::write_strict(fd.as_fd(), OPAQUE_XATTR, b"y").map_err(|e| {
        Failure::Io(
            "marking the folder opaque (trusted.overlay.opaque needs root and xattrs)".into(),
            e,
        )
    })
}

/// `Whiteouts::Overlay`: `DIR/.wh.NAME` becomes the 0:0 device `DIR/NAME`.
/// Returns whether a whiteout was written (an entry of this layer at
/// `NAME` already hides the lower one; a folder there is made opaque).
pub fn overlay_whiteout(tree: &mut Tree, dirs: &[&OsStr], name: &OsStr) -> Result<bool, Failure> {
    let parent = tree.parent(dirs)?;
    match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if is_dir(&st) => {
            set_opaque(parent, name)?;
            Ok(false)
        }
        Ok(_) => Ok(false),
        Err(Errno::ENOENT) => {
            mknodat(parent, name, SFlag::S_IFCHR, Mode::empty(), 0)
                .map_err(Failure::io("creating the overlay whiteout"))?;
            Ok(true)
        }
        Err(e) => Err(Failure::io("looking at what is there")(e)),
    }
}

/// `Whiteouts::Overlay`: `DIR/.wh..wh..opq` marks `DIR` opaque.
pub fn overlay_opaque(tree: &mut Tree, dirs: &[&OsStr]) -> Result<(), Failure> {
    let dir = tree.parent(dirs)?;
    set_opaque(dir, OsStr::new("."))
}

/// `Whiteouts::Oci`: the marker `name` as an empty regular file, replacing
/// whatever was there as any entry does.
pub fn marker_file(parent: BorrowedFd<'_>, name: &OsStr) -> Result<(), Failure> {
    clear(parent, name, false)?;
    openat(
        parent,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map(drop)
    .map_err(Failure::io("creating the whiteout marker"))
}

/// Whether `name` is an OCI whiteout or opaque marker, for `pack`'s order.
pub fn is_marker_name(name: &[u8]) -> bool {
    name.starts_with(PREFIX)
}

/// `Whiteouts::Apply`: `DIR/.wh.NAME` removes `NAME` and all under it.
pub fn apply_whiteout(tree: &Tree, dirs: &[&OsStr], name: &OsStr) -> Result<(), Failure> {
    match tree.existing_opt(dirs)? {
        Some(parent) => remove_tree(parent.as_fd(), name),
        None => Ok(()),
    }
}

/// `Whiteouts::Apply`: `DIR/.wh..wh..opq` empties `DIR`.
pub fn apply_opaque(tree: &Tree, dirs: &[&OsStr]) -> Result<(), Failure> {
    let Some(dir) = tree.existing_opt(dirs)? else {
        return Ok(());
    };
    let fd = openat(
        dir.as_fd(),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(Failure::io("opening the opaque folder"))?;
    empty_dir(fd.as_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(name: &str) -> Result<Role<'_>, String> {
        let parts: Vec<&OsStr> = name.split('/').map(OsStr::new).collect();
        role(&parts)
    }

    #[test]
    fn whiteout_names_are_classified() {
        assert_eq!(of("a/b"), Ok(Role::Plain));
        assert_eq!(of("a/.wh.b"), Ok(Role::Whiteout(OsStr::new("b"))));
        assert_eq!(of(".wh..b"), Ok(Role::Whiteout(OsStr::new(".b"))));
        assert_eq!(of("a/.wh..wh..opq"), Ok(Role::Opaque));
        assert_eq!(of(".wh..wh.plnk"), Ok(Role::Ignored));
        assert_eq!(of(".wh..wh.plnk/123.4"), Ok(Role::Ignored));
        assert_eq!(of("a.wh.b"), Ok(Role::Plain));
        for bad in [".wh.", ".wh..", ".wh...", "a/.wh.x/y"] {
            assert!(of(bad).is_err(), "{bad}");
        }
    }
}
