//! A container's root filesystem from its image's layers.
//!
//! With the `overlay` driver it is an overlay mount (source `muelle`, so
//! `mount` shows whose it is) of the layer folders, shared read-only by
//! every container of the image, with the container's own
//! `CONTAINER_DIR/upper` and `CONTAINER_DIR/work`. No extra mount flags
//! (no `nodev`/`nosuid`), as podman and docker: images carry setuid
//! binaries and device nodes, and the runtime's device cgroup, not the
//! mount, decides what a container may open. Where overlay is unavailable
//! (see `probe`), the `copy` driver copies the layers into the target
//! instead; `muelle info` shows which (`driver`).
//!
//! A mount outlives the command that made it (muelle has no daemon): the
//! command that removes the container calls [`Rootfs::unmount`]. A setup
//! that fails part way undoes what it did (unmounts, removes the folders
//! it made) before it returns.
//!
//! `CONTAINER_DIR` is made `0700` when missing: the merged view holds the
//! image's setuid binaries and device nodes, and no host user may reach
//! them.

mod copy;
pub(crate) mod mountinfo;
mod overlay;
mod probe;

use std::fmt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::io;
use crate::{ImageError, Result};

pub use overlay::SOURCE;
pub use probe::driver;

const UPPER: &str = "upper";
const WORK: &str = "work";
/// The only lower folder of an image without layers.
const EMPTY: &str = "empty";
/// Marks a finished copy (the copy driver), so a restart reuses it.
const COPIED: &str = "rootfs-copied";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    Overlay,
    Copy,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Overlay => "overlay",
            Driver::Copy => "copy",
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Makes root filesystems with one driver.
#[derive(Clone, Copy, Debug)]
pub struct Rootfs {
    driver: Driver,
    volatile: bool,
}

/// A root filesystem set up at `target`. Dropping it changes nothing (the
/// container lives on); `unmount` tears it down.
#[derive(Debug)]
#[must_use = "a mounted root filesystem stays until unmounted"]
pub struct MountedRootfs {
    target: PathBuf,
    container_dir: PathBuf,
    driver: Driver,
}

impl MountedRootfs {
    pub fn target(&self) -> &Path {
        &self.target
    }

    pub fn driver(&self) -> Driver {
        self.driver
    }

    pub fn unmount(self) -> Result<()> {
        Rootfs::unmount(&self.container_dir, &self.target)
    }
}

/// What a setup made so far, undone on drop unless the setup finished.
struct Undo {
    mounted: Option<PathBuf>,
    made: Vec<PathBuf>,
    armed: bool,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(target) = &self.mounted
            && let Err(e) = overlay::unmount(target)
        {
            // Nothing is removed while something may still be mounted.
            tracing::warn!("{} left mounted: {e}", target.display());
            return;
        }
        for path in self.made.iter().rev() {
            if let Err(e) = std::fs::remove_dir_all(path) {
                tracing::warn!("{} not removed: {e}", path.display());
            }
        }
    }
}

impl Undo {
    /// Makes `dir` (mode `mode`), to be removed on failure; an existing
    /// folder is used as it is and left alone. True when it was made.
    fn dir(&mut self, dir: &Path, mode: u32) -> Result<bool> {
        match std::fs::DirBuilder::new().mode(mode).create(dir) {
            Ok(()) => {
                self.made.push(dir.to_owned());
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
                    return Err(io(format!("using {}", dir.display()))(
                        std::io::Error::other("not a directory"),
                    ));
                }
                Ok(false)
            }
            Err(e) => Err(io(format!("creating {}", dir.display()))(e)),
        }
    }
}

/// Where a container's own changes are (docker's SizeRw is their size):
/// its overlay upper folder, or with the copy driver the whole copied root
/// filesystem at `target`.
pub fn changes_dir(container_dir: &Path, target: &Path) -> PathBuf {
    if container_dir.join(COPIED).is_file() {
        target.to_owned()
    } else {
        container_dir.join(UPPER)
    }
}

fn is_empty_dir(dir: &Path) -> Result<bool> {
    let mut entries = std::fs::read_dir(dir).map_err(io(format!("reading {}", dir.display())))?;
    Ok(entries.next().is_none())
}

impl Rootfs {
    pub fn new(driver: Driver) -> Rootfs {
        Rootfs {
            driver,
            volatile: false,
        }
    }

    /// A root filesystem that is thrown away when the container stops
    /// (`run --rm`), as podman mounts those: overlay's `volatile` skips
    /// every sync, the container's fsyncs and the one unmounting does of
    /// the whole host filesystem holding the upper folder (which costs
    /// as much as that filesystem has unwritten). After a host crash such
    /// a layer may be incomplete; nobody keeps it.
    pub fn volatile(self, volatile: bool) -> Rootfs {
        Rootfs { volatile, ..self }
    }

    /// The driver that works under `data_root` (probed once, then cached).
    pub fn open(data_root: &Path) -> Result<Rootfs> {
        driver(data_root).map(Rootfs::new)
    }

    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// Sets up the root filesystem of `layers` (diff folders, lowest first)
    /// at `target` (made when missing; must be empty), with the
    /// container's own folders in `container_dir`.
    pub fn mount(
        &self,
        layers: &[PathBuf],
        container_dir: &Path,
        target: &Path,
    ) -> Result<MountedRootfs> {
        let mut undo = Undo {
            mounted: None,
            made: Vec::new(),
            armed: true,
        };
        if !container_dir.is_dir() {
            if let Some(parent) = container_dir.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(io(format!("creating {}", parent.display())))?;
            }
            undo.dir(container_dir, 0o700)?;
        }
        undo.dir(target, 0o755)?;
        // A copy made by an earlier start is the container's filesystem.
        let copied = container_dir.join(COPIED);
        if self.driver == Driver::Copy && copied.is_file() {
            undo.armed = false;
            return Ok(MountedRootfs {
                target: target.to_owned(),
                container_dir: container_dir.to_owned(),
                driver: self.driver,
            });
        }
        if !is_empty_dir(target)? {
            return Err(ImageError::InUse {
                path: target.display().to_string(),
                reason: "a root filesystem goes into an empty folder".into(),
            });
        }
        let mut layers = layers.to_vec();
        if layers.is_empty() {
            let empty = container_dir.join(EMPTY);
            undo.dir(&empty, 0o755)?;
            layers.push(empty);
        }
        match self.driver {
            Driver::Overlay => {
                mount_overlay(&mut undo, &layers, container_dir, target, self.volatile)?
            }
            Driver::Copy => {
                copy::copy_layers(&layers, target)?;
                // Made only once the copy is whole.
                std::fs::write(&copied, b"")
                    .map_err(io(format!("writing {}", copied.display())))?;
            }
        }
        undo.armed = false;
        Ok(MountedRootfs {
            target: target.to_owned(),
            container_dir: container_dir.to_owned(),
            driver: self.driver,
        })
    }

    /// Unmounts muelle's overlay at `target` and keeps the container's
    /// folders (its upper layer is its changes: a stopped container keeps
    /// them for its next start). Refused while anything else is mounted
    /// there or below. Nothing mounted (or the copy driver) is fine.
    pub fn release(target: &Path) -> Result<()> {
        if target.exists() {
            let canonical = target
                .canonicalize()
                .map_err(io(format!("resolving {}", target.display())))?;
            let all = mountinfo::mounts().map_err(io("reading /proc/self/mountinfo"))?;
            let here = mountinfo::at_or_below(&all, &canonical);
            if let Some(m) = here.iter().find(|m| m.mount_point != canonical) {
                return Err(busy(target, m));
            }
            // Top first: each must be muelle's overlay (an empty image's
            // merged view is empty, so a second setup could stack one).
            for m in here.iter().rev() {
                if m.fstype != "overlay" || m.source != SOURCE {
                    return Err(busy(target, m));
                }
                overlay::unmount(target).map_err(io(format!("unmounting {}", target.display())))?;
            }
        }
        Ok(())
    }

    /// Unmounts muelle's overlay at `target` (inside `container_dir`) and
    /// moves the whole `container_dir` to `trash` (same filesystem, parent
    /// made if missing), for its removal later: the rename is one step
    /// where the removal is one per file. Refused, with nothing moved,
    /// while anything else is mounted in `container_dir`. Nothing there
    /// is fine.
    pub fn unmount_to_trash(container_dir: &Path, target: &Path, trash: &Path) -> Result<()> {
        Rootfs::release(target)?;
        let Ok(canonical) = container_dir.canonicalize() else {
            return Ok(());
        };
        let all = mountinfo::mounts().map_err(io("reading /proc/self/mountinfo"))?;
        if let Some(m) = mountinfo::at_or_below(&all, &canonical).first() {
            return Err(busy(container_dir, m));
        }
        if let Some(parent) = trash.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(io(format!("creating {}", parent.display())))?;
        }
        std::fs::rename(container_dir, trash).map_err(io(format!(
            "moving {} to {}",
            container_dir.display(),
            trash.display()
        )))
    }

    /// Tears down what `mount` set up, whichever driver did: unmounts
    /// muelle's overlay at `target`, then removes `target` and the
    /// container's upper and work folders. Refused, with nothing removed,
    /// while anything else is mounted there or below: removal never
    /// crosses into a mount. Nothing there is fine.
    pub fn unmount(container_dir: &Path, target: &Path) -> Result<()> {
        Rootfs::release(target)?;
        let all = mountinfo::mounts().map_err(io("reading /proc/self/mountinfo"))?;
        for dir in [
            target.to_owned(),
            container_dir.join(UPPER),
            container_dir.join(WORK),
            container_dir.join(EMPTY),
        ] {
            let Ok(canonical) = dir.canonicalize() else {
                continue;
            };
            if let Some(m) = mountinfo::at_or_below(&all, &canonical).first() {
                return Err(busy(&dir, m));
            }
            std::fs::remove_dir_all(&dir).map_err(io(format!("removing {}", dir.display())))?;
        }
        let copied = container_dir.join(COPIED);
        match std::fs::remove_file(&copied) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io(format!("removing {}", copied.display()))(e))
            }
            _ => Ok(()),
        }
    }
}

fn busy(path: &Path, m: &mountinfo::Mount) -> ImageError {
    ImageError::InUse {
        path: path.display().to_string(),
        reason: format!(
            "{} ({}) is mounted at {}",
            m.fstype,
            m.source,
            m.mount_point.display()
        ),
    }
}

fn mount_overlay(
    undo: &mut Undo,
    layers: &[PathBuf],
    container_dir: &Path,
    target: &Path,
    volatile: bool,
) -> Result<()> {
    // OCI-form layers (unpacked while the driver was copy) would show
    // their `.wh.` markers as files: refused, rather than a wrong view.
    if let Some(oci) = layers
        .iter()
        .find(|l| crate::layers::form_of(l) == Some(crate::layers::LayerForm::Oci))
    {
        return Err(ImageError::OciFormLayer(oci.display().to_string()));
    }
    let (upper, work) = (container_dir.join(UPPER), container_dir.join(WORK));
    // An upper folder already there is the container's own, from an
    // earlier start: used as it is, its root's mode included.
    if undo.dir(&upper, 0o755)? {
        root_like_top_layer(&upper, layers)?;
    }
    undo.dir(&work, 0o700)?;
    if volatile {
        // Left by a volatile mount the host crashed under; overlay
        // refuses the folder while it is there, and the layer is
        // disposable.
        let marker = work.join("incompat");
        match std::fs::remove_dir_all(&marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io(format!("removing {}", marker.display()))(e));
            }
            _ => {}
        }
    }
    let spec = overlay::Overlay {
        lowers: layers,
        upper: &upper,
        work: &work,
        volatile,
    };
    overlay::mount(&spec, target).map_err(|e| ImageError::Io {
        context: format!("mounting the root filesystem on {}", target.display()),
        source: e.into_io(),
    })?;
    undo.mounted = Some(target.to_owned());
    Ok(())
}

/// The merged root takes the upper folder's owner and mode: give it the
/// top layer's, as the image means its `/` to be (podman does the same).
fn root_like_top_layer(upper: &Path, layers: &[PathBuf]) -> Result<()> {
    let Some(top) = layers.last() else {
        return Ok(());
    };
    let meta = std::fs::metadata(top).map_err(io(format!("reading {}", top.display())))?;
    std::os::unix::fs::chown(upper, Some(meta.uid()), Some(meta.gid()))
        .map_err(io(format!("setting the owner of {}", upper.display())))?;
    std::fs::set_permissions(upper, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(io(format!("setting the mode of {}", upper.display())))
}

/// The container's own layer under `container_dir` (the overlay's upper
/// folder): its changes to the image, which `diff` reads.
pub fn upper_dir(container_dir: &Path) -> PathBuf {
    container_dir.join(UPPER)
}
