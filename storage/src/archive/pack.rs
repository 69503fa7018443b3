//! `pack`: a folder tree as a GNU-format tar, walked through descriptors so
//! no symlink is ever followed (see the module doc).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat, major, minor};
use tar::{Builder, EntryType, Header};

use super::fs::kind;
use super::whiteout::{OPAQUE_MARKER, OPAQUE_XATTR, is_marker_name, is_overlay_whiteout};
use super::xattr;
use super::{ArchiveError, Result, Summary};

/// How `pack_dir_with` writes a tree. The default is `pack`'s behaviour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PackOptions {
    /// The tree is an overlay layer (a layer folder, an upper folder):
    /// its 0:0 character devices are written as OCI whiteouts `.wh.NAME`
    /// and its opaque folders (`trusted.overlay.opaque=y`) get a
    /// `.wh..wh..opq` entry right after their own.
    pub oci_whiteouts: bool,
}

/// A folder being walked: its open descriptor and the names left in it.
struct Frame {
    dir: Dir,
    path: PathBuf,
    names: std::vec::IntoIter<OsString>,
}

struct Packer<'p, W: Write> {
    builder: Builder<W>,
    options: PackOptions,
    /// Folders archived without their content (see [`pack_entry`]).
    prune: Option<Prune<'p>>,
    /// (dev, ino) of non-folders with several links → their first name.
    links: HashMap<(u64, u64), PathBuf>,
    summary: Summary,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> ArchiveError {
    move |source| ArchiveError::Io { context, source }
}

fn nix_io(context: String) -> impl FnOnce(nix::Error) -> ArchiveError {
    move |errno| ArchiveError::Io {
        context,
        source: errno.into(),
    }
}

/// Writes the tree under `dir` (not following a symlink at `dir` itself
/// either) to `out` as a tar archive, and finishes it.
pub fn pack(dir: &Path, out: impl Write) -> Result<Summary> {
    let fd = openat(
        nix::fcntl::AT_FDCWD,
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(nix_io(format!("opening {}", dir.display())))?;
    pack_dir(fd, out)
}

/// As [`pack`], from a folder already open (`O_RDONLY | O_DIRECTORY`):
/// for a caller that resolved it safely itself (copy-up resolves inside a
/// container's rootfs).
pub fn pack_dir(fd: OwnedFd, out: impl Write) -> Result<Summary> {
    pack_dir_with(fd, out, &PackOptions::default())
}

/// As [`pack_dir`], written as `options` say.
pub fn pack_dir_with(fd: OwnedFd, out: impl Write, options: &PackOptions) -> Result<Summary> {
    let mut packer = Packer {
        builder: Builder::new(out),
        options: *options,
        prune: None,
        links: HashMap::new(),
        summary: Summary::default(),
    };
    let first = packer.dir(fd, PathBuf::from("."))?;
    packer.walk(Some(first))
}

/// Says of a folder (open, `O_RDONLY`) whether [`pack_entry`] archives it
/// without its content: a caller's way to leave out what is not data
/// (a container's /proc, another mount).
pub type Prune<'p> = &'p dyn Fn(BorrowedFd<'_>) -> bool;

/// Writes the entry `name` of the folder `parent` to `out` as a tar
/// archive, and finishes it: a file, symlink or special file as one entry,
/// a folder with everything under it. A symlink at `name` is archived as
/// one, never followed. The entry is named `as_name` in the archive (one
/// component, not `..`; `.` names it `./` and its content `x`, as
/// [`pack_dir`] does), whatever it is called on disk: `docker cp`'s
/// rename of what it copies. Folders `prune` picks are written without
/// their content.
pub fn pack_entry(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    as_name: &Path,
    out: impl Write,
    prune: Prune<'_>,
) -> Result<Summary> {
    let mut parts = as_name.components();
    let valid = matches!(
        (parts.next(), parts.next()),
        (Some(Component::Normal(_) | Component::CurDir), None)
    );
    if !valid {
        return Err(io(format!("archiving {}", as_name.display()))(
            std::io::Error::other("an archive name must be one component, not `..`"),
        ));
    }
    let mut packer = Packer {
        builder: Builder::new(out),
        options: PackOptions::default(),
        prune: Some(prune),
        links: HashMap::new(),
        summary: Summary::default(),
    };
    let first = packer.child(parent, &name.to_os_string(), as_name.to_owned())?;
    packer.walk(first)
}

impl<W: Write> Packer<'_, W> {
    /// Writes everything under `first` (nothing when it is not a folder),
    /// then finishes the archive.
    fn walk(mut self, first: Option<Frame>) -> Result<Summary> {
        let mut stack: Vec<Frame> = first.into_iter().collect();
        while let Some(frame) = stack.last_mut() {
            let Some(name) = frame.names.next() else {
                stack.pop();
                continue;
            };
            let path = frame.path.join(&name);
            if let Some(child) = self.child(frame.dir.as_fd(), &name, path)? {
                stack.push(child);
            }
        }
        self.builder.finish().map_err(ArchiveError::Write)?;
        let mut out = self.builder.into_inner().map_err(ArchiveError::Write)?;
        out.flush().map_err(ArchiveError::Write)?;
        Ok(self.summary)
    }
}

fn header(st: &FileStat, kind: EntryType, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    // Seconds only, as GNU tar's default format; before 1970 becomes 1970.
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(size);
    h
}

/// The name in the archive: relative, without the `./` of the walk, and
/// `./` for the root, as `tar -C dir -c .` names it.
fn archive_name(path: &Path, is_dir: bool) -> PathBuf {
    let rel = path.strip_prefix(".").unwrap_or(path);
    if rel.as_os_str().is_empty() {
        return PathBuf::from("./");
    }
    if is_dir {
        let mut bytes = rel.as_os_str().as_bytes().to_vec();
        bytes.push(b'/');
        return PathBuf::from(OsString::from_vec(bytes));
    }
    rel.to_owned()
}

/// The order a layer's folder is applied in: its opaque marker, then its
/// whiteouts (OCI marker files, or overlay's 0:0 devices), then the rest,
/// each group by name. Applied so, whiteouts remove only what lower layers
/// put there, never an entry of their own layer.
fn whiteouts_first(dir: BorrowedFd<'_>, names: &mut Vec<OsString>, opaque_written: bool) {
    if opaque_written {
        // The xattr already gave the marker; a marker file too is the same.
        names.retain(|n| n.as_bytes() != OPAQUE_MARKER.as_bytes());
    }
    names.sort_by_cached_key(|name| {
        let bytes = name.as_bytes();
        let rank = if bytes == OPAQUE_MARKER.as_bytes() {
            0
        } else if is_marker_name(bytes)
            || fstatat(dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|st| is_overlay_whiteout(&st))
        {
            1
        } else {
            2
        };
        (rank, name.clone())
    });
}

impl<W: Write> Packer<'_, W> {
    /// Writes a folder's entry and returns the frame to walk it.
    fn dir(&mut self, fd: OwnedFd, path: PathBuf) -> Result<Frame> {
        let shown = path.display().to_string();
        let st = fstat(&fd).map_err(nix_io(format!("reading {shown}")))?;
        self.xattrs(fd.as_fd(), &shown)?;
        let mut h = header(&st, EntryType::Directory, 0);
        self.builder
            .append_data(&mut h, archive_name(&path, true), std::io::empty())
            .map_err(ArchiveError::Write)?;
        // Before the folder's own entries: it hides only lower content.
        let opaque = self.options.oci_whiteouts
            && xattr::read_small::<2>(fd.as_fd(), OPAQUE_XATTR).as_deref() == Some(b"y");
        if opaque {
            let mut h = header(&st, EntryType::Regular, 0);
            h.set_mode(0o644);
            let marker = archive_name(&path.join(OPAQUE_MARKER), false);
            self.builder
                .append_data(&mut h, marker, std::io::empty())
                .map_err(ArchiveError::Write)?;
            self.summary.whiteouts += 1;
        }
        let pruned = self.prune.is_some_and(|prune| prune(fd.as_fd()));
        let mut dir = Dir::from_fd(fd).map_err(nix_io(format!("listing {shown}")))?;
        let mut names = Vec::new();
        if !pruned {
            for entry in dir.iter() {
                let entry = entry.map_err(nix_io(format!("listing {shown}")))?;
                let name = entry.file_name().to_bytes();
                if name != b"." && name != b".." {
                    names.push(OsString::from_vec(name.to_vec()));
                }
            }
        }
        names.sort();
        if self.options.oci_whiteouts {
            whiteouts_first(dir.as_fd(), &mut names, opaque);
        }
        self.summary.dirs += 1;
        Ok(Frame {
            dir,
            path,
            names: names.into_iter(),
        })
    }

    /// Writes one entry of a folder; returns a frame when it is a folder.
    fn child(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &OsString,
        path: PathBuf,
    ) -> Result<Option<Frame>> {
        let shown = path.display().to_string();
        let st = fstatat(parent, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(nix_io(format!("reading {shown}")))?;
        let what = kind(&st);
        if what == SFlag::S_IFDIR {
            let fd = openat(
                parent,
                name.as_os_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(nix_io(format!("opening {shown}")))?;
            return self.dir(fd, path).map(Some);
        }
        if what == SFlag::S_IFSOCK {
            tracing::warn!("{shown}: socket ignored");
            self.summary.skipped += 1;
            return Ok(None);
        }
        if self.options.oci_whiteouts && what == SFlag::S_IFCHR && st.st_rdev == 0 {
            return self.whiteout(&st, name, &path).map(|()| None);
        }
        let name_in_archive = archive_name(&path, false);
        if st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                let mut h = header(&st, EntryType::Link, 0);
                self.builder
                    .append_link(&mut h, &name_in_archive, first)
                    .map_err(ArchiveError::Write)?;
                self.summary.hardlinks += 1;
                return Ok(None);
            }
            self.links.insert(key, name_in_archive.clone());
        }
        match what {
            SFlag::S_IFREG => self.file(parent, name, &name_in_archive, &shown)?,
            SFlag::S_IFLNK => {
                let target = readlinkat(parent, name.as_os_str())
                    .map_err(nix_io(format!("reading the symlink {shown}")))?;
                let mut h = header(&st, EntryType::Symlink, 0);
                self.builder
                    .append_link(&mut h, &name_in_archive, target)
                    .map_err(ArchiveError::Write)?;
                self.summary.symlinks += 1;
            }
            SFlag::S_IFIFO | SFlag::S_IFCHR | SFlag::S_IFBLK => {
                let kind = match what {
                    SFlag::S_IFIFO => EntryType::Fifo,
                    SFlag::S_IFCHR => EntryType::Char,
                    _ => EntryType::Block,
                };
                let mut h = header(&st, kind, 0);
                if kind != EntryType::Fifo {
                    let dev = st.st_rdev;
                    let (maj, min) = (major(dev), minor(dev));
                    let (Ok(maj), Ok(min)) = (u32::try_from(maj), u32::try_from(min)) else {
                        return Err(io(format!("{shown}: device number"))(
                            std::io::Error::other("out of range"),
                        ));
                    };
                    h.set_device_major(maj).map_err(ArchiveError::Write)?;
                    h.set_device_minor(min).map_err(ArchiveError::Write)?;
                }
                self.builder
                    .append_data(&mut h, &name_in_archive, std::io::empty())
                    .map_err(ArchiveError::Write)?;
                self.summary.special += 1;
            }
            _ => {
                tracing::warn!("{shown}: unknown file type ignored");
                self.summary.skipped += 1;
            }
        }
        Ok(None)
    }

    fn file(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &OsString,
        name_in_archive: &Path,
        shown: &str,
    ) -> Result<()> {
        // O_NONBLOCK: if the file became a fifo since the stat, opening must
        // not hang; the fstat below then sees it is no longer a file.
        let fd = openat(
            parent,
            name.as_os_str(),
            OFlag::O_RDONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_NOCTTY
                | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(nix_io(format!("opening {shown}")))?;
        let st = fstat(&fd).map_err(nix_io(format!("reading {shown}")))?;
        if kind(&st) != SFlag::S_IFREG {
            return Err(io(format!("reading {shown}"))(std::io::Error::other(
                "it changed type while being exported",
            )));
        }
        self.xattrs(fd.as_fd(), shown)?;
        let size = u64::try_from(st.st_size).unwrap_or(0);
        // Exactly `size` bytes: cut if it grew, zero-padded if it shrank.
        let data = File::from(fd)
            .take(size)
            .chain(std::io::repeat(0))
            .take(size);
        let mut h = header(&st, EntryType::Regular, size);
        self.builder
            .append_data(&mut h, name_in_archive, data)
            .map_err(|e| io(format!("archiving {shown}"))(e))?;
        self.summary.files += 1;
        self.summary.bytes += size;
        Ok(())
    }

    /// An overlay whiteout (0:0 device) as the OCI `.wh.NAME` entry.
    fn whiteout(&mut self, st: &FileStat, name: &OsString, path: &Path) -> Result<()> {
        let mut marker = b".wh.".to_vec();
        marker.extend_from_slice(name.as_bytes());
        let path = path.with_file_name(OsString::from_vec(marker));
        let mut h = header(st, EntryType::Regular, 0);
        h.set_mode(0o644);
        self.builder
            .append_data(&mut h, archive_name(&path, false), std::io::empty())
            .map_err(ArchiveError::Write)?;
        self.summary.whiteouts += 1;
        Ok(())
    }

    fn xattrs(&mut self, fd: BorrowedFd<'_>, shown: &str) -> Result<()> {
        let attrs = xattr::read(fd).map_err(io(format!("reading the xattrs of {shown}")))?;
        if attrs.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = attrs
            .iter()
            .map(|(name, _)| format!("{}{name}", xattr::PAX_PREFIX))
            .collect();
        self.builder
            .append_pax_extensions(
                keys.iter()
                    .map(String::as_str)
                    .zip(attrs.iter().map(|(_, v)| v.as_slice())),
            )
            .map_err(ArchiveError::Write)
    }
}
