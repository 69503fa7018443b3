//! Shared by the CLI's integration tests: a muelle with a private root
//! (and runroot inside it), and the helpers to run it and read its output.
//! `Instance` is the one place that knows how to run muelle in isolation.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const MUELLE: &str = env!("CARGO_BIN_EXE_muelle");

/// The image `Instance::load_busybox` makes.
pub const IMAGE: &str = "localhost/busybox";

/// An instance with the busybox image, or `None` (skipped, with the reason
/// printed) without busybox.
pub fn instance() -> Option<Instance> {
    let instance = Instance::new();
    instance.load_busybox().then_some(instance)
}

/// A command's exit code (-1 when a signal ended it).
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// A muelle whose `--root` is a fresh temporary folder (removed on drop),
/// `--runroot` its `run` subfolder, and optionally its own `--config`.
///
/// Every command runs in the instance's own network namespace (with
/// only `lo` at first): its bridges, veths, firewall rules and published
/// ports are its own, so tests running side by side never meet, and none
/// of it can reach the host's network. The namespace goes with the
/// instance.
pub struct Instance {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    config: Option<PathBuf>,
    netns: std::os::fd::OwnedFd,
}

impl Instance {
    pub fn new() -> Instance {
        let tmp = tempfile::Builder::new()
            .prefix("muelle-test-root")
            .tempdir()
            .expect("temp root");
        // What muelle prints (mountpoints, state folders) is canonical.
        let root = std::fs::canonicalize(tmp.path()).expect("canonical root");
        Instance {
            _tmp: tmp,
            root,
            config: None,
            netns: new_netns(),
        }
    }

    /// The instance's network namespace (for `in_netns`).
    pub fn netns(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.netns)
    }

    /// Runs `f` on a thread inside the instance's network namespace (a
    /// client on "the host" of its containers).
    pub fn in_netns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let fd = self.netns();
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET)
                    .expect("entering the instance's network namespace");
                f()
            })
            .join()
            .expect("thread in the instance's network namespace")
        })
    }

    /// A command (not muelle) run in the instance's network namespace.
    pub fn host_command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        enter_netns(&mut cmd, &self.netns);
        cmd
    }

    /// Passes `--config PATH` to every command.
    pub fn with_config(mut self, path: impl Into<PathBuf>) -> Instance {
        self.config = Some(path.into());
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `muelle ARGS` against this instance, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(MUELLE);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(self.root.join("run"));
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        cmd.args(args);
        enter_netns(&mut cmd, &self.netns);
        cmd
    }

    /// `muelle ARGS` with stdin closed.
    pub fn muelle(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("spawn muelle")
    }

    /// `muelle ARGS` that succeeds, its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.muelle(args);
        assert!(
            out.status.success(),
            "muelle {args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// `muelle ARGS` reading `input` on stdin.
    pub fn with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn muelle");
        let mut stdin = child.stdin.take().expect("stdin");
        // muelle may refuse before reading it all: a broken pipe is fine.
        let _ = stdin.write_all(input);
        drop(stdin);
        child.wait_with_output().expect("wait muelle")
    }
}

/// A new network namespace with `lo` up, made on a thread of its own (the
/// namespace is a thread's), held by the descriptor returned.
fn new_netns() -> std::os::fd::OwnedFd {
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("ip link set lo up");
        assert!(up.success(), "ip link set lo up");
        std::fs::File::open("/proc/thread-self/ns/net")
            .expect("the thread's network namespace")
            .into()
    })
    .join()
    .expect("netns thread")
}

/// Has `cmd` run in the network namespace `netns`.
fn enter_netns(cmd: &mut Command, netns: &std::os::fd::OwnedFd) {
    use std::os::unix::process::CommandExt;
    let fd = std::os::fd::AsRawFd::as_raw_fd(netns);
    // SAFETY: only setns(2) between fork and exec; `fd` outlives the
    // command (the instance holds it).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The busybox applets the container tests use.
const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "sleep", "true", "false", "ls", "id", "env", "hostname", "ps", "wc",
    "kill", "test", "pwd", "mkdir", "touch", "grep", "printf", "head", "stat", "nslookup", "nc",
    "httpd", "ip",
];

/// A root filesystem tar with the host's static busybox, its applets, and
/// root's passwd/group entries; `None` without /bin/busybox.
pub fn busybox_rootfs_tar() -> Option<Vec<u8>> {
    let busybox = std::fs::read("/bin/busybox").ok()?;
    let mut b = tar::Builder::new(Vec::new());
    let header = |path: &str, kind: tar::EntryType, size: u64, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).expect("path");
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        h
    };
    for dir in ["bin/", "etc/", "tmp/", "root/", "data/"] {
        b.append(&header(dir, tar::EntryType::Directory, 0, 0o755), &[][..])
            .expect("dir");
    }
    b.append(
        &header(
            "bin/busybox",
            tar::EntryType::Regular,
            busybox.len() as u64,
            0o755,
        ),
        busybox.as_slice(),
    )
    .expect("busybox");
    for applet in APPLETS {
        let mut h = header(&format!("bin/{applet}"), tar::EntryType::Symlink, 0, 0o777);
        h.set_link_name("busybox").expect("link");
        h.set_cksum();
        b.append(&h, &[][..]).expect("applet");
    }
    for (path, text) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ("etc/image-file", "from the image\n"),
    ] {
        b.append(
            &header(path, tar::EntryType::Regular, text.len() as u64, 0o644),
            text.as_bytes(),
        )
        .expect("file");
    }
    Some(b.into_inner().expect("tar"))
}

impl Instance {
    /// Imports `localhost/busybox` (CMD sh) from the host's busybox;
    /// `false` (with the reason printed) when there is none.
    pub fn load_busybox(&self) -> bool {
        let Some(tar) = busybox_rootfs_tar() else {
            eprintln!("skipped: no /bin/busybox (apt-get install busybox-static)");
            return false;
        };
        let path = self.root.join("busybox.tar");
        std::fs::write(&path, tar).expect("write busybox.tar");
        self.ok(&[
            "import",
            "--change",
            "CMD [\"sh\"]",
            path.to_str().expect("utf-8"),
            "localhost/busybox",
        ]);
        true
    }

    /// Removes every container of the instance, then checks that nothing
    /// of them is left on the host: no mount under the root, no monitor.
    pub fn remove_all_and_check(&self) {
        let ids = self.ok(&["ps", "-aq", "--no-trunc"]);
        let ids: Vec<&str> = ids.lines().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids);
            self.ok(&args);
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let root = self.root.display().to_string();
        let left: Vec<&str> = mounts
            .lines()
            .filter(|l| l.contains(&root) && !l.contains("/volumes/"))
            .collect();
        assert!(left.is_empty(), "mounts left behind: {left:#?}");
        // A `run --rm` monitor deletes the container's files after its
        // command said `done`.
        wait_until(|| self.monitors().is_empty());
        assert!(
            self.monitors().is_empty(),
            "monitors left behind: {:?}",
            self.monitors()
        );
        self.wait_for_helpers();
        let containers = self.root.join("containers");
        let files: Vec<_> = std::fs::read_dir(&containers)
            .map(|dir| dir.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        let trash: Vec<_> = std::fs::read_dir(containers.join(".trash"))
            .map(|dir| dir.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(
            files.iter().all(|f| f.ends_with(".trash")) && trash.is_empty(),
            "container files left behind: {files:?} {trash:?}"
        );
    }

    /// Waits (10 s at most) until no process of this instance runs: a
    /// monitor's `container cleanup` may still be folding an exit, and
    /// the root must not be removed under it.
    pub fn wait_for_helpers(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.processes().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The pids of this instance's container monitors.
    pub fn monitors(&self) -> Vec<i32> {
        self.processes()
            .into_iter()
            .filter(|(_, comm)| comm == "muelle-monitor")
            .map(|(pid, _)| pid)
            .collect()
    }

    /// Every process whose command line names this instance's root, with
    /// its command name.
    fn processes(&self) -> Vec<(i32, String)> {
        let root = self.root.display().to_string();
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&root) {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                found.push((pid, comm.trim().to_owned()));
            }
        }
        found
    }
}

impl Drop for Instance {
    /// A failed test still takes its containers down.
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Ok(out) = self.command(&["ps", "-aq", "--no-trunc"]).output()
        {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self.command(&["rm", "-f", "-v", id]).output();
            }
        }
        self.wait_for_helpers();
    }
}

/// Waits (10 s at most) until `done` holds.
pub fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

impl Instance {
    /// `muelle ARGS` on a new pty of `rows` x `cols` that is its
    /// controlling terminal; the child and the pty's master (non-blocking).
    pub fn spawn_on_pty(
        &self,
        args: &[&str],
        rows: u16,
        cols: u16,
    ) -> (std::process::Child, std::fs::File) {
        use std::os::unix::process::CommandExt;
        let size = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
        let mut cmd = self.command(args);
        cmd.stdin(pty.slave.try_clone().expect("dup"))
            .stdout(pty.slave.try_clone().expect("dup"))
            .stderr(pty.slave);
        // SAFETY: setsid and ioctl are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn muelle on a pty");
        nix::fcntl::fcntl(
            &pty.master,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .expect("nonblocking");
        (child, std::fs::File::from(pty.master))
    }
}

/// Reads a pty master until `needle` shows up (10 s at most).
pub fn read_pty_until(master: &mut std::fs::File, seen: &mut String, needle: &str) {
    use std::io::Read;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle:?} in {seen:?}"
        );
        let mut buf = [0u8; 4096];
        match master.read(&mut buf) {
            Ok(n) if n > 0 => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            _ => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
}
