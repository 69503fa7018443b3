//! Garbage: blobs and unpacked layers no image record references, and
//! temporary files a crashed command left. Found with the metadata store
//! open (the records are the roots) and swept with it closed, all under
//! the collector's exclusive lock, so no command that is storing blobs
//! its records will name (a load, an import) or reading blobs (a save)
//! runs meanwhile (see `lock.rs`).

use std::collections::BTreeSet;
use std::fs::File;
use std::path::PathBuf;

use nix::fcntl::Flock;

use super::lock;
use crate::error::io;
use crate::{BlobStore, Digest, ImageError, ImageRecord, LayerStore, Result};

/// What a sweep will delete; holds the collector's lock until swept.
#[derive(Debug)]
pub struct Garbage {
    _lock: Option<Flock<File>>,
    blobs: BlobStore,
    layers: LayerStore,
    unused_blobs: Vec<Digest>,
    unused_layers: Vec<Digest>,
    temporary: Vec<PathBuf>,
    skipped: bool,
}

/// What a sweep deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs: usize,
    pub layers: usize,
    /// Bytes freed (blob files and layer contents).
    pub bytes: u64,
    /// Another command was loading or saving: nothing was collected.
    pub skipped: bool,
}

pub(super) fn garbage(
    blobs: &BlobStore,
    layers: &LayerStore,
    records: &[ImageRecord],
) -> Result<Garbage> {
    let mut garbage = Garbage {
        _lock: None,
        blobs: blobs.clone(),
        layers: layers.clone(),
        unused_blobs: Vec::new(),
        unused_layers: Vec::new(),
        temporary: Vec::new(),
        skipped: false,
    };
    let Some(lock) = lock::try_exclusive(blobs.root())? else {
        garbage.skipped = true;
        return Ok(garbage);
    };
    garbage._lock = Some(lock);
    let mut used_blobs = BTreeSet::new();
    let mut used_layers = BTreeSet::new();
    for r in records {
        used_blobs.insert(r.id.clone());
        used_blobs.insert(r.manifest.clone());
        for l in &r.layers {
            used_blobs.insert(l.digest.clone());
            used_layers.insert(l.diff_id.clone());
        }
    }
    garbage.unused_blobs = blobs
        .list()?
        .into_iter()
        .filter(|d| !used_blobs.contains(d))
        .collect();
    garbage.unused_layers = layers
        .list()?
        .into_iter()
        .filter(|d| !used_layers.contains(d))
        .collect();
    // Under the exclusive lock no command is writing a blob, so a
    // temporary file is a crash's leftover.
    let dir = blobs.root().join("blobs/sha256");
    let entries = std::fs::read_dir(&dir).map_err(io(format!("listing {}", dir.display())))?;
    garbage.temporary = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .map(|e| e.path())
        .collect();
    Ok(garbage)
}

impl Garbage {
    pub fn is_empty(&self) -> bool {
        self.unused_blobs.is_empty() && self.unused_layers.is_empty() && self.temporary.is_empty()
    }

    /// Deletes it all; call with the metadata store closed.
    pub fn sweep(self) -> Result<GcReport> {
        let mut report = GcReport {
            skipped: self.skipped,
            ..GcReport::default()
        };
        for d in &self.unused_blobs {
            let size = std::fs::metadata(self.blobs.path(d)).map_or(0, |m| m.len());
            self.blobs.remove(d)?;
            report.blobs += 1;
            report.bytes += size;
        }
        for d in &self.unused_layers {
            let size = self.layers.info(d).map_or(0, |i| i.size);
            match self.layers.remove(d) {
                Ok(()) => {
                    report.layers += 1;
                    report.bytes += size;
                }
                // Mounted (a root filesystem outside muelle's records):
                // kept, and the rest is still collected.
                Err(e @ ImageError::InUse { .. }) => tracing::warn!("layer {d} kept: {e}"),
                Err(e) => return Err(e),
            }
        }
        for path in &self.temporary {
            let size = std::fs::metadata(path).map_or(0, |m| m.len());
            if std::fs::remove_file(path).is_ok() {
                report.bytes += size;
            }
        }
        Ok(report)
    }
}
