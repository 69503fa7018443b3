//! The errors of a container's lifecycle, each one line a user can act on.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.' (at most 1024)"
    )]
    InvalidId(String),
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container with id {0} exists already")]
    Exists(String),
    #[error("container {id} is {status}: {action} needs it {wanted}")]
    BadState {
        id: String,
        status: crate::state::Status,
        action: &'static str,
        wanted: &'static str,
    },
    #[error("invalid bundle config {path}: {reason}")]
    Spec { path: PathBuf, reason: String },
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {errno}")]
    Sys {
        context: String,
        #[source]
        errno: nix::Error,
    },
    /// An error the container's init process reported before it could exec.
    #[error("container init failed: {0}")]
    Init(String),
    #[error("{kind} hook {path} failed: {reason}")]
    Hook {
        kind: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// Not a failure: the verb must run from a sealed copy of the runtime
    /// (see process::sealed_exe); the binary re-executes and tries again.
    #[error("the runtime must run from its sealed copy")]
    SealedExeRequired,
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Capabilities(#[from] crate::capabilities::CapsError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds a context line to an `io::Error` or `nix::Error`, the two sources of
/// nearly every failure here.
pub trait Context<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::io::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: context(),
            source,
        })
    }
}

impl<T> Context<T> for nix::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|errno| Error::Sys {
            context: context(),
            errno,
        })
    }
}
