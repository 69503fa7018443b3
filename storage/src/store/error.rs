//! What can go wrong with the metadata store. Every message is one line and
//! names the database or the table and key concerned.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (another `muelle` command) held the database for the
    /// whole wait.
    #[error(
        "metadata store {} is held by another muelle command; gave up after {} ms",
        path.display(),
        waited.as_millis()
    )]
    Busy { path: PathBuf, waited: Duration },

    #[error("metadata store {}: cannot open: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: BackendError,
    },

    #[error(
        "metadata store {} has schema version {found}, newer than this muelle understands (up to {supported}): use a newer muelle",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: u64,
        supported: u64,
    },

    #[error("metadata store {}: unreadable schema version {found:?}", path.display())]
    BadVersion { path: PathBuf, found: String },

    #[error("metadata store: migration from schema version {from} to {} failed: {source}", from + 1)]
    Migration {
        from: u64,
        #[source]
        source: Box<StoreError>,
    },

    #[error("metadata store: no table {0:?} in this muelle's schema")]
    UnknownTable(&'static str),

    #[error("metadata store: record {key:?} in table {table} does not parse: {source}")]
    Corrupt {
        table: &'static str,
        key: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("metadata store: cannot encode record {key:?} for table {table}: {source}")]
    Encode {
        table: &'static str,
        key: String,
        #[source]
        source: serde_json::Error,
    },

    /// A `Table` (or a nested `transact`) was used inside `Store::transact`
    /// on the same thread: it would wait for the transaction forever.
    #[error(
        "metadata store: a Table or a nested transact was used inside Store::transact; use the Tx"
    )]
    InTransaction,

    #[error("metadata store: {0}")]
    Backend(#[from] BackendError),
}

/// An error of the storage backend, kept opaque so that the backend stays a
/// detail of this module.
pub struct BackendError(pub(super) sled::Error);

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // sled's messages may span lines (a Debug of an io::Error inside).
        let text = self.0.to_string();
        f.write_str(&text.replace('\n', " "))
    }
}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Backend(BackendError(e))
    }
}
