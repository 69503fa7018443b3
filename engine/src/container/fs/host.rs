//! The host side of `cp`: the user's own paths, resolved as docker's CLI
//! resolves them (`CopyInfoSourcePath`, `CopyInfoDestinationPath`). The
//! user may point anywhere they can; what lands there comes only through
//! the safe archive code, named as muelle chose.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::FilesError;
use super::path::{Tail, archive_name, host_tail};

/// Follows at most this many symlinks at the end of a destination, as
/// docker's CLI.
const MAX_DEST_LINKS: usize = 10;

/// Go's spelling of an errno (lower case), as docker prints host errors.
fn go_error(op: &str, path: &Path, e: &std::io::Error) -> FilesError {
    let text = match e.raw_os_error() {
        Some(errno) => {
            let desc = nix::errno::Errno::from_raw(errno).desc();
            let mut chars = desc.chars();
            chars
                .next()
                .map(|c| c.to_lowercase().chain(chars).collect())
                .unwrap_or_default()
        }
        None => e.to_string(),
    };
    FilesError::Host(format!("{op} {}: {text}", path.display()))
}

fn open_dir(path: &Path) -> Result<OwnedFd, FilesError> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| go_error("open", path, &e.into()))
}

/// What `cp SRC CONTAINER:DEST` copies from the host: the entry `name` of
/// the open folder `parent`, archived as `as_name`.
pub struct HostSource {
    pub parent: OwnedFd,
    pub name: OsString,
    pub is_dir: bool,
    pub as_name: PathBuf,
}

impl HostSource {
    /// Without `follow`, a symlink at the end is copied as the symlink
    /// (the folders before it are followed); with it, what it points at,
    /// under the link's name.
    pub fn resolve(path: &Path, follow: bool) -> Result<HostSource, FilesError> {
        let tail = host_tail(path);
        if tail != Tail::Plain || path.file_name().is_none() {
            let meta = std::fs::metadata(path).map_err(|e| go_error("stat", path, &e))?;
            if !meta.is_dir() {
                return Err(FilesError::NotADirectory);
            }
            let as_name = archive_name(path, tail);
            return Ok(HostSource {
                parent: open_dir(path)?,
                name: OsString::from("."),
                is_dir: true,
                as_name,
            });
        }
        let typed = path
            .file_name()
            .map(OsStr::to_os_string)
            .unwrap_or_default();
        let real = if follow {
            path.canonicalize()
                .map_err(|e| go_error("lstat", path, &e))?
        } else {
            parent_of(path).join(&typed)
        };
        let meta = std::fs::symlink_metadata(&real).map_err(|e| go_error("lstat", path, &e))?;
        let (Some(parent), Some(name)) = (real.parent(), real.file_name()) else {
            return Err(FilesError::Host(format!("{}: not a file", path.display())));
        };
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        Ok(HostSource {
            parent: open_dir(parent)?,
            name: name.to_os_string(),
            is_dir: meta.is_dir(),
            as_name: PathBuf::from(typed),
        })
    }
}

/// Where `cp CONTAINER:SRC DEST` writes on the host: opened before the
/// container's root is (for a stopped container, that is in a mount
/// namespace of its own), so the host's paths mean what the user meant.
pub struct HostDest {
    /// After following symlinks at its end.
    path: PathBuf,
    /// DEST itself, when it is a folder.
    dir: Option<OwnedFd>,
    /// The folder DEST is (or will be) in.
    parent: OwnedFd,
    exists: bool,
    tail: Tail,
}

impl HostDest {
    pub fn resolve(path: &Path) -> Result<HostDest, FilesError> {
        let tail = host_tail(path);
        let mut path = path.to_owned();
        for _ in 0..=MAX_DEST_LINKS {
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    let target =
                        std::fs::read_link(&path).map_err(|e| go_error("readlink", &path, &e))?;
                    path = match path.parent() {
                        Some(parent) if target.is_relative() => parent.join(target),
                        _ => target,
                    };
                    continue;
                }
                Ok(meta) => Some(meta),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(go_error("lstat", &path, &e)),
            };
            let parent = parent_of(&path);
            let parent_meta =
                std::fs::metadata(parent).map_err(|e| go_error("stat", parent, &e))?;
            if !parent_meta.is_dir() {
                return Err(FilesError::NotADirectory);
            }
            let dir = match &meta {
                Some(meta) if meta.is_dir() => Some(open_dir(&path)?),
                _ => None,
            };
            return Ok(HostDest {
                parent: open_dir(parent)?,
                dir,
                exists: meta.is_some(),
                path,
                tail,
            });
        }
        Err(FilesError::Host(format!(
            "too many symlinks in {}",
            path.display()
        )))
    }

    /// The folder to extract into and the name the copy takes there
    /// (docker's `PrepareArchiveCopy`); `None`: the source's own name.
    pub fn extraction(
        &self,
        source_is_dir: bool,
    ) -> Result<(BorrowedFd<'_>, Option<PathBuf>), FilesError> {
        let into_parent = || {
            Ok((
                self.parent.as_fd(),
                self.path.file_name().map(PathBuf::from),
            ))
        };
        match (&self.dir, self.exists, source_is_dir) {
            (Some(dir), _, _) => Ok((dir.as_fd(), None)),
            (None, true, true) => Err(FilesError::CannotCopyDirectory),
            (None, true, false) | (None, false, true) => into_parent(),
            (None, false, false) if self.tail.asserts_dir() => Err(FilesError::NoSuchDirectory),
            (None, false, false) => into_parent(),
        }
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
