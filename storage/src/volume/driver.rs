//! What every volume driver does, whether built in (`local`) or loaded
//! from a plugin: the operations of docker's volume plugin protocol.
//! `Volumes` keeps the records; a driver keeps the data.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Result, VolumeName};

/// Where a driver's volumes can be seen from, as docker's `Scope`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Local,
    Global,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Local => "local",
            Scope::Global => "global",
        }
    }
}

pub trait Driver {
    fn name(&self) -> &str;
    fn scope(&self) -> Scope;
    /// Makes the volume's storage. Options are the driver's to check: a
    /// bad one is `VolumeError::InvalidOption` (or a driver error) and
    /// nothing is made.
    fn create(&self, name: &VolumeName, options: &BTreeMap<String, String>) -> Result<()>;
    /// Deletes the volume's storage; `NotFound` when there is none.
    fn remove(&self, name: &VolumeName) -> Result<()>;
    /// Makes the volume available for `caller` (a container id) and
    /// returns its host path. The driver counts its callers: mounting
    /// twice for one caller counts once.
    fn mount(&self, name: &VolumeName, caller: &str) -> Result<PathBuf>;
    /// Forgets `caller`; the last one out releases the storage.
    fn unmount(&self, name: &VolumeName, caller: &str) -> Result<()>;
    /// The host path while mounted.
    fn path(&self, name: &VolumeName) -> Result<Option<PathBuf>>;
    /// The host path (None while not mounted) of an existing volume;
    /// `NotFound` when the driver has no such volume.
    fn get(&self, name: &VolumeName) -> Result<Option<PathBuf>>;
    fn list(&self) -> Result<Vec<VolumeName>>;
}

/// A driver `Volumes` can hold: built in, or loaded from a plugin.
pub type SharedDriver = std::sync::Arc<dyn Driver + Send + Sync>;

/// Where drivers that are not built in come from (the plugin host).
pub trait DriverSource {
    /// The driver of that name, or None when there is none.
    fn find(&self, name: &str) -> Result<Option<SharedDriver>>;
}

/// Every driver of one data root: `local`, and the plugins. Needs no open
/// store, so a long export can mount a volume without holding it.
#[derive(Clone)]
pub struct Drivers {
    pub(super) local: std::sync::Arc<super::LocalDriver>,
    plugins: Option<std::sync::Arc<dyn DriverSource + Send + Sync>>,
}

impl Drivers {
    /// `local` under `data_root`, judging host paths its `device` options
    /// reach by the operator's `policy`.
    pub fn new(data_root: &std::path::Path, policy: crate::mounts::BindPolicy) -> Drivers {
        Drivers {
            local: std::sync::Arc::new(super::LocalDriver::new(data_root, policy)),
            plugins: None,
        }
    }

    /// Drivers other than `local` come from `plugins`.
    pub fn with_plugins(
        mut self,
        plugins: std::sync::Arc<dyn DriverSource + Send + Sync>,
    ) -> Drivers {
        self.plugins = Some(plugins);
        self
    }

    /// The driver of that name: `local`, or a plugin.
    pub fn get(&self, name: &str) -> Result<SharedDriver> {
        if name == "local" {
            return Ok(self.local.clone());
        }
        let unknown = || super::VolumeError::UnknownDriver(name.to_owned());
        match &self.plugins {
            Some(plugins) => plugins.find(name)?.ok_or_else(unknown),
            None => Err(unknown()),
        }
    }
}
