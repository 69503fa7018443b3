//! `diff`: what a container changed in its image, read from its overlay
//! upper folder as docker reads it (moby's overlay `changes`): an entry
//! there is `A`dded, or `C`hanged when a lower layer has it (a folder only
//! when its size, mode or time differ); overlay whiteouts (0:0 character
//! devices) are `D`eleted, and so is an opaque folder that replaced one of
//! the image's. A folder gets a `C` before the first entry added or
//! deleted in it. The walk is depth first, names in byte order, as docker
//! prints it.
//!
//! docker keeps what it makes for a container's own mounts in a separate
//! init layer that `diff` does not show; muelle's runtime makes them in
//! the container's upper folder, so `diff` leaves out every mount
//! destination (/proc, /dev, /sys, /etc/hostname, /etc/hosts,
//! /etc/resolv.conf, the init binary, the volumes, binds and tmpfs) with
//! everything under it, and judges a folder above one (`/etc`) by what
//! changed under it, not by its own time. A fresh `run IMAGE true` shows
//! nothing. (docker does show the mount points a volume or bind needed
//! in the container's layer; muelle hides them all alike.)
//!
//! The upper folder is the container's and untrusted: it is walked
//! through descriptors that never follow a symlink, and so are the image's
//! layers it is compared with.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use image::{Driver, Images, Rootfs};
use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstatat};

use super::FilesError;
use crate::container::error::io;
use crate::container::record::Container;
use crate::container::{Engine, Result};
use crate::spec::INIT_PATH;

/// docker's change kinds (its API numbers them 0, 1, 2 in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modify,
    Add,
    Delete,
}

impl ChangeKind {
    /// The letter `docker diff` prints.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modify => 'C',
            ChangeKind::Add => 'A',
            ChangeKind::Delete => 'D',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// Absolute, in the container.
    pub path: PathBuf,
}

/// The destinations of the mounts muelle makes for every container.
const OWN_MOUNTS: [&str; 6] = [
    "/proc",
    "/dev",
    "/sys",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
];

impl Engine {
    /// The container's changes to its image, in docker's order.
    pub fn diff(&self, text: &str) -> Result<Vec<Change>> {
        let (container, layers) = {
            let store = self.open_store()?;
            let container = self.find(&store, text)?;
            let images = Images::open(&self.data_root)?;
            let image = images.resolve(&store, &container.config.image.id.to_string())?;
            let layers: Vec<PathBuf> = image
                .layers
                .iter()
                .map(|l| images.layer_path(&l.diff_id))
                .collect();
            (container, layers)
        };
        if Rootfs::open(&self.data_root)?.driver() == Driver::Copy {
            return Err(FilesError::NoUpperLayer(container.name).into());
        }
        let upper = image::rootfs::upper_dir(self.paths(&container.id).data());
        let upper = match open_dir(None, upper.as_os_str()) {
            Ok(fd) => fd,
            // Never started: nothing changed.
            Err(nix::Error::ENOENT) => return Ok(Vec::new()),
            Err(e) => return Err(io(format!("opening {}", upper.display()))(e.into())),
        };
        let mut lowers = Vec::with_capacity(layers.len());
        for layer in layers.iter().rev() {
            lowers.push(
                open_dir(None, layer.as_os_str())
                    .map_err(|e| io(format!("opening {}", layer.display()))(e.into()))?,
            );
        }
        let mut walk = Walk {
            lowers,
            hidden: hidden(&container),
            changes: Vec::new(),
            changed_dirs: HashSet::new(),
        };
        walk.run(upper)
            .map_err(|e| io(format!("reading the changes of {}", container.name))(e.into()))?;
        Ok(walk
            .changes
            .into_iter()
            .filter_map(|(change, shown)| shown.then_some(change))
            .collect())
    }
}

/// Every mount destination of the container.
fn hidden(container: &Container) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = OWN_MOUNTS.iter().map(PathBuf::from).collect();
    if container.config.init {
        paths.push(PathBuf::from(INIT_PATH));
    }
    paths.extend(container.mounts.iter().map(|m| m.target().to_owned()));
    paths
}

fn open_dir(parent: Option<BorrowedFd<'_>>, name: &OsStr) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match parent {
        Some(dir) => openat(dir, name, flags, Mode::empty()),
        None => nix::fcntl::open(Path::new(name), flags, Mode::empty()),
    }
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

fn is_whiteout(st: &FileStat) -> bool {
    kind(st) == SFlag::S_IFCHR && st.st_rdev == 0
}

fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    let mut value = [0u8; 2];
    // SAFETY: a NUL-terminated name and a buffer of the length passed.
    let n = unsafe {
        libc::fgetxattr(
            std::os::fd::AsRawFd::as_raw_fd(&dir),
            c"trusted.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    n == 1 && value[0] == b'y'
}

/// docker's `sameFsTime`: equal, or equal seconds where one side has no
/// nanoseconds.
fn same_dir(a: &FileStat, b: &FileStat) -> bool {
    let same_time = (a.st_mtime, a.st_mtime_nsec) == (b.st_mtime, b.st_mtime_nsec)
        || (a.st_mtime == b.st_mtime && (a.st_mtime_nsec == 0 || b.st_mtime_nsec == 0));
    a.st_size == b.st_size && a.st_mode == b.st_mode && same_time
}

/// A folder of the upper layer being walked.
struct Frame {
    dir: OwnedFd,
    path: PathBuf,
    names: std::vec::IntoIter<OsString>,
    /// Above a mount destination, so changed by muelle: its own metadata
    /// says nothing. It holds a place in the changes (the index) where it
    /// is shown if a folder the image has (`C`) turns out to be the
    /// parent of an entry added or deleted, or a folder muelle made (`A`)
    /// has any change under it.
    quiet: Option<(ChangeKind, usize)>,
}

struct Walk {
    /// The image's layer folders, top first.
    lowers: Vec<OwnedFd>,
    hidden: Vec<PathBuf>,
    /// In order; quiet folders hold a place that stays hidden (false)
    /// unless something shows them.
    changes: Vec<(Change, bool)>,
    changed_dirs: HashSet<PathBuf>,
}

impl Walk {
    fn run(&mut self, upper: OwnedFd) -> nix::Result<()> {
        let mut stack = vec![frame(upper, PathBuf::from("/"), None)?];
        while let Some(top) = stack.last_mut() {
            let Some(name) = top.names.next() else {
                stack.pop();
                continue;
            };
            match self.entry(&stack, &name) {
                Ok(Some(next)) => stack.push(next),
                Ok(None) => {}
                // A running container removed it meanwhile.
                Err(nix::Error::ENOENT | nix::Error::ENOTDIR) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Judges the entry `name` of the top folder; returns the frame to
    /// walk it when it is a folder.
    fn entry(&mut self, stack: &[Frame], name: &OsStr) -> nix::Result<Option<Frame>> {
        let Some(top) = stack.last() else {
            return Ok(None);
        };
        let path = top.path.join(name);
        if self.is_hidden(&path) {
            return Ok(None);
        }
        let st = fstatat(top.dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let is_dir = kind(&st) == SFlag::S_IFDIR;
        let dir = if is_dir {
            Some(open_dir(Some(top.dir.as_fd()), name)?)
        } else {
            None
        };
        let lower = self.lower(&path);
        if self.is_above_hidden(&path)
            && let Some(dir) = dir
        {
            let kind = if lower.is_some() {
                ChangeKind::Modify
            } else {
                ChangeKind::Add
            };
            let slot = self.changes.len();
            self.changes.push((
                Change {
                    kind,
                    path: path.clone(),
                },
                false,
            ));
            return frame(dir, path, Some((kind, slot))).map(Some);
        }
        let opaque = dir.as_ref().is_some_and(|d| is_opaque(d.as_fd()));
        let change = if is_whiteout(&st) || (opaque && lower.is_some()) {
            Some(ChangeKind::Delete)
        } else {
            match &lower {
                None => Some(ChangeKind::Add),
                Some(l) if is_dir && kind(l) == SFlag::S_IFDIR && same_dir(&st, l) => None,
                Some(_) => Some(ChangeKind::Modify),
            }
        };
        if let Some(change) = change {
            self.record(stack, change, &path, is_dir);
        }
        dir.map(|dir| frame(dir, path, None)).transpose()
    }

    /// Records a change: first the folders muelle added above it for a
    /// mount (an entry under a new folder means the folder is new too),
    /// then its folder's `C` when an entry was added to or deleted from it.
    fn record(&mut self, stack: &[Frame], kind: ChangeKind, path: &Path, is_dir: bool) {
        for frame in stack {
            if let Some((ChangeKind::Add, slot)) = frame.quiet {
                self.show(slot);
            }
        }
        if is_dir {
            self.changed_dirs.insert(path.to_owned());
        }
        if kind != ChangeKind::Modify
            && let Some(parent) = path.parent()
            && parent != Path::new("/")
            && !self.changed_dirs.contains(parent)
        {
            match stack.last().and_then(|f| f.quiet) {
                // Where docker would have shown it: before its content.
                Some((_, slot)) => self.show(slot),
                None => {
                    self.changed_dirs.insert(parent.to_owned());
                    self.changes.push((
                        Change {
                            kind: ChangeKind::Modify,
                            path: parent.to_owned(),
                        },
                        true,
                    ));
                }
            }
        }
        self.changes.push((
            Change {
                kind,
                path: path.to_owned(),
            },
            true,
        ));
    }

    /// Shows a quiet folder's held place.
    fn show(&mut self, slot: usize) {
        if let Some((change, shown)) = self.changes.get_mut(slot) {
            *shown = true;
            self.changed_dirs.insert(change.path.clone());
        }
    }

    fn is_hidden(&self, path: &Path) -> bool {
        self.hidden.iter().any(|m| path.starts_with(m))
    }

    fn is_above_hidden(&self, path: &Path) -> bool {
        self.hidden.iter().any(|m| m != path && m.starts_with(path))
    }

    /// What the image has at `path`, looked up layer by layer as overlay
    /// does: a whiteout, or a file where a folder is needed, hides it and
    /// everything below; an opaque folder hides the lower layers' entries.
    fn lower(&self, path: &Path) -> Option<FileStat> {
        let parts: Vec<&OsStr> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(p) => Some(p),
                _ => None,
            })
            .collect();
        let (name, dirs) = parts.split_last()?;
        for layer in &self.lowers {
            let mut opaque = false;
            let mut dir: Option<OwnedFd> = None;
            let mut missing = false;
            for part in dirs {
                let at = dir.as_ref().map_or(layer.as_fd(), |d| d.as_fd());
                match open_dir(Some(at), part) {
                    Ok(next) => {
                        opaque |= is_opaque(next.as_fd());
                        dir = Some(next);
                    }
                    Err(nix::Error::ENOENT) => {
                        missing = true;
                        break;
                    }
                    Err(_) => return None,
                }
            }
            if !missing {
                let at = dir.as_ref().map_or(layer.as_fd(), |d| d.as_fd());
                match fstatat(at, *name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(st) if is_whiteout(&st) => return None,
                    Ok(st) => return Some(st),
                    Err(_) => {}
                }
            }
            if opaque {
                return None;
            }
        }
        None
    }
}

fn frame(dir: OwnedFd, path: PathBuf, quiet: Option<(ChangeKind, usize)>) -> nix::Result<Frame> {
    let mut names: Vec<OsString> = Vec::new();
    let dup = openat(
        dir.as_fd(),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut listing = Dir::from_fd(dup)?;
    for entry in listing.iter() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    names.sort();
    Ok(Frame {
        dir,
        path,
        names: names.into_iter(),
        quiet,
    })
}
