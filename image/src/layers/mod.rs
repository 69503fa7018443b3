//! Layers unpacked once, shared by every image that has them:
//! `ROOT/image/layers/<diff id hex>/diff/` holds the tree (overlay form:
//! whiteouts are 0:0 devices, opaque folders carry
//! `trusted.overlay.opaque`), `layer.json` beside it its sizes.
//!
//! Layer folders come in two forms (`LayerForm`, kept in `layer.json`):
//! overlay's (above), and, where the rootfs driver is `copy`, OCI's, each
//! whiteout an empty `.wh.` marker file. The copy driver reads both; the
//! OCI form is the only one a data root on overlayfs can hold (overlayfs
//! refuses to create whiteouts or `trusted.overlay.*` through itself). A
//! layer of the other form than the store's counts as absent (`exists`)
//! and is unpacked again, replacing it.
//!
//! A layer is untrusted input. It is unpacked by `storage::archive` (every
//! entry through descriptors, nothing written outside the folder, no
//! symlink followed, forged overlay xattrs dropped) into a fresh temporary
//! folder `layers/.tmp-<pid>-...`, and renamed to its diff id only once it
//! unpacked whole and its diff id is known (and matches the image's, when
//! given): a `layers/<hex>` folder is always a complete layer. A failed
//! unpack leaves nothing.
//!
//! `layers/` is `0700`: layer trees hold what images hold (setuid-root
//! binaries, device nodes), and no host user may reach them outside a
//! container. Device nodes are created, as docker and podman create them
//! when root ([`LayerStore::devices`] to refuse them): a node in a layer
//! opens nothing by itself, since containers get only the devices their
//! device cgroup allows, on cgroup v1 and v2 alike.
//!
//! Unpacking is not locked against removal: callers that remove layers
//! (image removal) decide which are unused first.

mod compression;
mod stream;
mod unpack;

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use compression::Compression;

use crate::error::io;
use crate::rootfs::{self, Driver, mountinfo};
use crate::{Digest, ImageError, Result};

const INFO_FILE: &str = "layer.json";
const DIFF_DIR: &str = "diff";
const TEMP_PREFIX: &str = ".tmp-";
const TRASH_PREFIX: &str = ".trash-";

/// What `unpack` made or found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unpacked {
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
    /// File data unpacked, in bytes (docker's layer size).
    pub size: u64,
}

/// `layer.json`: what is known of a layer without walking it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    pub diff_id: Digest,
    /// File data, in bytes.
    pub size: u64,
    /// The uncompressed tar, in bytes.
    pub tar_size: u64,
    /// The blob it was first unpacked from, and how that was compressed.
    pub blob: Digest,
    pub compression: Compression,
    #[serde(default)]
    pub form: LayerForm,
}

/// How a layer folder holds whiteouts (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerForm {
    /// 0:0 devices and `trusted.overlay.opaque`: a lower folder for overlay.
    #[default]
    Overlay,
    /// Empty `.wh.NAME` and `.wh..wh..opq` files: for the copy driver.
    Oci,
}

#[derive(Clone, Debug)]
pub struct LayerStore {
    data_root: PathBuf,
    root: PathBuf,
    devices: bool,
    /// Decided at first use, from the rootfs driver (which may probe).
    form: std::sync::OnceLock<LayerForm>,
}

impl LayerStore {
    /// The store under `data_root/image/layers`, made (0700) when missing.
    pub fn open(data_root: &Path) -> Result<LayerStore> {
        let image = data_root.join("image");
        std::fs::create_dir_all(&image).map_err(io(format!("creating {}", image.display())))?;
        let root = image.join("layers");
        let made = std::fs::DirBuilder::new().mode(0o700).create(&root);
        match made {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => private(&root)?,
            Err(e) => return Err(io(format!("creating {}", root.display()))(e)),
        }
        Ok(LayerStore {
            data_root: data_root.to_owned(),
            root,
            devices: true,
            form: std::sync::OnceLock::new(),
        })
    }

    /// Whether layers may create device nodes (default: yes, as docker);
    /// when not, a layer holding one is refused, naming the entry.
    pub fn devices(mut self, allowed: bool) -> LayerStore {
        self.devices = allowed;
        self
    }

    /// Layers of `form`, whatever the rootfs driver (tests; a caller that
    /// knows better than the probe).
    pub fn with_form(self, form: LayerForm) -> LayerStore {
        LayerStore {
            form: std::sync::OnceLock::from(form),
            ..self
        }
    }

    /// The form this store unpacks layers in: overlay's where the rootfs
    /// driver is overlay, else OCI's.
    pub fn form(&self) -> LayerForm {
        *self
            .form
            .get_or_init(|| match rootfs::driver(&self.data_root) {
                Ok(Driver::Overlay) => LayerForm::Overlay,
                Ok(Driver::Copy) => LayerForm::Oci,
                Err(e) => {
                    tracing::warn!("rootfs driver unknown ({e}): layers keep OCI whiteouts");
                    LayerForm::Oci
                }
            })
    }

    /// `ROOT/image/layers`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join(diff_id.hex())
    }

    /// The layer's tree (a lower folder for overlay).
    pub fn path(&self, diff_id: &Digest) -> PathBuf {
        self.dir(diff_id).join(DIFF_DIR)
    }

    /// Whether the layer is here, whole, in this store's form.
    pub fn exists(&self, diff_id: &Digest) -> bool {
        self.info(diff_id)
            .is_ok_and(|info| info.form == self.form())
    }

    fn complete(&self, diff_id: &Digest) -> bool {
        self.dir(diff_id).join(INFO_FILE).is_file()
    }

    pub fn info(&self, diff_id: &Digest) -> Result<LayerInfo> {
        let path = self.dir(diff_id).join(INFO_FILE);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ImageError::LayerNotFound(diff_id.clone()));
            }
            Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
        };
        serde_json::from_slice(&text).map_err(|e| ImageError::Io {
            context: format!("reading {}", path.display()),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })
    }

    /// Unpacks the blob `layer_blob` (tar, gzip or zstd, told by its bytes;
    /// `media_type` only for a warning when it says otherwise) once: a
    /// layer already here is shared, not unpacked again. With
    /// `expected_diff_id` (the image config's), a layer that unpacks to
    /// anything else is refused and nothing is kept.
    pub fn unpack(
        &self,
        blobs: &crate::BlobStore,
        layer_blob: &Digest,
        media_type: &str,
        expected_diff_id: Option<&Digest>,
    ) -> Result<Unpacked> {
        if let Some(diff_id) = expected_diff_id
            && self.exists(diff_id)
        {
            let info = self.info(diff_id)?;
            return Ok(Unpacked {
                diff_id: info.diff_id,
                size: info.size,
            });
        }
        self.remove_stale();
        unpack::unpack(self, blobs, layer_blob, media_type, expected_diff_id)
    }

    /// Removes the layer (none there is fine: another command's cleanup
    /// may have been first). Refused while anything is mounted in its
    /// folder or a mounted overlay uses it: a tree removal must never cross
    /// into a mount, and a container's root filesystem must not lose a
    /// layer under it.
    pub fn remove(&self, diff_id: &Digest) -> Result<()> {
        let dir = self.dir(diff_id);
        if std::fs::symlink_metadata(&dir).is_err() {
            return Ok(());
        }
        let canonical = dir
            .canonicalize()
            .map_err(io(format!("resolving {}", dir.display())))?;
        let all = mountinfo::mounts().map_err(io("reading /proc/self/mountinfo"))?;
        if let Some(m) = mountinfo::at_or_below(&all, &canonical).first() {
            return Err(ImageError::InUse {
                path: dir.display().to_string(),
                reason: format!("{} is mounted inside it", m.mount_point.display()),
            });
        }
        if let Some(m) = mountinfo::overlays_using(&all, &canonical.join(DIFF_DIR)).first() {
            return Err(ImageError::InUse {
                path: dir.display().to_string(),
                reason: format!(
                    "the root filesystem mounted at {} uses it",
                    m.mount_point.display()
                ),
            });
        }
        // Out of sight at once (no reader sees half a layer), then deleted.
        let trash = self.root.join(format!(
            "{TRASH_PREFIX}{}-{}",
            std::process::id(),
            diff_id.hex()
        ));
        std::fs::rename(&dir, &trash).map_err(io(format!("removing layer {diff_id}")))?;
        std::fs::remove_dir_all(&trash).map_err(io(format!("removing {}", trash.display())))
    }

    /// Every complete layer, of either form, sorted.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let entries = std::fs::read_dir(&self.root)
            .map_err(io(format!("listing {}", self.root.display())))?;
        let mut all: Vec<Digest> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| format!("sha256:{n}").parse().ok())
            .filter(|d| self.complete(d))
            .collect();
        all.sort();
        Ok(all)
    }

    /// Temporary and trash folders of processes that died midway (a crash,
    /// kill -9): removed, so they do not fill the disk. Folders of live
    /// processes are theirs.
    fn remove_stale(&self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(rest) = name
                .strip_prefix(TEMP_PREFIX)
                .or_else(|| name.strip_prefix(TRASH_PREFIX))
            else {
                continue;
            };
            let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_none_or(|pid| Path::new(&format!("/proc/{pid}")).exists());
            if !alive {
                tracing::info!("removing {name}, left by a process that died");
                if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                    tracing::warn!("{name} not removed: {e}");
                }
            }
        }
    }
}

/// `layers/` must stay root's alone (see the module doc).
fn private(dir: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir).map_err(io(format!("reading {}", dir.display())))?;
    if !meta.is_dir() {
        return Err(io(format!("opening {}", dir.display()))(io::Error::other(
            "not a directory",
        )));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!("{} was open to other users: made 0700", dir.display());
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(format!("making {} private", dir.display())))?;
    }
    Ok(())
}

/// The form of the layer folder whose tree is `diff` (a path from
/// `LayerStore::path`), when its `layer.json` says.
pub(crate) fn form_of(diff: &Path) -> Option<LayerForm> {
    let info = std::fs::read(diff.parent()?.join(INFO_FILE)).ok()?;
    serde_json::from_slice::<LayerInfo>(&info)
        .ok()
        .map(|i| i.form)
}
