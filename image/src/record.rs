//! The image records the metadata store keeps (table `images`), keyed by
//! image id (the config's digest, as docker's image ids).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use storage::store::Record;

use crate::Digest;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The config blob's digest.
    pub id: Digest,
    /// Full references (`docker.io/library/busybox:latest`) that name it.
    pub tags: BTreeSet<String>,
    /// The manifest it was stored from (docker's RepoDigests).
    pub manifest: Digest,
    pub manifest_media_type: String,
    pub layers: Vec<Layer>,
    /// From the config, RFC 3339 (may be absent in imported images).
    pub created: Option<String>,
    /// The unpacked size of all layers, in bytes (docker's SIZE).
    pub size: u64,
    pub os: String,
    pub architecture: String,
}

/// One layer: the blob as distributed, and its uncompressed content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// The (possibly compressed) blob.
    pub digest: Digest,
    pub media_type: String,
    /// The digest of the uncompressed tar (the config's rootfs.diff_ids).
    pub diff_id: Digest,
    /// Bytes of the blob.
    pub size: u64,
}

impl Record for ImageRecord {
    const TABLE: &'static str = "images";
    fn key(&self) -> String {
        self.id.hex().to_owned()
    }
}
