//! A container's files from the outside: `cp` (both ways), `export` and
//! `diff`.
//!
//! The container is untrusted, and so is every path inside it. Nothing
//! here builds a host path from a container path: each one is resolved by
//! the kernel inside the container's root (`openat2` with
//! `RESOLVE_IN_ROOT`, through runtime-core's `Root`), so a symlink to
//! `/etc` or `../../..` means the container's own `/etc` or `/`; files are
//! then read and written through descriptors by storage's safe archive
//! code, which never follows a symlink. A tar a user streams in is read
//! whole and checked (`archive::scan`) before a byte of it is written.
//!
//! Which root (see `root.rs`):
//! - a **running** container's is `/proc/<init pid>/root`: its root
//!   filesystem with all its mounts (volumes, binds, tmpfs), exactly what
//!   its processes see;
//! - a **stopped** (or never started) container's is assembled for the
//!   copy in a private mount namespace of a helper thread: its overlay
//!   (with its own upper folder, so the copy is its data), its volumes
//!   and binds mounted at their destinations as the runtime would, its
//!   hostname/hosts/resolv.conf; read-only where the container has them
//!   read-only. A path under a mount destination so resolves to the
//!   mount's source with the same kernel rules as in a running container,
//!   and nothing of the assembly is visible on the host or left behind
//!   (the namespace dies with the thread, even on a crash). tmpfs mounts
//!   have no content while the container is stopped: their destination is
//!   the folder underneath, as in docker.

mod cp;
mod diff;
mod export;
mod host;
mod path;
mod root;

pub use cp::{CopyOptions, CopySource, CopyTarget};
pub use diff::{Change, ChangeKind};

use std::os::fd::{AsRawFd, BorrowedFd};

use storage::archive::ArchiveError;

/// What went wrong copying, exporting or comparing a container's files,
/// in docker's words.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("Could not find the file {path} in container {container}")]
    NotFound { path: String, container: String },
    #[error("not a directory")]
    NotADirectory,
    #[error("cannot copy directory")]
    CannotCopyDirectory,
    #[error("no such directory")]
    NoSuchDirectory,
    #[error("extraction point is not a directory")]
    ExtractionPointNotDirectory,
    #[error("destination \"{container}:{path}\" must be a directory")]
    DestinationNotDirectory { container: String, path: String },
    #[error("destination \"{container}:{path}\" must be a directory or a regular file")]
    DestinationNotFile { container: String, path: String },
    #[error("container rootfs is marked read-only")]
    RootfsReadOnly,
    #[error("mounted volume is marked read-only")]
    VolumeReadOnly,
    #[error("copying between containers is not supported")]
    BetweenContainers,
    /// The host side of a copy: the user's own path.
    #[error("{0}")]
    Host(String),
    #[error("{context}: {source}")]
    Archive {
        context: String,
        #[source]
        source: ArchiveError,
    },
    #[error("{0} keeps no overlay upper folder to compare (its data root copies layers)")]
    NoUpperLayer(String),
}

impl FilesError {
    /// An error of the user's own side of a copy, which docker's CLI finds
    /// without asking the daemon.
    pub fn is_local(&self) -> bool {
        matches!(
            self,
            FilesError::Host(_)
                | FilesError::BetweenContainers
                | FilesError::DestinationNotDirectory { .. }
                | FilesError::DestinationNotFile { .. }
                | FilesError::CannotCopyDirectory
                | FilesError::NoSuchDirectory
        )
    }
}

/// The mount a descriptor's file is on (statx `STATX_MNT_ID`): mount ids,
/// unlike device numbers, tell a bind of the same filesystem apart.
fn mount_id(fd: BorrowedFd<'_>) -> std::io::Result<u64> {
    // SAFETY: statx is plain old data, valid when zeroed.
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
        return Err(std::io::Error::last_os_error());
    }
    if stx.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(std::io::Error::other("the kernel gives no mount id"));
    }
    Ok(stx.stx_mnt_id)
}

/// Filesystems that are the kernel's interfaces, not data: archiving
/// their files has side effects or never ends (`/proc/kcore`), and docker
/// leaves them out of a copy too.
fn is_kernel_fs(fd: BorrowedFd<'_>) -> bool {
    const KERNEL: [i64; 17] = [
        0x9fa0,      // proc
        0x6265_6572, // sysfs
        0x27e0eb,    // cgroup
        0x6367_7270, // cgroup2
        0x1cd1,      // devpts
        0x1980_0202, // mqueue
        0x7363_6673, // securityfs
        0x6462_6720, // debugfs
        0x7472_6163, // tracefs
        0xcafe_4a11, // bpf
        0x6265_6570, // configfs
        0x6573_5543, // fusectl
        0x6165_676c, // pstore
        0xde5e_81e4, // efivarfs
        0x4249_4e4d, // binfmt_misc
        0x6e73_6673, // nsfs
        0xf97c_ff8c, // selinuxfs
    ];
    nix::sys::statfs::fstatfs(fd)
        .map(|st| KERNEL.contains(&st.filesystem_type().0))
        .unwrap_or(false)
}
