//! `volume export` and `volume import`: a volume's data as a tar archive
//! (see `crate::archive` for what is kept and what an archive may not do).
//!
//! Both refuse a volume that containers use unless forced: a copy taken
//! while something writes is not a consistent backup, and an import under
//! a running container changes files beneath it. (The engine will narrow
//! this to running containers.)
//!
//! An import into an empty, unused volume is all or nothing: the archive is
//! unpacked into a fresh folder beside the data folder and renamed over it
//! only when complete. An import into a volume with data merges, replacing
//! files of the same name; if it fails, the entries before the failing one
//! stay.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Drivers, Result, Volume, VolumeError};
use crate::archive::{self, ArchiveError, Summary};

/// The caller id muelle mounts a volume under for export and import.
const BACKUP_CALLER: &str = "muelle-backup";

/// Writes the volume's data to `out` as a tar archive.
pub fn export(drivers: &Drivers, volume: &Volume, out: impl Write, force: bool) -> Result<Summary> {
    check_users(volume, force)?;
    with_data(drivers, volume, |data| archive::pack(data, out))?.map_err(|source| {
        VolumeError::Archive {
            context: format!("exporting volume {}", volume.name),
            source,
        }
    })
}

/// Restores a tar archive read from `input` into the volume.
pub fn import(
    drivers: &Drivers,
    volume: &Volume,
    input: impl Read,
    force: bool,
) -> Result<Summary> {
    check_users(volume, force)?;
    with_data(drivers, volume, |data| {
        // Containers hold the data folder itself (bind mounts): renaming a
        // new one over it would hide the import from them, so merge in
        // place.
        if volume.users.is_empty() {
            import_into(data, input)
        } else {
            archive::unpack(input, data)
        }
    })?
    .map_err(|source| VolumeError::Archive {
        context: format!("importing into volume {}", volume.name),
        source,
    })
}

fn check_users(volume: &Volume, force: bool) -> Result<()> {
    if force || volume.users.is_empty() {
        return Ok(());
    }
    Err(VolumeError::Busy {
        name: volume.name.to_string(),
        users: volume.users.iter().cloned().collect(),
    })
}

/// Runs `work` on the host folder with the volume's data: a plain `local`
/// volume's folder as it is, any other volume mounted by its driver for
/// the time of the work (and unmounted after, whatever the outcome).
fn with_data<T>(
    drivers: &Drivers,
    volume: &Volume,
    work: impl FnOnce(&Path) -> Result<T, ArchiveError>,
) -> Result<Result<T, ArchiveError>> {
    if volume.driver == "local" && volume.options.is_empty() {
        return Ok(work(&volume.mountpoint));
    }
    let driver = drivers.get(&volume.driver)?;
    let data = driver.mount(&volume.name, BACKUP_CALLER)?;
    let done = work(&data);
    driver.unmount(&volume.name, BACKUP_CALLER)?;
    Ok(done)
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> ArchiveError {
    move |source| ArchiveError::Io { context, source }
}

/// Unpacks into the host folder `data`: into a fresh folder beside it then
/// renamed over it when `data` is empty (and not a mount, which cannot be
/// renamed over), else merged into it.
pub fn import_into(data: &Path, input: impl Read) -> Result<Summary, ArchiveError> {
    let empty = std::fs::read_dir(data)
        .map_err(io(format!("reading {}", data.display())))?
        .next()
        .is_none();
    if !empty || is_mount(data)? {
        return archive::unpack(input, data);
    }
    let staging = staging_dir(data)?;
    let result = archive::unpack(input, &staging).and_then(|summary| {
        // rename(2) replaces an empty folder; one that filled up meanwhile
        // stays, and this import fails.
        std::fs::rename(&staging, data)
            .map_err(io(format!("moving the import into {}", data.display())))?;
        Ok(summary)
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// A new private folder beside `data`, owned and moded as `data` until the
/// archive's own root entry says otherwise.
fn staging_dir(data: &Path) -> Result<PathBuf, ArchiveError> {
    let (Some(parent), Some(name)) = (data.parent(), data.file_name()) else {
        return Err(io(format!("importing into {}", data.display()))(
            std::io::Error::other("not a folder with a parent"),
        ));
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let staging = parent.join(format!(
        ".{}.import-{}-{nanos}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let make = io(format!("creating {}", staging.display()));
    std::fs::DirBuilder::new().create(&staging).map_err(make)?;
    let meta = std::fs::metadata(data).map_err(io(format!("reading {}", data.display())))?;
    let copy =
        std::os::unix::fs::chown(&staging, Some(meta.uid()), Some(meta.gid())).and_then(|()| {
            std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(meta.mode()))
        });
    if let Err(e) = copy {
        let _ = std::fs::remove_dir(&staging);
        return Err(io(format!("preparing {}", staging.display()))(e));
    }
    Ok(staging)
}

/// Whether something is mounted at `path` (a rename over it would fail).
fn is_mount(path: &Path) -> Result<bool, ArchiveError> {
    Ok(super::local::is_mounted(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::volume::{CreateVolume, Volumes};

    fn volume(root: &Path, name: &str) -> Volume {
        let store = Store::open(root).expect("store");
        Volumes::new(&store, root)
            .create(CreateVolume {
                name: Some(name.parse().expect("name")),
                ..Default::default()
            })
            .expect("create")
    }

    fn drivers(root: &Path) -> Drivers {
        Drivers::new(root, crate::mounts::BindPolicy::default())
    }

    fn staging_left(parent: &Path) -> usize {
        std::fs::read_dir(parent)
            .expect("ls")
            .filter(|e| {
                let name = e.as_ref().expect("entry").file_name();
                name.to_string_lossy().contains(".import-")
            })
            .count()
    }

    #[test]
    fn a_volume_with_users_is_refused_unless_forced() {
        let root = tempfile::tempdir().expect("tmp");
        let mut v = volume(root.path(), "busy");
        v.users.insert("c1".into());
        v.users.insert("c2".into());
        let err = export(&drivers(root.path()), &v, Vec::new(), false).expect_err("in use");
        assert_eq!(
            err.to_string(),
            "volume busy is in use by container(s) [c1, c2]: stop them or use --force"
        );
        assert!(import(&drivers(root.path()), &v, &[][..], false).is_err());
        let mut tar = Vec::new();
        export(&drivers(root.path()), &v, &mut tar, true).expect("forced");
        import(&drivers(root.path()), &v, tar.as_slice(), true).expect("forced");
    }

    #[test]
    fn import_fills_an_empty_volume_whole_or_not_at_all() {
        let root = tempfile::tempdir().expect("tmp");
        let src = volume(root.path(), "src");
        std::fs::write(src.mountpoint.join("f"), "data").expect("write");
        std::fs::set_permissions(&src.mountpoint, std::fs::Permissions::from_mode(0o700))
            .expect("chmod");
        let mut tar = Vec::new();
        export(&drivers(root.path()), &src, &mut tar, false).expect("export");

        let dst = volume(root.path(), "dst");
        let parent = dst.mountpoint.parent().expect("parent").to_owned();
        let mut bad = tar.clone();
        // Cut inside the file's data: the import must fail and leave nothing.
        bad.truncate(1026);
        assert!(import(&drivers(root.path()), &dst, bad.as_slice(), false).is_err());
        assert_eq!(std::fs::read_dir(&dst.mountpoint).expect("ls").count(), 0);
        assert_eq!(staging_left(&parent), 0);

        import(&drivers(root.path()), &dst, tar.as_slice(), false).expect("import");
        assert_eq!(
            std::fs::read_to_string(dst.mountpoint.join("f")).expect("f"),
            "data"
        );
        let mode = std::fs::metadata(&dst.mountpoint).expect("meta").mode() & 0o7777;
        assert_eq!(mode, 0o700, "the root's mode comes with it");
        assert_eq!(staging_left(&parent), 0);
    }

    #[test]
    fn a_volume_that_needs_a_mount_is_mounted_for_the_copy() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting a tmpfs volume needs root");
            return;
        }
        let root = tempfile::tempdir().expect("tmp");
        let store = Store::open(root.path()).expect("store");
        let v = Volumes::new(&store, root.path())
            .create(CreateVolume {
                name: Some("mem".parse().expect("name")),
                options: [("type", "tmpfs"), ("o", "size=1m")]
                    .iter()
                    .map(|(k, val)| (k.to_string(), val.to_string()))
                    .collect(),
                ..Default::default()
            })
            .expect("create");
        let mut tar = Vec::new();
        {
            let mut b = tar::Builder::new(&mut tar);
            let mut h = tar::Header::new_gnu();
            h.set_size(2);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_cksum();
            b.append_data(&mut h, "f", &b"hi"[..]).expect("append");
            b.finish().expect("finish");
        }
        // tmpfs forgets with the last unmount, so both halves run while a
        // caller holds it.
        let drivers = drivers(root.path());
        struct Holder(Drivers, crate::volume::VolumeName);
        impl Drop for Holder {
            fn drop(&mut self) {
                if let Ok(local) = self.0.get("local") {
                    let _ = local.unmount(&self.1, "holder");
                }
            }
        }
        let held = drivers
            .get("local")
            .expect("local")
            .mount(&v.name, "holder")
            .expect("mount");
        let holder = Holder(drivers.clone(), v.name.clone());
        import(&drivers, &v, tar.as_slice(), false).expect("import");
        assert_eq!(std::fs::read_to_string(held.join("f")).expect("f"), "hi");
        let mut out = Vec::new();
        export(&drivers, &v, &mut out, false).expect("export");
        drop(holder);
        assert!(
            !crate::volume::local::is_mounted(&held),
            "the copy left nothing mounted"
        );
        let names: Vec<String> = tar::Archive::new(out.as_slice())
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert!(
            names.iter().any(|n| n.trim_start_matches("./") == "f"),
            "{names:?}"
        );
    }
}
