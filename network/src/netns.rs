//! Network namespaces that outlive their processes, as `ip netns add` and
//! podman keep them: the namespace's nsfs file (`/proc/thread-self/ns/net`
//! of a thread that made it) is bind-mounted onto a plain file, and lives
//! as long as that mount or an open descriptor of it.
//!
//! Guarantees:
//! - [`create`] leaves the calling thread's namespace alone (the namespace
//!   is made on a short-lived thread) and leaves nothing behind when it
//!   fails: no file, no mount;
//! - [`remove`] detaches the mount and deletes the file; the kernel frees
//!   the namespace (and its links: a veth whose peer was inside goes too)
//!   once nothing else holds it: no open descriptor, no process inside, no
//!   socket made inside (a [`crate::netlink::Netlink`] opened there).
//!
//! Copies of the mount in other mount namespaces (made by a helper that
//! unshares one after [`create`], or by propagation) do not keep a removed
//! namespace alive, whatever the folder's propagation: deleting the file
//! detaches every mount on it in every mount namespace (Linux 3.18 on), so
//! the folder need not be a shared mount as `ip netns` makes `/run/netns`
//! (a habit from older kernels, where unmounting was all there was). That
//! is why [`remove`] deletes the file even when the unmount failed as "not
//! mounted". What it cannot reach is a bind mount of the namespace made
//! onto another file, or a descriptor held elsewhere.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::sys::statfs::{NSFS_MAGIC, fstatfs};

/// What went wrong with a namespace file; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed; `action` says which step.
    #[error("{action} {}: {}", .path.display(), .errno.desc())]
    Sys {
        action: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    /// The file is not a network namespace (a plain file, another kind of
    /// namespace).
    #[error("{}: not a network namespace", .path.display())]
    NotNetns { path: PathBuf },
    /// The helper thread could not start.
    #[error("creating network namespace {}: starting a thread: {source}", .path.display())]
    Thread { path: PathBuf, source: io::Error },
}

/// Result of the netns module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The errno behind this error, so callers can match `EEXIST`, `ENOENT`.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            Error::Thread { source, .. } => source.raw_os_error().map(Errno::from_raw),
            Error::NotNetns { .. } => None,
        }
    }
}

fn sys<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> Error + 'a {
    move |errno| Error::Sys {
        action,
        path: path.to_owned(),
        errno,
    }
}

/// Makes a new network namespace and bind-mounts it at `path`, a file this
/// creates (`EEXIST` if it is there: a namespace is never replaced; its
/// parent folder must exist). Returns a descriptor of the namespace, for
/// [`crate::netlink::Netlink::open_in`] or a veth's peer.
///
/// The calling thread's namespace is unchanged: a short-lived thread makes
/// the namespace and mounts it. On any failure nothing is left: no file,
/// no mount.
pub fn create(path: &Path) -> Result<OwnedFd> {
    let file = nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o444),
    )
    .map_err(sys("creating network namespace file", path))?;
    drop(file);
    let mut undo = Undo {
        path,
        mounted: false,
        armed: true,
    };
    let made = std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("muelle-netns".into())
            .stack_size(64 * 1024)
            .spawn_scoped(scope, || {
                // This thread alone enters the new namespace, and ends.
                nix::sched::unshare(CloneFlags::CLONE_NEWNET)
                    .map_err(sys("creating network namespace", path))?;
                nix::mount::mount(
                    Some("/proc/thread-self/ns/net"),
                    path,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(sys("mounting network namespace at", path))
            })
            .map_err(|source| Error::Thread {
                path: path.to_owned(),
                source,
            })?;
        thread.join().unwrap_or_else(|_| {
            Err(Error::Thread {
                path: path.to_owned(),
                source: io::Error::other("the thread panicked"),
            })
        })
    });
    made?;
    undo.mounted = true;
    let fd = open(path)?;
    undo.armed = false;
    Ok(fd)
}

/// Undoes a half-made [`create`] on drop.
struct Undo<'a> {
    path: &'a Path,
    mounted: bool,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if self.mounted {
            let _ =
                nix::mount::umount2(self.path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW);
        }
        let _ = nix::unistd::unlink(self.path);
    }
}

/// Opens the network namespace at `path` (a file [`create`] made, or any
/// nsfs file such as `/proc/PID/ns/net`), `O_RDONLY | O_CLOEXEC`, and checks
/// that it is one: nsfs (`fstatfs`) and of the network kind (`NS_GET_NSTYPE`).
pub fn open(path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(sys("opening network namespace", path))?;
    let statfs = fstatfs(fd.as_fd()).map_err(sys("inspecting network namespace", path))?;
    if statfs.filesystem_type() != NSFS_MAGIC {
        return Err(Error::NotNetns {
            path: path.to_owned(),
        });
    }
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the descriptor.
    let kind = unsafe { libc::ioctl(fd.as_raw_fd(), libc::NS_GET_NSTYPE) };
    if kind != libc::CLONE_NEWNET {
        return Err(Error::NotNetns {
            path: path.to_owned(),
        });
    }
    Ok(fd)
}

/// Unmounts (`MNT_DETACH`, not following a symlink) and deletes `path`.
/// Returns `Ok(false)` when there was no such file. A file that is not
/// mounted (left by a crash) is deleted all the same.
///
/// The namespace itself goes when nothing else holds it (see the module's
/// documentation).
pub fn remove(path: &Path) -> Result<bool> {
    match nix::mount::umount2(path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
        Ok(()) | Err(Errno::EINVAL) => {}
        Err(Errno::ENOENT) => return Ok(false),
        Err(errno) => return Err(sys("unmounting network namespace", path)(errno)),
    }
    match nix::unistd::unlink(path) {
        Ok(()) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(errno) => Err(sys("removing network namespace file", path)(errno)),
    }
}
