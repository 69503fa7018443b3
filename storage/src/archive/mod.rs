//! Tar archives of a folder tree: `pack` writes one, `unpack` restores one.
//! Volumes use it for `volume export`/`import`; image layers will too.
//!
//! The tar crate only parses and writes headers here: its unpack helpers
//! are not a security boundary, so every file is created by this module
//! through descriptors, and every choice below is ours.
//!
//! # What `unpack` guarantees, for any archive
//!
//! - **Nothing is written outside the target folder.** Each entry's parent
//!   is reached from a descriptor of the target, one component at a time
//!   with `O_NOFOLLOW|O_DIRECTORY`; the entry itself is created with `*at`
//!   calls relative to that parent, never by path.
//! - **No symlink is followed to reach a parent**, whether the archive made
//!   it or it was already there: `link -> /` then `link/etc/x` is refused,
//!   as is `up -> ..` then `up/x`. (Following them inside the root, as
//!   `RESOLVE_IN_ROOT` would, would be safe too, but no tar we write needs
//!   it, and a refusal is easier to reason about than a redirected write.)
//! - **An existing entry of the same name is replaced, never written
//!   through**: a symlink, file or fifo is unlinked and the new one created
//!   with `O_CREAT|O_EXCL`; a directory is kept for a directory entry,
//!   removed if empty for any other entry, and a non-empty one in the way
//!   is refused (merging must not delete a tree).
//! - **Names**: a leading `/` is stripped, as GNU tar and docker do (the
//!   name is then resolved inside the target like any other; refusing would
//!   only break `tar -P` archives). Any `..` component is refused, escaping
//!   or not: GNU tar skips such members too, and no honest archive has one.
//!   Empty names and NUL bytes are refused. `.` and empty components are
//!   ignored; an entry naming the root itself (`./`) may only be a folder,
//!   and its owner, mode and time are given to the target folder.
//! - **Hard links** must name a file already inside the target (an earlier
//!   entry, or existing content when merging), reached under the same rules
//!   as a parent: `/etc/passwd` means `TARGET/etc/passwd`, `../x` is
//!   refused, and a link to a folder is refused by the kernel.
//! - **Symlink targets** are stored verbatim (absolute, `..`, dangling):
//!   they are data, and this module never follows one.
//! - **Device nodes and fifos** are created: this restores backups, as
//!   root, of what a container made. A device node in a volume gives no
//!   access by itself: the container's device cgroup decides. The image
//!   crate may want to refuse them in layers; it should say so there.
//! - **Modes are kept whole**, setuid/setgid/sticky included (a backup
//!   restores what it saved); owners are numeric ids (`uname`/`gname` are
//!   ignored, written empty) and applied only when running as root, as GNU
//!   tar does. Ownership is set before the mode, since chown clears setuid.
//!   Ids of `u32::MAX` (chown's "leave alone") are refused.
//! - **Timestamps**: mtime only, in seconds on `pack`; pax `mtime` (with
//!   nanoseconds) is honoured on `unpack`. Folders get their mode and time
//!   after everything inside them is written.
//! - **xattrs** (pax `SCHILY.xattr.*`, as GNU tar `--xattrs` writes them)
//!   are packed and restored for files and folders, except
//!   `security.selinux` (the host's policy labels a volume) and
//!   `trusted.overlay.*`/`user.overlay.*` (overlayfs's own bookkeeping, which
//!   a layer must not forge). Xattrs of symlinks and device nodes are
//!   skipped. A filesystem without xattr support loses them with a warning.
//! - **Entry types**: files (GNU sparse ones are written out in full), hard
//!   links, symlinks, folders, fifos, character and block devices; pax
//!   global headers are ignored. Anything else (GNU volume labels,
//!   multi-volume parts, incremental dumpdirs, pax-format sparse files) is
//!   refused naming the entry. A file whose data ends early (truncated
//!   archive) is an error, not a short file.
//!
//! # What a failure leaves
//!
//! `unpack` stops at the first refused or failing entry and returns an
//! error naming it. Entries before it stay written, folders whose mode and
//! time were not yet applied stay `0700`, and a file being written may be
//! partial (mode `0600`, owned by the caller). Callers that need all or
//! nothing unpack into a fresh folder and rename it into place (see
//! `volume::backup`).
//!
//! # Image layers: [`unpack_with`] and [`UnpackOptions`]
//!
//! `unpack` is `unpack_with` and the defaults (volumes: whiteouts kept as
//! plain files, device nodes created). Image layers differ in two ways,
//! each an option, and every rule above still holds for them: a whiteout
//! is an entry like any other, its parent reached the same safe way (a
//! `../../.wh.x` or a `.wh.x` under a symlink is refused as any entry is).
//!
//! - **`devices: false`** refuses character and block device entries,
//!   naming them (fifos stay allowed: they give no access to anything).
//! - **`Whiteouts::Overlay`** turns OCI whiteouts into overlayfs's own
//!   form, so a layer folder can be a lower layer of an overlay mount:
//!   `DIR/.wh.NAME` becomes a 0:0 character device `DIR/NAME`, and
//!   `DIR/.wh..wh..opq` sets `trusted.overlay.opaque=y` on `DIR`. The OCI
//!   spec says a whiteout hides only what *lower* layers hold, never an
//!   entry of its own layer, so when `NAME` was already unpacked from this
//!   layer it stays (it hides the lower one by itself), and a folder there
//!   is made opaque instead; a folder entry that lands on a whiteout made
//!   earlier in the layer becomes opaque for the same reason. Other
//!   `.wh..wh.*` names (aufs metadata such as `.wh..wh.plnk/`) are skipped
//!   with everything under them; a `.wh.NAME` used as a folder, and a
//!   whiteout of `.`, `..` or of nothing, are refused. The conversion is
//!   the only way `trusted.overlay.*` is ever set: from the archive's own
//!   xattrs it is still dropped, so a layer cannot forge overlay metadata
//!   (redirects, metacopy, xattr whiteouts).
//! - **`Whiteouts::Oci`** checks whiteout names as `Overlay` does and
//!   skips aufs metadata, but stores each whiteout as an empty regular
//!   file of its OCI name, whatever its entry type was: for layer folders
//!   where overlay whiteouts cannot be made (overlayfs refuses to create a
//!   0:0 device or set `trusted.overlay.*` through itself, so a data root
//!   on overlayfs gets this form).
//! - **`Whiteouts::Apply`** applies OCI whiteouts to the target instead,
//!   as a copy of layers one over another needs (the root filesystem
//!   fallback where overlayfs is unavailable): `DIR/.wh.NAME` removes
//!   `NAME` and everything under it; `DIR/.wh..wh..opq` empties `DIR`.
//!   Removal walks descriptors, never follows a symlink, and refuses to
//!   enter another mount. [`pack_dir_with`] with `oci_whiteouts` writes a
//!   layer folder of either form back as OCI entries, and in each folder
//!   the opaque marker first, then the whiteouts, then the rest: applied
//!   in that order they remove only what lower layers put there.
//!
//! Setuid and setgid bits of files in a layer are kept (images ship
//! `/bin/su`); like every other write they land only inside the target.
//!
//! # One entry, an open folder, a check first: what `cp` needs
//!
//! [`pack_entry`] archives one entry of an open folder (a file, a symlink
//! as itself, a folder with its tree) under a name the caller picks, and
//! leaves out the content of the folders a caller's `Prune` picks (a
//! container's /proc). [`unpack_at`] unpacks into a folder the caller
//! opened (resolved inside a container's root) under every rule above,
//! with [`Owners`] giving everything to one owner (setuid and setgid bits
//! dropped where that changes the owner). [`scan`] reads an archive to
//! its end and refuses it as `unpack` would (names, types, owners,
//! symlinks the archive makes and writes through), writing nothing.
//!
//! # `pack`
//!
//! Walks with descriptors (`O_NOFOLLOW`, `fstatat(AT_SYMLINK_NOFOLLOW)`),
//! so a symlink is recorded as one and never followed, even if something
//! swaps a folder for a symlink during the walk. Entries are sorted by name
//! within each folder (the same tree gives the same archive), named
//! relative to the root (`./` for the root, then `a/`, `a/b`), in GNU
//! format (long names, large ids), which GNU tar, docker and podman read.
//! A file that changes size while read is cut or padded with zeros to the
//! size it had when opened, as GNU tar does. Sockets are skipped with a
//! warning.

mod fs;
mod meta;
mod name;
mod pack;
mod scan;
mod unpack;
mod whiteout;
mod xattr;

#[cfg(test)]
mod tests;

pub use pack::{PackOptions, Prune, pack, pack_dir, pack_dir_with, pack_entry};
pub use scan::scan;
pub use unpack::{unpack, unpack_at, unpack_with};

/// Who owns what [`unpack_at`] creates (when root: otherwise the caller
/// does, as with GNU tar).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Owners {
    /// The archive's numeric ids.
    #[default]
    FromArchive,
    /// Everything to `uid:gid`, setuid and setgid bits dropped where the
    /// archived owner differed (`docker cp` without `-a`).
    All { uid: u32, gid: u32 },
}

/// What `unpack_with` does with OCI whiteout entries (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Whiteouts {
    /// Plain entries, written as they are (volumes: a backup restores what
    /// it saved, whatever the names).
    #[default]
    Keep,
    /// Converted to overlayfs whiteouts and opaque folders (layer folders).
    Overlay,
    /// Checked and stored as OCI markers: each whiteout an empty regular
    /// file `.wh.NAME` or `.wh..wh..opq` (layer folders on a filesystem
    /// that cannot hold overlay whiteouts, such as overlayfs itself).
    Oci,
    /// Applied to what the target holds: removals (copied root filesystems).
    Apply,
}

/// How `unpack_with` treats the entries that differ between volumes and
/// image layers. The default is `unpack`'s behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnpackOptions {
    pub whiteouts: Whiteouts,
    /// Whether character and block device entries are created; when false
    /// they are refused, naming the entry.
    pub devices: bool,
}

impl Default for UnpackOptions {
    fn default() -> UnpackOptions {
        UnpackOptions {
            whiteouts: Whiteouts::Keep,
            devices: true,
        }
    }
}

/// What `pack` wrote or `unpack` created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// Fifos and device nodes.
    pub special: u64,
    /// OCI whiteouts converted or applied (`Whiteouts::Overlay`/`Apply`),
    /// or overlay whiteouts written as OCI ones (`pack` with
    /// `oci_whiteouts`).
    pub whiteouts: u64,
    /// File data, in bytes.
    pub bytes: u64,
    /// Not archived (sockets).
    pub skipped: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An entry this module will not write: hostile or malformed.
    #[error("archive entry {entry:?} refused: {reason}")]
    Refused { entry: String, reason: String },
    #[error("archive entry {entry:?}: unsupported entry type {kind}")]
    Unsupported { entry: String, kind: String },
    #[error("archive entry {entry:?}: {context}: {source}")]
    Entry {
        entry: String,
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the archive: {0}")]
    Read(#[source] std::io::Error),
    #[error("writing the archive: {0}")]
    Write(#[source] std::io::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;

/// Why one entry failed, before the entry's name is attached.
#[derive(Debug)]
enum Failure {
    Refused(String),
    Unsupported(String),
    Io(String, std::io::Error),
}

impl Failure {
    fn io(context: impl Into<String>) -> impl FnOnce(nix::Error) -> Failure {
        let context = context.into();
        move |errno| Failure::Io(context, std::io::Error::from(errno))
    }

    fn named(self, entry: &str) -> ArchiveError {
        let entry = entry.to_owned();
        match self {
            Failure::Refused(reason) => ArchiveError::Refused { entry, reason },
            Failure::Unsupported(kind) => ArchiveError::Unsupported { entry, kind },
            Failure::Io(context, source) => ArchiveError::Entry {
                entry,
                context,
                source,
            },
        }
    }
}
