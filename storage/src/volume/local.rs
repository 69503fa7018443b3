//! The built-in `local` driver: data at ROOT/volumes/NAME/_data, or, with
//! docker's `type`/`device`/`o` options, a filesystem mounted there when a
//! container uses the volume.

use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{CreateVolume, Result, VolumeError, VolumeName};

pub struct LocalDriver {
    base: PathBuf,
}

const OPTIONS: [&str; 3] = ["type", "device", "o"];

fn io(context: String) -> impl FnOnce(std::io::Error) -> VolumeError {
    move |source| VolumeError::Io { context, source }
}

impl LocalDriver {
    pub fn new(data_root: &Path) -> LocalDriver {
        LocalDriver {
            base: data_root.join("volumes"),
        }
    }

    pub fn check_options(&self, options: &BTreeMap<String, String>) -> Result<()> {
        for key in options.keys() {
            if !OPTIONS.contains(&key.as_str()) {
                return Err(VolumeError::InvalidOption {
                    driver: "local".into(),
                    key: key.clone(),
                    reason: "the local driver takes type, device and o".into(),
                });
            }
        }
        if options.contains_key("type") != options.contains_key("device")
            && options.get("type").map(String::as_str) != Some("tmpfs")
        {
            return Err(VolumeError::InvalidOption {
                driver: "local".into(),
                key: "device".into(),
                reason: "type and device go together (except type=tmpfs)".into(),
            });
        }
        Ok(())
    }

    pub fn create(&self, name: &VolumeName, req: &CreateVolume) -> Result<PathBuf> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o701)
            .create(&self.base)
            .map_err(io(format!("creating {}", self.base.display())))?;
        let dir = self.base.join(name.as_str());
        let data = dir.join("_data");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&data)
            .map_err(io(format!("creating {}", data.display())))?;
        if req.uid.is_some() || req.gid.is_some() {
            std::os::unix::fs::chown(&data, req.uid, req.gid).map_err(io(format!(
                "giving {} to {:?}:{:?}",
                data.display(),
                req.uid,
                req.gid
            )))?;
        }
        Ok(data)
    }

    /// The volume folders on disk (names that are not valid volume names
    /// are not muelle's and are left alone).
    pub fn folders(&self) -> Result<Vec<VolumeName>> {
        let entries = match std::fs::read_dir(&self.base) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(format!("listing {}", self.base.display()))(e)),
        };
        let mut names: Vec<VolumeName> = entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| n.parse().ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Moves the volume's folder to its new name; returns the new data path.
    pub fn rename(&self, old: &VolumeName, new: &VolumeName) -> Result<PathBuf> {
        let (from, to) = (self.base.join(old.as_str()), self.base.join(new.as_str()));
        if to.exists() {
            return Err(VolumeError::Exists(new.to_string()));
        }
        std::fs::rename(&from, &to).map_err(io(format!(
            "renaming {} to {}",
            from.display(),
            to.display()
        )))?;
        Ok(to.join("_data"))
    }

    /// Deletes the volume's folder. Refuses while something is mounted on
    /// its data folder: deleting through a mount would delete the data of
    /// whatever is mounted there (a bound host folder, a device).
    pub fn remove(&self, name: &VolumeName) -> Result<()> {
        let dir = self.base.join(name.as_str());
        let data = dir.join("_data");
        let still_mounted = match (std::fs::metadata(&data), std::fs::metadata(&dir)) {
            (Ok(d), Ok(p)) => d.dev() != p.dev(),
            _ => false,
        };
        if still_mounted {
            return Err(VolumeError::Io {
                context: format!("removing volume {name}"),
                source: std::io::Error::other(format!(
                    "{} is still mounted: unmount it first",
                    data.display()
                )),
            });
        }
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io(format!("removing {}", dir.display()))(e))
            }
            _ => Ok(()),
        }
    }
}
