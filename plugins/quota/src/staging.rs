//! Making a volume appear, and disappear, in one step.
//!
//! `create` builds the whole volume (image, filesystem, mount point) in a
//! private folder `STATE/.creating-PID-…` and then renames it to
//! `STATE/NAME` with RENAME_NOREPLACE: other commands see no volume or a
//! finished one, never half of one, and of two concurrent creates of one
//! name exactly one wins. `remove` renames the volume to
//! `STATE/.removing-PID-…` under its lock before deleting it, so the name
//! is free at once and a crash mid-delete leaves no half volume behind.
//!
//! A command killed meanwhile leaves such a folder; the next create sweeps
//! those whose process is gone and which are old enough that no live
//! command can still be using them (a PID in another PID namespace could
//! look dead). Names of volumes never start with a dot, so none of this
//! can clash with a volume.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use muelle_plugin_sdk::DriverError;
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::mounts;

const CREATING: &str = ".creating-";
const REMOVING: &str = ".removing-";

/// How old a leftover must be before a sweep deletes it.
const STALE_AFTER: Duration = Duration::from_secs(10 * 60);

/// A fresh, unique folder name under `state` with `prefix`: the PID says
/// whose it is (for the sweep), the time and a counter make it unique.
fn unique(state: &Path, prefix: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    state.join(format!("{prefix}{}-{nanos}-{n}", std::process::id()))
}

/// A volume being built. Dropped without [`Staging::publish`] succeeding,
/// it deletes what it holds (nothing in it is ever mounted).
pub struct Staging {
    pub path: PathBuf,
    published: bool,
}

impl Staging {
    pub fn new(state: &Path) -> Result<Staging, DriverError> {
        let path = unique(state, CREATING);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| DriverError::other(format!("creating {}: {e}", path.display())))?;
        Ok(Staging {
            path,
            published: false,
        })
    }

    /// Renames the finished volume to `target`, unless something already
    /// has that name (then an Invalid "exists" error).
    pub fn publish(mut self, target: &Path, name: &str) -> Result<(), DriverError> {
        let c = |p: &Path| {
            CString::new(p.as_os_str().as_bytes())
                .map_err(|_| DriverError::invalid(format!("{} holds a NUL byte", p.display())))
        };
        let (from, to) = (c(&self.path)?, c(target)?);
        // SAFETY: both are valid NUL-terminated strings that outlive the
        // call; AT_FDCWD with absolute paths reads no descriptor.
        let done = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if done == 0 {
            self.published = true;
            return Ok(());
        }
        match Errno::last() {
            Errno::EEXIST | Errno::ENOTEMPTY => Err(exists(name)),
            e => Err(DriverError::other(format!(
                "renaming {} to {}: {}",
                self.path.display(),
                target.display(),
                e.desc()
            ))),
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            // Best effort: a leftover is swept by a later create.
            let _ = remove_tree(&self.path);
        }
    }
}

pub fn exists(name: &str) -> DriverError {
    DriverError::invalid(format!("volume {name} already exists"))
}

/// Renames volume folder `dir` out of the way (the caller holds the
/// volume's lock and has checked that nothing is mounted in it) and returns
/// where it went, for [`remove_tree`]. From here on the volume is gone.
pub fn retire(state: &Path, dir: &Path) -> Result<PathBuf, DriverError> {
    let trash = unique(state, REMOVING);
    std::fs::rename(dir, &trash).map_err(|e| {
        DriverError::other(format!(
            "renaming {} to {}: {e}",
            dir.display(),
            trash.display()
        ))
    })?;
    Ok(trash)
}

/// Deletes the folder tree `path`, refusing if anything is mounted at or
/// under it: a recursive delete must never reach into a mounted volume.
pub fn remove_tree(path: &Path) -> Result<(), DriverError> {
    if let Some(mounted) = mounts::mounts_under(path)?.first() {
        return Err(DriverError::busy(format!(
            "not deleting {}: {} is mounted",
            path.display(),
            mounted.display()
        )));
    }
    std::fs::remove_dir_all(path)
        .map_err(|e| DriverError::other(format!("deleting {}: {e}", path.display())))
}

/// Deletes the leftovers of creates and removals that died, returning what
/// it could not delete, for the log.
pub fn sweep(state: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let Ok(entries) = std::fs::read_dir(state) else {
        return problems;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name
            .strip_prefix(CREATING)
            .or_else(|| name.strip_prefix(REMOVING))
        else {
            continue;
        };
        let Some(pid) = rest
            .split('-')
            .next()
            .and_then(|p| p.parse::<i32>().ok())
            .filter(|&p| p > 0)
        else {
            continue;
        };
        // EPERM means the process exists (as another user's): alive.
        if kill(Pid::from_raw(pid), None) != Err(Errno::ESRCH) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if !old {
            continue;
        }
        if let Err(e) = remove_tree(&entry.path()) {
            problems.push(e.message);
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_never_replaces() {
        let state = tempfile::tempdir().expect("tempdir");
        let staging = Staging::new(state.path()).expect("staging");
        std::fs::write(staging.path.join("disk.img"), b"x").expect("write");
        let target = state.path().join("vol");
        std::fs::create_dir(&target).expect("an empty folder is in the way");
        let err = staging.publish(&target, "vol").expect_err("exists");
        assert_eq!(err.message, "volume vol already exists");
        // The failed staging folder is gone, the existing one untouched.
        let names: Vec<_> = std::fs::read_dir(state.path())
            .expect("read")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("vol")]);

        let staging = Staging::new(state.path()).expect("staging");
        let other = state.path().join("other");
        staging.publish(&other, "other").expect("publish");
        assert!(other.is_dir());
    }

    #[test]
    fn sweep_keeps_live_and_recent_leftovers() {
        let state = tempfile::tempdir().expect("tempdir");
        let mine = Staging::new(state.path()).expect("ours, alive");
        // PID 0x7fffffff is above pid_max: never alive, but just made.
        let recent = state.path().join(".creating-2147483647-1-0");
        std::fs::create_dir(&recent).expect("mkdir");
        assert!(sweep(state.path()).is_empty());
        assert!(mine.path.is_dir());
        assert!(recent.is_dir());

        // Dead and old: swept, contents and all.
        let old = state.path().join(".removing-2147483647-1-1");
        std::fs::create_dir_all(old.join("mnt")).expect("mkdir");
        std::fs::write(old.join("disk.img"), b"x").expect("write");
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::open(&old)
            .and_then(|dir| dir.set_modified(hour_ago))
            .expect("age it");
        assert!(sweep(state.path()).is_empty());
        assert!(!old.exists());
        assert!(recent.is_dir());
    }
}
