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
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

/// `map_err(io("reading x"))`: an I/O error with what was being done.
pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
    let context = context.into();
    move |source| ImageError::Io { context, source }
}
