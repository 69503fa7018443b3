//! The engines measured through their command line, each an instance that
//! holds the test image:
//!
//! - muelle: a private instance (`--root` in the bench's data folder,
//!   `--runroot` in its /run folder), the image loaded from the test
//!   image's archive, as `cargo xtask tour` does it.
//! - podman: the same, with every store path of podman pointed into the
//!   bench's folders, runc as its runtime, and the ulimits this machine
//!   needs on every container; the image from the same archive (`podman
//!   load`).
//! - docker: only when a dockerd already runs (the bench never starts
//!   one); the image is loaded when missing and removed again at the end.
//!
//! Clean-up ([`Cli::clean_up`], also on drop) removes every container of a
//! private instance, waits for its helper processes (a monitor folding an
//! exit, podman's `container cleanup`) and kills, by pid, any still there
//! after that; podman's store then goes through `podman system reset`,
//! which unmounts what its driver mounted and frees the containers' locks
//! (shared by all podman stores of the machine). The folders themselves go
//! with the bench's [`Workdir`](super::workdir::Workdir).

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::guard::{self, Quiet};
use super::workdir::Dirs;
use crate::bench::common::Unavailable;
use crate::bench::exec;
use crate::test_image::IMAGE_NAME;

/// A command taking longer is killed and its run counted as failed.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Removing a thousand containers takes a while.
const CLEAN_UP_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the helpers of an instance get to finish after its containers
/// are removed.
const HELPERS_TIMEOUT: Duration = Duration::from_secs(15);

/// The probe's command: it prints its pid, which is 1 only as the init of
/// a new pid namespace.
pub const PROBE_COMMAND: [&str; 3] = ["sh", "-c", "echo probe-pid=$$"];
pub const PROBE_EXPECTED: &str = "probe-pid=1";
/// The probe on a bridge network: it also lists eth0's IPv4 address.
const NET_PROBE_COMMAND: [&str; 3] = ["sh", "-c", "echo probe-pid=$$; ip -o -4 addr show dev eth0"];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Flavor {
    Muelle,
    Podman,
    Docker,
}

impl Flavor {
    pub fn name(self) -> &'static str {
        match self {
            Self::Muelle => "muelle",
            Self::Podman => "podman",
            Self::Docker => "docker",
        }
    }

    /// The flags of every `run` and `create` besides the network's.
    fn limits(self) -> &'static [&'static str] {
        match self {
            Self::Podman => &[
                "--ulimit",
                "nofile=20000:20000",
                "--ulimit",
                "nproc=32768:32768",
            ],
            Self::Muelle | Self::Docker => &[],
        }
    }
}

/// The network a container is on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Net {
    /// `--network none`: a loopback only.
    None,
    /// No `--network`: the engine's default, a bridge network.
    Default,
}

impl Net {
    fn flags(self) -> &'static [&'static str] {
        match self {
            Self::None => &["--network", "none"],
            Self::Default => &[],
        }
    }
}

pub struct Cli {
    pub flavor: Flavor,
    program: PathBuf,
    /// The global options that point the tool at its private instance.
    global: Vec<OsString>,
    /// The instance's data root, which its helper processes name on their
    /// command line; none for docker.
    root: Option<PathBuf>,
    /// Commands' output, read back for ids and errors.
    log: File,
    /// The ids of the containers the bench saw, for the cgroup check.
    pub ids: Vec<String>,
    /// docker: the bench loaded the image, so it removes it.
    remove_image: bool,
    cleaned: bool,
}

impl Cli {
    fn new(
        flavor: Flavor,
        program: &Path,
        global: Vec<OsString>,
        root: Option<PathBuf>,
    ) -> Result<Self, String> {
        let log = tempfile::tempfile().map_err(|e| format!("cannot create a log file: {e}"))?;
        Ok(Self {
            flavor,
            program: program.to_owned(),
            global,
            root,
            log,
            ids: Vec::new(),
            remove_image: false,
            cleaned: false,
        })
    }

    /// muelle's private instance in `dirs` (its folders made by muelle).
    pub fn muelle(program: &Path, dirs: &Dirs) -> Result<Self, String> {
        let root = dirs.data.join("muelle");
        let global = vec![
            "--root".into(),
            root.clone().into(),
            "--runroot".into(),
            dirs.run.join("muelle").into(),
        ];
        Self::new(Flavor::Muelle, program, global, Some(root))
    }

    /// podman's private instance in `dirs`.
    pub fn podman(program: &Path, dirs: &Dirs) -> Result<Self, String> {
        let dir = dirs.data.join("podman");
        let at = |sub: &str| dir.join(sub).into_os_string();
        let global = vec![
            "--root".into(),
            at("root"),
            "--runroot".into(),
            dirs.run.join("podman").into(),
            "--tmpdir".into(),
            at("tmp"),
            "--network-config-dir".into(),
            at("networks"),
            "--volumepath".into(),
            at("volumes"),
            "--events-backend".into(),
            "none".into(),
            "--storage-driver".into(),
            "overlay".into(),
            "--runtime".into(),
            "runc".into(),
        ];
        Self::new(Flavor::Podman, program, global, Some(dir))
    }

    /// The machine's docker, when a dockerd answers.
    pub fn docker(program: &Path) -> Result<Self, Unavailable> {
        let mut docker =
            Self::new(Flavor::Docker, program, Vec::new(), None).map_err(Unavailable::Failed)?;
        // Cleaning up would remove nothing the bench made, so far.
        docker.cleaned = true;
        match docker.output(&["info", "--format", "{{.ServerVersion}}"]) {
            Ok(_) => {
                docker.cleaned = false;
                Ok(docker)
            }
            Err(reason) => Err(Unavailable::Skipped(format!(
                "no dockerd running (the bench does not start one): {reason}"
            ))),
        }
    }

    pub fn name(&self) -> &'static str {
        self.flavor.name()
    }

    /// `TOOL GLOBAL... ARGS`, in a process group of its own.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.global).args(args).own_group();
        cmd
    }

    /// `run`, `before`, `--network none`, the limits, the image and `cmd`.
    pub fn run_args<'a>(&self, before: &[&'a str], cmd: &[&'a str]) -> Vec<&'a str> {
        self.run_args_on(Net::None, before, cmd)
    }

    /// `run`, `before`, the network's flags, the limits, the image and
    /// `cmd`.
    pub fn run_args_on<'a>(&self, net: Net, before: &[&'a str], cmd: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["run"];
        args.extend_from_slice(before);
        args.extend_from_slice(net.flags());
        args.extend_from_slice(self.flavor.limits());
        args.push(IMAGE_NAME);
        args.extend_from_slice(cmd);
        args
    }

    /// `create`, `--network none`, the limits, the image and `cmd`.
    pub fn create_args<'a>(&self, cmd: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["create"];
        args.extend_from_slice(Net::None.flags());
        args.extend_from_slice(self.flavor.limits());
        args.push(IMAGE_NAME);
        args.extend_from_slice(cmd);
        args
    }

    /// One timed command: its wall time, or why it failed.
    pub fn timed(&mut self, args: &[&str]) -> Result<f64, String> {
        let outcome = exec::timed_within(&mut self.command(args), &mut self.log, TIMEOUT);
        guard::reap();
        outcome
    }

    /// The output (stdout and stderr) of a command that succeeded.
    pub fn output(&mut self, args: &[&str]) -> Result<String, String> {
        self.output_within(args, TIMEOUT)
    }

    fn output_within(&mut self, args: &[&str], timeout: Duration) -> Result<String, String> {
        let outcome = exec::timed_within(&mut self.command(args), &mut self.log, timeout);
        guard::reap();
        outcome?;
        Ok(exec::read(&mut self.log).unwrap_or_default())
    }

    /// What the last command printed.
    pub fn last_output(&mut self) -> String {
        exec::read(&mut self.log).unwrap_or_default()
    }

    /// The id the last `run -d` or `create` printed, remembered.
    pub fn last_id(&mut self) -> Result<String, String> {
        let text = self.last_output();
        let id = text
            .lines()
            .map(str::trim)
            .rfind(|l| l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned)
            .ok_or_else(|| format!("printed no container id: {:?}", text.trim()))?;
        self.ids.push(id.clone());
        Ok(id)
    }

    /// Gets the test image into the instance.
    pub fn load(&mut self, archive: &Path) -> Result<(), String> {
        if self.flavor == Flavor::Docker && self.output(&["image", "inspect", IMAGE_NAME]).is_ok() {
            return Ok(());
        }
        let archive = archive.to_str().ok_or("the archive's path is not UTF-8")?;
        self.output_within(&["load", "-i", archive], CLEAN_UP_TIMEOUT)?;
        self.remove_image = self.flavor == Flavor::Docker;
        Ok(())
    }

    /// One `run --rm` that must print [`PROBE_EXPECTED`], so that a tool
    /// that exits 0 without running the container is not timed as a fast
    /// one.
    pub fn probe(&mut self) -> Result<(), String> {
        self.probe_on(Net::None)
    }

    /// [`Cli::probe`] on `net`; on a bridge network the container must
    /// also have an IPv4 address on eth0.
    pub fn probe_on(&mut self, net: Net) -> Result<(), String> {
        let command = match net {
            Net::None => PROBE_COMMAND,
            Net::Default => NET_PROBE_COMMAND,
        };
        let args = self.run_args_on(net, &["--rm"], &command);
        let printed = self.output(&args)?;
        if !printed.lines().any(|l| l.trim() == PROBE_EXPECTED) {
            return Err(format!(
                "exited 0 but did not run the container (printed {:?}, not {PROBE_EXPECTED})",
                printed.trim()
            ));
        }
        if net == Net::Default && !printed.contains(" inet ") {
            return Err(format!(
                "the container has no IPv4 address on eth0 (printed {:?})",
                printed.trim()
            ));
        }
        Ok(())
    }

    /// `run -d IMAGE sleep 1000`: the new container's id.
    pub fn start_sleeper(&mut self) -> Result<String, String> {
        let args = self.run_args(&["-d"], &["sleep", "1000"]);
        self.output(&args)?;
        self.last_id()
    }

    /// The instance's containers, all of them.
    pub fn container_ids(&mut self) -> Result<Vec<String>, String> {
        let text = self.output(&["ps", "-a", "-q", "--no-trunc"])?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned)
            .collect())
    }

    /// Removes every container of the instance (at once, killing the
    /// running ones) and waits for its helpers to finish.
    pub fn remove_all(&mut self) -> Result<(), String> {
        let ids = self.container_ids()?;
        self.ids.extend(ids.iter().cloned());
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            if self.flavor == Flavor::Podman {
                args.extend(["-t", "0"]);
            }
            args.extend(ids.iter().map(String::as_str));
            self.output_within(&args, CLEAN_UP_TIMEOUT)?;
        }
        self.wait_for_helpers()
    }

    /// Waits for the instance's helper processes; kills by pid the ones
    /// still there after [`HELPERS_TIMEOUT`], and says so.
    fn wait_for_helpers(&mut self) -> Result<(), String> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        let left = guard::end_processes_naming(&root.to_string_lossy(), HELPERS_TIMEOUT);
        if left.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{} processes still running {}s after their containers were removed, killed: {:?}",
            left.len(),
            HELPERS_TIMEOUT.as_secs(),
            left
        ))
    }

    /// Everything of the instance gone (see the module doc); the problems
    /// met on the way.
    pub fn clean_up(&mut self) -> Vec<String> {
        if self.cleaned {
            return Vec::new();
        }
        self.cleaned = true;
        let mut problems = Vec::new();
        let name = self.name();
        // An instance that never got its folders has nothing to remove
        // (and podman would make a store just to find it empty).
        let made = self.root.as_ref().is_some_and(|r| r.exists());
        match self.flavor {
            Flavor::Muelle | Flavor::Podman if !made => {}
            Flavor::Muelle => {
                if let Err(e) = self.remove_all() {
                    problems.push(format!("muelle: {e}"));
                }
            }
            Flavor::Podman => {
                if let Err(e) = self.remove_all() {
                    problems.push(format!("podman: {e}"));
                }
                if let Err(e) = self.output_within(&["system", "reset", "-f"], CLEAN_UP_TIMEOUT) {
                    problems.push(format!("podman system reset: {e}"));
                }
                if let Err(e) = self.wait_for_helpers() {
                    problems.push(format!("podman: {e}"));
                }
            }
            Flavor::Docker => {
                if self.remove_image
                    && let Err(e) = self.output(&["rmi", IMAGE_NAME])
                {
                    problems.push(format!("docker rmi {IMAGE_NAME}: {e}"));
                }
            }
        }
        for problem in &problems {
            eprintln!("{name} clean-up: {problem}");
        }
        problems
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        self.clean_up();
    }
}
