//! The per-container monitor (issue 5, "Model"): a small process of its
//! own, detached from the command that started it, that is the parent of
//! the container's init. It copies the container's stdout and stderr into
//! a JSON-lines log (docker's json-file format, rotated by size), reaps
//! init and records its exit in a file that the next `muelle` command
//! folds into the store, then deletes the runtime's state. It never opens
//! the sled store.
//!
//! The engine side is [`spawn`]: it runs the `muelle-monitor` binary with
//! the [`Job`] as its argument, in a new session, through an intermediate
//! process (so the monitor is nobody's child but init's reaper's), and
//! waits for the one line the monitor reports once the container runs, or
//! its create error. The monitor side is [`run`] (the binary's body).

mod attach;
mod log;
mod run;
mod zygote;

pub use attach::connect;
pub use log::JsonLog;
#[cfg(test)]
pub(crate) use log::entry;
pub use run::run;
pub use zygote::Zygote;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

/// The binary's name; found next to the running executable, or named by
/// [`BINARY_ENV`].
pub const BINARY: &str = "muelle-monitor";
/// Overrides where [`spawn`] finds the monitor binary (tests, packaging).
pub const BINARY_ENV: &str = "MUELLE_MONITOR";
/// The default size at which the log is rotated (one backup, `LOG.1`).
pub const DEFAULT_LOG_MAX: u64 = 10 * 1024 * 1024;

/// What a monitor is asked to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// The runtime's container id.
    pub id: String,
    /// The OCI bundle (config.json and rootfs).
    pub bundle: PathBuf,
    /// runtime-core's state root.
    pub state_root: PathBuf,
    /// The JSON-lines log; rotated to `LOG.1`.
    pub log_path: PathBuf,
    /// Where the exit is recorded ([`ExitRecord`]), written atomically.
    pub exit_path: PathBuf,
    /// Where the monitor says who it is once the container runs
    /// ([`MonitorFile`]), written atomically.
    #[serde(default)]
    pub monitor_path: Option<PathBuf>,
    /// `run -d`/`start` without attach. v1 behaves the same either way.
    #[serde(default)]
    pub detach: bool,
    /// Rotation size of the log, [`DEFAULT_LOG_MAX`] by default.
    #[serde(default = "default_log_max")]
    pub log_max_size: u64,
    /// `-i`: the container's stdin is a pipe the monitor holds open (and
    /// feeds from an attached caller), not /dev/null.
    #[serde(default)]
    pub open_stdin: bool,
    /// Run (detached, not waited for) once the exit is recorded.
    #[serde(default)]
    pub exit_command: Vec<String>,
    /// Where later callers attach (`muelle attach`); none without it.
    #[serde(default)]
    pub attach_socket: Option<PathBuf>,
    /// A caller attached from the start: descriptors the monitor inherits
    /// (see [`spawn`]).
    #[serde(default)]
    pub attach: Option<JobAttach>,
    /// That caller takes the container's exit over (`run --rm`): it hears
    /// the exit before the runtime state is deleted, and `released` once
    /// it is; the exit command runs only if the caller goes without
    /// saying `done`.
    #[serde(default)]
    pub handover: bool,
    /// What the monitor needs of the bundle's spec; read from it when
    /// missing.
    #[serde(default)]
    pub facts: Option<SpecFacts>,
    /// With `handover`: the folder the caller moves the container's files
    /// to, deleted once it said `done`.
    #[serde(default)]
    pub trash: Option<PathBuf>,
    /// Descriptors the monitor inherits (as `attach`'s) and keeps open
    /// until the container exits: the host ports published for it, so
    /// that nobody else takes them meanwhile.
    #[serde(default)]
    pub hold: Vec<i32>,
}

impl Job {
    /// Every descriptor of the caller's the monitor takes over: the
    /// attached caller's, then the held ones.
    pub fn passed_fds(&self) -> Vec<i32> {
        let mut fds = self.attach.map(|a| a.fds()).unwrap_or_default();
        fds.extend(&self.hold);
        fds
    }
}

/// What the monitor needs to know of the container's spec before it
/// creates the container: the engine that wrote the spec says, so the
/// monitor does not parse it (runtime-core's create does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecFacts {
    /// The process has a terminal (`-t`).
    pub terminal: bool,
    /// The container may ptrace the monitor: its binary must run sealed
    /// (CVE-2019-5736).
    pub sealed_exe: bool,
}

impl SpecFacts {
    pub fn of(spec: &oci_spec::runtime::Spec) -> SpecFacts {
        SpecFacts::of_process(spec.process().as_ref())
    }

    fn of_process(process: Option<&oci_spec::runtime::Process>) -> SpecFacts {
        SpecFacts {
            terminal: process.is_some_and(|p| p.terminal().unwrap_or(false)),
            sealed_exe: process.is_some_and(|p| {
                runtime_core::process::sealed_exe::needed_for(p.capabilities().as_ref())
            }),
        }
    }

    /// The facts of the bundle's config.json; none if it cannot be read.
    pub fn read(bundle: &Path) -> Option<SpecFacts> {
        /// Only the process is built; the rest (docker's seccomp profile
        /// above all) is skipped over.
        #[derive(Deserialize)]
        struct ProcessOnly {
            process: Option<oci_spec::runtime::Process>,
        }
        let text = std::fs::read(bundle.join("config.json")).ok()?;
        let process = serde_json::from_slice::<ProcessOnly>(&text).ok()?.process;
        Some(SpecFacts::of_process(process.as_ref()))
    }
}

/// The descriptor numbers of an attached caller, inherited by the
/// monitor: its streams and the control socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobAttach {
    pub stdin: Option<i32>,
    pub stdout: i32,
    pub stderr: i32,
    pub control: i32,
}

impl JobAttach {
    pub fn fds(&self) -> Vec<i32> {
        let mut fds = vec![self.stdout, self.stderr, self.control];
        fds.extend(self.stdin);
        fds
    }
}

fn default_log_max() -> u64 {
    DEFAULT_LOG_MAX
}

/// The exit file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// The shell's form: the exit status, or 128+N for signal N.
    pub exit_code: i32,
    /// RFC 3339 with nanoseconds, UTC.
    pub finished_at: String,
    pub oom_killed: bool,
}

impl ExitRecord {
    pub fn read(path: &Path) -> std::io::Result<ExitRecord> {
        let text = std::fs::read(path)?;
        serde_json::from_slice(&text).map_err(std::io::Error::other)
    }
}

/// The monitor file's content: the monitor (with its start time, so a
/// reused pid is not mistaken for it) and the container's init.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorFile {
    pub pid: i32,
    pub start_time: u64,
    pub init_pid: i32,
}

impl MonitorFile {
    pub fn read(path: &Path) -> std::io::Result<MonitorFile> {
        let text = std::fs::read(path)?;
        serde_json::from_slice(&text).map_err(std::io::Error::other)
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a
/// reader sees all or nothing. Not synced: these files live under the run
/// root, which a reboot clears anyway (tmpfs), and a sync sat on the way
/// of every start and exit.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.to_owned().into_os_string();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// A running monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorHandle {
    /// The monitor process.
    pub pid: i32,
    /// The container's init.
    pub init_pid: i32,
}

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("starting {}: {source}", path.display())]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The container could not be created or started; the monitor's
    /// one-line reason.
    #[error("{0}")]
    Container(String),
    #[error("the container monitor exited without reporting ({0})")]
    NoReport(String),
}

/// Where the monitor binary is: `$MUELLE_MONITOR`, else beside the running
/// executable (or its parent folder, for test binaries in `deps/`), else
/// on PATH.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os(BINARY_ENV) {
        return PathBuf::from(path);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        for candidate in [dir.join(BINARY), dir.join("..").join(BINARY)] {
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from(BINARY)
}

/// Starts a monitor for `job` and waits until its container runs (or
/// failed to). The monitor runs in a session of its own with its standard
/// descriptors on /dev/null, and is not our child. `inherit` are
/// descriptors of ours (3 or above) the monitor gets under the same
/// numbers: those `job.attach` names.
pub fn spawn(job: &Job, inherit: &[i32]) -> Result<MonitorHandle, MonitorError> {
    let path = binary();
    let text = serde_json::to_string(job).map_err(|e| MonitorError::Spawn {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    let mut command = Command::new(&path);
    // The report comes back on the intermediate's stdout; the monitor moves
    // it off fd 1 before anything else runs. Every other descriptor of
    // ours is close-on-exec (std opens them so).
    command
        .arg(text)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let inherit = inherit.to_vec();
    // SAFETY: setsid, sigprocmask and fcntl are async-signal-safe; `inherit` was
    // allocated before the fork and is only read.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // What an attached caller blocked is not the monitor's.
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            for &fd in &inherit {
                if fd > 2 && libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|source| MonitorError::Spawn {
        path: path.clone(),
        source,
    })?;
    let mut stdout = child.stdout.take().expect("piped");
    // The intermediate forks the monitor and exits; the report pipe stays
    // open until the monitor closes it.
    let status = child.wait();
    let read = read_report(&mut stdout);
    let report = match (status, read) {
        (Err(e), _) | (_, Err(e)) => {
            return Err(MonitorError::Spawn { path, source: e });
        }
        (Ok(status), Ok(report)) if report.is_empty() => {
            return Err(MonitorError::NoReport(status.to_string()));
        }
        (_, Ok(report)) => report,
    };
    parse_report(report.trim_end())
}

/// The monitor's one-line report, as soon as its line ends (the container's
/// init holds a copy of the writing end until it executes its command).
pub(super) fn read_report(from: &mut impl Read) -> std::io::Result<String> {
    let mut report = Vec::new();
    let mut buf = [0u8; 256];
    while !report.ends_with(b"\n") {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => report.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&report).into_owned())
}

/// `ok MONITOR_PID INIT_PID` or `err REASON`.
pub(super) fn parse_report(line: &str) -> Result<MonitorHandle, MonitorError> {
    if let Some(reason) = line.strip_prefix("err ") {
        return Err(MonitorError::Container(reason.to_string()));
    }
    let mut words = line.strip_prefix("ok ").unwrap_or("").split(' ');
    match (
        words.next().and_then(|w| w.parse().ok()),
        words.next().and_then(|w| w.parse().ok()),
    ) {
        (Some(pid), Some(init_pid)) => Ok(MonitorHandle { pid, init_pid }),
        _ => Err(MonitorError::NoReport(format!(
            "unexpected report {line:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse() {
        assert_eq!(
            parse_report("ok 12 13").unwrap(),
            MonitorHandle {
                pid: 12,
                init_pid: 13
            }
        );
        assert!(matches!(
            parse_report("err no such bundle"),
            Err(MonitorError::Container(r)) if r == "no such bundle"
        ));
        assert!(matches!(
            parse_report("garbage"),
            Err(MonitorError::NoReport(_))
        ));
    }

    #[test]
    fn job_defaults() {
        let job: Job = serde_json::from_str(
            r#"{"id":"a","bundle":"/b","state_root":"/s","log_path":"/l","exit_path":"/e"}"#,
        )
        .unwrap();
        assert!(!job.detach);
        assert_eq!(job.log_max_size, DEFAULT_LOG_MAX);
        assert!(!job.open_stdin && job.exit_command.is_empty() && job.attach.is_none());
    }
}
