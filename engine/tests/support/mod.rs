//! What the engine's container tests share: a busybox rootfs, ids, and the
//! cgroup checks that prove a test left nothing behind.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub const BUSYBOX: &str = "/bin/busybox";

/// A rootfs with busybox, the given applets, and users `root` and `app`
/// (uid 1000).
pub fn make_rootfs(rootfs: &Path, applets: &[&str]) {
    for dir in ["bin", "etc", "proc", "sys", "dev", "tmp", "home/app"] {
        std::fs::create_dir_all(rootfs.join(dir)).expect("rootfs folder");
    }
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).expect("copy busybox");
    for applet in applets {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).expect("applet");
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
    )
    .expect("passwd");
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\napp:x:1000:\n").expect("group");
}

/// 64 hex characters, as the engine's ids, unique to this run; `prefix`
/// (two hex characters) tells the test binaries apart.
pub fn unique_id(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}{:030x}{:032x}", std::process::id(), nanos)
}

/// runtime-core keeps its `muelle` cgroup parent between containers; a test
/// leaves nothing, so it removes it (rmdir fails while others use it).
pub fn remove_default_cgroup_parents() {
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            let _ = std::fs::remove_dir(e.path().join("muelle"));
        }
    }
    let _ = std::fs::remove_dir("/sys/fs/cgroup/muelle");
}

/// The container's cgroup folders that still exist.
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
