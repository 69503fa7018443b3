//! The per-volume lock. Every muelle command is a process of its own and
//! several may run at once, so whatever reads and changes a volume's state
//! (its mount, its users file) does so under an flock(2) on the volume's
//! folder. The kernel drops the lock when the process dies, so a killed
//! command never leaves a volume locked.
//!
//! The lock is on the folder itself rather than on a lock file inside it:
//! `remove` renames the folder away while holding the lock, and a command
//! that waited on it then finds that `STATE/NAME` is no longer the folder it
//! locked (another inode, or nothing) and starts over.

use std::fs::{File, TryLockError};
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use muelle_plugin_sdk::DriverError;

use crate::layout::Volume;

/// How long a command waits for another one to finish with a volume. Every
/// locked step is short (mkfs runs before the volume has a name to lock),
/// and the host gives each call 60 s by default: fail with a clear message
/// well before that.
const WAIT: Duration = Duration::from_secs(30);

/// How often a create-and-remove race may send us round again before we
/// give up (each round means someone else changed the volume meanwhile).
const ROUNDS: usize = 8;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// For reading the state: several readers at once.
    Shared,
    /// For changing it.
    Exclusive,
}

/// Held while it lives; dropping it closes the descriptor, which unlocks.
pub struct VolumeLock {
    _dir: File,
}

/// Locks `volume`'s folder. NotFound when there is no such folder.
pub fn lock(volume: &Volume, mode: Mode) -> Result<VolumeLock, DriverError> {
    let deadline = Instant::now() + WAIT;
    for _ in 0..ROUNDS {
        let dir = match open_dir(&volume.dir) {
            Ok(dir) => dir,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(not_found(volume)),
            Err(e) => {
                return Err(DriverError::other(format!(
                    "opening {}: {e}",
                    volume.dir.display()
                )));
            }
        };
        wait_for(&dir, mode, deadline, volume)?;
        if still_there(&dir, &volume.dir)? {
            return Ok(VolumeLock { _dir: dir });
        }
        // Replaced while we waited: lock the new folder, if any.
        if std::fs::symlink_metadata(&volume.dir).is_err() {
            return Err(not_found(volume));
        }
    }
    Err(DriverError::busy(format!(
        "volume {} keeps changing under concurrent commands; try again",
        volume.name
    )))
}

fn not_found(volume: &Volume) -> DriverError {
    DriverError::not_found(format!("no such volume: {}", volume.name))
}

/// Opens the folder itself, never a symlink in its place.
fn open_dir(path: &Path) -> std::io::Result<File> {
    File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Polls for the lock until `deadline`: a blocking flock would hang this
/// call past the host's timeout if another command got stuck.
fn wait_for(dir: &File, mode: Mode, deadline: Instant, volume: &Volume) -> Result<(), DriverError> {
    let mut pause = Duration::from_millis(2);
    loop {
        let tried = match mode {
            Mode::Shared => dir.try_lock_shared(),
            Mode::Exclusive => dir.try_lock(),
        };
        match tried {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => {
                return Err(DriverError::other(format!(
                    "locking {}: {e}",
                    volume.dir.display()
                )));
            }
        }
        if Instant::now() >= deadline {
            return Err(DriverError::busy(format!(
                "volume {} is locked by another muelle command (waited {} s); try again",
                volume.name,
                WAIT.as_secs()
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Whether `path` still names the folder `dir` was opened from.
fn still_there(dir: &File, path: &Path) -> Result<bool, DriverError> {
    let held = dir
        .metadata()
        .map_err(|e| DriverError::other(format!("reading {}: {e}", path.display())))?;
    match std::fs::symlink_metadata(path) {
        Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(DriverError::other(format!(
            "reading {}: {e}",
            path.display()
        ))),
    }
}
