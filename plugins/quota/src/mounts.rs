//! Mounting a volume's filesystem, unmounting it, and asking the kernel
//! (never our own files) whether something is mounted.

use std::ffi::OsString;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use muelle_plugin_sdk::DriverError;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

/// Whether a filesystem is mounted on `mnt`: a mount point sits on another
/// device than its parent folder. This asks the kernel, so it stays true
/// after a crash of the command that mounted it and turns false after a
/// reboot, whatever the users file says.
pub fn is_mounted(mnt: &Path) -> Result<bool, DriverError> {
    let Some(parent) = mnt.parent() else {
        return Ok(false);
    };
    let stat = |p: &Path| match std::fs::symlink_metadata(p) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DriverError::other(format!("reading {}: {e}", p.display()))),
    };
    let (Some(mnt_meta), Some(parent_meta)) = (stat(mnt)?, stat(parent)?) else {
        return Ok(false);
    };
    // lstat: a symlink put in place of the mount point is not a mount.
    Ok(mnt_meta.is_dir() && mnt_meta.dev() != parent_meta.dev())
}

/// Mounts the ext4 filesystem on `device` at `mnt`. nodev and nosuid: the
/// image's content comes from containers, and a device node or setuid
/// binary planted there must not work on the host.
pub fn mount_ext4(device: &Path, mnt: &Path) -> Result<(), DriverError> {
    // mount(2) follows symlinks in the target; refuse anything but a real
    // folder (the state folder is root's, this guards against mistakes).
    let meta = std::fs::symlink_metadata(mnt)
        .map_err(|e| DriverError::other(format!("reading {}: {e}", mnt.display())))?;
    if !meta.is_dir() {
        return Err(DriverError::other(format!(
            "{} is not a folder",
            mnt.display()
        )));
    }
    nix::mount::mount(
        Some(device),
        mnt,
        Some("ext4"),
        MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
        None::<&str>,
    )
    .map_err(|e| {
        DriverError::other(format!(
            "mounting {} on {}: {}",
            device.display(),
            mnt.display(),
            e.desc()
        ))
    })
}

/// Unmounts `mnt`: not lazily, so that EBUSY tells the caller the volume is
/// still in use instead of hiding a mount that lingers. UMOUNT_NOFOLLOW: a
/// symlink in place of the mount point is not followed.
pub fn unmount(mnt: &Path) -> Result<(), Errno> {
    nix::mount::umount2(mnt, MntFlags::UMOUNT_NOFOLLOW)
}

/// The mount points at or under `dir` (an absolute, canonical path), from
/// /proc/self/mountinfo. Used before deleting a folder tree, so that no
/// deletion ever reaches into a mounted filesystem.
pub fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>, DriverError> {
    let text = std::fs::read("/proc/self/mountinfo")
        .map_err(|e| DriverError::other(format!("reading /proc/self/mountinfo: {e}")))?;
    Ok(parse_mount_points(&text)
        .into_iter()
        .filter(|p| p.starts_with(dir))
        .collect())
}

/// The mount point (fifth field) of each mountinfo line.
fn parse_mount_points(text: &[u8]) -> Vec<PathBuf> {
    text.split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b' ').nth(4))
        .map(|field| PathBuf::from(OsString::from_vec(unescape(field))))
        .collect()
}

/// Undoes the kernel's octal escapes (`\040` for a space, `\011`, `\012`,
/// `\134`) in mountinfo paths.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\'
            && let Some(code) = field.get(i + 1..i + 4)
            && code.iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let value = code
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_unescaped() {
        let text = b"22 1 8:1 / / rw - ext4 /dev/vda rw\n\
                     40 22 7:3 / /var/lib/my\\040state/v/mnt rw,nosuid,nodev - ext4 /dev/loop3 rw\n\
                     41 22 0:5 / /a\\134b\\011c rw - tmpfs tmpfs rw\n";
        assert_eq!(
            parse_mount_points(text),
            vec![
                PathBuf::from("/"),
                PathBuf::from("/var/lib/my state/v/mnt"),
                PathBuf::from("/a\\b\tc"),
            ]
        );
    }

    #[test]
    fn unescape_leaves_odd_backslashes() {
        assert_eq!(unescape(b"a\\b"), b"a\\b");
        assert_eq!(unescape(b"a\\04"), b"a\\04");
        assert_eq!(unescape(b"\\777"), b"\\777");
        assert_eq!(unescape(b"\\040x"), b" x");
    }

    #[test]
    fn a_plain_folder_is_not_a_mount_point() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mnt = dir.path().join("mnt");
        assert!(!is_mounted(&mnt).expect("missing"));
        std::fs::create_dir(&mnt).expect("mkdir");
        assert!(!is_mounted(&mnt).expect("folder"));
        assert!(!is_mounted(Path::new("/")).expect("root"));
    }
}
