//! Mounts as the user asks for them: docker's `-v`, `--mount` and `--tmpfs`
//! flags parsed into one typed list ([`MountSpec`]), and the operator's
//! bind-mount policy ([`BindPolicy`]) from `/etc/muelle/muelle.toml`.
//!
//! What this module guarantees about a parsed [`MountSpec`]:
//! - every target is a clean absolute path (no `.`, `..` or repeated `/`)
//!   other than `/`; where it lands inside the rootfs is the runtime's job
//!   (it resolves it in the rootfs, never following a symlink out);
//! - a bind source is a clean absolute path that existed when it was parsed
//!   (muelle never creates one, unlike docker);
//! - a volume name matches `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, and a subpath is
//!   relative and free of `..`;
//! - duplicate or conflicting options are refused, never silently resolved.
//!
//! Parsing touches the host only to `stat` bind sources; the policy check
//! only to resolve them (`realpath`). Errors read like docker's.

mod mount_flag;
mod policy;
mod raw;
mod tmpfs_flag;
mod volume_flag;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use mount_flag::parse_mount_flag;
pub use policy::{BindPolicy, DEFAULT_CONFIG_PATH, PolicyError, ReadOnlyNote, Refusal};
pub use raw::is_valid_volume_name;
pub use tmpfs_flag::parse_tmpfs_flag;
pub use volume_flag::parse_volume_flag;

/// One mount a container asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountSpec {
    Bind(BindMount),
    Volume(VolumeMount),
    Tmpfs(TmpfsMount),
}

impl MountSpec {
    /// Where the mount appears in the container.
    pub fn target(&self) -> &Path {
        match self {
            MountSpec::Bind(bind) => &bind.target,
            MountSpec::Volume(volume) => &volume.target,
            MountSpec::Tmpfs(tmpfs) => &tmpfs.target,
        }
    }

    pub fn kind(&self) -> MountKind {
        match self {
            MountSpec::Bind(_) => MountKind::Bind,
            MountSpec::Volume(_) => MountKind::Volume,
            MountSpec::Tmpfs(_) => MountKind::Tmpfs,
        }
    }
}

/// A host path bound into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    /// Absolute host path; after [`BindPolicy::check`], its canonical form.
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
    pub propagation: Propagation,
    /// `z` or `Z` was given: relabel for SELinux when it is on; the caller
    /// prints a note when it is off.
    pub selinux_relabel: Option<Relabel>,
}

/// A named or anonymous volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    /// `None`: an anonymous volume, named by the engine when it is created.
    pub name: Option<String>,
    pub target: PathBuf,
    pub read_only: bool,
    /// Do not copy the image's content at the target into an empty volume.
    pub nocopy: bool,
    /// `volume-opt=KEY=VALUE`, in the order given, keys distinct.
    pub driver_opts: Vec<(String, String)>,
    /// Mount only this folder of the volume: relative, without `..`.
    pub subpath: Option<PathBuf>,
}

/// A tmpfs, always `noexec,nosuid,nodev` (as docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsMount {
    pub target: PathBuf,
    /// Bytes; `None` (or 0 given) is the kernel's default, half of RAM.
    pub size: Option<u64>,
    /// Permission bits of the tmpfs root (at most `0o7777`).
    pub mode: Option<u32>,
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    Bind,
    Volume,
    Tmpfs,
}

impl MountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MountKind::Bind => "bind",
            MountKind::Volume => "volume",
            MountKind::Tmpfs => "tmpfs",
        }
    }
}

impl fmt::Display for MountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Mount propagation of a bind; docker's default is `rprivate`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Propagation {
    Private,
    #[default]
    RPrivate,
    Shared,
    RShared,
    Slave,
    RSlave,
}

impl Propagation {
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Private => "private",
            Propagation::RPrivate => "rprivate",
            Propagation::Shared => "shared",
            Propagation::RShared => "rshared",
            Propagation::Slave => "slave",
            Propagation::RSlave => "rslave",
        }
    }

    /// The propagation named by docker's word for it (lower case only).
    pub fn from_word(word: &str) -> Option<Propagation> {
        Some(match word {
            "private" => Propagation::Private,
            "rprivate" => Propagation::RPrivate,
            "shared" => Propagation::Shared,
            "rshared" => Propagation::RShared,
            "slave" => Propagation::Slave,
            "rslave" => Propagation::RSlave,
            _ => return None,
        })
    }
}

impl fmt::Display for Propagation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SELinux relabelling asked with `z` (content shared among containers)
/// or `Z` (private to this container).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Relabel {
    Shared,
    Private,
}

/// Refuse two mounts on one target, as docker does (`Duplicate mount point`).
pub fn check_distinct_targets(mounts: &[MountSpec]) -> Result<(), MountError> {
    for (i, mount) in mounts.iter().enumerate() {
        if mounts[..i].iter().any(|m| m.target() == mount.target()) {
            return Err(MountError::DuplicateTarget(mount.target().to_path_buf()));
        }
    }
    Ok(())
}

/// Why a mount flag was refused. Messages follow docker's.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// `-v` with the wrong number of parts, or `DST:MODE`.
    #[error("invalid volume specification: '{0}'")]
    InvalidSpec(String),
    /// `-v` options that are unknown, repeated or in conflict.
    #[error("invalid mode: {0}")]
    InvalidMode(String),
    /// The mount is well-formed but its configuration is not valid.
    #[error("invalid mount config for type \"{kind}\": {problem}")]
    Config {
        kind: MountKind,
        problem: ConfigProblem,
    },
    #[error("invalid mount config for type \"{0}\": mount type unknown")]
    UnknownType(String),
    #[error(
        "\"{0}\" includes invalid characters for a local volume name, only \
         \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a \
         host directory, use absolute path"
    )]
    InvalidVolumeName(String),
    // The words of `--mount`.
    #[error("invalid field '{0}' must be a key=value pair")]
    NotKeyValue(String),
    #[error("unexpected key '{key}' in '{field}'")]
    UnknownKey { key: String, field: String },
    #[error("invalid value for {key}: {value}")]
    InvalidValue { key: String, value: String },
    #[error("'{key}' is given more than once in '{text}'")]
    RepeatedKey { key: &'static str, text: String },
    #[error("volume-opt '{0}' is given more than once")]
    RepeatedVolumeOpt(String),
    #[error("type is required")]
    TypeRequired,
    #[error("cannot mix '{prefix}-*' options with mount type '{kind}'")]
    MixedOptions {
        prefix: &'static str,
        kind: MountKind,
    },
    #[error("invalid quoting in '{0}'")]
    BadQuoting(String),
    #[error("Duplicate mount point: {}", .0.display())]
    DuplicateTarget(PathBuf),
}

/// What is wrong in a mount's configuration; shown after
/// `invalid mount config for type "...": `.
#[derive(Debug, thiserror::Error)]
pub enum ConfigProblem {
    #[error("field {0} must not be empty")]
    MissingField(&'static str),
    #[error("field {0} must not be specified")]
    ExtraField(&'static str),
    #[error("invalid mount path: '{0}' mount path must be absolute")]
    NotAbsolute(String),
    #[error("invalid specification: destination can't be '/'")]
    RootTarget,
    #[error("bind source path does not exist: {}", .0.display())]
    BindSourceMissing(PathBuf),
    #[error("cannot stat bind source path {}: {source}", .path.display())]
    BindSourceStat {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid propagation mode: {0}")]
    InvalidPropagation(String),
    #[error("must not set Subpath when using anonymous volumes")]
    AnonymousWithSubpath,
    #[error("subpath must be a relative path within the volume: {0}")]
    InvalidSubpath(String),
    #[error("must not set ReadOnly mode when using anonymous volumes")]
    AnonymousReadOnly,
    #[error("invalid size: '{0}'")]
    InvalidSize(String),
    #[error("invalid mode: {0} (octal permission bits, at most 7777)")]
    InvalidTmpfsMode(String),
    #[error("option {0} is given more than once")]
    RepeatedOption(String),
    #[error("options ro and rw conflict")]
    ReadOnlyConflict,
    #[error("option {0} is not supported (muelle mounts a tmpfs noexec,nosuid,nodev)")]
    UnsupportedOption(String),
    #[error("unknown option '{0}'")]
    UnknownOption(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpfs(target: &str) -> MountSpec {
        MountSpec::Tmpfs(TmpfsMount {
            target: target.into(),
            size: None,
            mode: None,
            read_only: false,
        })
    }

    #[test]
    fn distinct_targets_pass() {
        check_distinct_targets(&[tmpfs("/a"), tmpfs("/b")]).unwrap();
    }

    #[test]
    fn duplicate_target_is_refused() {
        let err = check_distinct_targets(&[tmpfs("/a"), tmpfs("/b"), tmpfs("/a")]).unwrap_err();
        assert_eq!(err.to_string(), "Duplicate mount point: /a");
    }

    #[test]
    fn propagation_words_round_trip() {
        for word in [
            "private", "rprivate", "shared", "rshared", "slave", "rslave",
        ] {
            assert_eq!(Propagation::from_word(word).unwrap().as_str(), word);
        }
        assert_eq!(Propagation::from_word("RSHARED"), None);
        assert_eq!(Propagation::default(), Propagation::RPrivate);
    }
}
