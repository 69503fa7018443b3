//! One run of a command, timed: wall time from spawn to reaped exit, its
//! output in a log file, killed when it runs longer than a limit
//! ([`TIMEOUT`] unless told) so that a command that hangs does not hang the
//! bench.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A command taking longer is killed and its run counted as failed.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `cmd` with its stdout and stderr in `log` (emptied first) and
/// returns its wall time in milliseconds, or the first line it printed (or
/// its exit status) when it fails.
pub fn timed(cmd: &mut Command, log: &mut File) -> Result<f64, String> {
    timed_within(cmd, log, TIMEOUT)
}

/// [`timed`], killing the command after `timeout`.
pub fn timed_within(cmd: &mut Command, log: &mut File, timeout: Duration) -> Result<f64, String> {
    let line = crate::util::display(cmd);
    reset(log).map_err(|e| format!("cannot reset the log file: {e}"))?;
    let out = log
        .try_clone()
        .map_err(|e| format!("cannot dup log: {e}"))?;
    let err = log
        .try_clone()
        .map_err(|e| format!("cannot dup log: {e}"))?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);

    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start `{line}`: {e}"))?;
    let finished = wait_with_timeout(&mut child, timeout);
    let elapsed = started.elapsed();
    match finished {
        Ok(Some(status)) if status.success() => Ok(elapsed.as_secs_f64() * 1000.0),
        Ok(Some(status)) => {
            let first = read(log).and_then(|text| {
                text.lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .map(str::to_owned)
            });
            Err(format!(
                "`{line}`: {}",
                first.unwrap_or_else(|| status.to_string())
            ))
        }
        Ok(None) => Err(format!(
            "`{line}` killed after {}s without finishing",
            timeout.as_secs()
        )),
        Err(e) => Err(format!("cannot wait for `{line}`: {e}")),
    }
}

/// What the last run printed.
pub fn read(log: &mut File) -> Option<String> {
    let mut text = String::new();
    log.seek(SeekFrom::Start(0)).ok()?;
    log.read_to_string(&mut text).ok()?;
    Some(text)
}

fn reset(log: &mut File) -> io::Result<()> {
    log.set_len(0)?;
    log.seek(SeekFrom::Start(0))?;
    Ok(())
}

/// Reaps `child`, or kills and reaps it and returns `None` when it runs
/// longer than `timeout`. Without pidfds (Linux < 5.3) it waits without a
/// timeout. The child stays unreaped until it is killed, so the kill cannot
/// reach a reused pid.
fn wait_with_timeout(
    child: &mut Child,
    timeout: Duration,
) -> io::Result<Option<std::process::ExitStatus>> {
    let pid =
        libc::pid_t::try_from(child.id()).map_err(|_| io::Error::other("pid out of range"))?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if let Ok(fd) = libc::c_int::try_from(fd)
        && fd >= 0
    {
        // SAFETY: fd was just returned by pidfd_open and nothing else owns it.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd) };
        if !super::common::readable_within(&pidfd, timeout)? {
            child.kill()?;
            child.wait()?;
            return Ok(None);
        }
    }
    child.wait().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_success_and_reports_failure() {
        let mut log = tempfile::tempfile().expect("log");
        let ms = timed(&mut Command::new("true"), &mut log).expect("true succeeds");
        assert!(ms > 0.0);
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo nope >&2; exit 3"]);
        let err = timed(&mut cmd, &mut log).expect_err("exit 3 fails");
        assert!(err.ends_with(": nope"), "{err}");
    }
}
