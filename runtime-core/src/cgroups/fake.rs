//! A fake cgroupfs in a temporary directory, for tests: mount points holding
//! the files the kernel shows, and new directories filled as the kernel
//! fills them (v1: the hierarchy's controller files; v2: the files of the
//! controllers the parent enables in `cgroup.subtree_control`).
//!
//! It also resets the write log of `fs::hooks`, so a test sees only its own writes.

use std::io;
use std::path::{Path, PathBuf};

use super::fs::hooks;
use super::layout::{Layout, UnifiedMount, V1Hierarchy};

fn v1_files(controller: &str) -> &'static [(&'static str, &'static str)] {
    match controller {
        "memory" => &[
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory.memsw.limit_in_bytes", "9223372036854771712\n"),
            ("memory.soft_limit_in_bytes", "9223372036854771712\n"),
            ("memory.swappiness", "60\n"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
            ),
            ("memory.usage_in_bytes", "0\n"),
            ("memory.max_usage_in_bytes", "0\n"),
            ("memory.memsw.usage_in_bytes", "0\n"),
            ("memory.stat", "cache 0\ntotal_inactive_file 0\n"),
        ],
        "cpu" => &[
            ("cpu.shares", "1024\n"),
            ("cpu.cfs_quota_us", "-1\n"),
            ("cpu.cfs_period_us", "100000\n"),
            ("cpu.cfs_burst_us", "0\n"),
            ("cpu.rt_runtime_us", "0\n"),
            ("cpu.rt_period_us", "1000000\n"),
            ("cpu.idle", "0\n"),
            (
                "cpu.stat",
                "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n",
            ),
        ],
        "cpuacct" => &[
            ("cpuacct.usage", "0\n"),
            ("cpuacct.usage_all", "cpu user system\n0 0 0\n"),
        ],
        "cpuset" => &[("cpuset.cpus", "\n"), ("cpuset.mems", "\n")],
        "pids" => &[("pids.max", "max\n"), ("pids.current", "0\n")],
        "blkio" => &[
            ("blkio.weight", "500\n"),
            ("blkio.weight_device", ""),
            ("blkio.leaf_weight", "500\n"),
            ("blkio.throttle.read_bps_device", ""),
            ("blkio.throttle.write_bps_device", ""),
            ("blkio.throttle.read_iops_device", ""),
            ("blkio.throttle.write_iops_device", ""),
            ("blkio.throttle.io_service_bytes_recursive", "Total 0\n"),
            ("blkio.throttle.io_serviced_recursive", "Total 0\n"),
        ],
        "devices" => &[
            ("devices.allow", ""),
            ("devices.deny", ""),
            ("devices.list", "a *:* rwm\n"),
        ],
        "freezer" => &[("freezer.state", "THAWED\n")],
        "hugetlb" => &[
            ("hugetlb.2MB.limit_in_bytes", ""),
            ("hugetlb.1GB.limit_in_bytes", ""),
        ],
        "net_cls" => &[("net_cls.classid", "0\n")],
        "net_prio" => &[("net_prio.ifpriomap", "")],
        "rdma" => &[("rdma.max", "")],
        _ => &[],
    }
}

fn v2_files(controller: &str) -> &'static [(&'static str, &'static str)] {
    match controller {
        "memory" => &[
            ("memory.max", "max\n"),
            ("memory.low", "0\n"),
            ("memory.high", "max\n"),
            ("memory.swap.max", "max\n"),
            ("memory.current", "0\n"),
            ("memory.swap.current", "0\n"),
            ("memory.events", "oom 0\noom_kill 0\n"),
            ("memory.stat", "anon 0\ninactive_file 0\n"),
        ],
        "cpu" => &[
            ("cpu.weight", "100\n"),
            ("cpu.max", "max 100000\n"),
            ("cpu.max.burst", "0\n"),
            ("cpu.idle", "0\n"),
        ],
        "cpuset" => &[("cpuset.cpus", "\n"), ("cpuset.mems", "\n")],
        "pids" => &[("pids.max", "max\n"), ("pids.current", "0\n")],
        "io" => &[
            ("io.weight", "default 100\n"),
            ("io.max", ""),
            ("io.stat", ""),
        ],
        "hugetlb" => &[("hugetlb.2MB.max", "max\n"), ("hugetlb.1GB.max", "max\n")],
        "rdma" => &[("rdma.max", "")],
        _ => &[],
    }
}

const V2_CORE: &[(&str, &str)] = &[
    ("cgroup.procs", ""),
    ("cgroup.freeze", "0\n"),
    ("cgroup.events", "populated 0\nfrozen 0\n"),
    ("cgroup.subtree_control", ""),
    ("cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"),
];

fn seed(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        std::fs::write(dir.join(name), content).expect("seed fake cgroup file");
    }
}

/// Like `seed`, keeping files that exist.
fn seed_missing(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        if !dir.join(name).exists() {
            std::fs::write(dir.join(name), content).expect("seed fake cgroup file");
        }
    }
}

/// What a fake mount is, for the mkdir hook.
#[derive(Clone)]
enum Mount {
    V1(PathBuf, Vec<String>),
    V2(PathBuf),
}

fn fill_v1(dir: &Path, controllers: &[String]) {
    seed(dir, &[("cgroup.procs", ""), ("tasks", "")]);
    for controller in controllers {
        seed(dir, v1_files(controller));
    }
}

/// As the kernel: a v2 cgroup has the core files and those of the
/// controllers its parent enables for its children.
fn fill_v2(dir: &Path) {
    seed_missing(dir, V2_CORE);
    let enabled = dir
        .parent()
        .and_then(|p| std::fs::read_to_string(p.join("cgroup.subtree_control")).ok())
        .unwrap_or_default();
    seed(dir, &[("cgroup.controllers", enabled.trim())]);
    for controller in enabled.split_whitespace() {
        seed_missing(dir, v2_files(controller));
    }
}

/// As the kernel: `+c` / `-c` words change the enabled set, which must be
/// a subset of the cgroup's own controllers (else nothing changes and the
/// write fails), and children get the files.
fn write_subtree_control(dir: &Path, value: &str) -> io::Result<()> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let available = read("cgroup.controllers");
    let mut enabled: Vec<String> = read("cgroup.subtree_control")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    for word in value.split_whitespace() {
        let (enable, name) = match word.split_at(1) {
            ("+", name) => (true, name),
            ("-", name) => (false, name),
            _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
        };
        if !available.split_whitespace().any(|c| c == name) {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        enabled.retain(|c| c != name);
        if enable {
            enabled.push(name.to_owned());
        }
    }
    std::fs::write(dir.join("cgroup.subtree_control"), enabled.join(" ")).expect("subtree_control");
    for entry in std::fs::read_dir(dir).expect("read fake cgroup").flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            fill_v2(&entry.path());
        }
    }
    Ok(())
}

pub(super) struct FakeHost {
    pub tmp: tempfile::TempDir,
    pub layout: Layout,
}

impl FakeHost {
    /// `v1`: the controllers of each hierarchy (mounted at `<tmp>/<first controller>`);
    /// `unified`: the controllers of the cgroup2 root, if there is a cgroup2 mount.
    pub fn new(v1: &[&[&str]], unified: Option<&[&str]>) -> FakeHost {
        hooks::reset();
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut layout = Layout::default();
        let mut mounts = Vec::new();
        for controllers in v1 {
            let name = controllers[0].trim_start_matches("name=");
            let mount_point = tmp.path().join(name);
            std::fs::create_dir(&mount_point).expect("fake v1 mount");
            let mut controllers: Vec<String> = controllers.iter().map(|c| c.to_string()).collect();
            controllers.sort_unstable();
            fill_v1(&mount_point, &controllers);
            if controllers.iter().any(|c| c == "cpuset") {
                seed(
                    &mount_point,
                    &[("cpuset.cpus", "0-3\n"), ("cpuset.mems", "0\n")],
                );
            }
            mounts.push(Mount::V1(mount_point.clone(), controllers.clone()));
            layout.v1.push(V1Hierarchy {
                mount_point,
                root: PathBuf::from("/"),
                controllers,
            });
        }
        if let Some(controllers) = unified {
            let mount_point = tmp.path().join("unified");
            std::fs::create_dir(&mount_point).expect("fake cgroup2 mount");
            seed(&mount_point, V2_CORE);
            seed(
                &mount_point,
                &[("cgroup.controllers", &controllers.join(" "))],
            );
            mounts.push(Mount::V2(mount_point.clone()));
            layout.unified = Some(UnifiedMount {
                mount_point,
                root: PathBuf::from("/"),
            });
        }
        if let Some(Mount::V2(point)) = mounts.last().cloned() {
            hooks::on_write(move |path, value| {
                let dir = path.parent()?;
                let ours = path.starts_with(&point)
                    && path
                        .file_name()
                        .is_some_and(|n| n == "cgroup.subtree_control");
                ours.then(|| write_subtree_control(dir, value))
            });
        }
        hooks::on_mkdir(move |dir| {
            for mount in &mounts {
                match mount {
                    Mount::V1(point, controllers) if dir.starts_with(point) => {
                        fill_v1(dir, controllers)
                    }
                    Mount::V2(point) if dir.starts_with(point) => fill_v2(dir),
                    _ => {}
                }
            }
        });
        FakeHost { tmp, layout }
    }

    pub fn v2(controllers: &[&str]) -> FakeHost {
        FakeHost::new(&[], Some(controllers))
    }

    /// Every v1 controller, each in its own hierarchy but cpu and cpuacct
    /// together, plus name=systemd.
    pub fn v1() -> FakeHost {
        FakeHost::new(
            &[
                &["cpu", "cpuacct"],
                &["cpuset"],
                &["memory"],
                &["pids"],
                &["blkio"],
                &["devices"],
                &["freezer"],
                &["hugetlb"],
                &["net_cls"],
                &["net_prio"],
                &["rdma"],
                &["name=systemd"],
            ],
            None,
        )
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.tmp.path().join(relative)
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative))
            .unwrap_or_else(|e| panic!("read {relative}: {e}"))
    }

    /// The writes since the host was made, with paths relative to it.
    pub fn writes(&self) -> Vec<(String, String)> {
        hooks::writes()
            .into_iter()
            .map(|(path, value)| {
                let relative = path.strip_prefix(self.tmp.path()).unwrap_or(&path);
                (relative.to_string_lossy().into_owned(), value)
            })
            .collect()
    }

    /// Forgets the writes so far (injected failures and the mkdir hook stay).
    pub fn clear_writes(&self) {
        hooks::clear_writes();
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        hooks::reset();
    }
}
