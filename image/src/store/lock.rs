//! The collector's lock, `ROOT/image/gc.lock`. Garbage is whatever no
//! image record references, but a command that is loading, importing or
//! saving has blobs and layers no record names yet (or still needs ones a
//! concurrent `rmi` just released), and it does that work without the
//! metadata store open. So every such command holds this lock shared for
//! the whole time ([`Hold`]), and the collector takes it exclusively,
//! without waiting: while anyone holds it, collection is skipped and the
//! garbage waits for a later command. Nothing is ever deleted that a
//! running command may still commit or read.

use std::fs::File;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::io;
use crate::{ImageError, Result};

const LOCK_FILE: &str = "gc.lock";

/// Held while a command stores blobs and layers that its records will
/// name, or reads blobs it resolved (save). Dropping it releases the lock.
#[derive(Debug)]
pub struct Hold {
    _lock: Flock<File>,
}

fn open(image_root: &Path) -> Result<File> {
    let path = image_root.join(LOCK_FILE);
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io(format!("opening {}", path.display())))
}

fn lock_error(image_root: &Path, errno: Errno) -> ImageError {
    ImageError::Io {
        context: format!("locking {}", image_root.join(LOCK_FILE).display()),
        source: errno.into(),
    }
}

/// Waits while the collector sweeps (bounded: it only deletes files).
pub(crate) fn shared(image_root: &Path) -> Result<Hold> {
    let mut file = open(image_root)?;
    loop {
        match Flock::lock(file, FlockArg::LockShared) {
            Ok(lock) => return Ok(Hold { _lock: lock }),
            Err((f, Errno::EINTR)) => file = f,
            Err((_, errno)) => return Err(lock_error(image_root, errno)),
        }
    }
}

/// `None` while any command holds the lock shared.
pub(crate) fn try_exclusive(image_root: &Path) -> Result<Option<Flock<File>>> {
    let file = open(image_root)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(lock_error(image_root, errno)),
    }
}
