//! Copy-up, as docker does it: when an empty volume is mounted over a path
//! that has content in the image, that content (owners, modes, links,
//! times) is copied into the volume first, so `-v data:/var/lib/app`
//! starts with what the image put there.
//!
//! The image is untrusted: its path is resolved inside the rootfs
//! (`RESOLVE_IN_ROOT`, so a symlink to `/etc` means the image's `/etc`),
//! and the copy goes through the safe tar layer (`crate::archive`), which
//! never follows a symlink while reading or writing.

use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::Mode;

use super::{Result, VolumeError};
use crate::archive::{self, ArchiveError};

fn failed(context: String) -> impl FnOnce(std::io::Error) -> VolumeError {
    move |source| VolumeError::Io { context, source }
}

/// Copies the image's folder at `target` (a path in the container, under
/// `rootfs`) into the volume's host folder `volume`, if the volume is
/// empty and the image has a folder there. Returns whether it copied.
pub fn copy_up(rootfs: &Path, target: &Path, volume: &Path) -> Result<bool> {
    let empty = std::fs::read_dir(volume)
        .map_err(failed(format!("reading {}", volume.display())))?
        .next()
        .is_none();
    if !empty {
        return Ok(false);
    }
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| failed(format!("opening rootfs {}", rootfs.display()))(e.into()))?;
    let inside = target.strip_prefix("/").unwrap_or(target);
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let source = match openat2(&root, inside, how) {
        Ok(fd) => fd,
        // Nothing (or no folder) in the image there: nothing to copy.
        Err(nix::Error::ENOENT | nix::Error::ENOTDIR) => return Ok(false),
        Err(e) => {
            return Err(failed(format!("opening {} in the image", target.display()))(e.into()));
        }
    };
    // The walk starts from the resolved folder itself, not a path that a
    // symlink could redirect.
    let (reader, writer) =
        std::io::pipe().map_err(failed("making a pipe for copy-up".to_owned()))?;
    let copied = std::thread::scope(|scope| {
        let packer = scope.spawn(move || archive::pack_dir(source, writer));
        let unpacked = archive::unpack(reader, volume);
        let packed = packer.join().unwrap_or_else(|_| {
            Err(ArchiveError::Io {
                context: "copy-up".into(),
                source: std::io::Error::other("the copying thread panicked"),
            })
        });
        // The packer's error explains an unpacker that saw the pipe close.
        packed.and(unpacked)
    });
    copied.map_err(|source| VolumeError::Archive {
        context: format!(
            "copying {} from the image into the volume",
            target.display()
        ),
        source,
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn the_image_content_lands_in_an_empty_volume_only() {
        let rootfs = tempfile::tempdir().expect("rootfs");
        let app = rootfs.path().join("var/lib/app");
        std::fs::create_dir_all(app.join("sub")).expect("mkdir");
        std::fs::write(app.join("sub/conf"), "x=1").expect("write");
        std::fs::set_permissions(app.join("sub/conf"), std::fs::Permissions::from_mode(0o640))
            .expect("chmod");
        std::os::unix::fs::symlink("sub/conf", app.join("link")).expect("symlink");
        std::os::unix::fs::chown(&app, Some(1000), Some(1000)).expect("chown");

        let volume = tempfile::tempdir().expect("volume");
        assert!(copy_up(rootfs.path(), Path::new("/var/lib/app"), volume.path()).expect("copy"));
        assert_eq!(
            std::fs::read_to_string(volume.path().join("sub/conf")).expect("conf"),
            "x=1"
        );
        let meta = std::fs::metadata(volume.path().join("sub/conf")).expect("meta");
        assert_eq!(meta.mode() & 0o7777, 0o640);
        assert_eq!(
            std::fs::read_link(volume.path().join("link")).expect("link"),
            Path::new("sub/conf")
        );
        assert_eq!(
            std::fs::metadata(volume.path()).expect("root").uid(),
            1000,
            "the folder's owner too"
        );

        std::fs::write(app.join("new"), "n").expect("write");
        assert!(
            !copy_up(rootfs.path(), Path::new("/var/lib/app"), volume.path()).expect("no copy")
        );
        assert!(
            !volume.path().join("new").exists(),
            "a volume with data is left alone"
        );
        let other = tempfile::tempdir().expect("other");
        assert!(!copy_up(rootfs.path(), Path::new("/nothing/here"), other.path()).expect("absent"));
    }

    #[test]
    fn a_symlink_in_the_image_never_reaches_the_host() {
        let rootfs = tempfile::tempdir().expect("rootfs");
        std::os::unix::fs::symlink("/etc", rootfs.path().join("data")).expect("symlink");
        let volume = tempfile::tempdir().expect("volume");
        // /data -> /etc resolves to the image's own (missing) /etc.
        assert!(!copy_up(rootfs.path(), Path::new("/data"), volume.path()).expect("copy"));
        assert_eq!(std::fs::read_dir(volume.path()).expect("ls").count(), 0);
    }
}
