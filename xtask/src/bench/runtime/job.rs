//! One measuring job: run a runtime's `run` command on a bundle a number of
//! times and time each run, in a child process of xtask (`xtask bench-child`,
//! job as JSON on stdin, [`Outcome`] as JSON on stdout).
//!
//! Every runtime is measured the same way, each in a fresh child. The child
//! exists so that a runtime that needs a private mount namespace gets it once,
//! outside the timed region: crun 1.8 refuses a hybrid cgroup layout whose
//! cgroup2 mount has controllers, so for crun the child unshares its mount
//! namespace and bind-mounts an empty file over that `cgroup.controllers`
//! before timing anything. The namespace, and the mount, end with the child.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// A run (or a clean-up) taking longer is killed, and the run counted as
/// failed, so that a runtime that hangs does not hang the bench.
const RUN_TIMEOUT: Duration = Duration::from_secs(10);

/// The controllers file of the cgroup2 mount of a hybrid cgroup layout.
pub const HYBRID_CONTROLLERS: &str = "/sys/fs/cgroup/unified/cgroup.controllers";

/// What the child measures.
#[derive(Serialize, Deserialize)]
pub struct Job {
    pub runtime: PathBuf,
    /// The runtime's state directory (`--root`).
    pub root: PathBuf,
    pub bundle: PathBuf,
    /// The same bundle running [`PROBE_ARGS`]; when given, it runs first,
    /// to check that the runtime really runs the container.
    pub probe_bundle: Option<PathBuf>,
    /// Container ids are `{id_prefix}-{n}`, unique per run.
    pub id_prefix: String,
    pub warmup: u32,
    pub runs: u32,
    /// Hide the controllers of the hybrid cgroup2 mount from the runtime.
    pub hide_cgroup2_controllers: bool,
}

/// The probe's argv: prints its pid, which is 1 only as the init of a new
/// pid namespace.
pub const PROBE_ARGS: [&str; 3] = ["/bin/sh", "-c", "echo probe-pid=$$"];
const PROBE_EXPECTED: &str = "probe-pid=1";

/// What came of a job.
#[derive(Serialize, Deserialize)]
pub enum Outcome {
    /// The probe and the first run succeeded. Timed runs that failed are listed in
    /// `failures` and have no sample.
    Measured {
        samples: Vec<Sample>,
        failures: Vec<String>,
    },
    /// The probe or the first run failed, and the runtime was not run again.
    Failed { reason: String },
}

/// One successful timed run.
#[derive(Serialize, Deserialize)]
pub struct Sample {
    /// Wall time from spawn to reaped exit, in milliseconds.
    pub ms: f64,
    /// `ru_maxrss` from wait4: the largest RSS of the runtime process and
    /// of the descendants it reaped, in KiB.
    pub maxrss_kib: u64,
}

/// Whether this host has a hybrid cgroup layout with controllers on its
/// cgroup2 mount, which crun 1.8 refuses.
pub fn cgroup2_controllers_need_hiding() -> bool {
    std::fs::read_to_string(HYBRID_CONTROLLERS).is_ok_and(|c| !c.trim().is_empty())
}

impl Job {
    /// Runs the job in `xtask bench-child` and returns its outcome.
    pub fn run_in_child(&self) -> Result<Outcome> {
        let exe = std::env::current_exe().context("cannot find the xtask executable")?;
        let mut child = Command::new(exe)
            .arg("bench-child")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start `xtask bench-child`")?;
        let input = serde_json::to_vec(self).context("cannot serialize the job")?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(&input)
                .context("cannot send the job to `xtask bench-child`")?;
        }
        let output = child
            .wait_with_output()
            .context("cannot wait for `xtask bench-child`")?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr.lines().rfind(|l| !l.trim().is_empty());
            bail!(
                "{}",
                last.map_or_else(|| format!("bench-child {}", output.status), str::to_owned)
            );
        }
        serde_json::from_slice(&output.stdout).context("bench-child printed no valid outcome")
    }
}

/// The `bench-child` command: job on stdin, outcome on stdout.
pub fn run_child() -> Result<()> {
    let mut input = Vec::new();
    io::stdin()
        .read_to_end(&mut input)
        .context("cannot read the job from stdin")?;
    let job: Job = serde_json::from_slice(&input).context("stdin holds no valid job")?;
    // Kept open until the end: the bind mount's source.
    let _empty = if job.hide_cgroup2_controllers {
        Some(hide_cgroup2_controllers()?)
    } else {
        None
    };
    let outcome = measure(&job)?;
    let out = serde_json::to_string(&outcome).context("cannot serialize the outcome")?;
    println!("{out}");
    Ok(())
}

fn measure(job: &Job) -> Result<Outcome> {
    // Runtime output goes here rather than to pipes, which would need draining.
    let mut log = tempfile::tempfile().context("cannot create a log file")?;
    if let Some(probe_bundle) = &job.probe_bundle
        && let Err(reason) = probe(job, probe_bundle, &mut log)
    {
        return Ok(Outcome::Failed { reason });
    }
    let mut samples = Vec::new();
    let mut failures = Vec::new();
    for n in 0..job.warmup + job.runs {
        let id = format!("{}-{n}", job.id_prefix);
        match run_once(job, &job.bundle, &id, &mut log) {
            Ok(sample) if n >= job.warmup => samples.push(sample),
            Ok(_) => {}
            Err(reason) if n == 0 => return Ok(Outcome::Failed { reason }),
            Err(reason) if n >= job.warmup => failures.push(reason),
            Err(_) => {}
        }
    }
    Ok(Outcome::Measured { samples, failures })
}

/// Runs the probe bundle and checks its output, so that a runtime that
/// exits 0 without running the container is not timed as a fast one.
fn probe(job: &Job, bundle: &Path, log: &mut File) -> Result<(), String> {
    let id = format!("{}-probe", job.id_prefix);
    run_once(job, bundle, &id, log)?;
    let printed = read_log(log).unwrap_or_default();
    if printed.lines().any(|l| l.trim() == PROBE_EXPECTED) {
        return Ok(());
    }
    let got = printed.lines().map(str::trim).find(|l| !l.is_empty());
    Err(format!(
        "exited 0 but did not run the container (the probe printed {}, not {PROBE_EXPECTED})",
        got.map_or("nothing".to_owned(), |l| format!("`{l}`"))
    ))
}

/// Times `RUNTIME --root ROOT run --bundle BUNDLE ID`, its output in `log`.
/// On failure, returns the first line the runtime printed (or its exit
/// status) and deletes whatever the runtime left of the container.
fn run_once(job: &Job, bundle: &Path, id: &str, log: &mut File) -> Result<Sample, String> {
    let mut cmd = Command::new(&job.runtime);
    cmd.arg("--root")
        .arg(&job.root)
        .arg("run")
        .arg("--bundle")
        .arg(bundle)
        .arg(id)
        .stdin(Stdio::null());
    reset(log).map_err(|e| format!("cannot reset the log file: {e}"))?;
    let out = log
        .try_clone()
        .map_err(|e| format!("cannot dup log: {e}"))?;
    let err = log
        .try_clone()
        .map_err(|e| format!("cannot dup log: {e}"))?;
    cmd.stdout(out).stderr(err);

    let started = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", job.runtime.display()))?;
    let waited = wait_with_timeout(child.id(), RUN_TIMEOUT);
    let elapsed = started.elapsed();
    let waited = waited.map_err(|e| format!("cannot wait for the runtime: {e}"))?;
    let Some((status, rusage)) = waited else {
        delete_force(job, id);
        return Err(format!(
            "killed after {}s without finishing",
            RUN_TIMEOUT.as_secs()
        ));
    };

    if status.success() {
        return Ok(Sample {
            ms: elapsed.as_secs_f64() * 1000.0,
            maxrss_kib: u64::try_from(rusage.ru_maxrss).unwrap_or(0),
        });
    }
    let first_line = read_log(log).and_then(|text| {
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned)
    });
    delete_force(job, id);
    Err(first_line.unwrap_or_else(|| status.to_string()))
}

/// `RUNTIME delete --force ID`, best effort: removes what a failed run left.
/// Killed, like a run, when it takes longer than [`RUN_TIMEOUT`].
fn delete_force(job: &Job, id: &str) {
    let child = Command::new(&job.runtime)
        .arg("--root")
        .arg(&job.root)
        .args(["delete", "--force", id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Ok(child) = child {
        let _ = wait_with_timeout(child.id(), RUN_TIMEOUT);
    }
}

fn reset(log: &mut File) -> io::Result<()> {
    log.set_len(0)?;
    log.seek(SeekFrom::Start(0))?;
    Ok(())
}

fn read_log(log: &mut File) -> Option<String> {
    let mut text = String::new();
    log.seek(SeekFrom::Start(0)).ok()?;
    log.read_to_string(&mut text).ok()?;
    Some(text)
}

/// Reaps `pid`, returning its status and resource usage, or kills and reaps
/// it and returns `None` when it runs longer than `timeout`. Without pidfds
/// (Linux < 5.3) it waits without a timeout.
fn wait_with_timeout(
    pid: u32,
    timeout: Duration,
) -> io::Result<Option<(ExitStatus, libc::rusage)>> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if let Ok(fd) = libc::c_int::try_from(fd)
        && fd >= 0
    {
        // SAFETY: fd was just returned by pidfd_open and nothing else owns it.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd) };
        if !super::super::common::readable_within(&pidfd, timeout)? {
            // SAFETY: a valid pidfd, a valid signal, no siginfo, no flags.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            if ret != 0 {
                return Err(io::Error::last_os_error());
            }
            wait4(pid)?;
            return Ok(None);
        }
    }
    wait4(pid).map(Some)
}

/// Reaps `pid` with wait4, returning its status and resource usage.
fn wait4(pid: libc::pid_t) -> io::Result<(ExitStatus, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain data for which all-zero bytes are valid.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are valid for writes for the whole call.
        let ret = unsafe { libc::wait4(pid, &mut status, 0, &mut rusage) };
        if ret == pid {
            return Ok((ExitStatus::from_raw(status), rusage));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Gives this process a private mount namespace in which the hybrid cgroup2
/// mount shows no controllers. Must run while the process has one thread.
/// Returns the empty file now mounted over `cgroup.controllers`.
fn hide_cgroup2_controllers() -> Result<tempfile::NamedTempFile> {
    let empty = tempfile::NamedTempFile::new().context("cannot create an empty file")?;
    // SAFETY: unshare has no memory-safety preconditions.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(io::Error::last_os_error()).context("unshare(CLONE_NEWNS) failed");
    }
    mount(None, Path::new("/"), libc::MS_REC | libc::MS_PRIVATE)
        .context("cannot make / private in the new mount namespace")?;
    mount(
        Some(empty.path()),
        Path::new(HYBRID_CONTROLLERS),
        libc::MS_BIND,
    )
    .with_context(|| format!("cannot bind an empty file over {HYBRID_CONTROLLERS}"))?;
    Ok(empty)
}

fn mount(source: Option<&Path>, target: &Path, flags: libc::c_ulong) -> io::Result<()> {
    let c_path = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
    };
    let source = source.map(c_path).transpose()?;
    let target = c_path(target)?;
    let source_ptr = source.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: the strings outlive the call; null fstype and data are allowed
    // for bind and propagation changes.
    let ret = unsafe {
        libc::mount(
            source_ptr,
            target.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
