//! Tests of the public API against fake v1, v2 and hybrid trees.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::fake::FakeHost;
use super::fs::hooks;
use super::*;

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).expect("resources json")
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn no_own_cgroup() -> Result<String, CgroupError> {
    panic!("/proc/self/cgroup must not be read for this path")
}

fn cgroup(host: &FakeHost, path: Option<&str>, id: &str) -> Cgroup {
    Cgroup::resolve(host.layout.clone(), path, id, no_own_cgroup).expect("resolve")
}

// ---- path resolution ----

#[test]
fn default_path_is_muelle_id_in_every_hierarchy() {
    let host = FakeHost::new(&[&["memory"], &["name=systemd"]], Some(&["pids"]));
    let cg = cgroup(&host, None, "c1");
    assert_eq!(cg.mode(), Mode::Hybrid);
    let paths: Vec<&Path> = cg.paths().collect();
    assert_eq!(
        paths,
        [
            host.path("memory/muelle/c1"),
            host.path("systemd/muelle/c1"),
            host.path("unified/muelle/c1")
        ]
    );
    assert_eq!(
        cg.v1_path("memory"),
        Some(host.path("memory/muelle/c1").as_path())
    );
    assert_eq!(
        cg.unified_path(),
        Some(host.path("unified/muelle/c1").as_path())
    );
    // An empty cgroupsPath is no path.
    assert_eq!(cgroup(&host, Some(""), "c1"), cg);
}

#[test]
fn absolute_path_is_under_each_mount() {
    let host = FakeHost::v2(&["memory"]);
    let cg = cgroup(&host, Some("/machine/./pods//x/"), "ignored");
    assert_eq!(
        cg.paths().collect::<Vec<_>>(),
        [host.path("unified/machine/pods/x")]
    );
}

#[test]
fn relative_path_is_under_the_runtimes_own_cgroup() {
    let mut host = FakeHost::new(&[&["memory"], &["cpu", "cpuacct"]], Some(&[]));
    // The memory hierarchy is a bind mount of /docker/abc.
    host.layout.v1[0].root = PathBuf::from("/docker/abc");
    let own = "4:memory:/docker/abc/runtime\n2:cpuacct,cpu:/\n0::/user.slice/session-1.scope\n";
    let cg = Cgroup::resolve(host.layout.clone(), Some("box/c1"), "c1", || {
        Ok(own.to_owned())
    })
    .expect("resolve");
    assert_eq!(
        cg.paths().collect::<Vec<_>>(),
        [
            host.path("memory/runtime/box/c1"),
            host.path("cpu/box/c1"),
            host.path("unified/user.slice/session-1.scope/box/c1"),
        ]
    );

    let outside = "4:memory:/elsewhere\n2:cpuacct,cpu:/\n0::/\n";
    let err = Cgroup::resolve(host.layout.clone(), Some("c1"), "c1", || {
        Ok(outside.to_owned())
    })
    .unwrap_err();
    assert!(matches!(err, CgroupError::InvalidPath { .. }), "{err}");
    let missing = "2:cpuacct,cpu:/\n0::/\n";
    let err = Cgroup::resolve(host.layout.clone(), Some("c1"), "c1", || {
        Ok(missing.to_owned())
    })
    .unwrap_err();
    assert!(err.to_string().contains("memory"), "{err}");
}

#[test]
fn rejects_dotdot_systemd_and_root_paths() {
    let host = FakeHost::v2(&[]);
    for path in ["/muelle/../etc", "../x", "a/..", "/a/b/../../.."] {
        let err = Cgroup::resolve(host.layout.clone(), Some(path), "c1", || {
            Ok("0::/\n".to_owned())
        })
        .unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidPath { .. }),
            "{path}: {err}"
        );
    }
    for path in ["system.slice:docker:abc", ":muelle:c1"] {
        let err =
            Cgroup::resolve(host.layout.clone(), Some(path), "c1", no_own_cgroup).unwrap_err();
        assert!(
            matches!(err, CgroupError::SystemdPath { .. }),
            "{path}: {err}"
        );
        assert!(err.to_string().contains("not supported"), "{err}");
    }
    for path in ["/", "//.", "."] {
        let err = Cgroup::resolve(host.layout.clone(), Some(path), "c1", || {
            Ok("0::/\n".to_owned())
        })
        .unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidPath { .. }),
            "{path}: {err}"
        );
    }
    for id in ["", "..", "a/b"] {
        assert!(
            Cgroup::resolve(host.layout.clone(), None, id, no_own_cgroup).is_err(),
            "{id:?}"
        );
    }
    let err = Cgroup::resolve(Layout::default(), None, "c1", no_own_cgroup).unwrap_err();
    assert!(matches!(err, CgroupError::NoCgroupFs), "{err}");
    // Colons in an absolute path are just characters.
    assert!(Cgroup::resolve(host.layout.clone(), Some("/a:b:c"), "c1", no_own_cgroup).is_ok());
}

// ---- create ----

#[test]
fn create_on_v2_enables_controllers_once() {
    let host = FakeHost::v2(&["cpu", "memory", "pids"]);
    let first = cgroup(&host, None, "c1");
    first.create().expect("create");
    assert!(host.path("unified/muelle/c1").is_dir());
    assert_eq!(
        host.writes(),
        pairs(&[
            ("unified/cgroup.subtree_control", "+cpu +memory +pids"),
            (
                "unified/muelle/cgroup.subtree_control",
                "+cpu +memory +pids"
            ),
        ])
    );
    // The kernel (here the fake) gave the leaf the controllers' files.
    assert!(host.path("unified/muelle/c1/memory.max").exists());

    // The next container finds its parent ready: reads only.
    host.clear_writes();
    cgroup(&host, None, "c2").create().expect("create c2");
    assert!(host.path("unified/muelle/c2/pids.max").exists());
    assert_eq!(host.writes(), []);
    // Creating an existing cgroup is fine.
    first.create().expect("create again");
}

#[test]
fn create_on_v2_falls_back_to_one_controller_at_a_time() {
    let host = FakeHost::v2(&["cpu", "memory"]);
    hooks::fail_next("cgroup.subtree_control", libc::ENOENT);
    cgroup(&host, None, "c1").create().expect("create");
    assert_eq!(
        host.writes(),
        pairs(&[
            ("unified/cgroup.subtree_control", "+cpu"),
            ("unified/cgroup.subtree_control", "+memory"),
            ("unified/muelle/cgroup.subtree_control", "+cpu +memory"),
        ])
    );
}

#[test]
fn create_on_v1_fills_new_cpusets_from_the_parent() {
    let host = FakeHost::v1();
    let cg = cgroup(&host, Some("/a/b/c1"), "c1");
    cg.create().expect("create");
    for path in cg.paths() {
        assert!(path.is_dir(), "{}", path.display());
    }
    assert_eq!(
        host.writes(),
        pairs(&[
            ("cpuset/a/cpuset.cpus", "0-3"),
            ("cpuset/a/cpuset.mems", "0"),
            ("cpuset/a/b/cpuset.cpus", "0-3"),
            ("cpuset/a/b/cpuset.mems", "0"),
            ("cpuset/a/b/c1/cpuset.cpus", "0-3"),
            ("cpuset/a/b/c1/cpuset.mems", "0"),
        ])
    );

    // A parent left empty by a crash is repaired when the next child comes.
    std::fs::write(host.path("cpuset/a/b/cpuset.cpus"), "\n").expect("empty parent");
    host.clear_writes();
    cgroup(&host, Some("/a/b/c2"), "c2")
        .create()
        .expect("create c2");
    assert_eq!(host.read("cpuset/a/b/c2/cpuset.cpus"), "0-3");
    assert_eq!(host.read("cpuset/a/b/cpuset.cpus"), "0-3");

    // An existing leaf with an empty cpuset is filled too.
    std::fs::write(host.path("cpuset/a/b/c1/cpuset.mems"), "").expect("empty leaf");
    cg.create().expect("create again");
    assert_eq!(host.read("cpuset/a/b/c1/cpuset.mems"), "0");
}

#[test]
fn failed_create_removes_the_leaves_it_made() {
    let mut host = FakeHost::new(&[&["memory"], &["pids"]], None);
    // Plain empty directories, which rmdir removes as cgroupfs would.
    hooks::on_mkdir(|_| {});
    host.layout.v1[1].mount_point = host.path("not-mounted");
    let cg = cgroup(&host, None, "c1");
    let err = cg.create().unwrap_err();
    assert!(matches!(err, CgroupError::Create { .. }), "{err}");
    assert!(!host.path("memory/muelle/c1").exists());
    assert!(
        !host.path("not-mounted").exists(),
        "mkdir -p never makes a mount point"
    );
}

// ---- apply ----

const ALL_RESOURCES: &str = r#"{
    "memory": {"limit": 1048576, "reservation": 524288, "swap": 3145728},
    "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
    "pids": {"limit": 32},
    "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
    "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
    "rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 100}}
}"#;

#[test]
fn apply_v2_writes_converted_values() {
    let host = FakeHost::v2(&["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma"]);
    let cg = cgroup(&host, None, "c1");
    cg.create().expect("create");
    host.clear_writes();
    let mut r = resources(ALL_RESOURCES);
    r.set_unified(Some(
        [("memory.high".to_owned(), "2000000".to_owned())].into(),
    ));
    cg.apply(&r).expect("apply");
    assert_eq!(
        host.writes(),
        pairs(&[
            ("unified/muelle/c1/memory.swap.max", "2097152"),
            ("unified/muelle/c1/memory.max", "1048576"),
            ("unified/muelle/c1/memory.low", "524288"),
            ("unified/muelle/c1/cpu.weight", "39"),
            ("unified/muelle/c1/cpu.max", "50000 100000"),
            ("unified/muelle/c1/cpuset.cpus", "0-1"),
            ("unified/muelle/c1/cpuset.mems", "0"),
            ("unified/muelle/c1/pids.max", "32"),
            ("unified/muelle/c1/io.weight", "4950"),
            ("unified/muelle/c1/io.max", "8:0 rbps=1000"),
            ("unified/muelle/c1/hugetlb.2MB.max", "4194304"),
            (
                "unified/muelle/c1/rdma.max",
                "mlx5_0 hca_handle=3 hca_object=100"
            ),
            ("unified/muelle/c1/memory.high", "2000000"),
        ])
    );
}

#[test]
fn apply_v1_writes_v1_values() {
    let host = FakeHost::v1();
    let cg = cgroup(&host, None, "c1");
    cg.create().expect("create");
    host.clear_writes();
    let mut r = resources(ALL_RESOURCES);
    r.set_network(Some(
        serde_json::from_str(
            r#"{"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]}"#,
        )
        .expect("network"),
    ));
    cg.apply(&r).expect("apply");
    assert_eq!(
        host.writes(),
        pairs(&[
            ("memory/muelle/c1/memory.soft_limit_in_bytes", "524288"),
            ("memory/muelle/c1/memory.limit_in_bytes", "1048576"),
            ("memory/muelle/c1/memory.memsw.limit_in_bytes", "3145728"),
            ("cpu/muelle/c1/cpu.shares", "1024"),
            ("cpu/muelle/c1/cpu.cfs_period_us", "100000"),
            ("cpu/muelle/c1/cpu.cfs_quota_us", "50000"),
            ("cpuset/muelle/c1/cpuset.cpus", "0-1"),
            ("cpuset/muelle/c1/cpuset.mems", "0"),
            ("pids/muelle/c1/pids.max", "32"),
            ("blkio/muelle/c1/blkio.weight", "500"),
            ("blkio/muelle/c1/blkio.throttle.read_bps_device", "8:0 1000"),
            ("hugetlb/muelle/c1/hugetlb.2MB.limit_in_bytes", "4194304"),
            ("net_cls/muelle/c1/net_cls.classid", "1048577"),
            ("net_prio/muelle/c1/net_prio.ifpriomap", "eth0 5"),
            (
                "rdma/muelle/c1/rdma.max",
                "mlx5_0 hca_handle=3 hca_object=100"
            ),
        ])
    );
}

#[test]
fn apply_hybrid_sends_each_controller_where_it_lives() {
    let host = FakeHost::new(&[&["memory"], &["pids"], &["devices"]], Some(&["hugetlb"]));
    let cg = cgroup(&host, None, "c1");
    cg.create().expect("create");
    host.clear_writes();
    cg.apply(&resources(
        r#"{"memory": {"limit": 4096}, "pids": {"limit": -1},
            "hugepageLimits": [{"pageSize": "1GB", "limit": -1}],
            "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}"#,
    ))
    .expect("apply");
    assert_eq!(
        host.writes(),
        pairs(&[
            ("memory/muelle/c1/memory.limit_in_bytes", "4096"),
            ("pids/muelle/c1/pids.max", "max"),
            ("unified/muelle/c1/hugetlb.1GB.max", "max"),
            ("devices/muelle/c1/devices.deny", "a"),
            ("devices/muelle/c1/devices.allow", "c 1:3 rwm"),
        ])
    );
    // cpu is nowhere: asking for shares fails, an empty cpu section does not.
    cg.apply(&resources(r#"{"cpu": {}, "memory": {}}"#))
        .expect("nothing asked");
    let err = cg
        .apply(&resources(r#"{"cpu": {"shares": 100}}"#))
        .unwrap_err();
    assert!(
        matches!(&err, CgroupError::ControllerUnavailable { controller, path } if controller == "cpu" && path.ends_with("cpu.weight")),
        "{err}"
    );
}

#[test]
fn missing_controllers_fail_only_when_asked() {
    let host = FakeHost::new(&[&["memory"]], None);
    let cg = cgroup(&host, None, "c1");
    cg.create().expect("create");
    cg.apply(&resources(
        r#"{"cpu": {"shares": 0}, "blockIO": {}, "hugepageLimits": []}"#,
    ))
    .expect("nothing asked");
    for (json, controller) in [
        (r#"{"pids": {"limit": 10}}"#, "pids"),
        (r#"{"cpu": {"cpus": "0"}}"#, "cpuset"),
        (r#"{"blockIO": {"weight": 100}}"#, "blkio"),
        (r#"{"devices": []}"#, "devices"),
        (r#"{"network": {"classID": 1}}"#, "net_cls"),
    ] {
        let err = cg.apply(&resources(json)).unwrap_err();
        assert!(
            matches!(&err, CgroupError::ControllerMissing { controller: c, .. } if *c == controller),
            "{json}: {err}"
        );
    }
    let err = cg
        .apply(&resources(r#"{"unified": {"memory.high": "1"}}"#))
        .unwrap_err();
    assert!(matches!(err, CgroupError::Unsupported { .. }), "{err}");

    let v2 = FakeHost::v2(&["memory"]);
    let cg = cgroup(&v2, None, "c1");
    cg.create().expect("create");
    let err = cg
        .apply(&resources(r#"{"pids": {"limit": 10}}"#))
        .unwrap_err();
    assert!(
        matches!(err, CgroupError::ControllerUnavailable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("pids.max"), "{err}");
    let err = cg
        .apply(&resources(r#"{"cpu": {"realtimeRuntime": 100}}"#))
        .unwrap_err();
    assert!(matches!(err, CgroupError::Unsupported { .. }), "{err}");
    let err = cg
        .apply(&resources(
            r#"{"network": {"priorities": [{"name": "lo", "priority": 1}]}}"#,
        ))
        .unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::ControllerMissing {
                controller: "net_prio",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn unified_keys_are_checked_before_any_write() {
    let host = FakeHost::v2(&["memory"]);
    let cg = cgroup(&host, None, "c1");
    cg.create().expect("create");
    for bad in [
        "../../etc/passwd",
        "memory/../x",
        "..memory",
        "memory..high",
        "memoryhigh",
        ".memory",
        "a b.c",
        "",
    ] {
        host.clear_writes();
        let mut r = LinuxResources::default();
        r.set_unified(Some(
            [
                ("memory.high".to_owned(), "1".to_owned()),
                (bad.to_owned(), "1".to_owned()),
            ]
            .into(),
        ));
        let err = cg.apply(&r).unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidValue { .. }),
            "{bad:?}: {err}"
        );
        assert_eq!(host.writes(), [], "{bad:?}");
    }
    let mut r = LinuxResources::default();
    r.set_unified(Some(
        [("memory.oom.group".to_owned(), "1".to_owned())].into(),
    ));
    let err = cg.apply(&r).unwrap_err();
    assert!(
        matches!(&err, CgroupError::ControllerUnavailable { controller, .. } if controller == "memory"),
        "{err}"
    );
}

#[test]
fn hugepage_sizes_are_checked() {
    for good in ["2MB", "1GB", "64KB", "16GB"] {
        assert!(hugepage_size(good).is_ok(), "{good}");
    }
    for bad in [
        "", "MB", "2mb", "2M", "2MiB", "../2MB", "2MB.max", "x2MB", "2 MB",
    ] {
        assert!(hugepage_size(bad).is_err(), "{bad:?}");
    }
    let host = FakeHost::v2(&["hugetlb"]);
    let cg = cgroup(&host, None, "c1");
    cg.create().expect("create");
    host.clear_writes();
    let err = cg
        .apply(&resources(
            r#"{"hugepageLimits": [{"pageSize": "../../x", "limit": 1}]}"#,
        ))
        .unwrap_err();
    assert!(matches!(err, CgroupError::InvalidValue { .. }), "{err}");
    assert_eq!(host.writes(), []);
}

#[test]
fn pids_limit_zero_or_negative_is_max() {
    let host = FakeHost::v2(&["pids"]);
    let cg = cgroup(&host, None, "c1");
    cg.create().expect("create");
    for limit in [0, -1, -42] {
        host.clear_writes();
        cg.apply(&resources(&format!(r#"{{"pids": {{"limit": {limit}}}}}"#)))
            .expect("apply");
        assert_eq!(
            host.writes(),
            pairs(&[("unified/muelle/c1/pids.max", "max")])
        );
    }
}

// ---- processes, freezer ----

#[test]
fn add_process_joins_every_hierarchy() {
    let host = FakeHost::new(&[&["memory"], &["freezer"], &["name=systemd"]], Some(&[]));
    let cg = cgroup(&host, None, "c1");
    cg.create().expect("create");
    host.clear_writes();
    cg.add_process(4242).expect("add");
    assert_eq!(
        host.writes(),
        pairs(&[
            ("memory/muelle/c1/cgroup.procs", "4242"),
            ("freezer/muelle/c1/cgroup.procs", "4242"),
            ("systemd/muelle/c1/cgroup.procs", "4242"),
            ("unified/muelle/c1/cgroup.procs", "4242"),
        ])
    );
    assert!(cg.add_process(0).is_err());
    assert!(cg.add_process(-1).is_err());

    std::fs::write(host.path("freezer/muelle/c1/cgroup.procs"), "12\n34\n").expect("procs");
    assert_eq!(cg.procs().expect("procs"), [12, 34]);
    std::fs::write(host.path("freezer/muelle/c1/cgroup.procs"), "12\nx\n").expect("procs");
    assert!(matches!(cg.procs(), Err(CgroupError::Parse { .. })));
}

#[test]
fn freeze_and_thaw_through_the_api() {
    let v1 = FakeHost::v1();
    let cg = cgroup(&v1, None, "c1");
    cg.create().expect("create");
    assert!(!cg.is_frozen().expect("state"));
    cg.freeze().expect("freeze");
    assert_eq!(v1.read("freezer/muelle/c1/freezer.state"), "FROZEN");
    assert!(cg.is_frozen().expect("state"));
    cg.thaw().expect("thaw");
    assert!(!cg.is_frozen().expect("state"));

    let v2 = FakeHost::v2(&[]);
    let cg = cgroup(&v2, None, "c1");
    cg.create().expect("create");
    // The fake kernel freezes at once.
    std::fs::write(
        v2.path("unified/muelle/c1/cgroup.events"),
        "populated 1\nfrozen 1\n",
    )
    .expect("events");
    cg.freeze().expect("freeze");
    assert_eq!(v2.read("unified/muelle/c1/cgroup.freeze"), "1");
    assert!(cg.is_frozen().expect("state"));

    let none = FakeHost::new(&[&["memory"]], None);
    let cg = cgroup(&none, None, "c1");
    assert!(matches!(
        cg.freeze(),
        Err(CgroupError::ControllerMissing {
            controller: "freezer",
            ..
        })
    ));
    assert!(!cg.is_frozen().expect("no freezer, not frozen"));
}

// ---- destroy ----

#[test]
fn destroy_removes_leaves_only_and_tolerates_missing() {
    let host = FakeHost::new(&[&["memory"], &["pids"]], Some(&[]));
    let cg = cgroup(&host, None, "c1");
    assert!(!cg.exists());
    cg.create().expect("create");
    assert!(cg.exists());
    // A regular directory is not emptied by rmdir the way cgroupfs is:
    // make the fake leaves plain empty directories first.
    for path in cg.paths() {
        empty_dir(path);
    }
    // A child cgroup a nested runtime left behind.
    std::fs::create_dir(host.path("pids/muelle/c1/nested")).expect("nested");
    std::fs::remove_dir(host.path("memory/muelle/c1")).expect("one gone already");
    cg.destroy().expect("destroy");
    assert!(!cg.exists());
    for parent in ["memory/muelle", "pids/muelle", "unified/muelle"] {
        assert!(host.path(parent).is_dir(), "{parent} must stay");
    }
    cg.destroy().expect("destroy twice");
}

#[test]
fn destroy_waits_for_a_busy_cgroup_then_gives_up() {
    let host = FakeHost::new(&[&["memory"]], None);
    let cg = cgroup(&host, None, "c1");
    cg.create().expect("create");
    cg.paths().for_each(empty_dir);
    // Processes still leaving: busy twice, then gone.
    hooks::fail_next("c1", libc::EBUSY);
    hooks::fail_next("c1", libc::EBUSY);
    cg.destroy().expect("destroy after retries");
    assert!(!cg.exists());

    cg.create().expect("create");
    cg.paths().for_each(empty_dir);
    for _ in 0..1000 {
        hooks::fail_next("c1", libc::EBUSY);
    }
    let start = std::time::Instant::now();
    let err = cg.destroy().unwrap_err();
    assert!(start.elapsed() >= REMOVE_TIMEOUT, "gave up too early");
    assert!(start.elapsed() < REMOVE_TIMEOUT * 4, "waited too long");
    assert_eq!(err.errno(), Some(libc::EBUSY), "{err}");
    assert!(err.to_string().contains("memory/muelle/c1"), "{err}");
}

#[test]
fn destroy_reports_other_errors_at_once() {
    let host = FakeHost::new(&[&["memory"]], None);
    let cg = cgroup(&host, None, "c1");
    cg.create().expect("create");
    // Files in a plain directory: ENOTEMPTY, which is not retried.
    let err = cg.destroy().unwrap_err();
    assert!(matches!(err, CgroupError::Remove { .. }), "{err}");
    assert_eq!(err.errno(), Some(libc::ENOTEMPTY), "{err}");
}

fn empty_dir(path: &Path) {
    for entry in std::fs::read_dir(path).expect("read dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::remove_file(entry.path()).expect("rm");
        }
    }
}

// ---- stats ----

#[test]
fn stats_on_v2_and_v1() {
    let v2 = FakeHost::v2(&["memory", "pids"]);
    let cg = cgroup(&v2, None, "c1");
    cg.create().expect("create");
    std::fs::write(v2.path("unified/muelle/c1/memory.current"), "8192\n").expect("seed");
    std::fs::write(v2.path("unified/muelle/c1/pids.current"), "3\n").expect("seed");
    let stats = cg.stats().expect("stats");
    assert_eq!(
        stats.memory.as_ref().map(|m| (m.usage, m.limit)),
        Some((8192, None))
    );
    assert_eq!(
        stats.pids,
        Some(PidsStats {
            current: 3,
            limit: None
        })
    );
    assert!(stats.cpu.is_some());
    assert_eq!(stats.io, None, "no io controller");

    let v1 = FakeHost::v1();
    let cg = cgroup(&v1, None, "c1");
    cg.create().expect("create");
    cg.apply(&resources(
        r#"{"pids": {"limit": 7}, "memory": {"limit": 65536}}"#,
    ))
    .expect("apply");
    let stats = cg.stats().expect("stats");
    assert_eq!(
        stats.pids,
        Some(PidsStats {
            current: 0,
            limit: Some(7)
        })
    );
    assert_eq!(stats.memory.as_ref().and_then(|m| m.limit), Some(65536));
    assert_eq!(
        stats
            .cpu
            .as_ref()
            .and_then(|c| c.throttling.as_ref())
            .map(|t| t.periods),
        Some(0)
    );
    assert!(stats.io.is_some());

    std::fs::remove_dir_all(v1.path("memory/muelle/c1")).expect("gone");
    assert!(
        cg.stats().is_err(),
        "a vanished cgroup is an error, not empty stats"
    );
}
