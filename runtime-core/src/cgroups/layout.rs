//! Where the host mounts its cgroup filesystems: the v1 hierarchies with their
//! controllers, and the cgroup2 (unified) mount if there is one.
//!
//! The layout comes from one read of `/proc/self/mountinfo` and nothing else:
//! no `statfs`, no probing of files. The same parser reads `/proc/self/cgroup`
//! when a relative cgroups path needs the runtime's own cgroup.

use std::path::{Path, PathBuf};

use super::CgroupError;

/// The v1 controllers muelle knows by name; other words in a cgroup mount's
/// super options (`rw`, `nsdelegate`, `clone_children`...) are mount flags.
const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// Where mount points of the system's own cgroup filesystems live; a mount
/// elsewhere (a test's, a bind mount in a tool's namespace) only counts when
/// the system has none for that hierarchy.
const SYSTEM_CGROUP_DIR: &str = "/sys/fs/cgroup";

/// A mounted cgroup v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Where the hierarchy is mounted, e.g. `/sys/fs/cgroup/memory`.
    pub mount_point: PathBuf,
    /// Which cgroup of the hierarchy the mount shows (`/` unless bind-mounted).
    pub root: PathBuf,
    /// Controllers bound to the hierarchy, and `name=X` for a named one.
    pub controllers: Vec<String>,
}

impl V1Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The mounted cgroup2 filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnifiedMount {
    /// Where it is mounted: `/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on hybrid hosts.
    pub mount_point: PathBuf,
    /// Which cgroup the mount shows (`/` unless bind-mounted).
    pub root: PathBuf,
}

/// How the host arranges its cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only v1 hierarchies.
    V1,
    /// Only cgroup2 carries controllers (a named v1 hierarchy may sit beside it).
    V2,
    /// v1 hierarchies carry controllers and a cgroup2 mount exists too.
    Hybrid,
}

/// The cgroup filesystems of the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    pub v1: Vec<V1Hierarchy>,
    pub unified: Option<UnifiedMount>,
}

impl Layout {
    /// Reads `/proc/self/mountinfo` once.
    pub fn detect() -> Result<Layout, CgroupError> {
        let path = Path::new("/proc/self/mountinfo");
        let text = crate::kernel_files::read(path).map_err(|source| CgroupError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Layout::parse(&text)
    }

    /// Parses the text of a `mountinfo` file; an error when it has no cgroup mount.
    pub fn parse(mountinfo: &str) -> Result<Layout, CgroupError> {
        let mut layout = Layout::default();
        for line in mountinfo.lines() {
            let Some(mount) = parse_line(line) else {
                continue;
            };
            match mount.fstype {
                "cgroup2" => {
                    let better = match &layout.unified {
                        None => true,
                        Some(known) => !is_system(&known.mount_point) && is_system(&mount.point),
                    };
                    if better {
                        layout.unified = Some(UnifiedMount {
                            mount_point: mount.point,
                            root: mount.root,
                        });
                    }
                }
                "cgroup" => {
                    let mut controllers: Vec<String> = mount
                        .super_options
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                        .map(str::to_owned)
                        .collect();
                    if controllers.is_empty() {
                        continue;
                    }
                    controllers.sort_unstable();
                    let hierarchy = V1Hierarchy {
                        mount_point: mount.point,
                        root: mount.root,
                        controllers,
                    };
                    match layout
                        .v1
                        .iter_mut()
                        .find(|h| h.controllers == hierarchy.controllers)
                    {
                        None => layout.v1.push(hierarchy),
                        Some(known) => {
                            if !is_system(&known.mount_point) && is_system(&hierarchy.mount_point) {
                                *known = hierarchy;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        if layout.v1.is_empty() && layout.unified.is_none() {
            return Err(CgroupError::NoCgroupFs);
        }
        Ok(layout)
    }

    /// A pure cgroup v2 layout with the cgroup2 filesystem at `mount_point`.
    pub fn unified_at(mount_point: impl Into<PathBuf>) -> Layout {
        Layout {
            v1: Vec::new(),
            unified: Some(UnifiedMount {
                mount_point: mount_point.into(),
                root: PathBuf::from("/"),
            }),
        }
    }

    pub fn mode(&self) -> Mode {
        let v1_controllers = self
            .v1
            .iter()
            .any(|h| h.controllers.iter().any(|c| !c.starts_with("name=")));
        match (v1_controllers, self.unified.is_some()) {
            (false, _) => Mode::V2,
            (true, false) => Mode::V1,
            (true, true) => Mode::Hybrid,
        }
    }

    /// The v1 hierarchy carrying `controller`, if one does.
    pub fn v1_hierarchy(&self, controller: &str) -> Option<&V1Hierarchy> {
        self.v1.iter().find(|h| h.has(controller))
    }
}

fn is_system(mount_point: &Path) -> bool {
    mount_point.starts_with(SYSTEM_CGROUP_DIR)
}

struct Mount<'a> {
    root: PathBuf,
    point: PathBuf,
    fstype: &'a str,
    super_options: &'a str,
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`:
/// root and mount point are fields 4 and 5, the file system type follows the
/// `-` that ends the optional fields.
fn parse_line(line: &str) -> Option<Mount<'_>> {
    let (before, after) = line.split_once(" - ")?;
    let mut after = after.split(' ');
    let fstype = after.next()?;
    if fstype != "cgroup" && fstype != "cgroup2" {
        return None;
    }
    let _source = after.next()?;
    let super_options = after.next().unwrap_or("");
    let mut before = before.split(' ');
    let root = before.nth(3)?;
    let point = before.next()?;
    Some(Mount {
        root: PathBuf::from(unescape(root)),
        point: PathBuf::from(unescape(point)),
        fstype,
        super_options,
    })
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal escapes.
fn unescape(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_owned();
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The runtime's own cgroups, from `/proc/self/cgroup`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct OwnCgroups {
    /// Sorted controller list of each v1 hierarchy, and the path in it.
    v1: Vec<(Vec<String>, String)>,
    unified: Option<String>,
}

impl OwnCgroups {
    /// Lines are `hierarchy-id:controller-list:path`; cgroup2 has id 0 and no controllers.
    pub(super) fn parse(text: &str) -> OwnCgroups {
        let mut own = OwnCgroups::default();
        for line in text.lines() {
            let mut fields = line.splitn(3, ':');
            let (Some(id), Some(list), Some(path)) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let path = path.strip_suffix(" (deleted)").unwrap_or(path).to_owned();
            if id == "0" && list.is_empty() {
                own.unified = Some(path);
            } else {
                let mut controllers: Vec<String> = list.split(',').map(str::to_owned).collect();
                controllers.sort_unstable();
                own.v1.push((controllers, path));
            }
        }
        own
    }

    pub(super) fn v1_path(&self, controllers: &[String]) -> Option<&str> {
        self.v1
            .iter()
            .find(|(c, _)| c == controllers)
            .map(|(_, p)| p.as_str())
    }

    pub(super) fn unified_path(&self) -> Option<&str> {
        self.unified.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn parses_hybrid_host() {
        let layout = Layout::parse(HYBRID).expect("layout");
        assert_eq!(layout.mode(), Mode::Hybrid);
        assert_eq!(layout.v1.len(), 4);
        let cpu = layout.v1_hierarchy("cpuacct").expect("cpuacct");
        assert_eq!(cpu.mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(cpu.controllers, ["cpu", "cpuacct"]);
        assert_eq!(
            layout.v1_hierarchy("cpuset").map(|h| h.controllers.clone()),
            Some(vec!["cpuset".to_owned()])
        );
        assert!(layout.v1_hierarchy("name=systemd").is_some());
        assert!(layout.v1_hierarchy("pids").is_none());
        let unified = layout.unified.expect("unified");
        assert_eq!(unified.mount_point, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(unified.root, Path::new("/"));
    }

    #[test]
    fn parses_pure_v2_and_v1() {
        let v2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        let layout = Layout::parse(v2).expect("v2");
        assert_eq!(layout.mode(), Mode::V2);
        assert_eq!(layout, Layout::unified_at("/sys/fs/cgroup"));

        let v1 = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(Layout::parse(v1).expect("v1").mode(), Mode::V1);

        // A named hierarchy beside cgroup2 carries no controller: still v2.
        let named =
            format!("{v2}40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n");
        assert_eq!(Layout::parse(&named).expect("named").mode(), Mode::V2);
    }

    #[test]
    fn no_cgroup_mount_is_an_error() {
        let err = Layout::parse("22 27 0:21 / /proc rw - proc proc rw\n").unwrap_err();
        assert!(matches!(err, CgroupError::NoCgroupFs), "{err}");
    }

    #[test]
    fn keeps_the_system_mount_and_reads_escapes_and_roots() {
        let text = "\
50 1 0:40 / /tmp/my\\040cg rw - cgroup2 cgroup2 rw
51 1 0:41 /docker/abc /tmp/mem rw - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
52 31 0:41 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
53 1 0:41 / /elsewhere rw - cgroup cgroup rw,memory
";
        let layout = Layout::parse(text).expect("layout");
        assert_eq!(
            layout.unified.as_ref().map(|u| u.mount_point.clone()),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(layout.v1.len(), 1);
        assert_eq!(layout.v1[0].mount_point, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(layout.v1[0].root, Path::new("/docker/abc"));

        let only_tmp =
            Layout::parse("50 1 0:40 / /tmp/my\\040cg rw - cgroup2 cgroup2 rw\n").expect("tmp");
        assert_eq!(
            only_tmp.unified.map(|u| u.mount_point),
            Some(PathBuf::from("/tmp/my cg"))
        );
    }

    #[test]
    fn unescape_handles_edges() {
        assert_eq!(unescape("a\\134b"), "a\\b");
        assert_eq!(unescape("tab\\011"), "tab\t");
        assert_eq!(unescape("short\\04"), "short\\04");
        assert_eq!(unescape("bad\\09x"), "bad\\09x");
    }

    #[test]
    fn parses_proc_self_cgroup() {
        let text = "\
9:name=systemd:/user.slice
4:memory:/process_api/04d2
2:cpuacct,cpu:/a:b
0::/init.scope (deleted)
";
        let own = OwnCgroups::parse(text);
        assert_eq!(
            own.v1_path(&["memory".to_owned()]),
            Some("/process_api/04d2")
        );
        assert_eq!(
            own.v1_path(&["cpu".to_owned(), "cpuacct".to_owned()]),
            Some("/a:b")
        );
        assert_eq!(
            own.v1_path(&["name=systemd".to_owned()]),
            Some("/user.slice")
        );
        assert_eq!(own.v1_path(&["pids".to_owned()]), None);
        assert_eq!(own.unified_path(), Some("/init.scope"));
    }
}
