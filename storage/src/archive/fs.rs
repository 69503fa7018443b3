//! The target folder, reached only through descriptors: parents are opened
//! one component at a time without following symlinks, so no name in an
//! archive (or already on disk) can lead a write outside.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
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

    /// The folder open at `dir`, which must be one.
    pub fn from_fd(dir: BorrowedFd<'_>) -> std::io::Result<Tree> {
        let root = step(dir, OsStr::new("."), OFlag::O_PATH)?;
        Ok(Tree { root, last: None })
    }

    pub fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Drops the cached parent: after a removal that may have taken it
    /// (a whiteout applied to a folder tree).
    pub fn forget(&mut self) {
        self.last = None;
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

    /// As `existing`, but None when a component is missing (a whiteout of
    /// something no lower layer has); a symlink or file on the way is
    /// still refused.
    pub fn existing_opt(&self, dirs: &[&OsStr]) -> Result<Option<OwnedFd>, Failure> {
        let mut fd = step(self.root.as_fd(), OsStr::new("."), OFlag::O_PATH)
            .map_err(Failure::io("opening the target folder"))?;
        for (i, name) in dirs.iter().enumerate() {
            fd = match step(fd.as_fd(), name, OFlag::O_PATH) {
                Ok(next) => next,
                Err(Errno::ENOENT) => return Ok(None),
                Err(Errno::ENOTDIR | Errno::ELOOP) => {
                    return Err(not_a_dir(fd.as_fd(), name, &joined(&dirs[..=i])));
                }
                Err(e) => {
                    return Err(Failure::io(format!("opening {:?}", joined(&dirs[..=i])))(e));
                }
            };
        }
        Ok(Some(fd))
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

/// The mount a descriptor's file is on (statx `STATX_MNT_ID`): mount ids,
/// not device numbers, tell a bind mount of the same filesystem apart.
fn mount_id(fd: BorrowedFd<'_>) -> Result<u64, Failure> {
    // SAFETY: statx is plain-old-data, valid when zeroed.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: an empty NUL-terminated path with AT_EMPTY_PATH names `fd`
    // itself; stx is a writable statx.
    let rc = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_MNT_ID,
            &mut stx,
        )
    };
    if rc != 0 {
        return Err(Failure::Io(
            "reading its mount".into(),
            std::io::Error::last_os_error(),
        ));
    }
    if stx.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(Failure::Io(
            "reading its mount".into(),
            std::io::Error::other("the kernel gives no mount id"),
        ));
    }
    Ok(stx.stx_mnt_id)
}

/// One folder being emptied: its descriptor and the names left in it.
struct Emptying {
    dir: nix::dir::Dir,
    names: Vec<OsString>,
    /// The name of this folder in the one below it on the stack.
    name: OsString,
}

fn list(dir: &mut nix::dir::Dir) -> Result<Vec<OsString>, Failure> {
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(Failure::io("listing a folder to remove"))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(names)
}

fn open_to_empty(parent: BorrowedFd<'_>, name: &OsStr, mnt: u64) -> Result<Emptying, Failure> {
    let fd =
        step(parent, name, OFlag::O_RDONLY).map_err(Failure::io("opening a folder to remove"))?;
    if mount_id(fd.as_fd())? != mnt {
        return Err(Failure::Refused(format!(
            "{:?} is a mount point; nothing is removed across mounts",
            name
        )));
    }
    let mut dir = nix::dir::Dir::from_fd(fd).map_err(Failure::io("listing a folder to remove"))?;
    let names = list(&mut dir)?;
    Ok(Emptying {
        dir,
        names,
        name: name.to_os_string(),
    })
}

/// Removes everything inside the folder `dir` (kept itself), without
/// following a symlink or entering another mount. Iterative: a deep tree
/// costs descriptors (and fails cleanly at the limit), never the stack.
pub fn empty_dir(dir: BorrowedFd<'_>) -> Result<(), Failure> {
    let mnt = mount_id(dir)?;
    let mut top = open_to_empty(dir, OsStr::new("."), mnt)?;
    loop {
        let Some(name) = top.names.pop() else {
            return Ok(());
        };
        remove_in(top.dir.as_fd(), &name, mnt)?;
    }
}

/// Removes `name` in `parent` and, for a folder, everything under it, as
/// `empty_dir` does; nothing there is fine.
pub fn remove_tree(parent: BorrowedFd<'_>, name: &OsStr) -> Result<(), Failure> {
    let mnt = mount_id(parent)?;
    remove_in(parent, name, mnt)
}

fn remove_in(parent: BorrowedFd<'_>, name: &OsStr, mnt: u64) -> Result<(), Failure> {
    match unlinkat(parent, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) => {}
        Err(e) => return Err(Failure::io("removing what was there")(e)),
    }
    let mut stack = vec![open_to_empty(parent, name, mnt)?];
    while let Some(top) = stack.last_mut() {
        let Some(child) = top.names.pop() else {
            let done = stack.pop();
            let below = stack.last().map_or(parent, |f| f.dir.as_fd());
            if let Some(done) = done {
                unlinkat(below, done.name.as_os_str(), UnlinkatFlags::RemoveDir)
                    .map_err(Failure::io("removing a folder"))?;
            }
            continue;
        };
        match unlinkat(
            top.dir.as_fd(),
            child.as_os_str(),
            UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(Errno::EISDIR) => {
                let next = open_to_empty(top.dir.as_fd(), &child, mnt)?;
                stack.push(next);
            }
            Err(e) => return Err(Failure::io("removing a file")(e)),
        }
    }
    Ok(())
}
