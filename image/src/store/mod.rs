//! The image store's verbs: images as records in the metadata store over
//! blobs and unpacked layers on disk.
//!
//! muelle has no daemon, and the metadata store admits one command at a
//! time, so a command holds it only while it reads or writes records:
//! heavy work (reading archives, storing blobs, unpacking layers, deleting
//! them) happens with the store closed, and every method that needs
//! records takes the caller's `&Store` for a moment. The order is always:
//!
//! 1. [`Images::hold`], then store blobs and unpack layers
//!    ([`Images::prepare`] builds the record from stored blobs);
//! 2. open the store, [`Images::commit`] the records in one transaction,
//!    close it;
//! 3. drop the hold; [`Images::garbage`] (store open a moment) then
//!    [`Garbage::sweep`] (store closed) deletes what no record names.
//!
//! After a crash between any two steps the records are whole and the
//! worst left behind is unreferenced files, which the next collection
//! deletes. `ROOT/image/index.json` is rewritten from the records after
//! every change, so other OCI tools see the same images.

mod gc;
mod layout;
mod lock;
mod remove;
mod resolve;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use storage::store::{Record, Store};

pub use gc::{Garbage, GcReport};
pub use lock::Hold;
pub use remove::Removed;
pub use resolve::{By, MIN_PREFIX, familiar, repo_digest, split_tag};

use crate::manifest::{self, Document, Manifest};
use crate::record::Layer;
use crate::{BlobStore, Digest, ImageError, ImageRecord, ImageRef, LayerStore, Result};

/// Index → platform manifest is one step; an index of indexes is allowed
/// one level deeper, and no more (a cycle of indexes must end).
const MAX_INDEX_DEPTH: usize = 2;

/// Which containers use an image, supplied by the engine. It is called
/// inside the record transaction, so it must not use the store: list the
/// containers before, and answer from that list.
pub type InUse<'a> = &'a dyn Fn(&Digest) -> Vec<ImageUser>;

/// A container that uses an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageUser {
    /// The container's id.
    pub container: String,
    /// Running (or paused, restarting): docker refuses to delete its image
    /// even when forced.
    pub running: bool,
}

/// The image store of one data root.
#[derive(Clone, Debug)]
pub struct Images {
    data_root: PathBuf,
    blobs: BlobStore,
    layers: LayerStore,
}

/// One row of `docker images`: one per tag, or one `<none>` row for an
/// untagged image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRow {
    /// Familiar form (`busybox`, `localhost/app`); `None` is `<none>`.
    pub repository: Option<String>,
    pub tag: Option<String>,
    /// The manifest digest (docker's DIGEST column).
    pub digest: Digest,
    pub id: Digest,
    /// RFC 3339, from the config.
    pub created: Option<String>,
    /// Bytes of the unpacked layers.
    pub size: u64,
}

/// One row of `docker history`, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image id on the newest row, `None` (docker's `<missing>`) below.
    pub id: Option<Digest>,
    pub created: Option<String>,
    pub created_by: String,
    /// Bytes of the layer this step made; 0 for a step without one.
    pub size: u64,
    pub comment: String,
    pub empty_layer: bool,
}

impl Images {
    /// The store under `data_root/image` (blobs, layers, index.json), made
    /// when missing. Opens no metadata store.
    pub fn open(data_root: &Path) -> Result<Images> {
        Ok(Images {
            data_root: data_root.to_owned(),
            blobs: BlobStore::open(data_root)?,
            layers: LayerStore::open(data_root)?,
        })
    }

    pub fn data_root(&self) -> &Path {
        &self.data_root
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn layers(&self) -> &LayerStore {
        &self.layers
    }

    /// Where a layer's files are (the overlay lower folder).
    pub fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.layers.path(diff_id)
    }

    /// Keeps the collector away while this command stores or reads blobs
    /// and layers with the metadata store closed (see `lock.rs`).
    pub fn hold(&self) -> Result<Hold> {
        lock::shared(self.blobs.root())
    }

    /// The record for a stored manifest (an index picks the host's
    /// platform): reads and checks the manifest and config blobs, checks
    /// every layer blob is stored, and unpacks the layers not unpacked
    /// yet, each checked against the config's `rootfs.diff_ids`. `tags`
    /// are full references. Nothing is committed.
    pub fn prepare(
        &self,
        _hold: &Hold,
        manifest: &Digest,
        media_type: Option<&str>,
        tags: BTreeSet<String>,
    ) -> Result<ImageRecord> {
        let (digest, m) = self.image_manifest(manifest, media_type)?;
        let what = format!("config {}", m.config.digest);
        let config_bytes = self.blobs.read(&m.config.digest)?;
        if config_bytes.len() as u64 != m.config.size {
            return Err(ImageError::InvalidManifest {
                what,
                reason: format!(
                    "{} bytes, but manifest {digest} says {}",
                    config_bytes.len(),
                    m.config.size
                ),
            });
        }
        let config = manifest::parse_config(&config_bytes, &what)?;
        let diff_ids = manifest::diff_ids(&config, &what)?;
        if diff_ids.len() != m.layers.len() {
            return Err(ImageError::InvalidManifest {
                what,
                reason: format!(
                    "{} diff_ids for the {} layers of manifest {digest}",
                    diff_ids.len(),
                    m.layers.len()
                ),
            });
        }
        let mut layers = Vec::with_capacity(m.layers.len());
        let mut size = 0;
        for (layer, diff_id) in m.layers.iter().zip(&diff_ids) {
            let stored = std::fs::metadata(self.blobs.path(&layer.digest))
                .map_err(|_| ImageError::BlobNotFound(layer.digest.clone()))?;
            if stored.len() != layer.size {
                return Err(ImageError::InvalidManifest {
                    what: format!("manifest {digest}"),
                    reason: format!(
                        "layer {} is {} bytes, not {}",
                        layer.digest,
                        stored.len(),
                        layer.size
                    ),
                });
            }
            // A layer already here is shared, not unpacked again.
            let unpacked =
                self.layers
                    .unpack(&self.blobs, &layer.digest, &layer.media_type, Some(diff_id))?;
            size += unpacked.size;
            layers.push(Layer {
                digest: layer.digest.clone(),
                media_type: layer.media_type.clone(),
                diff_id: diff_id.clone(),
                size: layer.size,
            });
        }
        Ok(ImageRecord {
            id: m.config.digest.clone(),
            tags,
            manifest: digest,
            manifest_media_type: m.media_type.clone(),
            layers,
            created: config.created().clone(),
            size,
            os: config.os().to_string(),
            architecture: config.architecture().to_string(),
        })
    }

    /// Follows an index to the host's manifest.
    fn image_manifest(
        &self,
        digest: &Digest,
        media_type: Option<&str>,
    ) -> Result<(Digest, Manifest)> {
        let mut digest = digest.clone();
        let mut media_type = media_type.map(str::to_owned);
        for _ in 0..=MAX_INDEX_DEPTH {
            let what = format!("manifest {digest}");
            let bytes = self.blobs.read(&digest)?;
            match manifest::parse(&bytes, media_type.as_deref(), &what)? {
                Document::Manifest(m) => return Ok((digest, m)),
                Document::Index(index) => {
                    let chosen = index.select(&manifest::Platform::host(), &what)?;
                    digest = chosen.digest.clone();
                    media_type = Some(chosen.media_type.clone());
                }
            }
        }
        Err(ImageError::InvalidManifest {
            what: format!("manifest {digest}"),
            reason: "indexes nested too deep".to_owned(),
        })
    }

    /// Stores the records in one transaction. An image already stored
    /// (same id) keeps its tags and takes the new manifest; a tag moves
    /// from any image that had it (which stays, untagged, as in docker).
    /// Returns the records as stored.
    pub fn commit(&self, store: &Store, images: &[ImageRecord]) -> Result<Vec<ImageRecord>> {
        for image in images {
            for tag in &image.tags {
                check_tag(tag)?;
            }
        }
        self.edit(store, |all| {
            for image in images {
                for other in all.values_mut() {
                    if other.id != image.id {
                        other.tags.retain(|t| !image.tags.contains(t));
                    }
                }
                let mut merged = image.clone();
                if let Some(old) = all.get(image.id.hex()) {
                    merged.tags.extend(old.tags.iter().cloned());
                }
                all.insert(merged.key(), merged);
            }
            Ok(images
                .iter()
                .filter_map(|i| all.get(i.id.hex()).cloned())
                .collect())
        })
    }

    /// The image `text` names (see `resolve.rs`), or `No such image`.
    pub fn resolve(&self, store: &Store, text: &str) -> Result<ImageRecord> {
        let records = store.table::<ImageRecord>()?.list()?;
        resolve::find(&records, text).map(|(r, _)| r)
    }

    /// [`Images::resolve`] and how the text named it.
    pub fn resolve_by(&self, store: &Store, text: &str) -> Result<(ImageRecord, By)> {
        let records = store.table::<ImageRecord>()?.list()?;
        resolve::find(&records, text)
    }

    /// Every image, newest first (docker's order).
    pub fn list(&self, store: &Store) -> Result<Vec<ImageRecord>> {
        let mut records = store.table::<ImageRecord>()?.list()?;
        records.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(records)
    }

    /// `docker tag SOURCE TARGET`: TARGET (a reference; `latest` when it
    /// has no tag) now names SOURCE's image, and no other.
    pub fn tag(&self, store: &Store, source: &str, target: &str) -> Result<ImageRecord> {
        let target: ImageRef = target.parse()?;
        if target.digest().is_some() {
            return Err(ImageError::InvalidReference {
                reference: target.full(),
                reason: "a tag cannot name a digest".to_owned(),
            });
        }
        let full = target.full();
        self.edit(store, |all| {
            let list: Vec<ImageRecord> = all.values().cloned().collect();
            let (image, _) = resolve::find(&list, source)?;
            for other in all.values_mut() {
                other.tags.remove(&full);
            }
            let record = all
                .get_mut(image.id.hex())
                .ok_or_else(|| ImageError::NotFound(source.to_owned()))?;
            record.tags.insert(full.clone());
            Ok(record.clone())
        })
    }

    /// `docker rmi [-f] TEXT`, in docker's rules (see `remove.rs`).
    pub fn remove(
        &self,
        store: &Store,
        text: &str,
        force: bool,
        in_use: InUse<'_>,
    ) -> Result<Vec<Removed>> {
        self.edit(store, |all| remove::remove(all, text, force, in_use))
    }

    /// `docker image prune [-a]`: untagged images, or with `all` every
    /// image, that no container uses.
    pub fn prune(&self, store: &Store, all: bool, in_use: InUse<'_>) -> Result<Vec<Removed>> {
        self.prune_matching(store, all, in_use, &|_| true)
    }

    /// [`Images::prune`] of the images `selected` accepts (`--filter`).
    pub fn prune_matching(
        &self,
        store: &Store,
        all: bool,
        in_use: InUse<'_>,
        selected: &dyn Fn(&ImageRecord) -> bool,
    ) -> Result<Vec<Removed>> {
        self.edit(store, |records| {
            Ok(remove::prune(records, all, in_use, selected))
        })
    }

    /// What no record references, found with the store open a moment;
    /// [`Garbage::sweep`] deletes it with the store closed. Empty (and
    /// `skipped`) while another command loads or saves.
    pub fn garbage(&self, store: &Store) -> Result<Garbage> {
        let records = store.table::<ImageRecord>()?.list()?;
        // Repairs index.json too, should an earlier write have failed.
        self.write_layout(&records);
        gc::garbage(&self.blobs, &self.layers, &records)
    }

    /// [`Images::garbage`] and its sweep, for callers that hold the store
    /// anyway (tests, `image prune`'s end).
    pub fn gc(&self, store: &Store) -> Result<GcReport> {
        self.garbage(store)?.sweep()
    }

    /// The image's config (OCI or Docker; docker-only fields dropped).
    pub fn config(&self, record: &ImageRecord) -> Result<ImageConfiguration> {
        let bytes = self.blobs.read(&record.id)?;
        manifest::parse_config(&bytes, &format!("config {}", record.id))
    }

    /// The raw config, for `image inspect` (keeps docker's own fields).
    pub fn config_bytes(&self, record: &ImageRecord) -> Result<Vec<u8>> {
        self.blobs.read(&record.id)
    }

    pub fn manifest(&self, record: &ImageRecord) -> Result<Manifest> {
        let what = format!("manifest {}", record.manifest);
        let bytes = self.blobs.read(&record.manifest)?;
        match manifest::parse(&bytes, Some(&record.manifest_media_type), &what)? {
            Document::Manifest(m) => Ok(m),
            Document::Index(_) => Err(ImageError::InvalidManifest {
                what,
                reason: "an index where an image manifest was stored".to_owned(),
            }),
        }
    }

    /// `docker history`: the config's history, newest first, each step
    /// that made a layer given that layer's size.
    pub fn history(&self, record: &ImageRecord) -> Result<Vec<HistoryEntry>> {
        let config = self.config(record)?;
        let mut layers = record.layers.iter();
        let mut entries: Vec<HistoryEntry> = match config.history() {
            Some(history) if !history.is_empty() => history
                .iter()
                .map(|h| {
                    let empty = h.empty_layer().unwrap_or(false);
                    let size = if empty {
                        0
                    } else {
                        layers.next().map_or(0, |l| self.layer_size(&l.diff_id))
                    };
                    HistoryEntry {
                        id: None,
                        created: h.created().clone(),
                        created_by: h.created_by().clone().unwrap_or_default(),
                        size,
                        comment: h.comment().clone().unwrap_or_default(),
                        empty_layer: empty,
                    }
                })
                .collect(),
            // No history (some importers): one row per layer, as docker.
            _ => layers
                .map(|l| HistoryEntry {
                    id: None,
                    created: record.created.clone(),
                    created_by: String::new(),
                    size: self.layer_size(&l.diff_id),
                    comment: String::new(),
                    empty_layer: false,
                })
                .collect(),
        };
        entries.reverse();
        if let Some(top) = entries.first_mut() {
            top.id = Some(record.id.clone());
        }
        Ok(entries)
    }

    /// A layer's file data in bytes (docker's layer size); 0 when its
    /// record is unreadable, which `history` should not fail on.
    fn layer_size(&self, diff_id: &Digest) -> u64 {
        self.layers.info(diff_id).map_or(0, |i| i.size)
    }

    /// Runs `f` over every record in one transaction, writes back what it
    /// changed, then rewrites index.json.
    fn edit<R>(
        &self,
        store: &Store,
        f: impl Fn(&mut BTreeMap<String, ImageRecord>) -> Result<R>,
    ) -> Result<R> {
        let value = store.transact_with(|tx| {
            let before: BTreeMap<String, ImageRecord> = tx
                .list::<ImageRecord>()?
                .into_iter()
                .map(|r| (r.key(), r))
                .collect();
            let mut after = before.clone();
            let value = f(&mut after)?;
            for (key, old) in &before {
                match after.get(key) {
                    None => {
                        tx.remove::<ImageRecord>(key)?;
                    }
                    Some(new) if new != old => tx.insert(new)?,
                    Some(_) => {}
                }
            }
            for (key, new) in &after {
                if !before.contains_key(key) {
                    tx.insert(new)?;
                }
            }
            Ok::<R, ImageError>(value)
        })?;
        let records = store.table::<ImageRecord>()?.list()?;
        self.write_layout(&records);
        Ok(value)
    }

    /// index.json follows the records; failing to write it leaves muelle
    /// itself correct, so it is a warning (the next change or gc retries).
    fn write_layout(&self, records: &[ImageRecord]) {
        if let Err(e) = layout::write_index(&self.blobs, records) {
            tracing::warn!("OCI layout index not updated: {e}");
        }
    }
}

/// Rows for `docker images`: one per tag, sorted by the records' order.
pub fn rows(records: &[ImageRecord]) -> Vec<ImageRow> {
    let mut rows = Vec::new();
    for r in records {
        let row = |repository, tag| ImageRow {
            repository,
            tag,
            digest: r.manifest.clone(),
            id: r.id.clone(),
            created: r.created.clone(),
            size: r.size,
        };
        if r.tags.is_empty() {
            rows.push(row(None, None));
        }
        for t in &r.tags {
            match split_tag(t) {
                Some((repo, tag)) => rows.push(row(Some(repo), Some(tag))),
                None => rows.push(row(Some(t.clone()), None)),
            }
        }
    }
    rows
}

/// A tag as stored: the full form of a reference with a tag and no digest.
fn check_tag(tag: &str) -> Result<()> {
    let parsed: ImageRef = tag.parse()?;
    if parsed.digest().is_some() || parsed.full() != tag {
        return Err(ImageError::InvalidReference {
            reference: tag.to_owned(),
            reason: "a stored tag is a full name:tag (docker.io/library/x:latest)".to_owned(),
        });
    }
    Ok(())
}
