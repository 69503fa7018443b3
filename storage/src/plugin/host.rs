//! [`PluginHost`]: finds plugin files in the configured folders, loads each
//! at most once per process, and hands out drivers.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use muelle_plugin_sdk::abi;

use super::driver::{Loaded, PluginDriver, init_error};
use super::log::LogTarget;
use super::worker::{Call, Output, Worker};
use super::{PluginConfig, PluginError, library, trust};
use crate::volume::{DriverSource, Scope, SharedDriver};

/// What a loaded plugin declared, and where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// The driver name (`volume create -d NAME`), equal to the file stem.
    pub name: String,
    /// The plugin's own version string.
    pub version: String,
    pub abi_version: u32,
    pub scope: Scope,
    /// Where it was found: `DIR/NAME.so`.
    pub path: PathBuf,
    /// What was loaded: `path` with every symlink resolved.
    pub resolved: PathBuf,
    /// Its folder for state, `ROOT/plugins-data/NAME`.
    pub state_dir: PathBuf,
}

/// One `*.so` file of the plugin folders, as `plugin ls` shows it.
#[derive(Debug)]
pub struct PluginEntry {
    /// The driver name the file offers: its stem.
    pub name: String,
    pub path: PathBuf,
    pub status: PluginStatus,
}

#[derive(Debug)]
pub enum PluginStatus {
    /// Loaded and initialized.
    Ready(PluginInfo),
    /// A file of the same name in an earlier folder provides this driver;
    /// this one is not loaded.
    Shadowed { by: PathBuf },
    /// Refused, or failed to load or to initialize.
    Broken(PluginError),
}

/// Finds and loads volume driver plugins by the rules of a
/// [`PluginConfig`]. Cheap to make: nothing is read until a driver is
/// asked for.
#[derive(Debug, Clone)]
pub struct PluginHost {
    config: PluginConfig,
}

/// The plugins this process loaded, by resolved file and state folder.
/// Loading twice would run init twice (two instances racing over one
/// state folder), and a library is never unloaded anyway. Hosts with
/// different data roots get instances of their own.
static LOADED: Mutex<BTreeMap<(PathBuf, PathBuf), Arc<Loaded>>> = Mutex::new(BTreeMap::new());

impl PluginHost {
    pub fn new(config: PluginConfig) -> PluginHost {
        PluginHost { config }
    }

    pub fn config(&self) -> &PluginConfig {
        &self.config
    }

    /// The driver NAME: `NAME.so` from the first folder that has one,
    /// checked, loaded and initialized (once per process). `Ok(None)`
    /// when no folder has it; a file that is there but unusable is an
    /// error, never a reason to look further (a broken system plugin must
    /// not silently give way to another one of the same name).
    pub fn driver(&self, name: &str) -> Result<Option<Arc<PluginDriver>>, PluginError> {
        check_name(name)?;
        match self.locate(name) {
            Some(path) => self.load(name, &path).map(Some),
            None => Ok(None),
        }
    }

    /// Every `*.so` file of every plugin folder, in search order, each
    /// loaded unless an earlier folder shadows its name, so broken files
    /// show with their error. Folders that do not exist are skipped; one
    /// that cannot be read is logged and skipped.
    pub fn list(&self) -> Vec<PluginEntry> {
        let mut first: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut entries = Vec::new();
        for dir in &self.config.dirs {
            for (name, path) in plugin_files(dir) {
                let status = if let Some(by) = first.get(&name) {
                    PluginStatus::Shadowed { by: by.clone() }
                } else if let Err(e) = check_name(&name) {
                    PluginStatus::Broken(e)
                } else {
                    first.insert(name.clone(), path.clone());
                    match self.load(&name, &path) {
                        Ok(driver) => PluginStatus::Ready(driver.info().clone()),
                        Err(e) => PluginStatus::Broken(e),
                    }
                };
                entries.push(PluginEntry { name, path, status });
            }
        }
        entries
    }

    /// `DIR/NAME.so` in the first folder where that name exists at all.
    fn locate(&self, name: &str) -> Option<PathBuf> {
        self.config.dirs.iter().find_map(|dir| {
            let path = dir.join(format!("{name}.so"));
            match std::fs::symlink_metadata(&path) {
                Ok(_) => Some(path),
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                    None
                }
                // Something is there that we cannot look at: loading it
                // reports why, rather than a later folder standing in.
                Err(_) => Some(path),
            }
        })
    }

    fn load(&self, name: &str, path: &Path) -> Result<Arc<PluginDriver>, PluginError> {
        let resolved = trust::check(path)?;
        let state_dir = self.config.data_root.join("plugins-data").join(name);
        let timeout = self.config.call_timeout;
        let key = (resolved.clone(), state_dir.clone());
        // Held while loading, so two threads never load the same plugin;
        // init is bounded by the call timeout.
        let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(plugin) = loaded.get(&key) {
            plugin.ready()?;
            return Ok(Arc::new(PluginDriver::new(Arc::clone(plugin), timeout)));
        }
        let opened = library::open(path, &resolved, name)?;
        let state_text = make_state_dir(name, &state_dir)?;
        let worker = Worker::spawn(name, opened.table)?;
        let init = Call::Init {
            state_dir: state_text,
            log: LogTarget::leak(name),
        };
        let (init_failure, init_result) = match worker.call(init, timeout) {
            Ok(Ok(reply)) if reply.status == abi::OK => (None, Ok(())),
            Ok(Ok(reply)) => {
                let bytes = match reply.output {
                    Output::Bytes(bytes) => bytes,
                    Output::TooLarge(_) => Vec::new(),
                };
                let error = init_error(name, reply.status, &bytes);
                (Some((reply.status, bytes)), Err(error))
            }
            // Not expected: the thread answers init without an instance.
            Ok(Err(_)) => {
                let bytes = b"the call thread did not run init".to_vec();
                let error = init_error(name, abi::ERROR, &bytes);
                (Some((abi::ERROR, bytes)), Err(error))
            }
            // Timed out: the instance is kept, busy, so that nothing calls
            // into it until its init returns.
            Err(e) => (None, Err(e)),
        };
        let plugin = Arc::new(Loaded {
            info: PluginInfo {
                name: opened.name,
                version: opened.version,
                abi_version: opened.abi_version,
                scope: opened.scope,
                path: path.to_path_buf(),
                resolved,
                state_dir,
            },
            worker,
            init_failure,
        });
        loaded.insert(key, Arc::clone(&plugin));
        init_result.map(|()| Arc::new(PluginDriver::new(plugin, timeout)))
    }
}

impl DriverSource for PluginHost {
    fn find(&self, name: &str) -> crate::volume::Result<Option<SharedDriver>> {
        Ok(self.driver(name)?.map(|driver| driver as SharedDriver))
    }
}

/// Driver names are file stems and folder names: `[a-z0-9][a-z0-9_.-]*`,
/// so never a path, never hidden, and never `local` (built in).
fn check_name(name: &str) -> Result<(), PluginError> {
    let mut bytes = name.bytes();
    let valid = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
        && name.len() <= 128
        && name != "local";
    if valid {
        Ok(())
    } else {
        Err(PluginError::InvalidName(name.to_owned()))
    }
}

/// The `*.so` files of `dir`, sorted, as (stem, path).
fn plugin_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == ErrorKind::NotFound => return Vec::new(),
        Err(source) => {
            let e = PluginError::ReadDir {
                path: dir.to_path_buf(),
                source,
            };
            tracing::warn!("{e}");
            return Vec::new();
        }
    };
    let mut files: Vec<(String, PathBuf)> = read
        .filter_map(|entry| match entry {
            Ok(entry) => Some(entry.file_name()),
            Err(source) => {
                let e = PluginError::ReadDir {
                    path: dir.to_path_buf(),
                    source,
                };
                tracing::warn!("{e}");
                None
            }
        })
        .filter_map(|file| {
            let text = file.to_string_lossy();
            let stem = text.strip_suffix(".so")?;
            Some((stem.to_owned(), dir.join(&file)))
        })
        .collect();
    files.sort();
    files
}

/// Makes `ROOT/plugins-data/NAME` (0700: what a plugin keeps there is its
/// own business) and returns it as the UTF-8 text the ABI passes.
fn make_state_dir(plugin: &str, dir: &Path) -> Result<String, PluginError> {
    let fail = |source| PluginError::StateDir {
        plugin: plugin.to_owned(),
        path: dir.to_path_buf(),
        source,
    };
    let text = dir
        .to_str()
        .ok_or_else(|| fail(std::io::Error::other("the path is not UTF-8")))?;
    if let Some(root) = dir.parent().and_then(Path::parent) {
        std::fs::create_dir_all(root).map_err(fail)?;
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(fail)?;
    // A symlink here would send the plugin's writes elsewhere.
    let meta = std::fs::symlink_metadata(dir).map_err(fail)?;
    if !meta.is_dir() {
        return Err(fail(std::io::Error::other("not a folder")));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_names() {
        for good in ["fixture", "quota", "nfs4", "my_driver.v2", "0x-y"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "", "local", "Quota", "-x", ".x", "_x", "a/b", "../x", "a b", "é",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_name("../x").expect_err("invalid").to_string(),
            "invalid volume driver name \"../x\": driver names are [a-z0-9][a-z0-9_.-]* and not \"local\""
        );
    }

    #[test]
    fn missing_plugins_are_none_and_missing_folders_list_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = PluginHost::new(PluginConfig {
            dirs: vec![dir.path().join("absent"), dir.path().to_path_buf()],
            call_timeout: std::time::Duration::from_secs(1),
            data_root: dir.path().join("root"),
        });
        assert!(host.driver("fixture").expect("lookup").is_none());
        assert!(host.list().is_empty());
    }
}
