//! The engine's errors, in docker's words where docker has them.

use storage::mounts::{MountError, PolicyError};
use storage::plugin::PluginError;
use storage::store::StoreError;
use storage::volume::VolumeError;

use crate::spec::SpecError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    #[error("cannot join own network")]
    ShareOwnNetwork,
    #[error(
        "container sharing network namespace with another container or host cannot be connected to any other network (network mode {0})"
    )]
    NetworkModeFixed(String),
    #[error("endpoint with name {container} already exists in network {network}")]
    AlreadyConnected { container: String, network: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error(
        "container {container} runs without a network namespace of muelle's (it started on no network): stop it, connect it to {network}, and start it again"
    )]
    NoSandbox { container: String, network: String },
    #[error(transparent)]
    Flag(#[from] crate::config::FlagError),
    #[error("cannot join network of a non running container: {0}")]
    ShareStoppedNetwork(String),
    #[error("Multiple IDs found with provided prefix: {0}")]
    AmbiguousId(String),
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse { name: String, id: String },
    #[error(
        "cannot remove container \"/{0}\": container is running: stop the container before removing or force remove"
    )]
    RemoveRunning(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("You cannot attach to a stopped container, start it first")]
    AttachStopped,
    #[error("You cannot attach to a paused container, unpause it first")]
    AttachPaused,
    #[error("invalid mode: {0}")]
    InvalidMode(String),
    /// Named as the user typed it, as docker does.
    #[error("Container {0} is paused, unpause the container before exec")]
    ExecPaused(String),
    #[error("Container {0} is already paused")]
    AlreadyPaused(String),
    #[error("Container {0} is not paused")]
    NotPaused(String),
    #[error("Container {0} is restarting, wait until the container is running")]
    Restarting(String),
    #[error("No exec command specified")]
    NoExecCommand,
    /// The exec'd process could not start; `code` is docker's exit code
    /// for it (127: not found, 126: cannot be invoked).
    #[error("{message}")]
    ExecFailed { message: String, code: u8 },
    /// Reported by a helper process, in its words.
    #[error("{0}")]
    Reported(String),
    #[error("invalid signal: {0}")]
    InvalidSignal(String),
    #[error("Renaming a container with the same name as its current name")]
    RenameSame(String),
    /// The container could not be started: its record keeps the reason.
    #[error("failed to start container \"{name}\": {reason}")]
    Start {
        name: String,
        reason: String,
        kind: StartFailure,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] image::ImageError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Runtime(#[from] runtime_core::Error),
    #[error(transparent)]
    Monitor(#[from] crate::monitor::MonitorError),
    #[error(transparent)]
    Files(#[from] super::fs::FilesError),
}

/// Why a start failed, for the exit code `run` gives (docker's: 127 when
/// the command is not found, 126 when it cannot be invoked, else 125).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFailure {
    CommandNotFound,
    CannotInvoke,
    Other,
}

impl StartFailure {
    /// Read from the runtime's one-line reason.
    pub fn of(reason: &str) -> StartFailure {
        if reason.contains("executable file not found") || reason.contains("no such file") {
            StartFailure::CommandNotFound
        } else if reason.contains("permission denied") || reason.contains("exec format error") {
            StartFailure::CannotInvoke
        } else {
            StartFailure::Other
        }
    }
}

impl EngineError {
    /// docker's exit code for a command that failed this way.
    pub fn exit_code(&self) -> u8 {
        match self {
            EngineError::Start {
                kind: StartFailure::CommandNotFound,
                ..
            } => 127,
            EngineError::Start {
                kind: StartFailure::CannotInvoke,
                ..
            } => 126,
            EngineError::ExecFailed { code, .. } => *code,
            _ => 125,
        }
    }
}

/// Adds what was being done to an I/O error.
pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EngineError {
    let context = context.into();
    move |source| EngineError::Io { context, source }
}
