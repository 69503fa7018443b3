//! Errors of the image store, one line each, in docker's words where docker
//! has them.

use crate::Digest;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid digest {0:?}: muelle stores sha256:<64 lowercase hex>")]
    InvalidDigest(String),
    #[error("invalid reference format {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("blob {0} is not in the image store")]
    BlobNotFound(Digest),
    #[error(
        "blob {expected} is corrupt: its content hashes to {actual}; remove the image and load it again"
    )]
    CorruptBlob { expected: Digest, actual: Digest },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] storage::store::StoreError),
    // Manifests, archives, the image store's verbs (manifest.rs, store/,
    // formats/, import.rs).
    #[error("invalid {what}: {reason}")]
    InvalidManifest { what: String, reason: String },
    #[error("no image for platform {wanted} in {what}; it offers: {offered}")]
    NoMatchingPlatform {
        what: String,
        wanted: String,
        offered: String,
    },
    #[error("short image id {prefix:?} is ambiguous: it matches {count} images; give more of it")]
    AmbiguousId { prefix: String, count: usize },
    #[error(
        "conflict: unable to remove repository reference {reference:?} (must force) - container {container} is using its referenced image {image}"
    )]
    ReferenceInUse {
        reference: String,
        container: String,
        image: String,
    },
    #[error(
        "conflict: unable to delete {image} (must be forced) - image is being used by stopped container {container}"
    )]
    ImageInUse { image: String, container: String },
    #[error(
        "conflict: unable to delete {image} (cannot be forced) - image is being used by running container {container}"
    )]
    ImageRunning { image: String, container: String },
    #[error(
        "conflict: unable to delete {image} (must be forced) - image is referenced in multiple repositories"
    )]
    MultipleRepositories { image: String },
    #[error("invalid image archive: {0}")]
    InvalidArchive(String),
    #[error("invalid --change {change:?}: {reason}")]
    InvalidChange { change: String, reason: String },
    // Layers and root filesystems (layers/, rootfs/).
    #[error("layer {blob}: {source}")]
    Layer {
        blob: Digest,
        #[source]
        source: storage::archive::ArchiveError,
    },
    #[error("layer {blob} unpacks to diff id {actual}, but the image says {expected}")]
    DiffIdMismatch {
        blob: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("layer {0} is not in the layer store")]
    LayerNotFound(Digest),
    #[error("{path} is in use: {reason}")]
    InUse { path: String, reason: String },
    #[error(
        "layer {0} keeps OCI whiteout markers (unpacked while the rootfs driver was copy): unpack it again for overlay"
    )]
    OciFormLayer(String),
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

/// `map_err(io("reading x"))`: an I/O error with what was being done.
pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
    let context = context.into();
    move |source| ImageError::Io { context, source }
}
