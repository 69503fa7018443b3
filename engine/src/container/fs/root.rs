//! The container's root, open for a copy: a running container's through
//! its init process, a stopped one's assembled in a private mount
//! namespace (see the module doc of `fs`). Either way the caller gets a
//! [`RootDir`], and every path it opens is resolved inside it.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use image::{Images, Rootfs};
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{FsFlags, fstatvfs};
use runtime_core::rootfs::resolve::{Kind, Root, proc_fd_path};
use storage::mounts::MountSpec;
use storage::store::Store;
use storage::volume::{Volumes, open_subpath};

use super::{FilesError, is_kernel_fs, mount_id};
use crate::container::error::io;
use crate::container::record::Container;
use crate::container::{Engine, EngineError, Result};

/// What of the container a copy sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// What its processes see: the root filesystem and its mounts (`cp`).
    Mounts,
    /// The root filesystem alone (`export`).
    Rootfs,
}

/// The mounts a running container gets from muelle for its own system
/// view: their files are the kernel's or the container's devices, not
/// data, and a copy leaves them out as docker does.
const SYSTEM_MOUNTS: [&str; 7] = [
    "/proc",
    "/sys",
    "/sys/fs/cgroup",
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
];

/// The container's root folder, open (`O_PATH`).
pub struct RootDir {
    fd: OwnedFd,
    root_mount: u64,
    /// Mounts whose folders are copied without their content.
    skipped: Vec<u64>,
    /// Every mount but the root's is skipped (`export`).
    root_mount_only: bool,
}

impl RootDir {
    fn new(fd: OwnedFd, view: View, running: bool) -> std::io::Result<RootDir> {
        let root_mount = mount_id(fd.as_fd())?;
        let mut root = RootDir {
            fd,
            root_mount,
            skipped: Vec::new(),
            root_mount_only: view == View::Rootfs,
        };
        if running && view == View::Mounts {
            for path in SYSTEM_MOUNTS {
                let Ok(fd) = root.open(Path::new(path), OFlag::O_PATH | OFlag::O_DIRECTORY) else {
                    continue;
                };
                if let Ok(id) = mount_id(fd.as_fd())
                    && id != root_mount
                {
                    root.skipped.push(id);
                }
            }
        }
        Ok(root)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens the container path `path` (absolute) inside the root,
    /// following symlinks as the container would, never out of it.
    pub fn open(&self, path: &Path, flags: OFlag) -> std::io::Result<OwnedFd> {
        let rel = path.strip_prefix("/").unwrap_or(path);
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        loop {
            let how = OpenHow::new()
                .flags(flags | OFlag::O_CLOEXEC)
                .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            match openat2(self.fd.as_fd(), rel, how) {
                // A rename raced the lookup: the kernel asks to try again.
                Err(nix::Error::EAGAIN | nix::Error::EINTR) => continue,
                other => return other.map_err(std::io::Error::from),
            }
        }
    }

    /// Whether a copy leaves the folder `dir`'s content out: kernel
    /// filesystems, a running container's system mounts, and for
    /// `export` every mount that is not the root filesystem.
    pub fn prune(&self, dir: BorrowedFd<'_>) -> bool {
        if is_kernel_fs(dir) {
            return true;
        }
        match mount_id(dir) {
            Ok(id) if self.root_mount_only => id != self.root_mount,
            Ok(id) => self.skipped.contains(&id),
            Err(_) => false,
        }
    }

    /// docker's refusal to extract onto a read-only root filesystem or
    /// volume, before anything is written.
    pub fn check_writable(&self, dir: BorrowedFd<'_>) -> Result<(), FilesError> {
        let read_only = fstatvfs(dir).is_ok_and(|st| st.flags().contains(FsFlags::ST_RDONLY));
        if !read_only {
            return Ok(());
        }
        match mount_id(dir) {
            Ok(id) if id == self.root_mount => Err(FilesError::RootfsReadOnly),
            _ => Err(FilesError::VolumeReadOnly),
        }
    }
}

impl Engine {
    /// Runs `work` on the container's root as `view` says. A running
    /// container's root is reached through its init process and `store`
    /// is closed before the work; a stopped container's is assembled for
    /// the work and `store` held until it is taken down, so that no
    /// `start` or `rm` runs meanwhile.
    pub(in crate::container) fn with_root<T: Send>(
        &self,
        store: Store,
        container: &Container,
        view: View,
        work: impl FnOnce(&RootDir) -> Result<T> + Send,
    ) -> Result<T> {
        if container.state.status.is_live() {
            let fd = match view {
                View::Mounts => self.running_root(container)?,
                View::Rootfs => {
                    let rootfs = self.paths(&container.id).rootfs();
                    open_host_dir(&rootfs)?
                }
            };
            drop(store);
            let root = RootDir::new(fd, view, true).map_err(io(format!(
                "opening the root of container {}",
                container.name
            )))?;
            return work(&root);
        }
        let done = self.stopped_root(&store, container, view, work);
        drop(store);
        done
    }

    /// `/proc/PID/root` of the container's init, checked to be that
    /// process: the `/proc/PID` descriptor names the process itself, so
    /// once its start time matched, a pid reused meanwhile cannot lend
    /// muelle another process's root (the open fails instead).
    fn running_root(&self, container: &Container) -> Result<OwnedFd> {
        let not_running = || EngineError::NotRunning(container.name.clone());
        let id = container
            .id
            .parse::<runtime_core::state::ContainerId>()
            .map_err(|_| not_running())?;
        let record = self.runtime_root().load(&id)?;
        let proc_dir = nix::fcntl::open(
            Path::new(&format!("/proc/{}", record.pid)),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|_| not_running())?;
        let stat = openat(
            proc_dir.as_fd(),
            "stat",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|_| not_running())?;
        let mut text = String::new();
        std::fs::File::from(stat)
            .read_to_string(&mut text)
            .map_err(|_| not_running())?;
        if start_time(&text) != Some(record.pid_start_time) {
            return Err(not_running());
        }
        openat(
            proc_dir.as_fd(),
            "root",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|_| not_running())
    }

    /// Assembles the stopped container's root in a private mount
    /// namespace of a helper thread and runs `work` there.
    fn stopped_root<T: Send>(
        &self,
        store: &Store,
        container: &Container,
        view: View,
        work: impl FnOnce(&RootDir) -> Result<T> + Send,
    ) -> Result<T> {
        let paths = self.paths(&container.id);
        let images = Images::open(&self.data_root)?;
        let image = images.resolve(store, &container.config.image.id.to_string())?;
        let layers: Vec<PathBuf> = image
            .layers
            .iter()
            .map(|l| images.layer_path(&l.diff_id))
            .collect();
        let mut held = HeldVolumes {
            volumes: self.volumes(store)?,
            id: &container.id,
            names: Vec::new(),
        };
        let binds = match view {
            View::Mounts => binds(container, &paths, &mut held)?,
            View::Rootfs => Vec::new(),
        };
        let assembly = Assembly {
            rootfs: Rootfs::open(&self.data_root)?,
            layers,
            container_dir: paths.data().to_owned(),
            target: paths.rootfs(),
            binds,
            // Nothing a view for `export` does may change the container.
            read_only: container.config.read_only || view == View::Rootfs,
        };
        let done = std::thread::scope(|scope| {
            scope
                .spawn(move || assembly.run(view, work))
                .join()
                .unwrap_or_else(|_| {
                    Err(io("copying a container's files")(std::io::Error::other(
                        "the copying thread panicked",
                    )))
                })
        });
        drop(held);
        done
    }
}

/// Opens a host folder muelle owns (a container's rootfs mount point).
fn open_host_dir(path: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(format!("opening {}", path.display()))(e.into()))
}

/// Field 22 of /proc/PID/stat (counted after the command's last `)`).
fn start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// A host folder or file bound at a destination in the container.
struct Bind {
    source: PathBuf,
    target: PathBuf,
    read_only: bool,
}

/// The stopped container's mounts that have content: its volumes
/// (mounted by their drivers for the copy, recorded in `held`), its binds,
/// and the hostname/hosts/resolv.conf muelle wrote for its last start;
/// shallowest first, as the runtime mounts them.
fn binds(
    container: &Container,
    paths: &crate::container::ContainerPaths,
    held: &mut HeldVolumes<'_, '_>,
) -> Result<Vec<Bind>> {
    let mut binds = Vec::new();
    for mount in &container.mounts {
        match mount {
            MountSpec::Volume(v) => {
                let Some(name) = &v.name else { continue };
                let volume = held.volumes.get(name)?;
                let host = held.volumes.mount(&volume, held.id)?;
                held.names.push(name.clone());
                let source = match &v.subpath {
                    // Checked inside the volume; bound by its path, as
                    // `start` binds it.
                    Some(sub) => {
                        drop(open_subpath(&host, sub)?);
                        host.join(sub)
                    }
                    None => host,
                };
                binds.push(Bind {
                    source,
                    target: v.target.clone(),
                    read_only: v.read_only,
                });
            }
            MountSpec::Bind(b) => binds.push(Bind {
                source: b.source.clone(),
                target: b.target.clone(),
                read_only: b.read_only,
            }),
            MountSpec::Tmpfs(_) => {}
        }
    }
    let files = [
        (paths.hostname(), "/etc/hostname"),
        (paths.hosts(), "/etc/hosts"),
        (paths.resolv_conf(), "/etc/resolv.conf"),
    ];
    for (source, target) in files {
        let taken = container
            .mounts
            .iter()
            .any(|m| m.target() == Path::new(target));
        if !taken && source.is_file() {
            binds.push(Bind {
                source,
                target: target.into(),
                read_only: false,
            });
        }
    }
    binds.sort_by_key(|b| b.target.components().count());
    Ok(binds)
}

/// Volumes mounted for a copy, unmounted when it is done.
struct HeldVolumes<'v, 's> {
    volumes: Volumes<'s>,
    id: &'v str,
    names: Vec<String>,
}

impl Drop for HeldVolumes<'_, '_> {
    fn drop(&mut self) {
        for name in self.names.drain(..).rev() {
            let unmounted = self
                .volumes
                .get(&name)
                .and_then(|v| self.volumes.unmount(&v, self.id));
            if let Err(e) = unmounted {
                tracing::warn!("unmounting volume {name} after a copy: {e}");
            }
        }
    }
}

/// What a stopped container's root is made of.
struct Assembly {
    rootfs: Rootfs,
    layers: Vec<PathBuf>,
    container_dir: PathBuf,
    target: PathBuf,
    binds: Vec<Bind>,
    read_only: bool,
}

/// Unmounts the assembled root (everything stacked at the target) when
/// the work is done; the namespace goes with the thread anyway.
struct Detach<'a>(&'a Path);

impl Drop for Detach<'_> {
    fn drop(&mut self) {
        // The bind of the root onto itself, then the overlay under it.
        for _ in 0..2 {
            if umount2(self.0, MntFlags::MNT_DETACH).is_err() {
                break;
            }
        }
    }
}

fn mount_failed(what: String) -> impl FnOnce(nix::Error) -> EngineError {
    move |e| io(what)(e.into())
}

impl Assembly {
    /// On its own thread: a private mount namespace (nothing propagates
    /// to the host's), the root filesystem, the binds, then `work`.
    fn run<T>(self, view: View, work: impl FnOnce(&RootDir) -> Result<T>) -> Result<T> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
            .map_err(mount_failed("making a private mount namespace".into()))?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(mount_failed("making the mount namespace private".into()))?;
        let target = &self.target;
        let _mounted = self
            .rootfs
            .mount(&self.layers, &self.container_dir, target)?;
        let _detach = Detach(target);
        // A mount of its own whichever driver made the root (the copy
        // driver makes a plain folder), so that it can be made read-only.
        mount(
            Some(target),
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(mount_failed(format!("binding {}", target.display())))?;
        let root = Root::open(target)?;
        for bind in &self.binds {
            bind_into(&root, bind)?;
        }
        let fd = open_host_dir(target)?;
        if self.read_only {
            remount_read_only(fd.as_fd(), target)?;
        }
        let fd = open_host_dir(target)?;
        let dir =
            RootDir::new(fd, view, false).map_err(io(format!("opening {}", target.display())))?;
        work(&dir)
    }
}

/// Binds `bind.source` at its destination, resolved (and made when
/// missing) inside the root as the runtime does it.
fn bind_into(root: &Root, bind: &Bind) -> Result<()> {
    let source = std::fs::metadata(&bind.source)
        .map_err(io(format!("reading {}", bind.source.display())))?;
    let kind = if source.is_dir() {
        Kind::Dir
    } else {
        Kind::File
    };
    let point = root.create_in(&bind.target, kind)?;
    let shown = bind.target.display();
    mount(
        Some(&bind.source),
        &proc_fd_path(&point),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(mount_failed(format!("binding {}", shown)))?;
    if bind.read_only {
        let top = root
            .open_in(&bind.target)
            .map_err(io(format!("opening {shown}")))?;
        remount_read_only(top.as_fd(), &bind.target)?;
    }
    Ok(())
}

/// Makes the mount at `fd` read-only, keeping its nosuid/nodev/noexec.
fn remount_read_only(fd: BorrowedFd<'_>, shown: &Path) -> Result<()> {
    let kept = fstatvfs(fd)
        .map(|st| st.flags())
        .unwrap_or(FsFlags::empty());
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    for (has, flag) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if kept.contains(has) {
            flags |= flag;
        }
    }
    let path = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd)
    ));
    mount(None::<&str>, &path, None::<&str>, flags, None::<&str>).map_err(mount_failed(format!(
        "making {} read-only",
        shown.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::start_time;

    #[test]
    fn start_time_is_read_after_the_command() {
        let stat = "42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(start_time(stat), Some(987654));
        assert_eq!(start_time("garbage"), None);
    }
}
