//! Volumes: storage muelle manages, which outlives the containers that use
//! it. A volume is a record in the metadata store plus whatever its driver
//! keeps on disk; the two are created and removed together.

mod check;
mod driver;
mod local;
mod name;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use check::Finding;
pub use driver::{Driver, Scope};
pub use local::LocalDriver;
pub use name::VolumeName;

use crate::store::{Record, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("invalid volume name {0:?}: names are [a-zA-Z0-9][a-zA-Z0-9_.-]+ (no '/' or '..')")]
    InvalidName(String),
    #[error("no such volume: {0}")]
    NotFound(String),
    #[error("volume {name} already exists with driver {existing}, not {asked}")]
    DriverMismatch {
        name: String,
        existing: String,
        asked: String,
    },
    #[error("remove {name}: volume is in use - [{}]", users.join(", "))]
    InUse { name: String, users: Vec<String> },
    #[error("volume {0} already exists: choose another name")]
    Exists(String),
    #[error("unknown volume driver {0:?} (drivers: local)")]
    UnknownDriver(String),
    #[error("invalid option {key:?} for the {driver} volume driver: {reason}")]
    InvalidOption {
        driver: String,
        key: String,
        reason: String,
    },
    #[error("invalid filter {0:?}: use name=, driver=, label=KEY[=VALUE] or dangling=true|false")]
    InvalidFilter(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A plugin that failed to load, timed out or panicked.
    #[error(transparent)]
    Plugin(#[from] crate::plugin::PluginError),
    /// A driver's own refusal or failure, in its words.
    #[error("volume driver {driver}: {message}")]
    Driver { driver: String, message: String },
}

pub type Result<T, E = VolumeError> = std::result::Result<T, E>;

/// One volume, as the store keeps it and `volume inspect` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub name: VolumeName,
    pub driver: String,
    pub mountpoint: PathBuf,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub scope: String,
    /// Made for a container without a name (`-v /data`): `prune` without
    /// `-a` removes only these, as docker 23+.
    pub anonymous: bool,
    /// Containers (running or stopped) that reference it: the engine keeps
    /// this, and a volume with users cannot be removed.
    pub users: BTreeSet<String>,
}

impl Record for Volume {
    const TABLE: &'static str = "volumes";
    fn key(&self) -> String {
        self.name.to_string()
    }
}

impl Volume {
    /// docker's refusal, naming the containers that hold the volume.
    pub fn ensure_unused(&self) -> Result<()> {
        if self.users.is_empty() {
            return Ok(());
        }
        Err(VolumeError::InUse {
            name: self.name.to_string(),
            users: self.users.iter().cloned().collect(),
        })
    }
}

/// What `volume create` asks for.
#[derive(Clone, Debug, Default)]
pub struct CreateVolume {
    pub name: Option<VolumeName>,
    pub driver: Option<String>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// Owner of the data folder (muelle's addition; docker lacks it).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub anonymous: bool,
}

/// `volume ls --filter`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    Name(String),
    Driver(String),
    Label(String, Option<String>),
    Dangling(bool),
}

impl std::str::FromStr for Filter {
    type Err = VolumeError;
    fn from_str(text: &str) -> Result<Filter> {
        let bad = || VolumeError::InvalidFilter(text.to_owned());
        let (key, value) = text.split_once('=').ok_or_else(bad)?;
        Ok(match key {
            "name" => Filter::Name(value.to_owned()),
            "driver" => Filter::Driver(value.to_owned()),
            "label" => match value.split_once('=') {
                Some((k, v)) => Filter::Label(k.to_owned(), Some(v.to_owned())),
                None => Filter::Label(value.to_owned(), None),
            },
            "dangling" => Filter::Dangling(match value {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(bad()),
            }),
            _ => return Err(bad()),
        })
    }
}

impl Filter {
    /// docker matches `name=` as a substring.
    pub fn matches(&self, v: &Volume) -> bool {
        match self {
            Filter::Name(part) => v.name.as_str().contains(part.as_str()),
            Filter::Driver(d) => &v.driver == d,
            Filter::Label(k, None) => v.labels.contains_key(k),
            Filter::Label(k, Some(val)) => v.labels.get(k) == Some(val),
            Filter::Dangling(d) => v.users.is_empty() == *d,
        }
    }
}

/// The volumes of one data root, over an open store.
pub struct Volumes<'s> {
    store: &'s Store,
    local: LocalDriver,
}

impl<'s> Volumes<'s> {
    pub fn new(store: &'s Store, data_root: &Path) -> Volumes<'s> {
        Volumes {
            store,
            local: LocalDriver::new(data_root),
        }
    }

    fn driver(&self, name: &str) -> Result<&LocalDriver> {
        match name {
            "local" => Ok(&self.local),
            other => Err(VolumeError::UnknownDriver(other.to_owned())),
        }
    }

    /// Creates the volume, or returns the existing one of that name when
    /// the driver matches (docker's `volume create` is idempotent).
    pub fn create(&self, req: CreateVolume) -> Result<Volume> {
        let driver_name = req.driver.clone().unwrap_or_else(|| "local".to_owned());
        let driver = self.driver(&driver_name)?;
        driver.check_options(&req.options)?;
        let name = req.name.clone().unwrap_or_else(VolumeName::random);
        let table = self.store.table::<Volume>()?;
        if let Some(existing) = table.get(name.as_str())? {
            if existing.driver != driver_name {
                return Err(VolumeError::DriverMismatch {
                    name: name.to_string(),
                    existing: existing.driver,
                    asked: driver_name,
                });
            }
            return Ok(existing);
        }
        let mountpoint = driver.create(&name, &req)?;
        let volume = Volume {
            name: name.clone(),
            driver: driver_name,
            mountpoint,
            created_at: crate::time::now_rfc3339(),
            labels: req.labels,
            options: req.options,
            scope: "local".to_owned(),
            anonymous: req.anonymous,
            users: BTreeSet::new(),
        };
        // A concurrent command may have won the name meanwhile: the store
        // decides, and the loser takes the winner's volume.
        if !table.insert_new(&volume)? {
            return table
                .get(name.as_str())?
                .ok_or_else(|| VolumeError::NotFound(name.to_string()));
        }
        Ok(volume)
    }

    pub fn get(&self, name: &str) -> Result<Volume> {
        self.store
            .table::<Volume>()?
            .get(name)?
            .ok_or_else(|| VolumeError::NotFound(name.to_owned()))
    }

    pub fn list(&self, filters: &[Filter]) -> Result<Vec<Volume>> {
        let all = self.store.table::<Volume>()?.list()?;
        Ok(all
            .into_iter()
            .filter(|v| filters.iter().all(|f| f.matches(v)))
            .collect())
    }

    /// Removes an unused volume: its record first (so no container can
    /// take it meanwhile), then its data.
    pub fn remove(&self, name: &str) -> Result<Volume> {
        let volume = self.store.transact_with(|tx| {
            let Some(volume) = tx.get::<Volume>(name)? else {
                return Err(VolumeError::NotFound(name.to_owned()));
            };
            volume.ensure_unused()?;
            tx.remove::<Volume>(name)?;
            Ok(volume)
        })?;
        self.driver(&volume.driver)?.remove(&volume.name)?;
        Ok(volume)
    }

    /// Renames an unused volume: docker users have asked for this for
    /// years. The data folder moves first (one rename(2)); if the store
    /// refuses the new name, it moves back.
    pub fn rename(&self, old: &str, new: &VolumeName) -> Result<Volume> {
        let volume = self.get(old)?;
        volume.ensure_unused()?;
        if self.store.table::<Volume>()?.get(new.as_str())?.is_some() {
            return Err(VolumeError::Exists(new.to_string()));
        }
        let driver = self.driver(&volume.driver)?;
        let mountpoint = driver.rename(&volume.name, new)?;
        let renamed = Volume {
            name: new.clone(),
            mountpoint,
            ..volume.clone()
        };
        let result = self.store.transact_with(|tx| {
            let Some(current) = tx.get::<Volume>(old)? else {
                return Err(VolumeError::NotFound(old.to_owned()));
            };
            current.ensure_unused()?;
            if !tx.insert_new(&renamed)? {
                return Err(VolumeError::Exists(new.to_string()));
            }
            tx.remove::<Volume>(old)?;
            Ok(())
        });
        if let Err(e) = result {
            // Put the data back where the unchanged record says it is.
            let _ = driver.rename(new, &volume.name);
            return Err(e);
        }
        Ok(renamed)
    }

    /// Unused anonymous volumes, or with `all` every unused volume.
    pub fn prune(&self, all: bool) -> Result<Vec<Volume>> {
        let mut removed = Vec::new();
        for v in self.list(&[Filter::Dangling(true)])? {
            if all || v.anonymous {
                match self.remove(v.name.as_str()) {
                    Ok(v) => removed.push(v),
                    // Taken or removed by another command meanwhile.
                    Err(VolumeError::InUse { .. } | VolumeError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_with_users_is_neither_removed_renamed_nor_pruned() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = Store::open(root.path()).expect("store");
        let volumes = Volumes::new(&store, root.path());
        let name: VolumeName = "shared".parse().expect("name");
        let mut v = volumes
            .create(CreateVolume {
                name: Some(name.clone()),
                ..Default::default()
            })
            .expect("create");
        v.users.insert("c1".into());
        store
            .table::<Volume>()
            .expect("table")
            .insert(&v)
            .expect("insert");

        let err = volumes.remove("shared").unwrap_err();
        assert_eq!(err.to_string(), "remove shared: volume is in use - [c1]");
        let other: VolumeName = "other".parse().expect("name");
        assert!(matches!(
            volumes.rename("shared", &other),
            Err(VolumeError::InUse { .. })
        ));
        assert!(volumes.prune(true).expect("prune").is_empty());
        assert!(v.mountpoint.is_dir(), "the data stays");
        assert_eq!(
            volumes
                .list(&[Filter::Dangling(false)])
                .expect("list")
                .len(),
            1
        );
    }

    #[test]
    fn check_finds_and_mends_both_halves() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = Store::open(root.path()).expect("store");
        let volumes = Volumes::new(&store, root.path());
        let lost = volumes
            .create(CreateVolume {
                name: Some("lost".parse().expect("name")),
                ..Default::default()
            })
            .expect("create");
        std::fs::remove_dir_all(root.path().join("volumes/lost")).expect("rm");
        std::fs::create_dir_all(root.path().join("volumes/stray/_data")).expect("mkdir");
        std::fs::write(root.path().join("volumes/stray/_data/keep"), "x").expect("write");

        let found = volumes.check(false).expect("check");
        assert_eq!(
            found,
            [
                Finding::MissingData("lost".parse().expect("name")),
                Finding::Unrecorded("stray".parse().expect("name"))
            ]
        );
        assert_eq!(volumes.check(true).expect("repair").len(), 2);
        assert!(lost.mountpoint.is_dir());
        assert_eq!(
            volumes.get("stray").expect("recorded").name.as_str(),
            "stray"
        );
        assert!(
            root.path().join("volumes/stray/_data/keep").exists(),
            "no data lost"
        );
        assert!(volumes.check(false).expect("check").is_empty());
    }

    #[test]
    fn filters_parse_and_match_as_docker() {
        assert_eq!(
            "label=a=b".parse::<Filter>().expect("filter"),
            Filter::Label("a".into(), Some("b".into()))
        );
        assert!("dangling=maybe".parse::<Filter>().is_err());
        assert!("size=1".parse::<Filter>().is_err());
    }
}
