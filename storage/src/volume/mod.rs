//! Volumes: storage muelle manages, which outlives the containers that use
//! it. A volume is a record in the metadata store plus whatever its driver
//! keeps on disk; the two are created and removed together.

mod attach;
pub mod backup;
mod check;
mod copy_up;
mod driver;
mod local;
mod name;
mod usage;
mod volumes;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use attach::open_subpath;
pub use check::Finding;
pub use copy_up::copy_up;
pub use driver::{Driver, DriverSource, Drivers, Scope, SharedDriver};
pub use local::{LocalDriver, MountOptions};
pub use name::VolumeName;
pub use usage::disk_usage;
pub use volumes::Volumes;

use crate::store::{Record, StoreError};

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
    #[error(
        "unknown volume driver {0:?}: use local, or install its plugin as NAME.so in a plugin folder (muelle plugin ls)"
    )]
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
    #[error(transparent)]
    Policy(#[from] crate::mounts::PolicyError),
    /// A plugin that failed to load, timed out or panicked.
    #[error(transparent)]
    Plugin(#[from] crate::plugin::PluginError),
    /// A driver's own refusal or failure, in its words.
    #[error("volume driver {driver}: {message}")]
    Driver { driver: String, message: String },
    /// export/import of a volume containers use, without --force.
    #[error("volume {name} is in use by container(s) [{}]: stop them or use --force", users.join(", "))]
    Busy { name: String, users: Vec<String> },
    #[error("{context}: {source}")]
    Archive {
        context: String,
        #[source]
        source: crate::archive::ArchiveError,
    },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

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
