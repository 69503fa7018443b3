//! What keeps the bench from leaving processes behind, and lets an
//! interrupt end it cleanly:
//!
//! - SIGINT, SIGTERM and SIGHUP only raise a flag the bench checks between
//!   two commands ([`check`]), so that it stops at the next one and the
//!   clean-up of every instance runs. A repeated signal changes nothing
//!   (`timeout` and a terminal may well send two): SIGKILL stops the bench
//!   without its clean-up, which the next run then does. The commands run
//!   in process groups of their own ([`Quiet`]), so a ctrl-c at the
//!   terminal reaches the bench, not the command half-way.
//! - The bench is a child subreaper: monitors, conmons and detached
//!   containers that outlive the command which started them become its
//!   children instead of PID 1's (which does not reap them on this
//!   machine), and [`reap`] collects the ones that exited.
//! - The processes of an instance (its command line names its root) can be
//!   listed, awaited and, as a last resort, killed by pid.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Installs the flag-raising handlers and makes this process a subreaper.
pub fn install() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: sigaction is plain data for which all-zero bytes are valid.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: a valid action whose handler only stores to an atomic.
        unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) };
    }
    // SAFETY: prctl with an integer option has no memory-safety preconditions.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Fails once a signal asked the bench to stop.
pub fn check() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted by a signal");
    }
    Ok(())
}

/// Collects every exited child that nothing waits for: orphans handed to
/// the bench as subreaper. Called between commands only, when no
/// `std::process::Child` of the bench is still running.
pub fn reap() {
    loop {
        let mut status = 0;
        // SAFETY: a valid pointer for the status; WNOHANG never blocks.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
    }
}

/// A command in a process group of its own, so that the terminal's signals
/// reach only the bench.
pub trait Quiet {
    fn own_group(&mut self) -> &mut Self;
}

impl Quiet for Command {
    fn own_group(&mut self) -> &mut Self {
        self.process_group(0)
    }
}

/// A live process whose command line holds some text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: i32,
    pub comm: String,
}

/// The live (not zombie) processes whose command line contains `needle`,
/// this one excepted.
pub fn processes_naming(needle: &str) -> Vec<Process> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| u32::try_from(pid).ok() != Some(me))
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            if !String::from_utf8_lossy(&cmdline).contains(needle) || is_zombie(pid) {
                return None;
            }
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            Some(Process {
                pid,
                comm: comm.trim().to_owned(),
            })
        })
        .collect()
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the command name, which is in parentheses and
        // may hold spaces and parentheses itself.
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
    })
}

/// Waits up to `timeout` for the processes naming `needle` to end (a
/// monitor folding an exit, podman's `container cleanup`), then kills the
/// ones left by pid and returns them, for a warning.
pub fn end_processes_naming(needle: &str, timeout: Duration) -> Vec<Process> {
    let deadline = Instant::now() + timeout;
    loop {
        reap();
        let left = processes_naming(needle);
        if left.is_empty() {
            return left;
        }
        if Instant::now() >= deadline {
            for process in &left {
                // SAFETY: kill takes a pid and a signal.
                unsafe { libc::kill(process.pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(100));
            reap();
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_child_by_its_command_line_and_not_once_it_exited() {
        let marker = format!("guard-test-{}", std::process::id());
        let mut child = Command::new("sh")
            // Two commands, so that sh does not exec sleep in its place.
            .args(["-c", "sleep 5; :", &marker])
            .spawn()
            .expect("sh");
        let pid = i32::try_from(child.id()).expect("pid");
        // spawn may return while the exec is still setting up the new
        // command line: look again for a while.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !processes_naming(&marker).iter().any(|p| p.pid == pid) {
            assert!(Instant::now() < deadline, "{marker} not found");
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().expect("kill");
        // Not waited for yet, so a zombie: which does not count as live.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !processes_naming(&marker).is_empty() {
            assert!(
                Instant::now() < deadline,
                "{marker} still listed after SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(is_zombie(pid), "{pid} is not a zombie");
        child.wait().expect("wait");
    }
}
