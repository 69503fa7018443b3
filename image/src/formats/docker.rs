//! docker's `docker save` format: `manifest.json` lists each image's
//! config file, its `RepoTags` and its layer files in order. Classic
//! docker names them `<id>.json` and `<v1id>/layer.tar`, podman
//! `<id>.json` and `<diffid>.tar` (with `<v1id>/layer.tar` symlinks),
//! docker 25+ `blobs/sha256/<hex>` (and adds an OCI layout, which the OCI
//! reader then prefers).
//!
//! Such an archive has no manifest, so loading writes an OCI one for the
//! config and layer blobs (media types by each layer's compression);
//! layers are stored as the archive has them, and each one's diff_id is
//! checked against the config when it is unpacked.

use std::collections::{BTreeSet, HashSet};
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::stage::Staged;
use super::tarout::TarOut;
use super::{SaveImage, group};
use crate::manifest::{self, media};
use crate::store::{Hold, familiar};
use crate::{Digest, ImageError, ImageRecord, ImageRef, Images, Result};

/// Images in one `docker save`: a few, or a few hundred for a whole host.
const MAX_IMAGES: usize = 10_000;

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

pub fn is_docker(staged: &Staged) -> bool {
    staged.has("manifest.json")
}

fn bad(reason: String) -> ImageError {
    ImageError::InvalidArchive(reason)
}

/// The media type of a stored layer, from its first bytes.
fn layer_media_type(images: &Images, digest: &Digest) -> Result<&'static str> {
    let mut start = Vec::with_capacity(4);
    let path = images.blobs().path(digest);
    std::fs::File::open(&path)
        .and_then(|f| f.take(4).read_to_end(&mut start))
        .map_err(|_| ImageError::BlobNotFound(digest.clone()))?;
    Ok(media::oci_layer_for(&start))
}

pub fn prepare(images: &Images, hold: &Hold, staged: &Staged) -> Result<Vec<ImageRecord>> {
    let bytes = staged.small("manifest.json")?.unwrap_or_default();
    let entries: Vec<Entry> = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("manifest.json does not parse: {e}")))?;
    if entries.len() > MAX_IMAGES {
        return Err(bad(format!(
            "manifest.json lists more than {MAX_IMAGES} images"
        )));
    }
    let mut records = Vec::new();
    for entry in &entries {
        let config = config_blob(images, staged, &entry.config)?;
        let config_bytes = images.blobs().read(&config)?;
        let what = format!("config {}", entry.config);
        let parsed = manifest::parse_config(&config_bytes, &what)?;
        let diff_ids = manifest::diff_ids(&parsed, &what)?;
        if diff_ids.len() != entry.layers.len() {
            return Err(bad(format!(
                "{} names {} layers, its config {}",
                entry.config,
                entry.layers.len(),
                diff_ids.len()
            )));
        }
        let mut layers = Vec::new();
        for name in &entry.layers {
            let (digest, size) = staged
                .blob(name)?
                .ok_or_else(|| bad(format!("layer {name} is not in the archive")))?;
            layers.push(json!({
                "mediaType": layer_media_type(images, digest)?,
                "digest": digest.to_string(),
                "size": size,
            }));
        }
        let oci_manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": {
                "mediaType": media::OCI_CONFIG,
                "digest": config.to_string(),
                "size": config_bytes.len(),
            },
            "layers": layers,
        });
        let manifest = images
            .blobs()
            .put_bytes(oci_manifest.to_string().as_bytes())?;
        let mut tags = BTreeSet::new();
        for tag in entry.repo_tags.iter().flatten() {
            let parsed: ImageRef = tag
                .parse()
                .map_err(|e| bad(format!("RepoTags has {tag:?}: {e}")))?;
            if parsed.tag().is_some() && parsed.digest().is_none() {
                tags.insert(parsed.full());
            }
        }
        records.push(images.prepare(hold, &manifest, Some(media::OCI_MANIFEST), tags)?);
    }
    Ok(group(records))
}

/// The config named in manifest.json, as a stored blob. Its name promises
/// its digest (`<hex>.json`, `blobs/sha256/<hex>`) and is held to it.
fn config_blob(images: &Images, staged: &Staged, name: &str) -> Result<Digest> {
    let promised = name
        .strip_suffix(".json")
        .or_else(|| name.strip_prefix("blobs/sha256/"))
        .and_then(|hex| format!("sha256:{hex}").parse::<Digest>().ok());
    if let Some((digest, _)) = staged.blob(name)? {
        return Ok(digest.clone());
    }
    let bytes = staged
        .small(name)?
        .ok_or_else(|| bad(format!("config {name} is not in the archive")))?;
    let (digest, _) = images
        .blobs()
        .put(bytes, promised.as_ref())
        .map_err(|e| bad(format!("config {name}: {e}")))?;
    Ok(digest)
}

/// `manifest.json`, `<config hex>.json` and `<layer blob hex>/layer.tar`
/// (the blob as stored: docker and podman both read compressed layers).
pub fn write(images: &Images, plan: &[SaveImage], out: impl Write) -> Result<()> {
    let mut tar = TarOut::new(out);
    let mut written = HashSet::new();
    let mut entries = Vec::new();
    for image in plan {
        let record = &image.record;
        let config = format!("{}.json", record.id.hex());
        if written.insert(config.clone()) {
            tar.blob(&config, images.blobs(), &record.id)?;
        }
        let mut layers = Vec::new();
        for layer in &record.layers {
            let dir = format!("{}/", layer.digest.hex());
            let name = format!("{dir}layer.tar");
            if written.insert(name.clone()) {
                tar.dir(&dir)?;
                tar.blob(&name, images.blobs(), &layer.digest)?;
            }
            layers.push(name);
        }
        let repo_tags: Vec<String> = image.tags.iter().map(|t| familiar(t)).collect();
        entries.push(Entry {
            config,
            repo_tags: (!repo_tags.is_empty()).then_some(repo_tags),
            layers,
        });
    }
    let manifest = serde_json::to_vec(&entries)
        .map_err(|e| ImageError::InvalidArchive(format!("encoding manifest.json: {e}")))?;
    tar.bytes("manifest.json", &manifest)?;
    tar.finish()
}
