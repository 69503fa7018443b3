//! Control groups of a container on cgroup v1, v2 and hybrid hosts.
//!
//! A [`Cgroup`] is one container's cgroup in every hierarchy of the host: a
//! directory per v1 hierarchy (named ones such as `name=systemd` included)
//! and one in the cgroup2 mount when there is one. Each resource goes to the
//! v1 hierarchy of its controller when one exists, else to the cgroup2 tree
//! (so a hybrid host with, say, hugetlb only on cgroup2 works).
//!
//! Guarantees:
//! - nothing is written outside the container's cgroup directories, except
//!   `cgroup.subtree_control` of its v2 ancestors and the cpuset values of
//!   v1 parents `create` made;
//! - a failed `create` removes the leaf directories it made;
//! - a value the host has no controller for is an error; a resource that is
//!   not asked for costs nothing, not even a read;
//! - `destroy` removes only the leaf, never the shared parent (`/muelle`).
//!
//! Systemd-managed cgroups (`slice:prefix:name` paths) are not supported.

mod devices;
mod devices_bpf;
mod fs;
mod layout;
mod stats;
mod v1;
mod v2;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod kernel_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxResources};

pub use layout::{Layout, Mode, UnifiedMount, V1Hierarchy};
pub use stats::{CpuStats, IoDevice, IoStats, MemoryStats, PidsStats, Stats, Throttling};

/// The parent of containers' cgroups when the spec names none.
const DEFAULT_PARENT: &str = "muelle";
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `destroy` waits for exiting processes to leave a cgroup.
const REMOVE_TIMEOUT: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot create cgroup {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot remove cgroup {path}: {source}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error(
        "cgroups path {path:?} is a systemd slice:prefix:name path: systemd cgroup management is not supported, use a cgroupfs path such as \"/muelle/<id>\""
    )]
    SystemdPath { path: String },
    #[error("no cgroup filesystem is mounted (none in /proc/self/mountinfo)")]
    NoCgroupFs,
    #[error("{what} requested, but this host has no {controller} cgroup controller")]
    ControllerMissing {
        controller: &'static str,
        what: &'static str,
    },
    #[error("{path} does not exist: the {controller} controller is not enabled for this cgroup")]
    ControllerUnavailable { controller: String, path: PathBuf },
    #[error("{what} is not supported: {reason}")]
    Unsupported { what: String, reason: String },
    #[error("invalid {what}: {reason}")]
    InvalidValue { what: String, reason: String },
    #[error("cannot parse {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("{path} did not reach {state:?} within {waited_ms} ms")]
    Timeout {
        path: PathBuf,
        state: &'static str,
        waited_ms: u64,
    },
    #[error("{op} for cgroup {path} failed: {source}{}", verifier_suffix(.verifier))]
    Bpf {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
        /// The verifier's last log line, when it refused the program.
        verifier: String,
    },
}

fn verifier_suffix(verifier: &str) -> String {
    if verifier.is_empty() {
        String::new()
    } else {
        format!(" (verifier: {verifier})")
    }
}

impl CgroupError {
    /// The errno of a failed read or write, so callers can tell "missing"
    /// (ENOENT) or "busy" (EBUSY) from other failures.
    pub fn errno(&self) -> Option<i32> {
        match self {
            CgroupError::Read { source, .. }
            | CgroupError::Write { source, .. }
            | CgroupError::Create { source, .. }
            | CgroupError::Remove { source, .. }
            | CgroupError::Bpf { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// The container's directory in one v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct V1Dir {
    controllers: Vec<String>,
    mount: PathBuf,
    path: PathBuf,
}

impl V1Dir {
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The container's directory in the cgroup2 tree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct UnifiedDir {
    mount: PathBuf,
    path: PathBuf,
}

/// One container's cgroup across all hierarchies of the host. It is
/// serializable so that `create` records where it put the container and
/// later verbs need not read the host's mount table again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cgroup {
    mode: Mode,
    v1: Vec<V1Dir>,
    unified: Option<UnifiedDir>,
    /// The container sits in muelle's default parent (`/muelle/<id>`).
    /// The parent stays when its last container goes, as docker's does:
    /// removing and making it again costs ~0.6 ms a container on cgroup v1.
    /// Whoever removes it (a clean-up, the tests) may race a create,
    /// which then tries again.
    in_default_parent: bool,
}

/// Where a resource's values go.
enum Target<'a> {
    V1(&'a Path),
    V2(&'a Path),
    Missing,
}

impl Cgroup {
    /// Detect the host layout (v1 / v2 / hybrid) from /proc/self/mountinfo and resolve the container's cgroup.
    /// `cgroups_path` is the OCI spec's linux.cgroupsPath: when absent use "/muelle/<id>";
    /// an absolute path is relative to each hierarchy root; a relative path is relative to the runtime's own cgroup
    /// (as runc: read /proc/self/cgroup). A "slice:prefix:name" systemd-style path is an error.
    /// Paths containing ".." components are rejected.
    pub fn new(cgroups_path: Option<&str>, id: &str) -> Result<Cgroup, CgroupError> {
        Cgroup::with_layout(Layout::detect()?, cgroups_path, id)
    }

    /// Same as [`Cgroup::new`], against an explicit layout.
    pub fn with_layout(
        layout: Layout,
        cgroups_path: Option<&str>,
        id: &str,
    ) -> Result<Cgroup, CgroupError> {
        Cgroup::resolve(layout, cgroups_path, id, || {
            let path = Path::new("/proc/self/cgroup");
            std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
                path: path.to_path_buf(),
                source,
            })
        })
    }

    /// `own_cgroups` gives the text of /proc/self/cgroup; it is called only
    /// for a relative path.
    fn resolve(
        layout: Layout,
        cgroups_path: Option<&str>,
        id: &str,
        own_cgroups: impl FnOnce() -> Result<String, CgroupError>,
    ) -> Result<Cgroup, CgroupError> {
        if layout.v1.is_empty() && layout.unified.is_none() {
            return Err(CgroupError::NoCgroupFs);
        }
        let (absolute, relative) = parse_cgroups_path(cgroups_path, id)?;
        let own = if absolute {
            None
        } else {
            Some(layout::OwnCgroups::parse(&own_cgroups()?))
        };
        let mode = layout.mode();
        // The base of the container's path in one hierarchy: its mount point,
        // or for a relative path the runtime's own cgroup there.
        let base = |mount: &Path, root: &Path, own_path: Option<Option<&str>>, name: &str| {
            let Some(own_path) = own_path else {
                return Ok(mount.to_path_buf());
            };
            let own_path = own_path.ok_or_else(|| CgroupError::InvalidPath {
                path: cgroups_path.unwrap_or_default().to_owned(),
                reason: format!(
                    "/proc/self/cgroup shows no cgroup of the {name} hierarchy to be relative to"
                ),
            })?;
            let inside =
                Path::new(own_path)
                    .strip_prefix(root)
                    .map_err(|_| CgroupError::InvalidPath {
                        path: cgroups_path.unwrap_or_default().to_owned(),
                        reason: format!(
                            "the runtime's cgroup {own_path} is outside what {} shows ({})",
                            mount.display(),
                            root.display()
                        ),
                    })?;
            Ok::<PathBuf, CgroupError>(mount.join(inside))
        };
        let mut v1 = Vec::with_capacity(layout.v1.len());
        for h in layout.v1 {
            let own_path = own.as_ref().map(|o| o.v1_path(&h.controllers));
            let path =
                base(&h.mount_point, &h.root, own_path, &h.controllers.join(","))?.join(&relative);
            v1.push(V1Dir {
                controllers: h.controllers,
                mount: h.mount_point,
                path,
            });
        }
        let unified = match layout.unified {
            Some(u) => {
                let own_path = own.as_ref().map(|o| o.unified_path());
                let path = base(&u.mount_point, &u.root, own_path, "cgroup2")?.join(&relative);
                Some(UnifiedDir {
                    mount: u.mount_point,
                    path,
                })
            }
            None => None,
        };
        Ok(Cgroup {
            mode,
            v1,
            unified,
            in_default_parent: cgroups_path.is_none_or(str::is_empty),
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The container's directory in every hierarchy: v1 ones first, then cgroup2.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.v1
            .iter()
            .map(|d| d.path.as_path())
            .chain(self.unified.iter().map(|u| u.path.as_path()))
    }

    /// The container's directory in the cgroup2 tree, if the host has one.
    pub fn unified_path(&self) -> Option<&Path> {
        self.unified.as_ref().map(|u| u.path.as_path())
    }

    /// The container's directory in the v1 hierarchy of `controller`.
    pub fn v1_path(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|d| d.has(controller))
            .map(|d| d.path.as_path())
    }

    fn target(&self, v1_controller: &str) -> Target<'_> {
        match (self.v1_path(v1_controller), &self.unified) {
            (Some(dir), _) => Target::V1(dir),
            (None, Some(u)) => Target::V2(&u.path),
            (None, None) => Target::Missing,
        }
    }

    /// mkdir -p in each hierarchy; on v2 enable the controllers in the
    /// parents' cgroup.subtree_control; on v1 give new cpuset cgroups their
    /// parent's CPUs and memory nodes.
    pub fn create(&self) -> Result<(), CgroupError> {
        let mut attempts = 0;
        loop {
            let mut made_leaves = Vec::new();
            let result = self.create_in_all(&mut made_leaves);
            if result.is_err() {
                for leaf in made_leaves.iter().rev() {
                    let _ = std::fs::remove_dir(leaf);
                }
            }
            attempts += 1;
            // The last container of another command may remove the default
            // parent between our mkdir of it and of the leaf: start over.
            match result {
                Err(CgroupError::Create { ref source, .. })
                    if self.in_default_parent
                        && source.kind() == std::io::ErrorKind::NotFound
                        && attempts < 5 => {}
                other => return other,
            }
        }
    }

    fn create_in_all<'a>(&'a self, made_leaves: &mut Vec<&'a Path>) -> Result<(), CgroupError> {
        for dir in &self.v1 {
            let mut created = Vec::new();
            mkdir_p(&dir.mount, &dir.path, &mut created)?;
            if created.last() == Some(&dir.path) {
                made_leaves.push(&dir.path);
            }
            if dir.has("cpuset") {
                v1::init_cpuset(&dir.mount, &dir.path, &created)?;
            }
        }
        if let Some(u) = &self.unified {
            let mut created = Vec::new();
            mkdir_p(&u.mount, &u.path, &mut created)?;
            if created.last() == Some(&u.path) {
                made_leaves.push(&u.path);
            }
            v2::enable_controllers(&u.mount, &u.path)?;
        }
        Ok(())
    }

    /// Writes the spec's resources. Resources apply in a fixed order, and
    /// `unified` last so it can override anything.
    pub fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        if let Some(memory) = resources.memory().as_ref().filter(|m| memory_asked(m)) {
            match self.target("memory") {
                Target::V1(dir) => v1::set_memory(dir, memory)?,
                Target::V2(dir) => v2::set_memory(dir, memory)?,
                Target::Missing => return Err(missing("memory", "a memory limit")),
            }
        }
        if let Some(cpu) = resources.cpu() {
            if cpu_asked(cpu) {
                match self.target("cpu") {
                    Target::V1(dir) => v1::set_cpu(dir, cpu)?,
                    Target::V2(dir) => v2::set_cpu(dir, cpu)?,
                    Target::Missing => return Err(missing("cpu", "a CPU limit")),
                }
            }
            if cpuset_asked(cpu) {
                match self.target("cpuset") {
                    Target::V1(dir) => v1::set_cpuset(dir, cpu)?,
                    Target::V2(dir) => v2::set_cpuset(dir, cpu)?,
                    Target::Missing => return Err(missing("cpuset", "a CPU or memory node set")),
                }
            }
        }
        if let Some(pids) = resources.pids() {
            let value = if pids.limit() <= 0 {
                "max".to_owned()
            } else {
                pids.limit().to_string()
            };
            match self.target("pids") {
                Target::V1(dir) => fs::write(dir, "pids.max", &value)?,
                Target::V2(dir) => v2::write_ctl(dir, "pids", "pids.max", &value)?,
                Target::Missing => return Err(missing("pids", "a pids limit")),
            }
        }
        if let Some(blkio) = resources.block_io().as_ref().filter(|b| blkio_asked(b)) {
            match self.target("blkio") {
                Target::V1(dir) => v1::set_blkio(dir, blkio)?,
                Target::V2(dir) => v2::set_io(dir, blkio)?,
                Target::Missing => return Err(missing("blkio", "a block IO limit")),
            }
        }
        if let Some(limits) = resources
            .hugepage_limits()
            .as_ref()
            .filter(|l| !l.is_empty())
        {
            let (dir, suffix, v2) = match self.target("hugetlb") {
                Target::V1(dir) => (dir, "limit_in_bytes", false),
                Target::V2(dir) => (dir, "max", true),
                Target::Missing => return Err(missing("hugetlb", "a hugepage limit")),
            };
            for limit in limits {
                let size = hugepage_size(limit.page_size())?;
                let file = format!("hugetlb.{size}.{suffix}");
                match (v2, limit.limit()) {
                    (true, value) if value < 0 => v2::write_ctl(dir, "hugetlb", &file, "max")?,
                    (true, value) => v2::write_ctl(dir, "hugetlb", &file, &value.to_string())?,
                    (false, value) => fs::write(dir, &file, &value.to_string())?,
                }
            }
        }
        if let Some(network) = resources.network() {
            self.apply_network(network)?;
        }
        if let Some(rdma) = resources.rdma().as_ref().filter(|r| !r.is_empty()) {
            let dir = match self.target("rdma") {
                Target::V1(dir) | Target::V2(dir) => dir,
                Target::Missing => return Err(missing("rdma", "an RDMA limit")),
            };
            let rdma: BTreeMap<_, _> = rdma.iter().collect();
            for (device, limits) in rdma {
                if device.is_empty() || device.contains(char::is_whitespace) {
                    return Err(CgroupError::InvalidValue {
                        what: format!("RDMA device name {device:?}"),
                        reason: "must be one word".to_owned(),
                    });
                }
                let mut line = device.clone();
                if let Some(handles) = limits.hca_handles() {
                    line.push_str(&format!(" hca_handle={handles}"));
                }
                if let Some(objects) = limits.hca_objects() {
                    line.push_str(&format!(" hca_object={objects}"));
                }
                if line.len() > device.len() {
                    v2::write_ctl(dir, "rdma", "rdma.max", &line)?;
                }
            }
        }
        if let Some(rules) = resources.devices() {
            let rules = devices::parse_rules(rules)?;
            match (self.v1_path("devices"), &self.unified) {
                (Some(dir), _) => v1::set_devices(dir, &rules)?,
                (None, Some(u)) => devices_bpf::install(&u.path, &rules)?,
                (None, None) => return Err(missing("devices", "device rules")),
            }
        }
        if let Some(unified) = resources.unified().as_ref().filter(|u| !u.is_empty()) {
            self.apply_unified(unified)?;
        }
        Ok(())
    }

    fn apply_network(&self, network: &oci_spec::runtime::LinuxNetwork) -> Result<(), CgroupError> {
        if let Some(class_id) = network.class_id() {
            let dir = self
                .v1_path("net_cls")
                .ok_or(CgroupError::ControllerMissing {
                    controller: "net_cls",
                    what: "a network class id (v1 only: cgroup v2 has no net_cls)",
                })?;
            fs::write(dir, "net_cls.classid", &class_id.to_string())?;
        }
        if let Some(priorities) = network.priorities().as_ref().filter(|p| !p.is_empty()) {
            let dir = self
                .v1_path("net_prio")
                .ok_or(CgroupError::ControllerMissing {
                    controller: "net_prio",
                    what: "network interface priorities (v1 only: cgroup v2 has no net_prio)",
                })?;
            for priority in priorities {
                let name = priority.name();
                if name.is_empty() || name.contains(char::is_whitespace) {
                    return Err(CgroupError::InvalidValue {
                        what: format!("network interface name {name:?}"),
                        reason: "must be one word".to_owned(),
                    });
                }
                fs::write(
                    dir,
                    "net_prio.ifpriomap",
                    &format!("{name} {}", priority.priority()),
                )?;
            }
        }
        Ok(())
    }

    /// `linux.resources.unified`: file name to value in the cgroup2 directory.
    /// All keys are checked before the first write.
    fn apply_unified(
        &self,
        unified: &std::collections::HashMap<String, String>,
    ) -> Result<(), CgroupError> {
        let dir = self
            .unified_path()
            .ok_or_else(|| CgroupError::Unsupported {
                what: "linux.resources.unified".to_owned(),
                reason: "this host has no cgroup v2 mount".to_owned(),
            })?;
        let sorted: BTreeMap<_, _> = unified.iter().collect();
        for key in sorted.keys() {
            let valid = key.contains('.')
                && !key.starts_with('.')
                && !key.contains("..")
                && !key.contains('/')
                && fs::file_path(dir, key).is_ok();
            if !valid {
                return Err(CgroupError::InvalidValue {
                    what: format!("unified key {key:?}"),
                    reason:
                        "must be a cgroup file name such as \"memory.high\" (no '/', no \"..\")"
                            .to_owned(),
                });
            }
        }
        for (key, value) in sorted {
            let controller = key.split('.').next().unwrap_or_default();
            v2::write_ctl(dir, controller, key, value)?;
        }
        Ok(())
    }

    /// Moves `pid` into the container's cgroup in every hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        if pid <= 0 {
            return Err(CgroupError::InvalidValue {
                what: "process id".to_owned(),
                reason: format!("{pid} is not a process"),
            });
        }
        let pid = pid.to_string();
        for dir in self.paths() {
            fs::write(dir, "cgroup.procs", &pid)?;
        }
        Ok(())
    }

    /// The processes in the cgroup, read from one hierarchy (they are the
    /// same in all of them).
    pub fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        let dir = self.primary();
        let text = fs::read(dir, "cgroup.procs")?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                l.trim().parse().map_err(|_| CgroupError::Parse {
                    path: dir.join("cgroup.procs"),
                    reason: format!("{l:?} is not a process id"),
                })
            })
            .collect()
    }

    /// The directory to read the member list from: cgroup2 on v2 hosts, the
    /// pids (else freezer, else any controller) hierarchy on v1 ones.
    fn primary(&self) -> &Path {
        if self.mode == Mode::V2
            && let Some(u) = &self.unified
        {
            return &u.path;
        }
        ["pids", "freezer", "memory"]
            .iter()
            .find_map(|c| self.v1_path(c))
            .or_else(|| {
                self.v1
                    .iter()
                    .find(|d| d.controllers.iter().any(|c| !c.starts_with("name=")))
                    .map(|d| d.path.as_path())
            })
            .or_else(|| self.unified_path())
            .or_else(|| self.v1.first().map(|d| d.path.as_path()))
            // `resolve` refuses a layout without any hierarchy.
            .unwrap_or(Path::new("/"))
    }

    /// Freezes every process of the cgroup and returns once they are frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        match self.target("freezer") {
            Target::V1(dir) => v1::freeze(dir, FREEZE_TIMEOUT),
            Target::V2(dir) => v2::set_frozen(dir, true, FREEZE_TIMEOUT),
            Target::Missing => Err(missing("freezer", "freezing")),
        }
    }

    pub fn thaw(&self) -> Result<(), CgroupError> {
        match self.target("freezer") {
            Target::V1(dir) => v1::thaw(dir),
            Target::V2(dir) => v2::set_frozen(dir, false, FREEZE_TIMEOUT),
            Target::Missing => Err(missing("freezer", "thawing")),
        }
    }

    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        match self.target("freezer") {
            Target::V1(dir) => v1::is_frozen(dir),
            Target::V2(dir) => v2::is_frozen(dir),
            Target::Missing => Ok(false),
        }
    }

    /// Removes the container's directory in every hierarchy (with any child
    /// cgroups a nested runtime made), waiting briefly for exiting processes
    /// to leave. A directory already gone is fine. Every hierarchy is tried;
    /// the first error is returned.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let mut first_error = None;
        for dir in self.paths() {
            if let Err(e) = remove_cgroup(dir) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Whether the container's directory exists in any hierarchy.
    pub fn exists(&self) -> bool {
        self.paths().any(Path::exists)
    }

    /// memory, pids, CPU and block IO usage.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        let cpu = match (
            self.v1_path("cpuacct"),
            self.v1_path("cpu"),
            self.unified_path(),
        ) {
            (None, None, Some(dir)) => Some(v2::cpu_stats(dir)?),
            (None, None, None) => None,
            (cpuacct, cpu, _) => Some(v1::cpu_stats(cpuacct, cpu)?),
        };
        let memory = match self.target("memory") {
            Target::V1(dir) => Some(v1::memory_stats(dir)?),
            Target::V2(dir) => v2::memory_stats(dir)?,
            Target::Missing => None,
        };
        let pids = match self.target("pids") {
            Target::V1(dir) => Some(pids_stats(dir, &fs::read(dir, "pids.current")?)?),
            // No pids.current: the controller is not enabled here.
            Target::V2(dir) => match fs::read_opt(dir, "pids.current")? {
                Some(current) => Some(pids_stats(dir, &current)?),
                None => None,
            },
            Target::Missing => None,
        };
        let io = match self.target("blkio") {
            Target::V1(dir) => v1::io_stats(dir)?,
            Target::V2(dir) => v2::io_stats(dir)?,
            Target::Missing => None,
        };
        Ok(Stats {
            cpu,
            memory,
            pids,
            io,
        })
    }
}

fn missing(controller: &'static str, what: &'static str) -> CgroupError {
    CgroupError::ControllerMissing { controller, what }
}

/// `current` is the text of pids.current, already read.
fn pids_stats(dir: &Path, current: &str) -> Result<PidsStats, CgroupError> {
    Ok(PidsStats {
        current: stats::parse_u64(&dir.join("pids.current"), current)?,
        limit: stats::parse_limit(&dir.join("pids.max"), &fs::read(dir, "pids.max")?)?,
    })
}

fn memory_asked(m: &LinuxMemory) -> bool {
    m.limit().is_some()
        || m.reservation().is_some()
        || m.swap().is_some_and(|s| s != 0)
        || m.swappiness().is_some()
        || m.disable_oom_killer() == Some(true)
}

fn cpu_asked(c: &LinuxCpu) -> bool {
    c.shares().is_some_and(|s| s != 0)
        || c.quota().is_some_and(|q| q != 0)
        || c.period().is_some_and(|p| p != 0)
        || c.burst().is_some()
        || c.idle().is_some()
        || c.realtime_period().is_some_and(|p| p != 0)
        || c.realtime_runtime().is_some_and(|r| r != 0)
}

fn cpuset_asked(c: &LinuxCpu) -> bool {
    c.cpus().as_deref().is_some_and(|s| !s.is_empty())
        || c.mems().as_deref().is_some_and(|s| !s.is_empty())
}

fn blkio_asked(b: &oci_spec::runtime::LinuxBlockIo) -> bool {
    let any = |list: &Option<Vec<_>>| list.as_ref().is_some_and(|l: &Vec<_>| !l.is_empty());
    b.weight().is_some_and(|w| w != 0)
        || b.leaf_weight().is_some_and(|w| w != 0)
        || b.weight_device().as_ref().is_some_and(|l| !l.is_empty())
        || any(b.throttle_read_bps_device())
        || any(b.throttle_write_bps_device())
        || any(b.throttle_read_iops_device())
        || any(b.throttle_write_iops_device())
}

/// Hugepage sizes name files (`hugetlb.2MB.max`): digits and KB, MB or GB only.
fn hugepage_size(size: &str) -> Result<&str, CgroupError> {
    let digits = size.trim_end_matches(['K', 'M', 'G', 'B']);
    let unit = &size[digits.len()..];
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "KB" | "MB" | "GB")
    {
        Ok(size)
    } else {
        Err(CgroupError::InvalidValue {
            what: format!("hugepage size {size:?}"),
            reason: "must be a number followed by KB, MB or GB, such as \"2MB\"".to_owned(),
        })
    }
}

/// Splits the spec's cgroups path into (absolute?, path inside the base),
/// rejecting systemd paths, `..`, and paths naming the base itself.
fn parse_cgroups_path(
    cgroups_path: Option<&str>,
    id: &str,
) -> Result<(bool, PathBuf), CgroupError> {
    let invalid = |path: &str, reason: &str| CgroupError::InvalidPath {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let path = match cgroups_path.filter(|p| !p.is_empty()) {
        Some(path) => path,
        None => {
            if id.is_empty() || id == "." || id == ".." || id.contains('/') || id.contains('\0') {
                return Err(invalid(id, "the container id cannot name a cgroup"));
            }
            return Ok((true, Path::new(DEFAULT_PARENT).join(id)));
        }
    };
    if !path.starts_with('/') && path.split(':').count() == 3 {
        return Err(CgroupError::SystemdPath {
            path: path.to_owned(),
        });
    }
    if path.contains('\0') {
        return Err(invalid(path, "contains a NUL byte"));
    }
    let mut relative = PathBuf::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err(invalid(path, "\"..\" components are not allowed")),
            name => relative.push(name),
        }
    }
    if relative.as_os_str().is_empty() {
        return Err(invalid(
            path,
            "names the hierarchy root or the runtime's own cgroup, not a cgroup of its own",
        ));
    }
    Ok((path.starts_with('/'), relative))
}

/// mkdir -p limited to `mount`; `created` gets the directories made, top-down.
fn mkdir_p(mount: &Path, dir: &Path, created: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
    let error = |source| CgroupError::Create {
        path: dir.to_path_buf(),
        source,
    };
    match fs::mkdir(dir) {
        Ok(()) => {
            created.push(dir.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // The mount point itself is never created: its absence is the error.
            let Some(parent) = dir.parent().filter(|p| p.starts_with(mount) && *p != mount) else {
                return Err(error(e));
            };
            mkdir_p(mount, parent, created)?;
            match fs::mkdir(dir) {
                Ok(()) => {
                    created.push(dir.to_path_buf());
                    Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(error(e)),
            }
        }
        Err(e) => Err(error(e)),
    }
}

/// rmdir that removes child cgroups first and waits for exiting processes.
fn remove_cgroup(dir: &Path) -> Result<(), CgroupError> {
    let error = |source| CgroupError::Remove {
        path: dir.to_path_buf(),
        source,
    };
    let mut delay = Duration::from_millis(1);
    let mut waited = Duration::ZERO;
    loop {
        match fs::rmdir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            // cgroupfs says EBUSY for child cgroups and for member processes;
            // ENOTEMPTY is what another filesystem says for subdirectories.
            Err(e)
                if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY))
                    && waited < REMOVE_TIMEOUT =>
            {
                if remove_children(dir)? {
                    continue;
                }
                if e.raw_os_error() != Some(libc::EBUSY) {
                    return Err(error(e));
                }
                std::thread::sleep(delay);
                waited += delay;
                delay *= 2;
            }
            Err(e) => return Err(error(e)),
        }
    }
}

/// Removes the child cgroups of `dir`; whether there were any.
fn remove_children(dir: &Path) -> Result<bool, CgroupError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CgroupError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut any = false;
    for entry in entries {
        let entry = entry.map_err(|source| CgroupError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup(&entry.path())?;
            any = true;
        }
    }
    Ok(any)
}
