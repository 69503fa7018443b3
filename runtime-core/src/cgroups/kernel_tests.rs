//! Tests against the running kernel's cgroups. They need root and skip
//! (with the reason printed) otherwise. Each works under its own
//! `muelle-test-<random>` parent in every hierarchy, and a guard removes
//! everything, child process included, even when an assertion fails.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::devices::{parse_rules, rules_from_json};
use super::*;

/// Owns what a test made on the host.
struct Guard {
    cgroup: Cgroup,
    parents: Vec<PathBuf>,
    children: Vec<Child>,
}

impl Guard {
    fn new(name: &str) -> Option<Guard> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipping {name}: needs root to create cgroups");
            return None;
        }
        let layout = match Layout::detect() {
            Ok(layout) => layout,
            Err(e) => {
                eprintln!("skipping {name}: {e}");
                return None;
            }
        };
        let parent = format!("muelle-test-{}-{}", std::process::id(), random());
        let cgroup =
            Cgroup::with_layout(layout, Some(&format!("/{parent}/{name}")), name).expect("resolve");
        let parents = cgroup
            .paths()
            .filter_map(|p| p.parent().map(PathBuf::from))
            .collect();
        Some(Guard {
            cgroup,
            parents,
            children: Vec::new(),
        })
    }

    /// A child blocked reading its stdin, so it does nothing before the test says so.
    fn spawn(&mut self, script: &str) -> i32 {
        let child = Command::new("/bin/sh")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let pid = child.id() as i32;
        self.children.push(child);
        pid
    }

    fn kill_children(&mut self) {
        for mut child in self.children.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether anything of the test is left on the host.
    fn leftovers(&self) -> Vec<PathBuf> {
        self.cgroup
            .paths()
            .map(PathBuf::from)
            .chain(self.parents.iter().cloned())
            .filter(|p| p.exists())
            .collect()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // A frozen child cannot die.
        let _ = self.cgroup.thaw();
        self.kill_children();
        let _ = self.cgroup.destroy();
        for parent in &self.parents {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

fn random() -> u64 {
    let mut bytes = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut bytes);
    }
    u64::from_ne_bytes(bytes) ^ u64::from(std::process::id())
}

fn task_state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after_name = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or("");
    after_name.chars().next().unwrap_or('?')
}

/// Waking takes the scheduler a moment: poll for up to two seconds.
fn wait_for_state(pid: i32, wanted: char) {
    let start = std::time::Instant::now();
    while task_state(pid) != wanted {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "task {pid} stays {:?}, not {wanted:?}",
            task_state(pid)
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).expect("resources json")
}

#[test]
fn kernel_lifecycle_limits_procs_freeze_destroy() {
    let Some(mut guard) = Guard::new("lifecycle") else {
        return;
    };
    let cg = guard.cgroup.clone();
    assert!(!cg.exists());
    cg.create().expect("create");
    assert!(cg.exists());
    cg.apply(&resources(
        r#"{"memory": {"limit": 67108864}, "pids": {"limit": 16}}"#,
    ))
    .expect("apply");

    match cg.target("memory") {
        Target::V1(dir) => assert_eq!(
            fs::read(dir, "memory.limit_in_bytes").expect("read").trim(),
            "67108864"
        ),
        Target::V2(dir) => assert_eq!(
            fs::read(dir, "memory.max").expect("read").trim(),
            "67108864"
        ),
        Target::Missing => eprintln!("no memory controller on this host"),
    }
    match cg.target("pids") {
        Target::V1(dir) | Target::V2(dir) => {
            assert_eq!(fs::read(dir, "pids.max").expect("read").trim(), "16")
        }
        Target::Missing => eprintln!("no pids controller on this host"),
    }

    let pid = guard.spawn("read _; exec sleep 1000");
    cg.add_process(pid).expect("add process");
    assert_eq!(cg.procs().expect("procs"), [pid]);
    for dir in cg.paths() {
        let procs = fs::read(dir, "cgroup.procs").expect("procs");
        assert_eq!(procs.trim(), pid.to_string(), "{}", dir.display());
    }

    let stats = cg.stats().expect("stats");
    if let Some(pids) = &stats.pids {
        assert_eq!((pids.current, pids.limit), (1, Some(16)));
    }
    if let Some(memory) = &stats.memory {
        assert_eq!(memory.limit, Some(67_108_864));
    }
    assert!(stats.cpu.is_some());

    // The kernel shows a frozen task as D (uninterruptible), a sleeping one
    // as S; the child sleeps in read(2) until killed.
    wait_for_state(pid, 'S');
    cg.freeze().expect("freeze");
    assert!(cg.is_frozen().expect("state"));
    assert_eq!(
        task_state(pid),
        'D',
        "freeze returned before the task froze"
    );
    cg.thaw().expect("thaw");
    assert!(!cg.is_frozen().expect("state"));
    wait_for_state(pid, 'S');

    guard.kill_children();
    assert_eq!(cg.procs().expect("procs"), [] as [i32; 0]);
    cg.destroy().expect("destroy");
    assert!(!cg.exists());
    for parent in &guard.parents {
        std::fs::remove_dir(parent).expect("remove test parent");
    }
    assert_eq!(guard.leftovers(), [] as [PathBuf; 0]);
}

#[test]
fn kernel_hugetlb_limit_where_the_host_has_it() {
    let Some(guard) = Guard::new("hugetlb") else {
        return;
    };
    let cg = &guard.cgroup;
    cg.create().expect("create");
    let has_2mb = std::path::Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists();
    let result = cg.apply(&resources(
        r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}"#,
    ));
    match (cg.target("hugetlb"), result) {
        (Target::V1(dir), Ok(())) => {
            assert_eq!(
                fs::read(dir, "hugetlb.2MB.limit_in_bytes")
                    .expect("read")
                    .trim(),
                "4194304"
            );
            eprintln!("hugetlb limit checked in v1 {}", dir.display());
        }
        (Target::V2(dir), Ok(())) => {
            assert_eq!(
                fs::read(dir, "hugetlb.2MB.max").expect("read").trim(),
                "4194304"
            );
            eprintln!("hugetlb limit checked in cgroup2 {}", dir.display());
        }
        (_, Err(e)) if !has_2mb => eprintln!("no 2MB hugepages here: {e}"),
        (
            _,
            Err(CgroupError::ControllerUnavailable { .. } | CgroupError::ControllerMissing { .. }),
        ) => {
            eprintln!("skipping: no hugetlb controller on this host");
        }
        (_, result) => panic!("unexpected: {result:?}"),
    }
    cg.destroy().expect("destroy");
    assert!(!cg.exists());
}

#[test]
fn kernel_bpf_device_filter_on_cgroup2() {
    let Some(mut guard) = Guard::new("devices") else {
        return;
    };
    let cg = guard.cgroup.clone();
    let Some(dir) = cg.unified_path().map(PathBuf::from) else {
        eprintln!("skipping: no cgroup2 mount on this host");
        return;
    };
    cg.create().expect("create");

    let null_only = parse_rules(&rules_from_json(
        r#"[{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]"#,
    ))
    .expect("rules");
    devices_bpf::install(&dir, &null_only).expect("install filter");

    // The shell opens the devices itself, inside the cgroup, once woken.
    let script = "read _; \
                  if (: > /dev/null) 2>/dev/null; then echo null-ok; fi; \
                  if (exec 3</dev/zero) 2>/dev/null; then echo zero-ok; fi; \
                  echo done";
    let probe = |guard: &mut Guard| -> String {
        let pid = guard.spawn(script);
        cg.add_process(pid).expect("add process");
        let child = guard.children.last_mut().expect("child");
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin).expect("wake child");
        let stdout = child.stdout.take().expect("stdout");
        let mut out = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            let done = line == "done";
            out.push_str(&line);
            out.push('\n');
            if done {
                break;
            }
        }
        guard.kill_children();
        out
    };
    let out = probe(&mut guard);
    eprintln!("with /dev/null allowed: {out:?}");
    assert!(out.contains("null-ok"), "{out}");
    assert!(!out.contains("zero-ok"), "{out}");

    // Replacing the filter detaches the old one: /dev/zero opens now.
    let both = parse_rules(&rules_from_json(
        r#"[{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"}]"#,
    ))
    .expect("rules");
    devices_bpf::install(&dir, &both).expect("replace filter");
    let out = probe(&mut guard);
    eprintln!("with /dev/null and /dev/zero allowed: {out:?}");
    assert!(out.contains("null-ok") && out.contains("zero-ok"), "{out}");

    cg.destroy().expect("destroy");
    assert!(!cg.exists());
}
