//! The plugin host: volume drivers that are not built in come from shared
//! libraries (`NAME.so`) speaking the versioned C ABI of
//! `muelle-plugin-sdk` (`plugins/sdk/include/muelle_volume_plugin.h`).
//!
//! - `config`: the `[plugins]` section of muelle.toml (folders searched,
//!   call timeout);
//! - `trust`: who may own and write a plugin file and its folders before
//!   it is loaded (loading runs its code, usually as root);
//! - `library`: dlopen, the entry symbol and the checks of the table;
//! - `worker`: the one thread per plugin instance every call runs on, with
//!   a timeout;
//! - `driver`: [`PluginDriver`], a plugin as a `volume::Driver`;
//! - `host`: [`PluginHost`], discovery, the per-process cache, `list`.
//!
//! Plugins are never unloaded, and each is loaded at most once per
//! process (per data root).

pub mod config;
mod driver;
mod error;
mod host;
mod library;
mod log;
mod trust;
mod worker;

pub use config::PluginConfig;
pub use driver::PluginDriver;
pub use error::PluginError;
pub use host::{PluginEntry, PluginHost, PluginInfo, PluginStatus};
pub use library::Defect;
pub use trust::Distrust;
