//! The target folder, reached only through descriptors: parents are opened
//! one component at a time without following symlinks, so no name in an
//! archive (or already on disk) can lead a write outside.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::Failure;
use super::name::joined;

/// Folders the archive implies but does not list get docker's and GNU
/// tar's usual mode.
const IMPLIED_DIR_MODE: u32 = 0o755;

pub fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

pub fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

pub struct Tree {
    root: OwnedFd,
    /// The last parent reached: archives list a folder's entries together.
    /// Only the same path hits it, and entries only ever remove a child of
    /// the parent they are in, so it cannot go stale.
    last: Option<(Vec<OsString>, OwnedFd)>,
}

/// One folder step: never a symlink, never `..` (names are checked first).
fn step(dir: BorrowedFd<'_>, name: &OsStr, flags: OFlag) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        flags | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Why `name` in `dir` is not a folder we may enter, for the error.
fn not_a_dir(dir: BorrowedFd<'_>, name: &OsStr, path: &str) -> Failure {
    match fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if kind(&st) == SFlag::S_IFLNK => Failure::Refused(format!(
            "its parent {path:?} is a symlink, and symlinks are never followed"
        )),
        _ => Failure::Refused(format!("its parent {path:?} is not a directory")),
    }
}

impl Tree {
    pub fn open(dir: &Path) -> std::io::Result<Tree> {
        let root = openat(
            nix::fcntl::AT_FDCWD,
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Tree { root, last: None })
    }

    pub fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// The folder `dirs` inside the target, made (0755) where missing.
    pub fn parent(&mut self, dirs: &[&OsStr]) -> Result<BorrowedFd<'_>, Failure> {
        let hit = self.last.as_ref().is_some_and(|(path, _)| {
            path.iter()
                .map(OsString::as_os_str)
                .eq(dirs.iter().copied())
        });
        if !hit {
            let fd = self.walk(dirs, true)?;
            self.last = Some((dirs.iter().map(|d| d.to_os_string()).collect(), fd));
        }
        Ok(match &self.last {
            Some((_, fd)) => fd.as_fd(),
            None => self.root.as_fd(),
        })
    }

    /// The existing folder `dirs`, for a hard link's target: nothing made.
    pub fn existing(&self, dirs: &[&OsStr]) -> Result<OwnedFd, Failure> {
        self.walk(dirs, false)
    }

    fn walk(&self, dirs: &[&OsStr], create: bool) -> Result<OwnedFd, Failure> {
        let mut fd = step(self.root.as_fd(), OsStr::new("."), OFlag::O_PATH)
            .map_err(Failure::io("opening the target folder"))?;
        for (i, name) in dirs.iter().enumerate() {
            let path = joined(&dirs[..=i]);
            let next = match step(fd.as_fd(), name, OFlag::O_PATH) {
                Err(Errno::ENOENT) if create => {
                    match mkdirat(
                        fd.as_fd(),
                        *name,
                        Mode::from_bits_truncate(IMPLIED_DIR_MODE),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(Failure::io(format!("creating {path:?}"))(e)),
                    }
                    step(fd.as_fd(), name, OFlag::O_PATH)
                }
                other => other,
            };
            fd = match next {
                Ok(next) => next,
                Err(Errno::ENOTDIR | Errno::ELOOP) => {
                    return Err(not_a_dir(fd.as_fd(), name, &path));
                }
                Err(Errno::ENOENT) => {
                    return Err(Failure::Refused(format!(
                        "{path:?} does not exist in the target folder"
                    )));
                }
                Err(e) => return Err(Failure::io(format!("opening {path:?}"))(e)),
            };
        }
        Ok(fd)
    }

    /// The folder `parts`, opened to set its mode and time at the end; None
    /// when a later entry replaced it (then that entry's metadata stands).
    pub fn reopen_dir(&self, parts: &[OsString]) -> Option<OwnedFd> {
        let mut fd = step(self.root.as_fd(), OsStr::new("."), OFlag::O_RDONLY).ok()?;
        for name in parts {
            fd = step(fd.as_fd(), name, OFlag::O_RDONLY).ok()?;
        }
        Some(fd)
    }
}

/// What was at an entry's name before it is written.
#[derive(PartialEq, Eq)]
pub enum Before {
    Nothing,
    Dir,
}

/// Clears `name` in `parent` for a new entry: anything but a folder is
/// unlinked (so nothing is ever written through an old symlink or hard
/// link); a folder stays for a folder entry, and otherwise goes only if
/// empty.
pub fn clear(parent: BorrowedFd<'_>, name: &OsStr, for_dir: bool) -> Result<Before, Failure> {
    let st = match fstatat(parent, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(Before::Nothing),
        Err(e) => return Err(Failure::io("looking at what is there")(e)),
    };
    if is_dir(&st) {
        if for_dir {
            return Ok(Before::Dir);
        }
        return match unlinkat(parent, name, UnlinkatFlags::RemoveDir) {
            Ok(()) => Ok(Before::Nothing),
            Err(Errno::ENOTEMPTY | Errno::EEXIST) => Err(Failure::Refused(
                "a non-empty directory of that name is in the way".into(),
            )),
            Err(e) => Err(Failure::io("removing the directory in the way")(e)),
        };
    }
    unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)
        .map_err(Failure::io("removing what was there"))?;
    Ok(Before::Nothing)
}
