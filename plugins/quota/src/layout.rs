//! Where a volume lives in the state folder, and the checks on the names
//! that become paths.
//!
//! ```text
//! STATE/NAME/disk.img    the ext4 image (sparse, 0600)
//! STATE/NAME/mnt/        its mount point
//! STATE/NAME/mnt/_data   what callers get (keeps lost+found out of view)
//! STATE/NAME/users       callers that mounted it, one per line
//! STATE/.creating-*      a create in progress (renamed to NAME when done)
//! STATE/.removing-*      a removal in progress
//! ```

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use muelle_plugin_sdk::DriverError;

/// The longest name: one path component (NAME_MAX).
const MAX_NAME: usize = 255;

/// The longest caller (a container id is 64 hex digits; leave room for
/// whatever else a host passes, but keep the users file small).
const MAX_CALLER: usize = 1024;

/// Docker's volume names, `[a-zA-Z0-9][a-zA-Z0-9_.-]+`: a single path
/// component that is never `.`, `..`, hidden or an option to a tool. The
/// host checks them too, but a driver never builds a path from a name it
/// did not check itself.
pub fn check_name(name: &str) -> Result<(), DriverError> {
    let mut bytes = name.bytes();
    let valid = name.len() <= MAX_NAME
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.len() >= 2
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(DriverError::invalid(format!(
            "invalid volume name {name:?}: names are [a-zA-Z0-9][a-zA-Z0-9_.-]+, at most 255 characters"
        )))
    }
}

/// A caller is one line of the users file: it must be non-empty and hold
/// no control characters (a newline would forge a second caller).
pub fn check_caller(caller: &str) -> Result<(), DriverError> {
    if caller.is_empty() || caller.len() > MAX_CALLER || caller.chars().any(char::is_control) {
        return Err(DriverError::invalid(format!(
            "invalid mount caller {caller:?}"
        )));
    }
    Ok(())
}

/// The paths of one volume.
pub struct Volume {
    pub name: String,
    pub dir: PathBuf,
    pub image: PathBuf,
    pub mnt: PathBuf,
    pub data: PathBuf,
    pub users: PathBuf,
}

pub const IMAGE: &str = "disk.img";
pub const MNT: &str = "mnt";
pub const DATA: &str = "_data";
pub const USERS: &str = "users";

impl Volume {
    /// The paths of volume `name` (checked) under `state`.
    pub fn new(state: &Path, name: &str) -> Result<Volume, DriverError> {
        check_name(name)?;
        let dir = state.join(name);
        Ok(Volume {
            name: name.to_owned(),
            image: dir.join(IMAGE),
            mnt: dir.join(MNT),
            data: dir.join(MNT).join(DATA),
            users: dir.join(USERS),
            dir,
        })
    }

    /// Whether the volume exists: its folder holds a regular image file.
    /// A symlink does not count (lstat), so nothing outside the state
    /// folder can pass for a volume.
    pub fn exists(&self) -> Result<bool, DriverError> {
        holds_image(&self.dir)
    }

    /// Ok when the volume exists, else the NotFound error the host shows as
    /// docker's `no such volume`.
    pub fn require(&self) -> Result<(), DriverError> {
        if self.exists()? {
            Ok(())
        } else {
            Err(DriverError::not_found(format!(
                "no such volume: {}",
                self.name
            )))
        }
    }
}

/// Whether `dir` is a volume folder: it holds `disk.img` as a regular file.
pub fn holds_image(dir: &Path) -> Result<bool, DriverError> {
    match std::fs::symlink_metadata(dir.join(IMAGE)) {
        Ok(meta) => Ok(meta.file_type().is_file()),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(false),
        Err(e) => Err(DriverError::other(format!(
            "reading {}: {e}",
            dir.join(IMAGE).display()
        ))),
    }
}

/// The ext4 label: at most 16 bytes. Names are ASCII, so cutting at a byte
/// keeps it valid text.
pub fn label(name: &str) -> &str {
    name.get(..16).unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["ab", "data", "a.b", "a_b-c", "0x", "A1", &"v".repeat(255)] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "a",
            ".",
            "..",
            ".x",
            "-x",
            "_x",
            "a/b",
            "../x",
            "x/..",
            "a b",
            "a\n",
            "a\0b",
            "é1",
            "aé",
            &"v".repeat(256),
        ] {
            let err = check_name(bad).expect_err(bad);
            assert_eq!(err.kind, muelle_plugin_sdk::ErrorKind::Invalid);
        }
    }

    #[test]
    fn callers() {
        assert!(check_caller("0123abcd").is_ok());
        assert!(check_caller("muelle-create").is_ok());
        for bad in ["", "a\nb", "a\rb", "a\0", &"c".repeat(1025)] {
            assert!(check_caller(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths() {
        let v = Volume::new(Path::new("/state"), "data").expect("valid");
        assert_eq!(v.dir, Path::new("/state/data"));
        assert_eq!(v.image, Path::new("/state/data/disk.img"));
        assert_eq!(v.data, Path::new("/state/data/mnt/_data"));
        assert!(Volume::new(Path::new("/state"), "../etc").is_err());
    }

    #[test]
    fn labels() {
        assert_eq!(label("data"), "data");
        assert_eq!(label("a-very-long-volume-name"), "a-very-long-volu");
    }
}
