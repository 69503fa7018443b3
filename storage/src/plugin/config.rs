//! The `[plugins]` section of `/etc/muelle/muelle.toml`:
//!
//! ```toml
//! [plugins]
//! dirs = ["/usr/lib/muelle/plugins", "/var/lib/muelle/plugins"]  # searched in order
//! call_timeout = "60s"                                           # per plugin call
//! ```
//!
//! Defaults: `dirs` is `/usr/lib/muelle/plugins` then `ROOT/plugins` (ROOT
//! the data root, `--root`), `call_timeout` 60 s. Other sections of the
//! file belong to other parts of muelle and are not read here; an unknown
//! key inside `[plugins]` is an error naming it, so a typo never silently
//! leaves the defaults in place.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::PluginError;

/// Where plugins are found, how long a call may take, and the data root
/// under which each plugin gets its state folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConfig {
    /// Searched in order: the first folder holding `NAME.so` provides the
    /// driver NAME.
    pub dirs: Vec<PathBuf>,
    /// How long muelle waits for any one call (init included).
    pub call_timeout: Duration,
    /// The data root; state folders are `data_root/plugins-data/NAME`.
    pub data_root: PathBuf,
}

/// The system-wide plugin folder, searched first.
pub const SYSTEM_PLUGIN_DIR: &str = "/usr/lib/muelle/plugins";
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    plugins: PluginsSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginsSection {
    dirs: Option<Vec<String>>,
    call_timeout: Option<String>,
}

impl PluginConfig {
    /// The defaults for the data root `data_root`.
    pub fn defaults(data_root: &Path) -> PluginConfig {
        let data_root = absolute(data_root);
        PluginConfig {
            dirs: vec![PathBuf::from(SYSTEM_PLUGIN_DIR), data_root.join("plugins")],
            call_timeout: DEFAULT_CALL_TIMEOUT,
            data_root,
        }
    }

    /// Reads `[plugins]` from the file at `path`; a missing file means the
    /// defaults.
    pub fn load(path: &Path, data_root: &Path) -> Result<PluginConfig, PluginError> {
        match std::fs::read_to_string(path) {
            Ok(text) => PluginConfig::parse(&text, path, data_root),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(PluginConfig::defaults(data_root)),
            Err(source) => Err(PluginError::ConfigRead {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Reads `[plugins]` from `text` (a whole muelle.toml); errors name the
    /// file `muelle.toml`.
    pub fn from_toml_str(text: &str, data_root: &Path) -> Result<PluginConfig, PluginError> {
        PluginConfig::parse(text, Path::new("muelle.toml"), data_root)
    }

    fn parse(text: &str, origin: &Path, data_root: &Path) -> Result<PluginConfig, PluginError> {
        let file: ConfigFile = toml::from_str(text).map_err(|source| PluginError::ConfigParse {
            path: origin.to_path_buf(),
            source: Box::new(source),
        })?;
        let section = file.plugins;
        let mut config = PluginConfig::defaults(data_root);
        let bad = |key, message: String| PluginError::ConfigValue {
            path: origin.to_path_buf(),
            key,
            message,
        };
        if let Some(dirs) = section.dirs {
            config.dirs = dirs
                .into_iter()
                .map(|dir| {
                    // A relative folder would depend on where muelle was
                    // started: the plugins loaded would change with the cwd.
                    if dir.starts_with('/') {
                        Ok(PathBuf::from(dir))
                    } else {
                        Err(bad("dirs", format!("{dir:?} is not an absolute path")))
                    }
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(text) = section.call_timeout {
            let timeout = humantime::parse_duration(&text).map_err(|e| {
                bad(
                    "call_timeout",
                    format!("{text:?} is not a duration such as \"60s\": {e}"),
                )
            })?;
            if timeout.is_zero() {
                return Err(bad("call_timeout", "must be more than 0".to_owned()));
            }
            config.call_timeout = timeout;
        }
        Ok(config)
    }
}

/// `path` made absolute against the working directory, without resolving
/// symlinks: the state folder a plugin is told about must not depend on
/// the plugin's own idea of the cwd.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> &'static Path {
        Path::new("/var/lib/muelle")
    }

    #[test]
    fn defaults_without_a_section_or_a_file() {
        let want = PluginConfig {
            dirs: vec![
                PathBuf::from("/usr/lib/muelle/plugins"),
                PathBuf::from("/var/lib/muelle/plugins"),
            ],
            call_timeout: Duration::from_secs(60),
            data_root: root().to_path_buf(),
        };
        assert_eq!(
            PluginConfig::from_toml_str("[mounts]\ndeny = []\n", root()).expect("config"),
            want
        );
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            PluginConfig::load(&dir.path().join("absent.toml"), root()).expect("config"),
            want
        );
    }

    #[test]
    fn values_are_read() {
        let c = PluginConfig::from_toml_str(
            "[plugins]\ndirs = [\"/opt/p\"]\ncall_timeout = \"1m 30s\"\n",
            root(),
        )
        .expect("config");
        assert_eq!(c.dirs, [PathBuf::from("/opt/p")]);
        assert_eq!(c.call_timeout, Duration::from_secs(90));
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = PluginConfig::from_toml_str("[plugins]\nfolders = []\n", root())
            .expect_err("unknown key")
            .to_string();
        assert!(err.starts_with("muelle.toml: "), "{err}");
        assert!(err.contains("unknown field `folders`"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        let err = |text: &str| {
            PluginConfig::from_toml_str(text, root())
                .expect_err("bad value")
                .to_string()
        };
        assert_eq!(
            err("[plugins]\ndirs = [\"plugins\"]\n"),
            "muelle.toml: plugins.dirs: \"plugins\" is not an absolute path"
        );
        assert!(
            err("[plugins]\ncall_timeout = \"soon\"\n")
                .starts_with("muelle.toml: plugins.call_timeout: \"soon\" is not a duration"),
        );
        assert_eq!(
            err("[plugins]\ncall_timeout = \"0s\"\n"),
            "muelle.toml: plugins.call_timeout: must be more than 0"
        );
        assert!(matches!(
            PluginConfig::from_toml_str("[plugins]\ncall_timeout = 5\n", root()),
            Err(PluginError::ConfigParse { .. })
        ));
    }

    #[test]
    fn a_relative_data_root_is_made_absolute() {
        let c = PluginConfig::defaults(Path::new("data"));
        assert!(c.data_root.is_absolute(), "{}", c.data_root.display());
        assert!(c.dirs[1].is_absolute());
    }
}
