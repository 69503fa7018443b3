//! Device nodes in the container's /dev: the OCI defaults (null, zero, full,
//! random, urandom, tty) plus `linux.devices`, and the standard links.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::resolve::{Kind, Root, proc_fd_path};
use crate::error::{Context, Error, Result};

/// A device node to make.
#[derive(Debug, Clone)]
pub struct Device {
    pub path: PathBuf,
    pub kind: libc::mode_t,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

const DEFAULTS: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// The defaults, then the spec's devices (a spec entry for a default path
/// replaces it).
pub fn plan(spec_devices: &[LinuxDevice]) -> Result<Vec<Device>> {
    let mut out: Vec<Device> = DEFAULTS
        .iter()
        .map(|(path, major, minor)| Device {
            path: PathBuf::from(path),
            kind: libc::S_IFCHR,
            major: *major,
            minor: *minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        })
        .collect();
    for d in spec_devices {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::InvalidSpec(format!(
                    "device {} has type 'a', which only cgroup rules take",
                    d.path().display()
                )));
            }
        };
        if !d.path().starts_with("/dev") {
            return Err(Error::InvalidSpec(format!(
                "device {} must be under /dev",
                d.path().display()
            )));
        }
        out.retain(|existing| existing.path != *d.path());
        out.push(Device {
            path: d.path().clone(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    Ok(out)
}

/// Makes each device: mknod, or, inside a user namespace where mknod is not
/// allowed, a bind mount of the host's node.
pub fn create(root: &Root, devices: &[Device], bind_from_host: bool) -> Result<()> {
    if bind_from_host {
        for d in devices {
            let target = root.create_in(&d.path, Kind::File)?;
            mount(
                Some(&d.path),
                &proc_fd_path(&target),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .context(|| format!("binding device {} from the host", d.path.display()))?;
        }
        return Ok(());
    }
    // mknod applies the umask: without one, each node has its exact mode
    // at once (init sets the process's umask later, before exec).
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let result = make_nodes(root, devices);
    nix::sys::stat::umask(umask);
    result
}

fn make_nodes(root: &Root, devices: &[Device]) -> Result<()> {
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    // Devices mostly share a folder (/dev): it is opened once.
    let mut folder: Option<(&Path, OwnedFd, bool)> = None;
    for d in devices {
        let parent_path = d.path.parent().unwrap_or(Path::new("/dev"));
        if folder
            .as_ref()
            .is_none_or(|(path, ..)| *path != parent_path)
        {
            let parent = root.create_in(parent_path, Kind::Dir)?;
            // Reopen the parent as a real directory fd: mknodat needs one.
            let dirfd = nix::fcntl::openat(
                &parent,
                ".",
                nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .context(|| format!("opening {}", parent_path.display()))?;
            // A setgid folder gives new nodes its group.
            let setgid = nix::sys::stat::fstat(&dirfd)
                .context(|| format!("opening {}", parent_path.display()))?
                .st_mode
                & libc::S_ISGID
                != 0;
            folder = Some((parent_path, dirfd, setgid));
        }
        let (_, dirfd, setgid) = folder.as_ref().expect("just opened");
        let name = d.path.file_name().ok_or_else(|| {
            Error::InvalidSpec(format!("device path {} has no name", d.path.display()))
        })?;
        let c_name = CString::new(name.as_encoded_bytes())
            .map_err(|_| Error::InvalidSpec(format!("device path {:?}", d.path)))?;
        let dev = libc::makedev(d.major as u32, d.minor as u32);
        let mknod = || {
            // SAFETY: a valid fd and C string.
            let rc = unsafe {
                libc::mknodat(
                    dirfd.as_raw_fd(),
                    c_name.as_ptr(),
                    d.kind | (d.mode & 0o7777),
                    dev,
                )
            };
            if rc == 0 {
                Ok(())
            } else {
                Err(nix::Error::last())
            }
        };
        match mknod() {
            // Remove what the image had there (a symlink, a regular file)
            // and try again.
            Err(nix::errno::Errno::EEXIST) => {
                // SAFETY: as above.
                unsafe { libc::unlinkat(dirfd.as_raw_fd(), c_name.as_ptr(), 0) };
                mknod()
            }
            other => other,
        }
        .context(|| format!("creating device {}", d.path.display()))?;
        if (d.uid, d.gid) != (euid, egid) || *setgid {
            // SAFETY: as above.
            unsafe {
                libc::fchownat(
                    dirfd.as_raw_fd(),
                    c_name.as_ptr(),
                    d.uid,
                    d.gid,
                    libc::AT_SYMLINK_NOFOLLOW,
                );
            }
        }
    }
    Ok(())
}

/// /dev/fd, /dev/std{in,out,err}, /dev/ptmx → pts/ptmx, and /dev/core.
pub fn create_links(root: &Root, with_pts: bool) -> Result<()> {
    let mut links = vec![
        ("/proc/self/fd", "dev/fd"),
        ("/proc/self/fd/0", "dev/stdin"),
        ("/proc/self/fd/1", "dev/stdout"),
        ("/proc/self/fd/2", "dev/stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "dev/core"));
    }
    if with_pts {
        links.push(("pts/ptmx", "dev/ptmx"));
    }
    let dev = root.create_in(Path::new("/dev"), Kind::Dir)?;
    let dev = nix::fcntl::openat(
        &dev,
        ".",
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context(|| "opening the container's /dev".into())?;
    for (target, link) in links {
        let name = &link["dev/".len()..];
        if name == "ptmx" {
            let _ = nix::unistd::unlinkat(&dev, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        match nix::unistd::symlinkat(target, &dev, name) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e).context(|| format!("linking /{link} to {target}")),
        }
    }
    Ok(())
}

/// The device-cgroup rules that let the container use the devices it is
/// given: the defaults, the pty devices and the spec's own devices. They go
/// after the spec's rules, so a deny-all there still leaves these usable
/// (runc does the same).
pub fn cgroup_allow_rules(
    spec_devices: &[LinuxDevice],
) -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;
    let rule = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(typ)
            .access(access);
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().ok()
    };
    let mut rules: Vec<_> = [
        // mknod of anything; using it needs a rule of its own.
        rule(LinuxDeviceType::C, None, None, "m"),
        rule(LinuxDeviceType::B, None, None, "m"),
        rule(LinuxDeviceType::C, Some(1), Some(3), "rwm"),
        rule(LinuxDeviceType::C, Some(1), Some(5), "rwm"),
        rule(LinuxDeviceType::C, Some(1), Some(7), "rwm"),
        rule(LinuxDeviceType::C, Some(1), Some(8), "rwm"),
        rule(LinuxDeviceType::C, Some(1), Some(9), "rwm"),
        rule(LinuxDeviceType::C, Some(5), Some(0), "rwm"),
        rule(LinuxDeviceType::C, Some(5), Some(1), "rwm"),
        rule(LinuxDeviceType::C, Some(5), Some(2), "rwm"),
        rule(LinuxDeviceType::C, Some(136), None, "rwm"),
    ]
    .into_iter()
    .flatten()
    .collect();
    for d in spec_devices {
        if let Some(r) = rule(d.typ(), Some(d.major()), Some(d.minor()), "rwm") {
            rules.push(r);
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceBuilder;

    #[test]
    fn spec_devices_replace_defaults_and_must_live_in_dev() {
        let fuse = LinuxDeviceBuilder::default()
            .path("/dev/fuse")
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(229)
            .build()
            .expect("device");
        let null = LinuxDeviceBuilder::default()
            .path("/dev/null")
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .file_mode(0o600u32)
            .build()
            .expect("device");
        let devices = plan(&[fuse, null]).expect("plan");
        assert_eq!(devices.len(), 7);
        let null = devices
            .iter()
            .find(|d| d.path == Path::new("/dev/null"))
            .expect("null");
        assert_eq!(null.mode, 0o600);

        let outside = LinuxDeviceBuilder::default()
            .path("/etc/evil")
            .typ(LinuxDeviceType::B)
            .major(8)
            .minor(0)
            .build()
            .expect("device");
        assert!(plan(&[outside]).is_err());
    }
}
