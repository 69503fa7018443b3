//! Images in and out as files: `load` reads an OCI archive or a `docker
//! save` archive (told apart by their contents; gzip or zstd around the
//! tar is undone), `save` writes either.
//!
//! Loading follows the store's order (see `store/mod.rs`): with the
//! collector held off, the archive is read once (`stage.rs`: blobs
//! streamed into the blob store and verified, metadata in memory), each
//! image's layers are unpacked and checked against its config, and only
//! then is the metadata store opened, for one transaction that commits
//! every image of the archive, or none.

mod docker;
mod oci;
mod stage;
mod tarout;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};

use storage::store::Store;

use crate::store::{By, Hold, familiar};
use crate::{Digest, ImageError, ImageRecord, Images, Result};

/// The archive formats of `save`; docker's (what `docker save` and
/// `podman save` write unless told otherwise) by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// An OCI image layout in a tar (`podman save --format oci-archive`).
    Oci,
    /// `docker save`'s format (`podman save --format docker-archive`).
    #[default]
    Docker,
}

impl std::str::FromStr for Format {
    type Err = String;

    /// podman's `--format` words, and the short ones.
    fn from_str(text: &str) -> Result<Format, String> {
        match text {
            "oci-archive" | "oci" => Ok(Format::Oci),
            "docker-archive" | "docker" => Ok(Format::Docker),
            other => Err(format!(
                "unknown archive format {other:?}: oci-archive or docker-archive"
            )),
        }
    }
}

/// One image an archive held, as committed.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedImage {
    pub record: ImageRecord,
    /// The archive's names for it, full (`docker.io/library/busybox:1`).
    pub tags: Vec<String>,
}

impl LoadedImage {
    /// docker's lines: `Loaded image: busybox:1` per name, or `Loaded
    /// image ID: sha256:...` for an unnamed image.
    pub fn lines(&self) -> Vec<String> {
        if self.tags.is_empty() {
            return vec![format!("Loaded image ID: {}", self.record.id)];
        }
        self.tags
            .iter()
            .map(|t| format!("Loaded image: {}", familiar(t)))
            .collect()
    }
}

/// Merges records of the same image (an archive may list one image under
/// several names) keeping the first one's place.
fn group(records: Vec<ImageRecord>) -> Vec<ImageRecord> {
    let mut out: Vec<ImageRecord> = Vec::new();
    for record in records {
        match out.iter_mut().find(|r| r.id == record.id) {
            Some(first) => first.tags.extend(record.tags),
            None => out.push(record),
        }
    }
    out
}

/// Undoes gzip or zstd around the tar (docker load accepts compressed
/// archives), by magic number.
pub(crate) fn decompressed<'a>(input: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    let mut input = BufReader::with_capacity(1 << 20, input);
    let start = input
        .fill_buf()
        .map_err(|e| ImageError::InvalidArchive(format!("reading: {e}")))?;
    Ok(if start.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(input))
    } else if start.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(
            zstd::stream::read::Decoder::with_buffer(input)
                .map_err(|e| ImageError::InvalidArchive(format!("zstd: {e}")))?,
        )
    } else {
        Box::new(input)
    })
}

/// Stages the archive and prepares its images (no metadata store open).
fn read_archive(images: &Images, hold: &Hold, input: impl Read) -> Result<Vec<ImageRecord>> {
    let staged = stage::read(images.blobs(), decompressed(input)?)?;
    let records = if oci::is_oci(&staged) {
        oci::prepare(images, hold, &staged)?
    } else if docker::is_docker(&staged) {
        docker::prepare(images, hold, &staged)?
    } else {
        return Err(ImageError::InvalidArchive(
            "neither an OCI archive (oci-layout, index.json) nor a docker save archive (manifest.json)"
                .to_owned(),
        ));
    };
    if records.is_empty() {
        return Err(ImageError::InvalidArchive("it holds no image".to_owned()));
    }
    Ok(records)
}

/// `docker load`: every image of the archive, committed together. Opens
/// the metadata store (under `images.data_root()`) only to commit.
pub fn load(images: &Images, input: impl Read) -> Result<Vec<LoadedImage>> {
    let hold = images.hold()?;
    let prepared = read_archive(images, &hold, input);
    let outcome = prepared.and_then(|records| {
        let store = Store::open(images.data_root())?;
        let stored = images.commit(&store, &records)?;
        Ok((store, records, stored))
    });
    drop(hold);
    let (store, records, stored) = match outcome {
        Ok(done) => done,
        Err(e) => {
            collect_after_failure(images);
            return Err(e);
        }
    };
    let loaded = records
        .into_iter()
        .zip(stored)
        .map(|(archive, record)| LoadedImage {
            tags: archive.tags.into_iter().collect(),
            record,
        })
        .collect();
    collect(images, store);
    Ok(loaded)
}

/// What a failed load or import stored goes with the next collection;
/// this tries now (if the store is free at once), without making the
/// error about the collection.
pub(crate) fn collect_after_failure(images: &Images) {
    let brief = std::time::Duration::from_millis(200);
    if let Ok(store) = Store::open_with_timeout(images.data_root(), brief) {
        collect(images, store);
    }
}

/// Blobs the archive held that no image uses (and anything a crash left):
/// found with the store open, swept after it is closed. Best effort.
fn collect(images: &Images, store: Store) {
    match images.garbage(&store) {
        Ok(garbage) => {
            drop(store);
            if let Err(e) = garbage.sweep() {
                tracing::warn!("image garbage collection: {e}");
            }
        }
        Err(e) => tracing::warn!("image garbage collection: {e}"),
    }
}

/// One image to save, and the names to give it in the archive.
#[derive(Clone, Debug)]
pub struct SaveImage {
    pub record: ImageRecord,
    /// Full tags; empty for an image named by id.
    pub tags: Vec<String>,
}

/// What `save` will write, resolved with the store open; written after it
/// is closed. Holds the collector off until dropped, so a concurrent `rmi`
/// cannot delete the blobs meanwhile.
#[derive(Debug)]
pub struct SavePlan {
    images: Vec<SaveImage>,
    _hold: Hold,
}

/// Resolves `refs` as `docker save` does: a name saves that tag, an id
/// saves the image without names. The same image named twice is saved
/// once.
pub fn plan_save(images: &Images, store: &Store, refs: &[String]) -> Result<SavePlan> {
    let hold = images.hold()?;
    let mut order: Vec<Digest> = Vec::new();
    let mut planned: BTreeMap<Digest, SaveImage> = BTreeMap::new();
    for text in refs {
        let (record, by) = images.resolve_by(store, text)?;
        let entry = planned.entry(record.id.clone()).or_insert_with(|| {
            order.push(record.id.clone());
            SaveImage {
                record,
                tags: Vec::new(),
            }
        });
        if let By::Tag(tag) = by
            && !entry.tags.contains(&tag)
        {
            entry.tags.push(tag);
        }
    }
    let images = order.iter().filter_map(|id| planned.remove(id)).collect();
    Ok(SavePlan {
        images,
        _hold: hold,
    })
}

impl SavePlan {
    pub fn images(&self) -> &[SaveImage] {
        &self.images
    }

    /// Writes the archive. On error the output is incomplete (and not
    /// terminated as a tar): write to a temporary file and rename.
    pub fn write(&self, images: &Images, out: impl Write, format: Format) -> Result<()> {
        match format {
            Format::Oci => oci::write(images, &self.images, out),
            Format::Docker => docker::write(images, &self.images, out),
        }
    }
}

/// `docker save`, holding `store` for the whole write; a command that can
/// should [`plan_save`], close the store, then [`SavePlan::write`].
pub fn save(
    images: &Images,
    store: &Store,
    refs: &[String],
    out: impl Write,
    format: Format,
) -> Result<()> {
    plan_save(images, store, refs)?.write(images, out, format)
}
