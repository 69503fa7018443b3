//! Busybox OCI bundles for benches and tests.
//!
//! A [`Bundle`] is a temporary directory holding `rootfs/` (a static busybox
//! with a symlink per applet in `/bin`, and the usual empty mount points) and
//! a runc-style `config.json`. The directory and all it holds are removed
//! when the `Bundle` is dropped, or when building it fails half-way.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::util;

/// Where the static busybox comes from (Debian package busybox-static).
pub const BUSYBOX: &str = "/bin/busybox";

/// What to put into a bundle; [`BundleBuilder::build`] makes it.
pub struct BundleBuilder {
    args: Vec<String>,
    without_namespaces: Vec<String>,
}

/// A bundle on disk, removed on drop.
pub struct Bundle {
    dir: TempDir,
    spec_source: &'static str,
}

impl BundleBuilder {
    /// A bundle running `sh` with runc's default namespaces.
    pub fn new() -> Self {
        Self {
            args: vec!["sh".to_owned()],
            without_namespaces: Vec::new(),
        }
    }

    /// The container process's argv.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Share the host's namespace of this OCI type ("network", "pid", ...)
    /// instead of creating a new one.
    pub fn without_namespace(mut self, kind: &str) -> Self {
        self.without_namespaces.push(kind.to_owned());
        self
    }

    pub fn build(&self) -> Result<Bundle> {
        let dir = tempfile::Builder::new()
            .prefix("muelle-bundle-")
            .tempdir()
            .context("cannot create a temp dir for the bundle")?;
        make_rootfs(&dir.path().join("rootfs"))?;
        let (mut spec, spec_source) = base_spec(dir.path())?;
        self.apply(&mut spec)?;
        let config = dir.path().join("config.json");
        let text = serde_json::to_string_pretty(&spec).context("cannot serialize config.json")?;
        fs::write(&config, text).with_context(|| format!("cannot write {}", config.display()))?;
        Ok(Bundle { dir, spec_source })
    }

    /// Sets the process (non-terminal) and drops the unwanted namespaces.
    fn apply(&self, spec: &mut Value) -> Result<()> {
        let process = spec
            .get_mut("process")
            .and_then(Value::as_object_mut)
            .context("config.json has no process object")?;
        process.insert("args".to_owned(), json!(self.args));
        process.insert("terminal".to_owned(), json!(false));
        let namespaces = spec
            .pointer_mut("/linux/namespaces")
            .and_then(Value::as_array_mut)
            .context("config.json has no linux.namespaces array")?;
        namespaces.retain(|ns| {
            let kind = ns.get("type").and_then(Value::as_str).unwrap_or_default();
            !self.without_namespaces.iter().any(|w| w == kind)
        });
        Ok(())
    }
}

impl Default for BundleBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl Bundle {
    /// The bundle directory, as given to `RUNTIME run --bundle`.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Where config.json came from: `runc spec` or the built-in copy of it.
    pub fn spec_source(&self) -> &'static str {
        self.spec_source
    }
}

/// rootfs with busybox, its applet links, /etc/{passwd,group} for root and
/// the empty directories the default mounts need.
fn make_rootfs(rootfs: &Path) -> Result<()> {
    for dir in ["bin", "etc", "proc", "sys", "dev", "tmp"] {
        let dir = rootfs.join(dir);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))
        .context("cannot chmod rootfs/tmp")?;
    fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
        .context("cannot write rootfs/etc/passwd")?;
    fs::write(rootfs.join("etc/group"), "root:x:0:\n").context("cannot write rootfs/etc/group")?;

    let busybox = Path::new(BUSYBOX);
    let image = fs::read(busybox)
        .with_context(|| format!("cannot read {BUSYBOX} (apt-get install busybox-static)"))?;
    if !is_static_elf(&image) {
        bail!("{BUSYBOX} is not a static ELF binary (apt-get install busybox-static)");
    }
    let bin = rootfs.join("bin");
    let target = bin.join("busybox");
    fs::copy(busybox, &target).with_context(|| format!("cannot copy {BUSYBOX}"))?;

    for applet in applets(busybox)? {
        if applet == "busybox" {
            continue;
        }
        let link = bin.join(&applet);
        symlink("busybox", &link).with_context(|| format!("cannot create {}", link.display()))?;
    }
    Ok(())
}

/// The applet names `busybox --list` prints.
fn applets(busybox: &Path) -> Result<Vec<String>> {
    let output = Command::new(busybox)
        .arg("--list")
        .output()
        .with_context(|| format!("cannot run {} --list", busybox.display()))?;
    if !output.status.success() {
        bail!("{} --list failed ({})", busybox.display(), output.status);
    }
    let list = String::from_utf8(output.stdout).context("busybox --list printed non-UTF-8")?;
    Ok(list
        .lines()
        .map(str::trim)
        .filter(|name| !name.is_empty() && !name.contains('/'))
        .map(str::to_owned)
        .collect())
}

/// Whether `image` is a 64-bit little-endian ELF without an interpreter
/// (PT_INTERP), that is one that runs without a dynamic loader.
pub fn is_static_elf(image: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| {
        image
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        image
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let u64_at = |at: usize| {
        image
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    // Magic, ELFCLASS64, ELFDATA2LSB.
    if image.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1]) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    (0..usize::from(phnum)).all(|i| {
        let at = phoff + i * usize::from(phentsize);
        u32_at(at).is_some_and(|p_type| p_type != PT_INTERP)
    })
}

/// config.json as `runc spec` writes it, or the built-in copy of runc 1.1's
/// default spec when runc is not installed.
fn base_spec(dir: &Path) -> Result<(Value, &'static str)> {
    let Some(runc) = util::find_program("runc") else {
        return Ok((default_spec(), "built-in runc default spec"));
    };
    let output = Command::new(&runc)
        .args(["spec", "--bundle"])
        .arg(dir)
        .output()
        .context("cannot run `runc spec`")?;
    if !output.status.success() {
        bail!(
            "`runc spec` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let path = dir.join("config.json");
    let text = fs::read_to_string(&path)
        .with_context(|| format!("cannot read {} from `runc spec`", path.display()))?;
    let spec = serde_json::from_str(&text).context("`runc spec` wrote invalid JSON")?;
    Ok((spec, "`runc spec`"))
}

/// runc 1.1's `runc spec` output: a rootful container running `sh` with new
/// pid, network, ipc, uts and mount namespaces.
fn default_spec() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "runc",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_args_and_drops_namespace() {
        let mut spec = default_spec();
        BundleBuilder::new()
            .args(["/bin/true"])
            .without_namespace("network")
            .apply(&mut spec)
            .expect("default spec has process and namespaces");
        assert_eq!(spec["process"]["args"], json!(["/bin/true"]));
        assert_eq!(spec["process"]["terminal"], json!(false));
        let kinds: Vec<&str> = spec["linux"]["namespaces"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|ns| ns["type"].as_str())
            .collect();
        assert_eq!(kinds, ["pid", "ipc", "uts", "mount"]);
    }

    #[test]
    fn apply_rejects_spec_without_process() {
        let mut spec = json!({ "linux": { "namespaces": [] } });
        assert!(BundleBuilder::new().apply(&mut spec).is_err());
    }

    #[test]
    fn tells_static_from_dynamic_elf() {
        // Test binaries for linux-gnu are dynamically linked.
        let me = std::env::current_exe().expect("test binary path");
        let image = fs::read(me).expect("read test binary");
        assert!(!is_static_elf(&image));
        assert!(!is_static_elf(b"#!/bin/sh\n"));
        assert!(!is_static_elf(&image[..0x30]));
    }

    #[test]
    fn builds_busybox_bundle() {
        if !Path::new(BUSYBOX).exists() {
            eprintln!("skipped: no {BUSYBOX}");
            return;
        }
        let bundle = BundleBuilder::new().build().expect("bundle");
        let rootfs = bundle.path().join("rootfs");
        for applet in ["sh", "true", "sleep", "cat", "echo", "ls"] {
            assert!(rootfs.join("bin").join(applet).exists(), "{applet}");
        }
        let spec: Value = serde_json::from_slice(
            &fs::read(bundle.path().join("config.json")).expect("config.json"),
        )
        .expect("valid JSON");
        assert_eq!(spec["process"]["args"], json!(["sh"]));
        let path = bundle.path().to_owned();
        drop(bundle);
        assert!(!path.exists());
    }
}
