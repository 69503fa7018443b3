//! Which namespaces a container gets: new ones created at clone time, and
//! existing ones joined by path. Namespace files are opened in the runtime,
//! before any fork, so a bad path fails `create` before anything exists.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, setns};
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::error::{Context, Error, Result};

pub fn clone_flag(typ: LinuxNamespaceType) -> Result<CloneFlags> {
    Ok(match typ {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => {
            return Err(Error::Unsupported("the time namespace".into()));
        }
    })
}

/// The namespaces of one container.
#[derive(Debug)]
pub struct Plan {
    /// Created by clone(2); the cgroup namespace is not here, see `new_cgroup`.
    pub new: CloneFlags,
    /// The cgroup namespace is unshared by init after it joined its cgroup,
    /// so that the container's cgroup becomes the namespace's root.
    pub new_cgroup: bool,
    /// Joined by path, the user namespace first: joining it grants the
    /// capabilities needed to join the others.
    pub join: Vec<(CloneFlags, OwnedFd)>,
    /// Joined namespaces that are the runtime's own (the host's, as a
    /// rule): the container does not own them, so e.g. their sysctls are
    /// the host's.
    pub runtime_owned: CloneFlags,
}

impl Plan {
    pub fn from_spec(namespaces: &[LinuxNamespace]) -> Result<Plan> {
        let mut plan = Plan {
            new: CloneFlags::empty(),
            new_cgroup: false,
            join: Vec::new(),
            runtime_owned: CloneFlags::empty(),
        };
        let mut seen = CloneFlags::empty();
        for ns in namespaces {
            let flag = clone_flag(ns.typ())?;
            if seen.contains(flag) {
                return Err(Error::InvalidSpec(format!(
                    "namespace {} is listed twice",
                    ns.typ()
                )));
            }
            seen |= flag;
            match ns.path() {
                Some(path) if !path.as_os_str().is_empty() => {
                    let fd = open_namespace(path, ns.typ())?;
                    if is_runtime_namespace(&fd, ns.typ()) {
                        plan.runtime_owned |= flag;
                    }
                    plan.join.push((flag, fd));
                }
                _ if flag == CloneFlags::CLONE_NEWCGROUP => plan.new_cgroup = true,
                _ => plan.new |= flag,
            }
        }
        plan.join
            .sort_by_key(|(flag, _)| *flag != CloneFlags::CLONE_NEWUSER);
        Ok(plan)
    }

    pub fn has(&self, flag: CloneFlags) -> bool {
        self.new.contains(flag)
            || (flag == CloneFlags::CLONE_NEWCGROUP && self.new_cgroup)
            || self.join.iter().any(|(f, _)| *f == flag)
    }

    /// Whether the container has a namespace of this kind that is not the
    /// runtime's (new, or joined from another container).
    pub fn owns(&self, flag: CloneFlags) -> bool {
        self.has(flag) && !self.runtime_owned.contains(flag)
    }

    /// Whether the container lives in a user namespace of its own, new or
    /// joined: then mknod is not allowed and devices are bind-mounted.
    pub fn in_user_namespace(&self) -> bool {
        self.has(CloneFlags::CLONE_NEWUSER)
    }

    /// Joins every namespace given by path, in order.
    pub fn join_all(&self) -> Result<()> {
        for (flag, fd) in &self.join {
            setns(fd.as_fd(), *flag).context(|| format!("joining namespace {flag:?}"))?;
        }
        Ok(())
    }
}

/// Whether `fd` is the namespace the runtime itself is in.
fn is_runtime_namespace(fd: &OwnedFd, typ: LinuxNamespaceType) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ours = std::fs::metadata(format!("/proc/self/ns/{typ}"));
    let theirs = nix::sys::stat::fstat(fd);
    match (ours, theirs) {
        (Ok(o), Ok(t)) => o.dev() == t.st_dev && o.ino() == t.st_ino,
        _ => false,
    }
}

fn open_namespace(path: &Path, typ: LinuxNamespaceType) -> Result<OwnedFd> {
    open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .context(|| format!("opening {typ} namespace {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxNamespaceBuilder;

    fn ns(typ: LinuxNamespaceType, path: Option<&str>) -> LinuxNamespace {
        let b = LinuxNamespaceBuilder::default().typ(typ);
        match path {
            Some(p) => b.path(p).build().expect("namespace"),
            None => b.build().expect("namespace"),
        }
    }

    #[test]
    fn new_join_and_cgroup_are_told_apart() {
        let plan = Plan::from_spec(&[
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::Network, Some("/proc/self/ns/net")),
            ns(LinuxNamespaceType::Cgroup, None),
            ns(LinuxNamespaceType::User, Some("/proc/self/ns/user")),
        ])
        .expect("plan");
        assert_eq!(plan.new, CloneFlags::CLONE_NEWPID);
        assert!(plan.new_cgroup);
        assert_eq!(plan.join.len(), 2);
        assert_eq!(
            plan.join[0].0,
            CloneFlags::CLONE_NEWUSER,
            "user is joined first"
        );
        assert!(plan.in_user_namespace());
        // Joining our own namespaces by path: the container does not own them.
        assert!(!plan.owns(CloneFlags::CLONE_NEWNET));
        assert!(plan.owns(CloneFlags::CLONE_NEWPID));
    }

    #[test]
    fn duplicates_and_bad_paths_are_refused() {
        let dup = Plan::from_spec(&[
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::Pid, None),
        ]);
        assert!(dup.unwrap_err().to_string().contains("listed twice"));
        let missing = Plan::from_spec(&[ns(LinuxNamespaceType::Network, Some("/nonexistent/ns"))]);
        assert!(missing.unwrap_err().to_string().contains("/nonexistent/ns"));
    }
}
