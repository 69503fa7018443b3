//! `ROOT/image/index.json`, the OCI layout's entry point, so that skopeo
//! (`oci:ROOT/image:NAME`) and umoci (`umoci ls --layout ROOT/image`) read
//! muelle's store. The records in the metadata store are the truth; this
//! file is rewritten from them after every change (and by `gc`), whole,
//! through a temporary file and a rename, so a reader never sees half.
//!
//! Each tag is one entry, named by its full reference in both
//! `org.opencontainers.image.ref.name` (the OCI layout's name, which
//! skopeo and umoci look up; a full name keeps `busybox:latest` and
//! `localhost/busybox:latest` apart) and `io.containerd.image.name`.
//! Untagged images are listed without a name, so that a layout tool's own
//! garbage collection (`umoci gc`) keeps their blobs.

use std::io::Write;

use serde_json::{Value, json};

use crate::error::io;
use crate::manifest::{CONTAINERD_NAME, REF_NAME, media};
use crate::{BlobStore, ImageRecord, Result};

pub fn index_json(blobs: &BlobStore, records: &[ImageRecord]) -> Value {
    let mut manifests = Vec::new();
    for record in records {
        // A descriptor needs the manifest's size; a record whose
        // manifest is missing is left out rather than described wrongly.
        let Ok(meta) = std::fs::metadata(blobs.path(&record.manifest)) else {
            tracing::warn!(image = %record.id, "manifest {} missing from the layout", record.manifest);
            continue;
        };
        let descriptor = |name: Option<&str>| {
            let mut d = json!({
                "mediaType": record.manifest_media_type,
                "digest": record.manifest.to_string(),
                "size": meta.len(),
            });
            if let Some(name) = name {
                d["annotations"] = json!({ REF_NAME: name, CONTAINERD_NAME: name });
            }
            d
        };
        if record.tags.is_empty() {
            manifests.push(descriptor(None));
        }
        for tag in &record.tags {
            manifests.push(descriptor(Some(tag)));
        }
    }
    json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": manifests,
    })
}

pub fn write_index(blobs: &BlobStore, records: &[ImageRecord]) -> Result<()> {
    let root = blobs.root();
    let path = root.join("index.json");
    let tmp = root.join(format!(".index.json.tmp-{}", std::process::id()));
    let bytes = serde_json::to_vec(&index_json(blobs, records))
        .map_err(|e| io(format!("encoding {}", path.display()))(e.into()))?;
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(&bytes)?;
        f.sync_data()
    });
    let renamed = written.and_then(|()| std::fs::rename(&tmp, &path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed.map_err(io(format!("writing {}", path.display())))
}
