//! Whether a plugin file may be loaded. Loading a library runs its code
//! (constructors run at dlopen) with muelle's privileges, which are
//! usually root's, so a plugin must be as hard to replace as muelle
//! itself: only root (or, when muelle runs as another user, that user)
//! may be able to change the file or swap it for another.
//!
//! The rules, judged on the path with every symlink resolved (what is
//! loaded is what was judged; [`check`] returns that path):
//! - the file is a regular file, owned by root (or the effective user when
//!   muelle does not run as root), neither group- nor world-writable;
//! - its folder is owned likewise and is neither group- nor world-writable
//!   (else anyone allowed to write there could rename another file over it);
//! - every further ancestor is owned likewise and, unless it has the
//!   sticky bit (as /tmp), is neither group- nor world-writable, since
//!   whoever can write an ancestor can rename the folders below it.

use std::fmt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::PluginError;

const GROUP_WRITE: u32 = 0o020;
const WORLD_WRITE: u32 = 0o002;
const STICKY: u32 = 0o1000;

/// The rule a plugin file broke, naming the file or folder at fault.
#[derive(Debug)]
pub enum Distrust {
    Unresolvable(std::io::Error),
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    NotAFile(PathBuf),
    Owner {
        path: PathBuf,
        uid: u32,
        /// The effective uid when muelle does not run as root.
        euid: Option<u32>,
    },
    GroupWritable(PathBuf),
    WorldWritable(PathBuf),
}

impl fmt::Display for Distrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Distrust::Unresolvable(e) => write!(f, "cannot resolve its path: {e}"),
            Distrust::Unreadable { path, source } => {
                write!(f, "cannot stat {}: {source}", path.display())
            }
            Distrust::NotAFile(path) => write!(f, "{} is not a regular file", path.display()),
            Distrust::Owner {
                path,
                uid,
                euid: None,
            } => write!(f, "{} is owned by uid {uid}, not root", path.display()),
            Distrust::Owner {
                path,
                uid,
                euid: Some(euid),
            } => write!(
                f,
                "{} is owned by uid {uid}, not root or uid {euid}",
                path.display()
            ),
            Distrust::GroupWritable(path) => write!(f, "{} is group-writable", path.display()),
            Distrust::WorldWritable(path) => write!(f, "{} is world-writable", path.display()),
        }
    }
}

/// Judges the plugin file at `path` by the rules above and returns its
/// resolved path, the one to load.
pub(crate) fn check(path: &Path) -> Result<PathBuf, PluginError> {
    let refuse = |reason| PluginError::Refused {
        path: path.to_path_buf(),
        reason,
    };
    let resolved = std::fs::canonicalize(path).map_err(|e| refuse(Distrust::Unresolvable(e)))?;
    let euid = nix::unistd::geteuid().as_raw();
    let owner_ok = |uid: u32| uid == 0 || uid == euid;
    let not_root = (euid != 0).then_some(euid);

    let mut checked = resolved.as_path();
    loop {
        let meta = std::fs::symlink_metadata(checked).map_err(|source| {
            refuse(Distrust::Unreadable {
                path: checked.to_path_buf(),
                source,
            })
        })?;
        let is_file = checked == resolved;
        if is_file && !meta.file_type().is_file() {
            return Err(refuse(Distrust::NotAFile(resolved.clone())));
        }
        if !owner_ok(meta.uid()) {
            return Err(refuse(Distrust::Owner {
                path: checked.to_path_buf(),
                uid: meta.uid(),
                euid: not_root,
            }));
        }
        let mode = meta.permissions().mode();
        // The sticky bit keeps others from renaming or deleting entries
        // they do not own, which makes a shared ancestor (/tmp) safe; on
        // the file and its own folder writability is refused outright.
        let is_file_or_folder = is_file || resolved.parent() == Some(checked);
        let excused = !is_file_or_folder && mode & STICKY != 0;
        if mode & WORLD_WRITE != 0 && !excused {
            return Err(refuse(Distrust::WorldWritable(checked.to_path_buf())));
        }
        if mode & GROUP_WRITE != 0 && !excused {
            return Err(refuse(Distrust::GroupWritable(checked.to_path_buf())));
        }
        match checked.parent() {
            Some(parent) => checked = parent,
            None => return Ok(resolved),
        }
    }
}
