//! Why a plugin could not be configured, trusted, loaded or called. Every
//! message names the plugin file (before it is loaded) or the plugin and
//! the call (after), so a user can tell which of several plugins failed.

use std::path::PathBuf;
use std::time::Duration;

use super::library::Defect;
use super::trust::Distrust;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot read {}: {source}", .path.display())]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", .path.display())]
    ConfigParse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{}: plugins.{key}: {message}", .path.display())]
    ConfigValue {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
    #[error(
        "invalid volume driver name {0:?}: driver names are [a-z0-9][a-z0-9_.-]* and not \"local\""
    )]
    InvalidName(String),
    #[error("cannot read plugin folder {}: {source}", .path.display())]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file failed a trust check: it was not loaded.
    #[error("refusing plugin {}: {reason}", .path.display())]
    Refused { path: PathBuf, reason: Distrust },
    /// dlopen failed (not a shared library, missing dependencies ...).
    #[error("cannot load plugin {}: {message}", .path.display())]
    Open { path: PathBuf, message: String },
    /// It loaded, but is not a usable muelle volume plugin.
    #[error("invalid plugin {}: {defect}", .path.display())]
    Invalid { path: PathBuf, defect: Defect },
    #[error("volume plugin {plugin}: cannot prepare its state folder {}: {source}", .path.display())]
    StateDir {
        plugin: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("volume plugin {plugin}: cannot start its call thread: {source}")]
    Spawn {
        plugin: String,
        source: std::io::Error,
    },
    /// `init` returned an error status.
    #[error("volume plugin {plugin}: init failed: {message}")]
    Init { plugin: String, message: String },
    #[error("volume plugin {plugin}: {call} timed out after {}", humantime::format_duration(*.after))]
    TimedOut {
        plugin: String,
        call: &'static str,
        after: Duration,
    },
    /// An earlier call timed out and has not returned yet: the plugin is
    /// not called again until it does, since calls to one instance must
    /// never overlap.
    #[error(
        "volume plugin {plugin}: still busy with a {call} call that timed out after {}; not calling it again until that call returns",
        humantime::format_duration(*.after)
    )]
    Busy {
        plugin: String,
        call: &'static str,
        after: Duration,
    },
    #[error("volume plugin {plugin} panicked in {call}: {message}")]
    Panicked {
        plugin: String,
        call: &'static str,
        message: String,
    },
    #[error("volume plugin {plugin}: {call} returned unknown status {status}")]
    UnknownStatus {
        plugin: String,
        call: &'static str,
        status: i32,
    },
    /// A successful call whose output muelle cannot use.
    #[error("volume plugin {plugin}: {call} returned {problem}")]
    BadOutput {
        plugin: String,
        call: &'static str,
        problem: String,
    },
    /// The thread that calls the plugin is gone (it cannot be restarted:
    /// the instance lived on it).
    #[error("volume plugin {plugin}: its call thread has stopped")]
    Stopped { plugin: String },
}
