//! `run`: create, start, wait for the container's init while passing it the
//! signals the runtime gets, then delete; the runtime exits with the
//! container's status (128+N for signal N).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::error::{Context, Result};
use crate::state::{ContainerId, StateRoot};

pub struct RunOptions {
    pub id: ContainerId,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    pub detach: bool,
    /// Keep the state folder after the container exits (runc's --keep).
    pub keep: bool,
}

/// Returns the exit code for the runtime process: 0 when detached.
pub fn run(root: &StateRoot, opts: RunOptions) -> Result<i32> {
    let forwarded = forwarded_signals();
    let created = super::create(
        root,
        super::CreateOptions {
            id: opts.id.clone(),
            bundle: opts.bundle,
            pid_file: opts.pid_file,
            console_socket: opts.console_socket,
            preserve_fds: opts.preserve_fds,
            foreground: !opts.detach,
        },
    )?;
    // From here a signal must not kill the runtime and orphan the container:
    // it is forwarded instead. (Blocking before create would hand the mask
    // to init, and execve keeps it.)
    forwarded
        .thread_block()
        .context(|| "blocking signals".into())?;
    let pid = Pid::from_raw(created.record.pid);
    if let Err(e) = super::start(root, &opts.id) {
        let _ = super::delete(root, &opts.id, true);
        return Err(e);
    }
    if opts.detach {
        return Ok(0);
    }
    let pty = created.pty_master;
    let code = match pty {
        Some(master) => wait_with_terminal(pid, master, &forwarded)?,
        None => wait_and_forward(pid, &forwarded)?,
    };
    if !opts.keep {
        super::delete(root, &opts.id, true)?;
    }
    Ok(code)
}

/// The signals a foreground runtime passes on to the container.
pub fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGPIPE,
        Signal::SIGALRM,
        Signal::SIGCONT,
        Signal::SIGTSTP,
    ] {
        set.add(s);
    }
    set
}

/// Waits for `pid` (a child of ours, or an orphan we reap as subreaper),
/// passing on every other blocked signal; returns the shell-style status.
pub fn wait_and_forward(pid: Pid, signals: &SigSet) -> Result<i32> {
    wait_forwarding(pid, signals, None)
}

/// With `pty`, a window-size change resizes the pty (the kernel then tells
/// the container's foreground process) instead of being forwarded.
fn wait_forwarding(pid: Pid, signals: &SigSet, pty: Option<BorrowedFd<'_>>) -> Result<i32> {
    loop {
        if let Some(code) = reap(pid)? {
            return Ok(code);
        }
        let signal = signals.wait().context(|| "waiting for signals".into())?;
        match (signal, pty) {
            (Signal::SIGCHLD, _) => {}
            (Signal::SIGWINCH, Some(pty)) => crate::console::copy_window_size(pty),
            _ => {
                let _ = kill(pid, signal);
            }
        }
    }
}

/// Reaps every exited child; `Some(code)` once `pid` is among them.
fn reap(pid: Pid) -> Result<Option<i32>> {
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return Ok(Some(128 + sig as i32)),
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return Ok(None),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context(|| "waiting for the container".into()),
        }
    }
}

/// With a terminal the runtime copies the pty while a helper thread reaps;
/// the copy ends when the container closes its side.
pub(crate) fn wait_with_terminal(pid: Pid, master: OwnedFd, signals: &SigSet) -> Result<i32> {
    let resize = master
        .try_clone()
        .context(|| "duplicating the pty".into())?;
    crate::console::copy_window_size(resize.as_fd());
    let proxy = std::thread::spawn(move || crate::console::proxy(master));
    let code = wait_forwarding(pid, signals, Some(resize.as_fd()))?;
    let _ = proxy.join();
    Ok(code)
}
