//! The SDK for muelle volume driver plugins.
//!
//! A Rust plugin is a `cdylib` crate with one trait impl and one macro
//! line:
//!
//! ```ignore
//! use muelle_plugin_sdk::{export_volume_driver, DriverError, HostContext, VolumeDriver};
//!
//! struct Mine;
//! impl VolumeDriver for Mine {
//!     const NAME: &'static str = "mine";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!     fn init(host: HostContext) -> Result<Self, DriverError> { Ok(Mine) }
//!     // create, remove, mount, unmount, path, get, list ...
//! #   fn create(&self, _: &str, _: &[(&str, &str)]) -> Result<(), DriverError> { todo!() }
//! }
//! export_volume_driver!(Mine);
//! ```
//!
//! The macro exports the C entry symbol and wraps every call so that a
//! panic inside the plugin becomes an error code with its message instead
//! of unwinding into the host, which cannot catch it (the plugin has its
//! own copy of std). That needs `panic = "unwind"` (the default) in the
//! plugin's profile. The ABI itself lives in [`abi`] and in
//! `include/muelle_volume_plugin.h` for C authors.

pub mod abi;
#[doc(hidden)]
pub mod glue;

use std::ffi::c_void;
use std::path::PathBuf;

/// Where a driver's volumes can be seen from: `local` (this machine) or
/// `global` (every machine of a cluster), as in docker's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Local,
    Global,
}

/// The kind of failure, which the host maps to its own errors (a missing
/// volume reads as docker's `no such volume`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Other,
    NotFound,
    Invalid,
    Busy,
}

/// A failed call: a kind plus one line a user understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverError {
    pub kind: ErrorKind,
    pub message: String,
}

impl DriverError {
    pub fn other(message: impl Into<String>) -> DriverError {
        DriverError {
            kind: ErrorKind::Other,
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> DriverError {
        DriverError {
            kind: ErrorKind::NotFound,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> DriverError {
        DriverError {
            kind: ErrorKind::Invalid,
            message: message.into(),
        }
    }
    pub fn busy(message: impl Into<String>) -> DriverError {
        DriverError {
            kind: ErrorKind::Busy,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DriverError {}

impl From<std::io::Error> for DriverError {
    fn from(e: std::io::Error) -> DriverError {
        DriverError::other(e.to_string())
    }
}

pub type Result<T, E = DriverError> = std::result::Result<T, E>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

/// Sends log lines to the host's `--log-level` output. A plugin does not
/// see the host's `tracing` subscriber (it has its own copy of the crate),
/// so logs go through this callback.
#[derive(Clone, Copy)]
pub struct Logger {
    log: abi::LogFn,
    ctx: *mut c_void,
}

// SAFETY: the ABI promises the host's log callback may be called from any
// thread for the life of the instance.
unsafe impl Send for Logger {}
// SAFETY: as above.
unsafe impl Sync for Logger {}

impl Logger {
    pub fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Error => abi::LOG_ERROR,
            Level::Warn => abi::LOG_WARN,
            Level::Info => abi::LOG_INFO,
            Level::Debug => abi::LOG_DEBUG,
        };
        // SAFETY: the host keeps `log` and `ctx` valid while the instance
        // lives; `message` outlives the call.
        unsafe { (self.log)(self.ctx, level, abi::Str::new(message)) }
    }
}

/// What the host gives a driver when it starts.
pub struct HostContext {
    /// A folder that belongs to this plugin (ROOT/plugins-data/NAME). Every
    /// muelle command is a new process, so state lives there, not in memory.
    pub state_dir: PathBuf,
    pub logger: Logger,
}

/// A volume driver. The operations mirror docker's volume plugin protocol.
/// The host never calls one instance from two threads at once, but it may
/// call it from different threads one after another.
pub trait VolumeDriver: Sized + Send + Sync + 'static {
    /// The driver name users pass to `volume create -d`; the plugin file
    /// must be called `NAME.so`.
    const NAME: &'static str;
    const VERSION: &'static str;
    const SCOPE: Scope = Scope::Local;

    fn init(host: HostContext) -> Result<Self>;
    fn create(&self, name: &str, options: &[(&str, &str)]) -> Result<()>;
    fn remove(&self, name: &str) -> Result<()>;
    /// Makes the volume available for `caller` (a container id) and returns
    /// its host path. Mounting twice for one caller counts once.
    fn mount(&self, name: &str, caller: &str) -> Result<PathBuf>;
    fn unmount(&self, name: &str, caller: &str) -> Result<()>;
    /// The host path while the volume is mounted.
    fn path(&self, name: &str) -> Result<Option<PathBuf>>;
    /// The host path (None when not mounted) of an existing volume; a
    /// missing one is `ErrorKind::NotFound`.
    fn get(&self, name: &str) -> Result<Option<PathBuf>>;
    fn list(&self) -> Result<Vec<String>>;
}

/// Exports `$driver` (a type implementing [`VolumeDriver`]) as the
/// library's plugin entry symbol.
#[macro_export]
macro_rules! export_volume_driver {
    ($driver:ty) => {
        static __MUELLE_VOLUME_PLUGIN: $crate::abi::Plugin = $crate::glue::table::<$driver>();

        /// The plugin's entry symbol (ABI version 1).
        #[unsafe(no_mangle)]
        pub extern "C" fn muelle_volume_plugin_v1() -> *const $crate::abi::Plugin {
            &__MUELLE_VOLUME_PLUGIN
        }
    };
}
