//! What the engine does with volumes around a container's life:
//!
//! - `add_user`/`remove_user` run inside the engine's own transaction, so
//!   that a container record and the volumes it references change
//!   together (never a volume referenced by a container that does not
//!   exist);
//! - `mount` when the container starts gives the host path to bind (its
//!   driver counts the container as a caller), `unmount` when it stops;
//! - `open_subpath` resolves `volume-subpath=` inside the volume without
//!   following a symlink out of it.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{Mode, SFlag, fstat};

use super::{Result, Volume, VolumeError, Volumes};
use crate::store::Tx;

impl Volumes<'_> {
    /// Records `container` as a user of volume `name` in `tx`; the volume
    /// cannot be removed while it has users.
    pub fn add_user(tx: &Tx<'_>, name: &str, container: &str) -> Result<Volume> {
        let Some(mut volume) = tx.get::<Volume>(name)? else {
            return Err(VolumeError::NotFound(name.to_owned()));
        };
        if volume.users.insert(container.to_owned()) {
            tx.insert(&volume)?;
        }
        Ok(volume)
    }

    /// Forgets `container` as a user of volume `name` in `tx`; a volume
    /// already gone is not an error (the container is being removed).
    pub fn remove_user(tx: &Tx<'_>, name: &str, container: &str) -> Result<Option<Volume>> {
        let Some(mut volume) = tx.get::<Volume>(name)? else {
            return Ok(None);
        };
        if volume.users.remove(container) {
            tx.insert(&volume)?;
        }
        Ok(Some(volume))
    }

    /// Makes the volume available for `container` and returns its host
    /// path (the driver mounts it for the first caller).
    pub fn mount(&self, volume: &Volume, container: &str) -> Result<PathBuf> {
        self.driver(&volume.driver)?.mount(&volume.name, container)
    }

    /// The container is done with the volume; the driver unmounts it when
    /// no caller is left.
    pub fn unmount(&self, volume: &Volume, container: &str) -> Result<()> {
        self.driver(&volume.driver)?
            .unmount(&volume.name, container)
    }
}

/// Opens `subpath` of the mounted volume at `volume_path` as an `O_PATH`
/// descriptor, resolving every component inside the volume: a symlink in
/// the volume pointing at `/etc` resolves to the volume's own `etc`, never
/// the host's. The subpath must exist and be a directory, as docker
/// requires. Bind it through `/proc/self/fd/N` so that what was checked is
/// what gets mounted, even if a container swaps a component meanwhile.
pub fn open_subpath(volume_path: &Path, subpath: &Path) -> Result<OwnedFd> {
    let bad = |reason: &str| VolumeError::Io {
        context: format!("volume subpath {}", subpath.display()),
        source: std::io::Error::other(reason.to_owned()),
    };
    if subpath.is_absolute()
        || subpath
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(bad("must be a relative path within the volume"));
    }
    let failed = |context: String| {
        move |e: nix::Error| VolumeError::Io {
            context,
            source: e.into(),
        }
    };
    let root = nix::fcntl::open(
        volume_path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(failed(format!(
        "opening volume at {}",
        volume_path.display()
    )))?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(root.as_fd(), subpath, how).map_err(|e| match e {
        nix::Error::ENOENT => bad("does not exist in the volume: create it first"),
        e => failed(format!("opening volume subpath {}", subpath.display()))(e),
    })?;
    let stat = fstat(&fd).map_err(failed(format!("inspecting {}", subpath.display())))?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
        return Err(bad("is not a directory"));
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subpath_resolves_inside_the_volume_only() {
        let vol = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(vol.path().join("etc/app")).expect("mkdir");
        std::os::unix::fs::symlink("/etc", vol.path().join("escape")).expect("symlink");
        std::os::unix::fs::symlink("../../..", vol.path().join("up")).expect("symlink");
        std::fs::write(vol.path().join("file"), "x").expect("write");

        let fd = open_subpath(vol.path(), Path::new("escape/app")).expect("resolves in the volume");
        let seen = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ))
        .expect("readlink");
        assert_eq!(seen, vol.path().join("etc/app"));
        let up = open_subpath(vol.path(), Path::new("up")).expect("clamped at the root");
        let seen = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&up)
        ))
        .expect("readlink");
        assert_eq!(seen, vol.path());

        let err = |p: &str| {
            open_subpath(vol.path(), Path::new(p))
                .expect_err(p)
                .to_string()
        };
        assert!(
            err("escape/passwd").contains("does not exist"),
            "{}",
            err("escape/passwd")
        );
        assert!(err("file").contains("not a directory"));
        assert!(err("../x").contains("relative path within"));
        assert!(err("/etc").contains("relative path within"));
    }
}
