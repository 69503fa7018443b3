//! `unpack`: one archive entry at a time, each created relative to its
//! parent's descriptor (see the module doc for the rules).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstatat, makedev, mkdirat, mknodat};
use nix::sys::time::TimeSpec;
use nix::unistd::{linkat, symlinkat};
use tar::EntryType;

use super::fs::{Before, Tree, clear, is_dir};
use super::meta::Meta;
use super::name::{components, joined, shown};
use super::whiteout::{self, Role};
use super::{ArchiveError, Failure, Owners, Result, Summary, UnpackOptions, Whiteouts};

/// Folders are made private until their own mode is applied at the end.
const NEW_DIR_MODE: u32 = 0o700;
const COPY_BUFFER: usize = 128 * 1024;

/// A folder's mode and time, applied after its content is written.
struct Pending {
    parts: Vec<OsString>,
    mode: u32,
    mtime: TimeSpec,
}

struct Unpacker {
    tree: Tree,
    /// Owners are restored only by root, as GNU tar does.
    same_owner: bool,
    owners: Owners,
    options: UnpackOptions,
    pending: Vec<Pending>,
    summary: Summary,
    buffer: Vec<u8>,
}

/// Restores the archive read from `input` into the existing folder `dir`,
/// merging with what is there. Stops at the first refused or failing entry;
/// see the module doc for what that leaves.
pub fn unpack(input: impl Read, dir: &Path) -> Result<Summary> {
    unpack_with(input, dir, &UnpackOptions::default())
}

/// As [`unpack`], with whiteouts and device nodes handled as `options`
/// say (image layers; see the module doc).
pub fn unpack_with(input: impl Read, dir: &Path, options: &UnpackOptions) -> Result<Summary> {
    let tree = Tree::open(dir).map_err(|source| ArchiveError::Io {
        context: format!("opening {}", dir.display()),
        source,
    })?;
    unpack_tree(input, tree, options, Owners::FromArchive)
}

/// As [`unpack_with`], into the folder open at `dir` (a caller that
/// resolved it safely itself: `cp` resolves inside a container's root),
/// with the owners `owners` says.
pub fn unpack_at(
    input: impl Read,
    dir: BorrowedFd<'_>,
    options: &UnpackOptions,
    owners: Owners,
) -> Result<Summary> {
    let tree = Tree::from_fd(dir).map_err(|source| ArchiveError::Io {
        context: "opening the target folder".into(),
        source,
    })?;
    unpack_tree(input, tree, options, owners)
}

fn unpack_tree(
    input: impl Read,
    tree: Tree,
    options: &UnpackOptions,
    owners: Owners,
) -> Result<Summary> {
    let mut unpacker = Unpacker {
        tree,
        same_owner: nix::unistd::geteuid().is_root(),
        owners,
        options: *options,
        pending: Vec::new(),
        summary: Summary::default(),
        buffer: vec![0; COPY_BUFFER],
    };
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().map_err(ArchiveError::Read)? {
        let mut entry = entry.map_err(ArchiveError::Read)?;
        let raw = entry.path_bytes().into_owned();
        unpacker
            .entry(&raw, &mut entry)
            .map_err(|f| f.named(&shown(&raw)))?;
    }
    unpacker.finish_dirs();
    Ok(unpacker.summary)
}

impl Unpacker {
    fn entry<R: Read>(&mut self, raw: &[u8], entry: &mut tar::Entry<'_, R>) -> Result<(), Failure> {
        let mut kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            return Ok(());
        }
        // Pre-POSIX tars mark folders as files whose name ends in `/`.
        if kind == EntryType::Regular && raw.ends_with(b"/") {
            kind = EntryType::Directory;
        }
        let parts = components(raw).map_err(Failure::Refused)?;
        if raw.starts_with(b"/") {
            tracing::debug!("removing the leading '/' of {:?}", shown(raw));
        }
        if self.options.whiteouts != Whiteouts::Keep && self.whiteout(&parts)? {
            return Ok(());
        }
        let mut meta = Meta::of(entry)?;
        if let Owners::All { uid, gid } = self.owners {
            meta.own(uid, gid);
        }
        let Some((name, dirs)) = parts.split_last() else {
            if kind != EntryType::Directory {
                return Err(Failure::Refused(
                    "it names the target folder itself but is not a directory".into(),
                ));
            }
            return self.root_dir(meta);
        };
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.file(dirs, name, meta, entry)
            }
            EntryType::Directory => self.dir(&parts, meta),
            EntryType::Symlink => self.symlink(dirs, name, meta, entry),
            EntryType::Link => self.hardlink(&parts, entry),
            EntryType::Fifo | EntryType::Char | EntryType::Block => {
                self.special(dirs, name, meta, entry)
            }
            other => Err(Failure::Unsupported(describe(other))),
        }
    }

    /// Handles a whiteout or ignored name; false for an ordinary entry.
    fn whiteout(&mut self, parts: &[&OsStr]) -> Result<bool, Failure> {
        let role = whiteout::role(parts).map_err(Failure::Refused)?;
        let dirs = parts.split_last().map_or(&[][..], |(_, dirs)| dirs);
        match (role, self.options.whiteouts) {
            (Role::Plain, _) | (_, Whiteouts::Keep) => return Ok(false),
            (Role::Ignored, _) => {}
            (Role::Whiteout(name), Whiteouts::Overlay) => {
                if whiteout::overlay_whiteout(&mut self.tree, dirs, name)? {
                    self.summary.whiteouts += 1;
                }
            }
            (Role::Opaque, Whiteouts::Overlay) => {
                whiteout::overlay_opaque(&mut self.tree, dirs)?;
                self.summary.whiteouts += 1;
            }
            (Role::Whiteout(_) | Role::Opaque, Whiteouts::Oci) => {
                let Some((marker, _)) = parts.split_last() else {
                    return Ok(false);
                };
                let parent = self.tree.parent(dirs)?;
                whiteout::marker_file(parent, marker)?;
                self.summary.whiteouts += 1;
            }
            (Role::Whiteout(name), Whiteouts::Apply) => {
                self.tree.forget();
                whiteout::apply_whiteout(&self.tree, dirs, name)?;
                self.summary.whiteouts += 1;
            }
            (Role::Opaque, Whiteouts::Apply) => {
                self.tree.forget();
                whiteout::apply_opaque(&self.tree, dirs)?;
                self.summary.whiteouts += 1;
            }
        }
        Ok(true)
    }

    fn file<R: Read>(
        &mut self,
        dirs: &[&OsStr],
        name: &OsStr,
        meta: Meta,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), Failure> {
        let same_owner = self.same_owner;
        let parent = self.tree.parent(dirs)?;
        clear(parent, name, false)?;
        // O_EXCL: whatever appears at the name meanwhile is not written through.
        let fd = openat(
            parent,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(Failure::io("creating the file"))?;
        let mut file = File::from(fd);
        let written = copy(entry, &mut file, &mut self.buffer)?;
        // A truncated archive ends the data early without an error.
        if entry.header().entry_type() != EntryType::GNUSparse && written != entry.size() {
            return Err(Failure::Refused(format!(
                "the archive ends inside it ({written} of {} bytes)",
                entry.size()
            )));
        }
        meta.apply_file(file.as_fd(), same_owner)?;
        self.summary.files += 1;
        self.summary.bytes += written;
        Ok(())
    }

    fn root_dir(&mut self, meta: Meta) -> Result<(), Failure> {
        let fd = openat(
            self.tree.root(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(Failure::io("opening the target folder"))?;
        meta.apply_owner_xattrs(fd.as_fd(), self.same_owner)?;
        self.later(Vec::new(), &meta);
        self.summary.dirs += 1;
        Ok(())
    }

    fn dir(&mut self, parts: &[&OsStr], meta: Meta) -> Result<(), Failure> {
        let Some((name, dirs)) = parts.split_last() else {
            return self.root_dir(meta);
        };
        let same_owner = self.same_owner;
        let overlay = self.options.whiteouts == Whiteouts::Overlay;
        let parent = self.tree.parent(dirs)?;
        // A folder replacing this layer's own whiteout of its name must
        // still hide the lower folder's content: it becomes opaque.
        let was_whiteout = overlay
            && fstatat(parent, *name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|st| whiteout::is_overlay_whiteout(&st));
        if clear(parent, name, true)? == Before::Nothing {
            match mkdirat(parent, *name, Mode::from_bits_truncate(NEW_DIR_MODE)) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(Failure::io("creating the directory")(e)),
            }
        }
        if was_whiteout {
            whiteout::set_opaque(parent, name)?;
        }
        let fd = openat(
            parent,
            *name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(Failure::io("opening the directory"))?;
        meta.apply_owner_xattrs(fd.as_fd(), same_owner)?;
        self.later(parts.iter().map(|p| p.to_os_string()).collect(), &meta);
        self.summary.dirs += 1;
        Ok(())
    }

    fn later(&mut self, parts: Vec<OsString>, meta: &Meta) {
        self.pending.push(Pending {
            parts,
            mode: meta.mode,
            mtime: meta.mtime,
        });
    }

    /// Deepest first, so setting a folder's time is the last change in it.
    fn finish_dirs(&mut self) {
        self.pending
            .sort_by_key(|p| std::cmp::Reverse(p.parts.len()));
        for p in &self.pending {
            let Some(fd) = self.tree.reopen_dir(&p.parts) else {
                continue;
            };
            if let Err(e) = Meta::apply_mode_time(fd.as_fd(), p.mode, p.mtime) {
                tracing::warn!(
                    "{:?}: mode and time not restored: {e}",
                    joined(&p.parts.iter().map(OsString::as_os_str).collect::<Vec<_>>())
                );
            }
        }
    }

    fn symlink<R: Read>(
        &mut self,
        dirs: &[&OsStr],
        name: &OsStr,
        meta: Meta,
        entry: &tar::Entry<'_, R>,
    ) -> Result<(), Failure> {
        let target = link_target(entry)?;
        let same_owner = self.same_owner;
        let parent = self.tree.parent(dirs)?;
        clear(parent, name, false)?;
        symlinkat(OsStr::from_bytes(&target), parent, name)
            .map_err(Failure::io("creating the symlink"))?;
        meta.apply_at(parent, name, true, same_owner)?;
        self.summary.symlinks += 1;
        Ok(())
    }

    fn hardlink<R: Read>(
        &mut self,
        parts: &[&OsStr],
        entry: &tar::Entry<'_, R>,
    ) -> Result<(), Failure> {
        let raw = link_target(entry)?;
        let target = components(&raw)
            .map_err(|reason| Failure::Refused(format!("hard link target: {reason}")))?;
        let Some((target_name, target_dirs)) = target.split_last() else {
            return Err(Failure::Refused(
                "a hard link to the target folder itself".into(),
            ));
        };
        if target == parts {
            return Ok(());
        }
        let refused = |f: Failure| match f {
            Failure::Refused(reason) => {
                Failure::Refused(format!("hard link target {:?}: {reason}", shown(&raw)))
            }
            other => other,
        };
        // The target is checked before anything at the name is removed.
        let target_parent = self.tree.existing(target_dirs).map_err(refused)?;
        match fstatat(
            target_parent.as_fd(),
            *target_name,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) if is_dir(&st) => {
                return Err(Failure::Refused(format!(
                    "hard link target {:?} is a directory",
                    shown(&raw)
                )));
            }
            Ok(_) => {}
            Err(_) => {
                return Err(Failure::Refused(format!(
                    "hard link target {:?} does not exist in the target folder",
                    shown(&raw)
                )));
            }
        }
        let Some((name, dirs)) = parts.split_last() else {
            return Err(Failure::Refused(
                "a hard link named like the target folder".into(),
            ));
        };
        let parent = self.tree.parent(dirs)?;
        clear(parent, name, false)?;
        // No AT_SYMLINK_FOLLOW: a symlink target is linked itself, not followed.
        linkat(
            target_parent.as_fd(),
            *target_name,
            parent,
            *name,
            AtFlags::empty(),
        )
        .map_err(Failure::io("creating the hard link"))?;
        self.summary.hardlinks += 1;
        Ok(())
    }

    fn special<R: Read>(
        &mut self,
        dirs: &[&OsStr],
        name: &OsStr,
        meta: Meta,
        entry: &tar::Entry<'_, R>,
    ) -> Result<(), Failure> {
        let header = entry.header();
        let (kind, dev) = match header.entry_type() {
            EntryType::Fifo => (SFlag::S_IFIFO, 0),
            kind => {
                let major = header.device_major();
                let minor = header.device_minor();
                let (Ok(Some(major)), Ok(Some(minor))) = (major, minor) else {
                    return Err(Failure::Refused("unreadable device numbers".into()));
                };
                if !self.options.devices {
                    let what = if kind == EntryType::Char {
                        "character"
                    } else {
                        "block"
                    };
                    return Err(Failure::Refused(format!(
                        "a {what} device node ({major}:{minor}), and device nodes are not allowed here"
                    )));
                }
                let sflag = if kind == EntryType::Char {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                (sflag, makedev(u64::from(major), u64::from(minor)))
            }
        };
        let same_owner = self.same_owner;
        let parent = self.tree.parent(dirs)?;
        clear(parent, name, false)?;
        mknodat(parent, name, kind, Mode::from_bits_truncate(0o600), dev)
            .map_err(Failure::io("creating the node"))?;
        meta.apply_at(parent, name, false, same_owner)?;
        self.summary.special += 1;
        Ok(())
    }
}

pub(super) fn link_target<R: Read>(entry: &tar::Entry<'_, R>) -> Result<Vec<u8>, Failure> {
    match entry.link_name_bytes() {
        Some(target) if !target.is_empty() && !target.contains(&0) => Ok(target.into_owned()),
        _ => Err(Failure::Refused("an empty or malformed link target".into())),
    }
}

fn copy(from: &mut impl Read, to: &mut File, buffer: &mut [u8]) -> Result<u64, Failure> {
    let mut total = 0u64;
    loop {
        let n = match from.read(buffer) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failure::Io("reading its data".into(), e)),
        };
        to.write_all(&buffer[..n])
            .map_err(|e| Failure::Io("writing the file".into(), e))?;
        total += n as u64;
    }
}

pub(super) fn describe(kind: EntryType) -> String {
    let what = match kind.as_byte() {
        b'M' => " (GNU multi-volume part)",
        b'V' => " (GNU volume label)",
        b'D' => " (GNU incremental dumpdir)",
        b'L' | b'K' => " (stray GNU long name)",
        b'x' => " (stray pax header)",
        _ => "",
    };
    format!("{:?}{what}", char::from(kind.as_byte()))
}
