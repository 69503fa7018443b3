//! OCI archives: a tar of an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/<hex>`), as `podman save --format oci-archive` and
//! `skopeo copy ... oci-archive:FILE` write them.
//!
//! Names come from each index entry's annotations: containerd's
//! `io.containerd.image.name` (a full name), else the OCI
//! `org.opencontainers.image.ref.name` when it is a name (podman and
//! muelle write `localhost/app:v1`); a bare tag there (`latest`, as docker
//! writes it beside the containerd name) names no repository and is not
//! taken alone.

use std::collections::BTreeSet;
use std::io::Write;

use serde_json::json;

use super::stage::Staged;
use super::tarout::TarOut;
use super::{SaveImage, group};
use crate::manifest::{self, CONTAINERD_NAME, Descriptor, Document, REF_NAME, media};
use crate::store::Hold;
use crate::{Digest, ImageError, ImageRecord, ImageRef, Images, Result};

pub fn is_oci(staged: &Staged) -> bool {
    staged.has("oci-layout") && staged.has("index.json")
}

fn bad(reason: String) -> ImageError {
    ImageError::InvalidArchive(reason)
}

/// The name an index entry gives its image, if any.
fn entry_name(d: &Descriptor) -> Result<Option<String>> {
    let name = match (
        d.annotations.get(CONTAINERD_NAME),
        d.annotations.get(REF_NAME),
    ) {
        (Some(full), _) => full,
        (None, Some(r)) if r.contains(['/', ':']) => r,
        _ => return Ok(None),
    };
    let parsed: ImageRef = name
        .parse()
        .map_err(|e| bad(format!("index.json names an image {name:?}: {e}")))?;
    // `name@digest` pins content; it names no tag to keep.
    Ok(parsed.tag().map(|_| parsed.full()))
}

pub fn prepare(images: &Images, hold: &Hold, staged: &Staged) -> Result<Vec<ImageRecord>> {
    let layout = staged.small("oci-layout")?.unwrap_or_default();
    let version = serde_json::from_slice::<serde_json::Value>(layout)
        .ok()
        .and_then(|v| v.get("imageLayoutVersion")?.as_str().map(str::to_owned));
    if !version.is_some_and(|v| v.starts_with("1.")) {
        return Err(bad("oci-layout is not an OCI image layout 1.x".to_owned()));
    }
    let index_bytes = staged.small("index.json")?.unwrap_or_default();
    let index = match manifest::parse(index_bytes, None, "index.json")? {
        Document::Index(index) => index,
        Document::Manifest(_) => {
            return Err(bad("index.json is a manifest, not an index".to_owned()));
        }
    };
    let mut records = Vec::new();
    for entry in &index.manifests {
        let stored = staged.blob(&format!("blobs/sha256/{}", entry.digest.hex()))?;
        match stored {
            Some((_, size)) if *size != entry.size => {
                return Err(bad(format!(
                    "index.json says {} is {} bytes; the archive has {size}",
                    entry.digest, entry.size
                )));
            }
            Some(_) => {}
            None if images.blobs().contains(&entry.digest) => {}
            None => return Err(bad(format!("blob {} is not in the archive", entry.digest))),
        }
        let tags: BTreeSet<String> = entry_name(entry)?.into_iter().collect();
        let record = images.prepare(hold, &entry.digest, Some(&entry.media_type), tags)?;
        records.push(record);
    }
    Ok(group(records))
}

/// Writes the layout: every blob once, one index entry per tag (and one
/// unnamed entry for an image saved by id).
pub fn write(images: &Images, plan: &[SaveImage], out: impl Write) -> Result<()> {
    let mut tar = TarOut::new(out);
    tar.dir("blobs/")?;
    tar.dir("blobs/sha256/")?;
    let mut entries = Vec::new();
    for image in plan {
        let record = &image.record;
        let mut blobs: Vec<&Digest> = vec![&record.manifest, &record.id];
        blobs.extend(record.layers.iter().map(|l| &l.digest));
        for digest in blobs {
            tar.blob(
                &format!("blobs/sha256/{}", digest.hex()),
                images.blobs(),
                digest,
            )?;
        }
        let size = std::fs::metadata(images.blobs().path(&record.manifest))
            .map_err(|_| ImageError::BlobNotFound(record.manifest.clone()))?
            .len();
        let descriptor = |name: Option<&String>| {
            let mut d = json!({
                "mediaType": record.manifest_media_type,
                "digest": record.manifest.to_string(),
                "size": size,
            });
            if let Some(name) = name {
                d["annotations"] = json!({ REF_NAME: name, CONTAINERD_NAME: name });
            }
            d
        };
        if image.tags.is_empty() {
            entries.push(descriptor(None));
        }
        entries.extend(image.tags.iter().map(|t| descriptor(Some(t))));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": entries,
    });
    tar.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    tar.bytes("index.json", index.to_string().as_bytes())?;
    tar.finish()
}
