//! A monitor forked ahead of time. Executing the monitor binary, loading
//! it and detaching it (a second fork) sat on the way of every `run`;
//! instead the command forks its future monitor first thing, while it is
//! one small thread, and the fork waits, detached already,
//! for its [`Job`] while the command records the container and writes its
//! bundle. [`Zygote::launch`] sends the job (and an attached caller's
//! descriptors), and the fork goes on exactly as a spawned monitor does:
//! it creates the container, reports `ok MONITOR INIT` or `err REASON`
//! on the same socket, and later executes the monitor binary for its
//! second stage.
//!
//! A zygote not launched goes when its socket closes (the command failed,
//! or was killed). A job whose container may ptrace its monitor is handed
//! to the monitor binary instead, which seals itself.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, Shutdown, recvmsg, sendmsg, shutdown,
};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork};

use super::run::{Stage, run_job};
use super::{Job, JobAttach, MonitorError, MonitorHandle, parse_report};

/// The descriptor the fork keeps its socket under.
const SOCKET_FD: RawFd = 3;

/// The command's side of a forked, waiting monitor.
pub struct Zygote {
    socket: UnixStream,
    /// The first fork, which exits once it forked the monitor.
    intermediate: Option<Pid>,
}

impl Zygote {
    /// Forks the future monitor. Call it while this process has a single
    /// thread: the fork runs on without executing anything new.
    pub fn fork() -> std::io::Result<Zygote> {
        let (ours, theirs) = UnixStream::pair()?;
        // SAFETY: the caller's promise of one thread; the child only
        // forks again and exits, or becomes the monitor and never returns.
        match unsafe { fork() }? {
            ForkResult::Parent { child } => {
                drop(theirs);
                Ok(Zygote {
                    socket: ours,
                    intermediate: Some(child),
                })
            }
            ForkResult::Child => {
                drop(ours);
                // The monitor is nobody's child but init's (or a
                // subreaper's), in a session of its own.
                // SAFETY: as above.
                let code = match unsafe { fork() } {
                    // A panic must not unwind into the command's code,
                    // which would then run on in this process.
                    Ok(ForkResult::Child) => {
                        std::panic::catch_unwind(|| wait_and_run(theirs.into())).unwrap_or(101)
                    }
                    Ok(ForkResult::Parent { .. }) | Err(_) => 0,
                };
                // SAFETY: leaves without running the command's exit code.
                unsafe { libc::_exit(code) }
            }
        }
    }

    /// Sends `job` and waits until its container runs (or failed to).
    /// `job.attach`'s descriptors are passed along.
    pub fn launch(mut self, job: &Job) -> Result<MonitorHandle, MonitorError> {
        let spawn_error = |source: std::io::Error| MonitorError::Spawn {
            path: "the forked monitor".into(),
            source,
        };
        let text = serde_json::to_vec(job).map_err(|e| spawn_error(std::io::Error::other(e)))?;
        send_job(&self.socket, &text, &job.passed_fds()).map_err(spawn_error)?;
        self.reap();
        let report = super::read_report(&mut self.socket).map_err(spawn_error)?;
        if report.is_empty() {
            return Err(MonitorError::NoReport("the forked monitor is gone".into()));
        }
        parse_report(report.trim_end())
    }

    fn reap(&mut self) {
        if let Some(pid) = self.intermediate.take() {
            let _ = waitpid(pid, None);
        }
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        // The socket closes after this: a fork still waiting goes.
        self.reap();
    }
}

/// The job's text with the descriptors, then the end of our sending.
fn send_job(socket: &UnixStream, text: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
    let mut sent = 0;
    while sent < text.len() {
        let cmsgs = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage] = if sent == 0 && !fds.is_empty() {
            &cmsgs
        } else {
            &[]
        };
        let iov = [IoSlice::new(&text[sent..])];
        match sendmsg::<()>(
            socket.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(n) => sent += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    shutdown(socket.as_raw_fd(), Shutdown::Write)?;
    Ok(())
}

/// The monitor's side: detach from the command's session, streams and
/// descriptors, receive the job, run it.
fn wait_and_run(socket: OwnedFd) -> i32 {
    let socket = detach(socket);
    let Some((text, fds)) = receive_job(&socket) else {
        return 0;
    };
    let mut reporter = Some(std::fs::File::from(socket));
    let mut job: Job = match serde_json::from_slice(&text) {
        Ok(job) => job,
        Err(e) => {
            super::run::report(&mut reporter, &format!("err muelle-monitor: bad job: {e}"));
            return 2;
        }
    };
    if !under_our_numbers(&mut job, fds) {
        super::run::report(
            &mut reporter,
            "err muelle-monitor: the caller's descriptors did not arrive",
        );
        return 2;
    }
    run_job(&job, reporter, Stage::Forked)
}

/// A session of our own, our name, no signal blocked, /dev/null for 0, 1 and 2, the
/// socket at [`SOCKET_FD`] and no other descriptor of the command's.
fn detach(socket: OwnedFd) -> OwnedFd {
    // SAFETY: plain system calls on our own process and descriptors; the
    // descriptors closed are the command's copies, which nothing of ours
    // uses from here on (their owners never run again in this process).
    unsafe {
        libc::setsid();
        // Shown as what it is (its command line stays the command's).
        libc::prctl(libc::PR_SET_NAME, c"muelle-monitor".as_ptr(), 0, 0, 0);
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        let raw = socket.as_raw_fd();
        std::mem::forget(socket);
        if raw != SOCKET_FD {
            libc::dup3(raw, SOCKET_FD, libc::O_CLOEXEC);
            libc::close(raw);
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        libc::syscall(libc::SYS_close_range, SOCKET_FD + 1, libc::c_uint::MAX, 0);
        OwnedFd::from_raw_fd(SOCKET_FD)
    }
}

/// Reads until the command's end of sending: the job's text and the
/// descriptors that came with it. None when nothing came (the command
/// did not launch us).
fn receive_job(socket: &OwnedFd) -> Option<(Vec<u8>, Vec<OwnedFd>)> {
    let mut text = Vec::new();
    let mut fds = Vec::new();
    loop {
        let mut buf = [0u8; 4096];
        let mut space = nix::cmsg_space!([RawFd; 4]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => msg,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return None,
        };
        if let Ok(cmsgs) = msg.cmsgs() {
            for cmsg in cmsgs {
                if let ControlMessageOwned::ScmRights(raw) = cmsg {
                    // SAFETY: descriptors the kernel just gave us.
                    fds.extend(
                        raw.into_iter()
                            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                    );
                }
            }
        }
        let n = msg.bytes;
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    (!text.is_empty()).then_some((text, fds))
}

/// Puts the caller's descriptors as they arrived (in [`Job::passed_fds`]'s
/// order) into the job under the numbers they have here; ownership
/// passes to the numbers (the monitor takes them over). False when they
/// are not what the job says.
fn under_our_numbers(job: &mut Job, fds: Vec<OwnedFd>) -> bool {
    if fds.len() != job.passed_fds().len() {
        return false;
    }
    let mut raw = fds.into_iter().map(std::os::fd::IntoRawFd::into_raw_fd);
    if let Some(sent) = job.attach {
        let (Some(stdout), Some(stderr), Some(control)) = (raw.next(), raw.next(), raw.next())
        else {
            return false;
        };
        job.attach = Some(JobAttach {
            stdout,
            stderr,
            control,
            stdin: sent.stdin.and_then(|_| raw.next()),
        });
    }
    job.hold = raw.collect();
    true
}

/// A job the forked monitor cannot run itself (its container needs a
/// sealed monitor): executes the monitor binary with it, the report
/// going out on our socket as its stdout.
pub(super) fn exec_monitor(job: &Job, reporter: Option<std::fs::File>) -> i32 {
    let mut reporter = reporter;
    let Some(socket) = reporter.as_ref().map(AsRawFd::as_raw_fd) else {
        return 1;
    };
    let (Ok(text), Ok(path)) = (
        serde_json::to_string(job),
        std::ffi::CString::new(super::binary().as_os_str().as_bytes()),
    ) else {
        super::run::report(&mut reporter, "err muelle-monitor: cannot pass the job on");
        return 2;
    };
    let Ok(arg) = std::ffi::CString::new(text) else {
        super::run::report(&mut reporter, "err muelle-monitor: cannot pass the job on");
        return 2;
    };
    // SAFETY: fcntl and dup2 on descriptors of ours.
    unsafe {
        for fd in job.passed_fds() {
            libc::fcntl(fd, libc::F_SETFD, 0);
        }
        libc::dup2(socket, 1);
    }
    let argv = [c"muelle-monitor", arg.as_c_str()];
    let env: [&std::ffi::CStr; 0] = [];
    let e = nix::unistd::execve(path.as_c_str(), &argv, &env).unwrap_err();
    super::run::report(
        &mut reporter,
        &format!("err executing {}: {e}", super::binary().display()),
    );
    1
}
