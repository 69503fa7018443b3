//! Shared by the integration tests: busybox bundles in temp folders, a
//! runtime root per test, unique ids, and a guard that deletes every
//! container the test made, also when the test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};

pub const RUNTIME: &str = env!("CARGO_BIN_EXE_muelle-runtime");
const BUSYBOX: &str = "/bin/busybox";

/// None (with the reason printed) when this machine can't run containers.
pub fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("integration tests need root".into());
    }
    if !Path::new(BUSYBOX).exists() {
        return Some(format!(
            "{BUSYBOX} is missing: apt-get install busybox-static"
        ));
    }
    None
}

#[macro_export]
macro_rules! require_root {
    () => {
        if let Some(reason) = support::skip_reason() {
            eprintln!("skipped: {reason}");
            return;
        }
    };
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn unique_id(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("muelle-test-{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// A bundle with a busybox rootfs and runc's default spec adjusted for
/// tests: no terminal, the given args.
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub spec: Value,
}

impl Bundle {
    pub fn new(args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("muelle-test-bundle")
            .tempdir()
            .expect("temp bundle");
        let rootfs = dir.path().join("rootfs");
        for sub in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
            std::fs::create_dir_all(rootfs.join(sub)).expect("rootfs folder");
        }
        std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).expect("copy busybox");
        let list = Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .expect("busybox --list");
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
            }
        }
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        )
        .expect("passwd");
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("group");
        let spec_out = Command::new(RUNTIME)
            .args(["spec", "--bundle"])
            .arg(dir.path())
            .output()
            .expect("muelle-runtime spec");
        assert!(
            spec_out.status.success(),
            "spec: {}",
            String::from_utf8_lossy(&spec_out.stderr)
        );
        let text = std::fs::read_to_string(dir.path().join("config.json")).expect("config.json");
        let mut spec: Value = serde_json::from_str(&text).expect("spec json");
        spec["process"]["terminal"] = json!(false);
        spec["process"]["args"] = json!(args);
        spec["root"]["readonly"] = json!(false);
        let mut bundle = Bundle { dir, spec };
        bundle.save();
        bundle
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    pub fn save(&mut self) {
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_string_pretty(&self.spec).expect("spec"),
        )
        .expect("write config.json");
    }

    /// Changes the spec and writes it back.
    pub fn edit(&mut self, change: impl FnOnce(&mut Value)) {
        change(&mut self.spec);
        self.save();
    }
}

/// A runtime root of its own and the ids made under it; Drop deletes
/// them all with --force.
pub struct Runtime {
    pub root: tempfile::TempDir,
    ids: std::sync::Mutex<Vec<String>>,
}

impl Runtime {
    pub fn new() -> Runtime {
        Runtime {
            root: tempfile::Builder::new()
                .prefix("muelle-test-root")
                .tempdir()
                .expect("temp root"),
            ids: Default::default(),
        }
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(RUNTIME);
        cmd.arg("--root").arg(self.root.path());
        cmd
    }

    /// Runs `muelle-runtime ARGS` and returns its output. A created or
    /// detached container keeps the runtime's stdio open as long as it
    /// runs, so output goes to files, read once the runtime exits, instead
    /// of pipes that would not close.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = tempfile::NamedTempFile::new().expect("temp stdout");
        let err = tempfile::NamedTempFile::new().expect("temp stderr");
        let status = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.reopen().expect("stdout file"))
            .stderr(err.reopen().expect("stderr file"))
            .status()
            .expect("spawn muelle-runtime");
        Output {
            status,
            stdout: std::fs::read(out.path()).unwrap_or_default(),
            stderr: std::fs::read(err.path()).unwrap_or_default(),
        }
    }

    /// `run` of the bundle in the foreground under a new id named after
    /// `what`; returns the output and the id.
    pub fn run_bundle(&self, bundle: &Bundle, what: &str) -> (Output, String) {
        let id = self.id(what);
        let bundle = bundle
            .path()
            .to_str()
            .expect("utf-8 bundle path")
            .to_owned();
        let out = self.run(&["run", "--bundle", &bundle, &id]);
        (out, id)
    }

    /// A new id, remembered for clean-up.
    pub fn id(&self, prefix: &str) -> String {
        let id = unique_id(prefix);
        self.ids.lock().expect("ids").push(id.clone());
        id
    }

    pub fn state(&self, id: &str) -> Value {
        let out = self.run(&["state", id]);
        assert!(out.status.success(), "state {id}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("state json")
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.ids.lock().map(|ids| ids.clone()).unwrap_or_default() {
            let _ = self.run(&["delete", "--force", &id]);
        }
        remove_default_cgroup_parents();
    }
}

/// The runtime keeps its `muelle` cgroup parent between containers (as
/// docker keeps its own); the tests leave nothing behind, so the last one
/// to finish removes it. rmdir fails while any container is left.
pub fn remove_default_cgroup_parents() {
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            let _ = std::fs::remove_dir(e.path().join("muelle"));
        }
    }
    let _ = std::fs::remove_dir("/sys/fs/cgroup/muelle");
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every cgroup folder the container could have had, on every hierarchy.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            let dir = e.path().join("muelle").join(id);
            if dir.exists() {
                found.push(dir);
            }
        }
    }
    let v2 = Path::new("/sys/fs/cgroup/muelle").join(id);
    if v2.exists() {
        found.push(v2);
    }
    found
}

/// Nothing of the container is left: no state, no cgroup, no mount.
pub fn assert_gone(rt: &Runtime, id: &str) {
    assert!(
        !rt.root.path().join(id).exists(),
        "state folder of {id} left behind"
    );
    assert_eq!(
        cgroup_dirs(id),
        Vec::<PathBuf>::new(),
        "cgroups of {id} left behind"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert!(!mounts.contains(id), "mounts of {id} left behind");
}
