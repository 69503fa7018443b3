//! The bench's working folder, `<target>/bench-image/run-<pid>/`: every
//! fresh root, bundle and unpack target of a run is made inside it, and it
//! goes at the end, on success and on error alike (`Drop`). Runtime
//! folders (podman's `--runroot`, which podman wants under 50 characters)
//! go in a short one beside the host's, `/run/muelle-bench-image-<pid>/`,
//! which goes the same way. Nothing is ever
//! removed through a mount: whatever is still mounted below a folder is
//! unmounted first (deepest first, lazily as a last resort), and a folder
//! with a mount left below it is kept, named in a warning.
//!
//! A run killed midway leaves its folder; the next run removes the folders
//! of processes that are gone, the same way.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

const PREFIX: &str = "run-";
const RUN_DIR: &str = "/run";
const RUN_PREFIX: &str = "muelle-bench-image-";

pub struct Scratch {
    path: PathBuf,
    run: PathBuf,
    next: u64,
}

impl Scratch {
    /// Makes `bench_dir/run-<pid>`, after removing the folders of earlier
    /// runs that died.
    pub fn new(bench_dir: &Path) -> Result<Scratch> {
        fs::create_dir_all(bench_dir)
            .with_context(|| format!("cannot create {}", bench_dir.display()))?;
        remove_dead(bench_dir, PREFIX);
        remove_dead(Path::new(RUN_DIR), RUN_PREFIX);
        let pid = std::process::id();
        let path = made(&bench_dir.join(format!("{PREFIX}{pid}")))?;
        let run = match made(&Path::new(RUN_DIR).join(format!("{RUN_PREFIX}{pid}"))) {
            Ok(run) => run,
            Err(e) => {
                // Not yet a Scratch: its Drop would not remove this.
                let _ = clear(&path);
                return Err(e);
            }
        };
        Ok(Scratch { path, run, next: 0 })
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new empty folder `<what>-<n>` inside.
    pub fn fresh(&mut self, what: &str) -> Result<PathBuf, String> {
        self.next += 1;
        let dir = self.path.join(format!("{what}-{}", self.next));
        fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(dir)
    }

    /// A new empty folder `<what>-<n>` in the short runtime folder.
    pub fn fresh_run(&mut self, what: &str) -> Result<PathBuf, String> {
        self.next += 1;
        let dir = self.run.join(format!("{what}-{}", self.next));
        fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(dir)
    }
}

/// `path` made empty (a leftover of the same pid removed first), canonical.
fn made(path: &Path) -> Result<PathBuf> {
    if path.exists() {
        clear(path).map_err(anyhow::Error::msg)?;
    }
    fs::create_dir(path).with_context(|| format!("cannot create {}", path.display()))?;
    path.canonicalize()
        .with_context(|| format!("cannot resolve {}", path.display()))
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for dir in [&self.path, &self.run] {
            if let Err(e) = clear(dir) {
                eprintln!("bench image: {e}");
            }
        }
    }
}

/// Folders `<prefix><pid>` in `dir` of earlier runs whose process is gone.
fn remove_dead(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(prefix) else {
            continue;
        };
        let alive = pid
            .parse::<u32>()
            .map_or(true, |pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            eprintln!(
                "removing {}, left by a bench that died",
                entry.path().display()
            );
            if let Err(e) = clear(&entry.path()) {
                eprintln!("bench image: {e}");
            }
        }
    }
}

/// Unmounts whatever is mounted at or below `dir`, then removes it. Kept,
/// with an error, when a mount stays.
pub fn clear(dir: &Path) -> Result<(), String> {
    let Ok(canonical) = dir.canonicalize() else {
        return Ok(());
    };
    unmount_below(&canonical);
    let left = mounts_below(&canonical).map_err(|e| format!("reading mountinfo: {e}"))?;
    if let Some(first) = left.first() {
        return Err(format!(
            "{} kept: {} is still mounted",
            dir.display(),
            first.display()
        ));
    }
    fs::remove_dir_all(&canonical).map_err(|e| format!("cannot remove {}: {e}", dir.display()))
}

/// Unmounts every mount at or below `dir`, deepest first; a busy one is
/// detached (`MNT_DETACH`) rather than left.
pub fn unmount_below(dir: &Path) {
    let Ok(mut mounts) = mounts_below(dir) else {
        return;
    };
    mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    for mount in mounts {
        if let Err(e) = umount(&mount, 0) {
            eprintln!("{} busy ({e}): detaching it", mount.display());
            if let Err(e) = umount(&mount, libc::MNT_DETACH) {
                eprintln!("cannot unmount {}: {e}", mount.display());
            }
        }
    }
}

fn umount(path: &Path, flags: libc::c_int) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte"))?;
    // SAFETY: a NUL-terminated path and flags.
    if unsafe { libc::umount2(c.as_ptr(), flags) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The mount points at or below `dir` (which must be canonical).
pub fn mounts_below(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let text = fs::read_to_string("/proc/self/mountinfo")?;
    Ok(mount_points(&text)
        .into_iter()
        .filter(|m| m.starts_with(dir))
        .collect())
}

/// The mount points of a mountinfo text (the fifth field, unescaped).
pub fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let text = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How many mounts of the whole system name muelle (`grep -c muelle
/// /proc/self/mountinfo`): the same before and after a clean run.
pub fn muelle_mounts() -> usize {
    fs::read_to_string("/proc/self/mountinfo")
        .map(|t| t.lines().filter(|l| l.contains("muelle")).count())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_unescaped() {
        let info = "36 35 98:0 / /mnt/a\\040b rw - ext4 /dev/x rw\n\
                    37 35 0:5 / /tmp rw - tmpfs tmpfs rw\n";
        assert_eq!(
            mount_points(info),
            [PathBuf::from("/mnt/a b"), PathBuf::from("/tmp")]
        );
    }

    #[test]
    fn fresh_folders_go_with_the_scratch() {
        let parent = tempfile::tempdir().expect("tempdir");
        let (path, run) = {
            let mut scratch = Scratch::new(parent.path()).expect("scratch");
            let dir = scratch.fresh("x").expect("fresh");
            fs::write(dir.join("file"), "x").expect("write");
            let run = scratch.fresh_run("y").expect("fresh run");
            assert!(run.as_os_str().len() < 50, "{}", run.display());
            (scratch.path().to_owned(), run)
        };
        assert!(!path.exists() && !run.exists());
    }
}
