//! Containers: docker's lifecycle without a daemon.
//!
//! Each verb opens the metadata store for the part that reads or writes
//! records and closes it before anything that waits (a container's exit,
//! its output): the store is one process's at a time, and every other
//! `muelle` command waits for it. While a verb holds the store, no other
//! command changes any record, so a verb's checks stay true until it
//! writes.
//!
//! A live container's record is checked against the host whenever it is
//! read ([`Engine::refresh`]): the exit its monitor recorded is folded in,
//! and a container whose monitor is gone (kill -9, reboot) is shown
//! exited with exit code 255 and the reason, never as running. Folding an
//! exit takes down what the run set up (runtime state, volume mounts, the
//! root filesystem mount) and keeps the container's own layer.
//!
//! One verb, one file: `create`, `start`, `stop` (and `kill`), `remove`,
//! `list`, `attach`, `exec`, `top`, `pause` (and `unpause`), `stats`,
//! `port`; `refresh` holds reconciliation and teardown, `cleanup` what a
//! monitor runs after an exit (`--rm`, restart policies); `fs` holds the
//! verbs on a container's files (`cp`, `export`, `diff`); `init` finds
//! the `--init` binary, `volumes_from` reads `--volumes-from`.

mod attach;
mod cleanup;
mod create;
mod error;
mod exec;
mod files;
pub mod fs;
mod init;
mod join;
mod list;
mod naming;
mod networks;
mod paths;
mod pause;
mod port;
mod prune;
mod record;
mod refresh;
mod remove;
mod rename;
mod start;
mod stats;
mod stop;
mod top;
mod volumes_from;
mod wait;

use std::path::{Path, PathBuf};

use storage::mounts::BindPolicy;
use storage::plugin::{PluginConfig, PluginHost};
use storage::store::Store;
use storage::volume::{Drivers, Volumes};

pub use attach::CallerStreams;
pub use create::CreateRequest;
pub use error::{EngineError, StartFailure};
pub use exec::ExecRequest;
pub use naming::parse_name;
pub use paths::ContainerPaths;
pub use port::PortBinding;
pub use record::{Container, MonitorRef, NameEntry, State, Status};
pub use start::{Attach, StartOptions};
pub use stats::{HostUsage, Sample};
pub use wait::wait_for_exit;

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// A signal as `kill -s`/`stop -s` take it: `KILL`, `SIGKILL` or `9`.
pub fn parse_signal(text: &str) -> Result<nix::sys::signal::Signal> {
    runtime_core::container::parse_signal(text)
        .map_err(|_| EngineError::InvalidSignal(text.to_owned()))
}

/// The engine of one muelle instance: its data root, run root and
/// configuration file.
#[derive(Debug, Clone)]
pub struct Engine {
    data_root: PathBuf,
    run_root: PathBuf,
    config_path: PathBuf,
    policy: BindPolicy,
    /// What a monitor runs after its container exits (`muelle ...
    /// container cleanup ID`): the exit is folded and `--rm` honoured
    /// without waiting for the next command. Empty: nothing runs.
    exit_command: Vec<String>,
    networking: network::sandbox::Networking,
}

impl Engine {
    /// Reads the operator's bind policy from `config_path` (a missing
    /// file is the default configuration).
    pub fn new(data_root: &Path, run_root: &Path, config_path: &Path) -> Result<Engine> {
        Ok(Engine {
            data_root: data_root.to_owned(),
            run_root: run_root.to_owned(),
            config_path: config_path.to_owned(),
            policy: BindPolicy::load(config_path)?,
            exit_command: Vec::new(),
            networking: network::sandbox::Networking::new(run_root),
        })
    }

    /// The command (program and arguments) a monitor runs with the
    /// container's id appended once its container exited.
    pub fn with_exit_command(mut self, command: Vec<String>) -> Engine {
        self.exit_command = command;
        self
    }

    pub fn data_root(&self) -> &Path {
        &self.data_root
    }

    pub fn run_root(&self) -> &Path {
        &self.run_root
    }

    /// Opens the metadata store; drop it before anything that waits.
    pub fn open_store(&self) -> Result<Store> {
        Ok(Store::open(&self.data_root)?)
    }

    pub fn paths(&self, id: &str) -> ContainerPaths {
        ContainerPaths::new(&self.data_root, &self.run_root, id)
    }

    fn runtime_root(&self) -> runtime_core::state::StateRoot {
        runtime_core::state::StateRoot::new(paths::runtime_root(&self.run_root))
    }

    /// `local` under the bind policy, and the configured plugins (loaded
    /// only when a volume of theirs is used).
    fn drivers(&self) -> Result<Drivers> {
        let plugins = PluginHost::new(PluginConfig::load(&self.config_path, &self.data_root)?);
        Ok(Drivers::new(&self.data_root, self.policy.clone())
            .with_plugins(std::sync::Arc::new(plugins)))
    }

    fn volumes<'s>(&self, store: &'s Store) -> Result<Volumes<'s>> {
        Ok(Volumes::with_drivers(store, self.drivers()?))
    }

    /// The container `text` names: a full id, a name (with or without
    /// docker's `/`), or an unambiguous id prefix, in that order; its
    /// record refreshed against the host.
    pub fn find(&self, store: &Store, text: &str) -> Result<Container> {
        let container = lookup(store, text)?;
        self.refresh(store, container)
    }
}

fn lookup(store: &Store, text: &str) -> Result<Container> {
    let containers = store.table::<Container>()?;
    let not_found = || EngineError::NoSuchContainer(text.to_owned());
    if text.is_empty() {
        return Err(not_found());
    }
    if let Some(c) = containers.get(text)? {
        return Ok(c);
    }
    let name = text.strip_prefix('/').unwrap_or(text);
    if let Some(entry) = store.table::<NameEntry>()?.get(name)?
        && let Some(c) = containers.get(&entry.id)?
    {
        return Ok(c);
    }
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    match containers.keys_with_prefix(text)?.as_slice() {
        [] => Err(not_found()),
        [id] => containers.get(id)?.ok_or_else(not_found),
        _ => Err(EngineError::AmbiguousId(text.to_owned())),
    }
}
