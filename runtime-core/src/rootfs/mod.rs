//! The container's root filesystem, built inside its new mount namespace:
//! the spec's mounts in order, /dev, then pivot_root; after it, masked and
//! read-only paths and a read-only root. Everything here runs in the
//! container's init before exec, and dies with its mount namespace if
//! `create` fails.

pub mod devices;
pub mod options;
pub mod resolve;

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::statvfs::{FsFlags, statvfs};
use oci_spec::runtime::{Mount, Spec};

use crate::error::{Context, Error, Result};
use resolve::{Kind, Root, proc_fd_path};

/// How the spec's `cgroup` mount is satisfied.
#[derive(Debug, Clone)]
pub enum CgroupMount {
    /// Per v1 hierarchy: its folder name under the mount (e.g. "memory")
    /// and the container's cgroup folder on the host.
    V1(Vec<(String, PathBuf)>),
    /// The container's cgroup2 folder on the host.
    V2(PathBuf),
}

/// What `prepare` needs besides the spec.
pub struct Setup<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub in_user_namespace: bool,
    pub cgroup: Option<&'a CgroupMount>,
}

/// Mounts everything the spec asks for under the rootfs, makes /dev, but does
/// not pivot yet (createContainer hooks run between the two).
pub fn prepare(cx: &Setup<'_>) -> Result<()> {
    let linux = cx.spec.linux().as_ref();
    let root_propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(word) => {
            options::propagation(word)
                .ok_or_else(|| Error::InvalidSpec(format!("unknown rootfsPropagation {word:?}")))?
                | MsFlags::MS_REC
        }
    };
    // Nothing mounted from here on may reach the host's mount table.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        root_propagation,
        None::<&str>,
    )
    .context(|| "setting the propagation of /".into())?;
    // pivot_root needs the new root to be a mount point.
    mount(
        Some(cx.rootfs),
        cx.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .context(|| format!("bind-mounting rootfs {}", cx.rootfs.display()))?;

    let root = Root::open(cx.rootfs)?;
    let mut dev_is_tmpfs = false;
    let mut with_pts = false;
    for m in cx.spec.mounts().iter().flatten() {
        let dest = m.destination();
        if !dest.is_absolute() {
            return Err(Error::InvalidSpec(format!(
                "mount destination {} must be absolute",
                dest.display()
            )));
        }
        if dest == Path::new("/dev") && m.typ().as_deref() == Some("tmpfs") {
            dev_is_tmpfs = true;
        }
        if dest == Path::new("/dev/pts") {
            with_pts = true;
        }
        mount_one(&root, m, cx)?;
    }
    if dev_is_tmpfs {
        let devices = devices::plan(linux.and_then(|l| l.devices().as_deref()).unwrap_or(&[]))?;
        devices::create(&root, &devices, cx.in_user_namespace)?;
        devices::create_links(&root, with_pts)?;
    }
    Ok(())
}

fn mount_one(root: &Root, m: &Mount, cx: &Setup<'_>) -> Result<()> {
    let opts = options::parse(m.options().as_deref().unwrap_or(&[]));
    let typ = m
        .typ()
        .as_deref()
        .unwrap_or(if opts.bind { "bind" } else { "none" });
    let dest = m.destination();
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(root, dest, &opts, cx.cgroup);
    }
    if typ == "proc" || typ == "sysfs" {
        refuse_non_folder(root, dest, typ)?;
    }
    let source = m.source().as_deref();
    let kind = match source {
        Some(src) if opts.bind => {
            let meta = fs::metadata(src)
                .context(|| format!("bind source {} of {}", src.display(), dest.display()))?;
            if meta.is_dir() { Kind::Dir } else { Kind::File }
        }
        _ => Kind::Dir,
    };
    let target = root.create_in(dest, kind)?;
    let target_path = proc_fd_path(&target);
    let what = || format!("mounting {typ} on {}", dest.display());
    if opts.bind {
        let src = source.ok_or_else(|| {
            Error::InvalidSpec(format!("bind mount on {} has no source", dest.display()))
        })?;
        mount(
            Some(src),
            &target_path,
            None::<&str>,
            opts.flags & (MsFlags::MS_BIND | MsFlags::MS_REC),
            None::<&str>,
        )
        .context(what)?;
        let extra = opts.remount_flags();
        if !extra.is_empty() {
            // Reopen: the target is now the root of the new mount.
            let target = root.open_in(dest).context(what)?;
            remount_bind(&proc_fd_path(&target), extra).context(what)?;
        }
    } else {
        let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
        let result = mount(
            source.or(Some(Path::new(typ))),
            &target_path,
            Some(typ),
            opts.flags,
            data,
        );
        match result {
            // A sysfs mount needs a network namespace owned by our user
            // namespace; without one, bind the host's /sys (runc does too).
            Err(nix::errno::Errno::EPERM) if typ == "sysfs" && cx.in_user_namespace => {
                mount(
                    Some("/sys"),
                    &target_path,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .context(what)?;
            }
            other => other.context(what)?,
        }
    }
    if !opts.propagation.is_empty() {
        let target = root.open_in(dest).context(what)?;
        for flag in &opts.propagation {
            mount(
                None::<&str>,
                &proc_fd_path(&target),
                None::<&str>,
                *flag,
                None::<&str>,
            )
            .context(|| format!("setting propagation of {}", dest.display()))?;
        }
    }
    Ok(())
}

/// procfs and sysfs go on a plain folder only, as under runc: an image
/// whose /proc is a symlink (to "/", to /bin) would otherwise have procfs
/// cover what the link names (inside the rootfs, but the image's root or
/// its binaries), and fail later with a misleading error, or not at all.
fn refuse_non_folder(root: &Root, dest: &Path, typ: &str) -> Result<()> {
    let fd = match root.open_in_nofollow(dest) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        other => other.context(|| format!("looking at {} in the image", dest.display()))?,
    };
    let st = nix::sys::stat::fstat(&fd)
        .context(|| format!("looking at {} in the image", dest.display()))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(Error::InvalidSpec(format!(
            "{typ} must be mounted on a plain folder, and {} in the image is not one (a symlink?)",
            dest.display()
        )));
    }
    Ok(())
}

/// Remounts a bind mount with `flags`, keeping the flags the kernel locks
/// on it (nosuid, nodev, noexec of the source inside a user namespace).
fn remount_bind(target: &Path, flags: MsFlags) -> nix::Result<()> {
    let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match mount(
        None::<&str>,
        target,
        None::<&str>,
        remount | flags,
        None::<&str>,
    ) {
        Err(nix::errno::Errno::EPERM) => {
            let locked = locked_flags(target)?;
            mount(
                None::<&str>,
                target,
                None::<&str>,
                remount | flags | locked,
                None::<&str>,
            )
        }
        other => other,
    }
}

fn locked_flags(path: &Path) -> nix::Result<MsFlags> {
    let st = statvfs(path)?;
    let mut flags = MsFlags::empty();
    for (fs_flag, ms_flag) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if st.flags().contains(fs_flag) {
            flags |= ms_flag;
        }
    }
    Ok(flags)
}

/// The spec's `cgroup` mount: the container's own cgroup folders, bound
/// from the host (a tmpfs with one bind per hierarchy on v1).
fn mount_cgroup(
    root: &Root,
    dest: &Path,
    opts: &options::MountOptions,
    cgroup: Option<&CgroupMount>,
) -> Result<()> {
    let what = || format!("mounting cgroup on {}", dest.display());
    let target = root.create_in(dest, Kind::Dir)?;
    let base = opts.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    match cgroup {
        None => return Ok(()),
        Some(CgroupMount::V2(host)) => {
            mount(
                Some(host.as_path()),
                &proc_fd_path(&target),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .context(what)?;
            let target = root.open_in(dest).context(what)?;
            remount_bind(&proc_fd_path(&target), opts.remount_flags()).context(what)?;
        }
        Some(CgroupMount::V1(hierarchies)) => {
            mount(
                Some("tmpfs"),
                &proc_fd_path(&target),
                Some("tmpfs"),
                base,
                Some("mode=755"),
            )
            .context(what)?;
            // The new tmpfs is ours alone (nothing of the container runs
            // yet): its folders are made and opened by name, no symlink
            // can be there.
            let tmpfs = root.open_in(dest).context(what)?;
            for (name, host) in hierarchies {
                let sub = dest.join(name);
                let t = make_folder_in(&tmpfs, name)
                    .context(|| format!("creating mount point {}", sub.display()))?;
                mount(
                    Some(host.as_path()),
                    &proc_fd_path(&t),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .context(|| format!("binding cgroup {} on {}", host.display(), sub.display()))?;
            }
            // One mount_setattr(2) for the tmpfs and every bind on it; on
            // kernels without it (before 5.12), one remount each.
            let flags = opts.remount_flags() | base;
            if set_tree_flags(&tmpfs, flags).is_err() {
                for (name, _) in hierarchies {
                    let sub = dest.join(name);
                    let t = root.open_in(&sub).context(what)?;
                    remount_bind(&proc_fd_path(&t), flags).context(what)?;
                }
                if opts.flags.contains(MsFlags::MS_RDONLY) {
                    mount(
                        None::<&str>,
                        &proc_fd_path(&tmpfs),
                        None::<&str>,
                        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base,
                        Some("mode=755"),
                    )
                    .context(what)?;
                }
            }
        }
    }
    Ok(())
}

/// mkdir `name` in `dir` and open it (O_PATH, not following a link).
fn make_folder_in(dir: &std::os::fd::OwnedFd, name: &str) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let name = std::ffi::CString::new(name)
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a valid descriptor and a NUL-terminated name.
    if unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: as above; the result is checked before use.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just opened and own.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Sets `flags` (read-only, nosuid, nodev, noexec, atime) on the mount
/// `mount_root` is the root of and on every mount below it, in one call.
/// Flags it cannot express, or a kernel without mount_setattr(2), are an
/// error, for the caller to fall back to remounts.
fn set_tree_flags(mount_root: &std::os::fd::OwnedFd, flags: MsFlags) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut attr = libc::mount_attr {
        attr_set: 0,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let mut rest = flags;
    for (ms, at) in [
        (MsFlags::MS_RDONLY, libc::MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, libc::MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, libc::MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
        (MsFlags::MS_NODIRATIME, libc::MOUNT_ATTR_NODIRATIME),
    ] {
        if rest.contains(ms) {
            attr.attr_set |= at;
            rest.remove(ms);
        }
    }
    for (ms, at) in [
        (MsFlags::MS_RELATIME, libc::MOUNT_ATTR_RELATIME),
        (MsFlags::MS_NOATIME, libc::MOUNT_ATTR_NOATIME),
        (MsFlags::MS_STRICTATIME, libc::MOUNT_ATTR_STRICTATIME),
    ] {
        if rest.contains(ms) {
            if attr.attr_clr & libc::MOUNT_ATTR__ATIME != 0 {
                return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
            }
            attr.attr_set |= at;
            attr.attr_clr |= libc::MOUNT_ATTR__ATIME;
            rest.remove(ms);
        }
    }
    if !rest.is_empty() {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: a valid descriptor, an empty path with AT_EMPTY_PATH, and a
    // mount_attr of the size given.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mount_root.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the rootfs `/` and lets go of the host's root (runc's
/// pivot_root(".", ".") trick: no put_old folder is needed in the image).
pub fn pivot(rootfs: &Path) -> Result<()> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old_root = open("/", flags, Mode::empty()).context(|| "opening /".into())?;
    let new_root = open(rootfs, flags, Mode::empty())
        .context(|| format!("opening rootfs {}", rootfs.display()))?;
    nix::unistd::fchdir(&new_root).context(|| "entering the rootfs".into())?;
    nix::unistd::pivot_root(".", ".")
        .context(|| format!("pivot_root into {}", rootfs.display()))?;
    nix::unistd::fchdir(&old_root).context(|| "entering the old root".into())?;
    // The old root must not propagate its unmount to the host.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .context(|| "making the old root a slave".into())?;
    umount2(".", MntFlags::MNT_DETACH).context(|| "detaching the old root".into())?;
    nix::unistd::chdir("/").context(|| "entering /".into())?;
    drop((old_root, new_root));
    Ok(())
}

/// After pivot: sysctls are the caller's; here masked paths, read-only
/// paths and the read-only root.
pub fn finalize(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    for path in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or(&[])
    {
        readonly_path(Path::new(path))?;
    }
    for path in linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or(&[])
    {
        mask_path(Path::new(path))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        remount_bind(Path::new("/"), MsFlags::MS_RDONLY)
            .context(|| "making the root read-only".into())?;
    }
    Ok(())
}

fn readonly_path(path: &Path) -> Result<()> {
    let what = || format!("making {} read-only", path.display());
    match mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        other => other.context(what)?,
    }
    remount_bind(path, MsFlags::MS_RDONLY | MsFlags::MS_REC).context(what)
}

fn mask_path(path: &Path) -> Result<()> {
    let what = || format!("masking {}", path.display());
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        other => other.context(what)?,
    };
    if meta.is_dir() {
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .context(what)
    } else {
        mount(
            Some("/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .context(what)
    }
}

/// Writes `linux.sysctl` into the container's /proc/sys.
///
/// Only sysctls of a namespace the container has of its own are accepted
/// (runc's rule): /proc/sys/vm, most of kernel.*, and net.* in the host's
/// network namespace are the host's, and init still runs with every
/// capability here, so writing them would change the host.
pub fn write_sysctls(spec: &Spec, namespaces: &crate::namespaces::Plan) -> Result<()> {
    let Some(sysctls) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    // Every name is checked before the first is written.
    for key in sysctls.keys() {
        let valid = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
            && !key
                .split(['.', '/'])
                .any(|part| part.is_empty() || part == "..");
        if !valid {
            return Err(Error::InvalidSpec(format!("invalid sysctl name {key:?}")));
        }
        check_sysctl_namespace(namespaces, key)?;
    }
    for (key, value) in sysctls {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        fs::write(&path, value).context(|| format!("setting sysctl {key}={value}"))?;
    }
    Ok(())
}

/// Refuses a sysctl that no namespace of the container's own covers.
/// (A namespace joined by path counts as the container's own; runc also
/// refuses net.* when that path is the host's network namespace.)
fn check_sysctl_namespace(namespaces: &crate::namespaces::Plan, key: &str) -> Result<()> {
    use nix::sched::CloneFlags as Ns;
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    // A namespace joined by path counts only if it isn't the runtime's
    // own (runc compares the inodes too).
    let has = |wanted: Ns| namespaces.owns(wanted);
    // "net/ipv4/ip_forward" is the same sysctl as "net.ipv4.ip_forward".
    let dotted = key.replace('/', ".");
    let needs = if IPC.contains(&dotted.as_str()) || dotted.starts_with("fs.mqueue.") {
        Some((Ns::CLONE_NEWIPC, "ipc"))
    } else if dotted.starts_with("net.") {
        Some((Ns::CLONE_NEWNET, "network"))
    } else if dotted == "kernel.domainname" || dotted == "kernel.hostname" {
        Some((Ns::CLONE_NEWUTS, "uts"))
    } else {
        None
    };
    match needs {
        Some((ns, _)) if has(ns) => Ok(()),
        Some((_, name)) => Err(Error::InvalidSpec(format!(
            "sysctl {key} needs a {name} namespace of the container's own: without one it would change the host's"
        ))),
        None => Err(Error::InvalidSpec(format!(
            "sysctl {key} is not in a separate kernel namespace: setting it would change the host"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_with(namespaces: &[serde_json::Value]) -> crate::namespaces::Plan {
        let ns: Vec<oci_spec::runtime::LinuxNamespace> =
            serde_json::from_value(serde_json::json!(namespaces)).expect("namespaces");
        crate::namespaces::Plan::from_spec(&ns).expect("plan")
    }

    fn types(names: &[&str]) -> Vec<serde_json::Value> {
        names
            .iter()
            .map(|t| serde_json::json!({ "type": t }))
            .collect()
    }

    #[test]
    fn only_sysctls_of_the_containers_own_namespaces_pass() {
        let spec = plan_with(&types(&["network", "ipc", "mount"]));
        for ok in [
            "net.ipv4.ip_forward",
            "net/ipv4/ip_forward",
            "kernel.shmmax",
            "fs.mqueue.msg_max",
        ] {
            assert!(check_sysctl_namespace(&spec, ok).is_ok(), "{ok}");
        }
        for refused in [
            "vm.swappiness",
            "kernel.domainname",
            "kernel.pid_max",
            "fs.file-max",
        ] {
            let err = check_sysctl_namespace(&spec, refused).unwrap_err();
            assert!(err.to_string().contains(refused), "{err}");
        }
        let host_net = plan_with(&types(&["ipc", "uts", "mount"]));
        assert!(check_sysctl_namespace(&host_net, "net.ipv4.ip_forward").is_err());
        assert!(check_sysctl_namespace(&host_net, "kernel.domainname").is_ok());
        // The host's network namespace joined by path is still the host's.
        let joined_host = plan_with(&[
            serde_json::json!({ "type": "network", "path": "/proc/self/ns/net" }),
            serde_json::json!({ "type": "mount" }),
        ]);
        assert!(check_sysctl_namespace(&joined_host, "net.ipv4.ip_forward").is_err());
    }
}
