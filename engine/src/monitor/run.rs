//! The monitor process itself. Single-threaded throughout: runtime-core's
//! create needs that, and a monitor must stay small.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;

use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use runtime_core::container::{self, CreateOptions};
use runtime_core::state::{ContainerId, StateRoot};

use super::attach::{self, Attached, Control, Input};
use super::log::{JsonLog, LineBuffer};
use super::{ExitRecord, Job, JobAttach};

/// The binary's body: `muelle-monitor JOB`, where JOB is the job's JSON
/// (or a path to it). Returns the process's exit code.
pub fn run(args: &[String]) -> i32 {
    if let [flag, state] = args
        && flag == SERVE
    {
        return serve_after_exec(state);
    }
    let [arg] = args else {
        eprintln!("usage: muelle-monitor JOB-JSON|JOB-FILE");
        return 2;
    };
    let arg = arg.clone();
    let text = if arg.starts_with('{') {
        Ok(arg)
    } else {
        std::fs::read_to_string(&arg)
    };
    let job: Job = match text
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(job) => job,
        Err(e) => {
            // Still on the spawner's pipe: it gets the reason.
            println!("err muelle-monitor: bad job: {e}");
            return 2;
        }
    };
    // The spawner's pipe is our stdout: keep it aside, close-on-exec.
    let reporter = dup_high(1).ok().map(std::fs::File::from);
    run_job(&job, reporter, Stage::Spawned)
}

/// How the first stage came to be.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// `muelle-monitor JOB`, run by [`super::spawn`]'s intermediate
    /// process: it forks once more, and its second stage re-executes
    /// its own (possibly sealed) binary.
    Spawned,
    /// Forked ahead of time by the command ([`super::Zygote`]): detached
    /// already, a copy of the command's binary, so the second stage
    /// executes the monitor binary.
    Forked,
}

/// The first stage's body: creates and starts the container, reports on
/// `reporter`, serves until the re-exec (or the exit). Returns the exit
/// code of the process.
pub(super) fn run_job(job: &Job, mut reporter: Option<std::fs::File>, stage: Stage) -> i32 {
    let facts = job.facts.or_else(|| super::SpecFacts::read(&job.bundle));
    // A container that may ptrace us needs our exe sealed first
    // (CVE-2019-5736); the re-exec keeps the arguments, so the job too.
    if facts.is_some_and(|f| f.sealed_exe) && !runtime_core::process::sealed_exe::running_sealed() {
        if stage == Stage::Forked {
            // Our exe is the command's: the monitor binary seals itself.
            return super::zygote::exec_monitor(job, reporter);
        }
        let Err(e) = runtime_core::process::sealed_exe::reexec();
        report(&mut reporter, &format!("err {e}"));
        return 1;
    }
    let tty = facts.is_some_and(|f| f.terminal);
    match Monitor::start(job, tty, reporter, stage) {
        Ok(monitor) => monitor.reexec_and_serve(stage),
        Err(()) => 1,
    }
}

/// The argument of the second stage: the container runs, and the monitor
/// re-executes itself so that what create touched (the spec, seccomp,
/// runtime-core's code) leaves its resident memory.
const SERVE: &str = "--serve";

/// How long the first stage serves before it re-executes.
const REEXEC_AFTER: std::time::Duration = std::time::Duration::from_millis(50);

/// What the second stage needs, passed as its argument.
#[derive(serde::Serialize, serde::Deserialize)]
struct ServeState {
    id: String,
    state_root: std::path::PathBuf,
    exit_path: std::path::PathBuf,
    log_path: std::path::PathBuf,
    log_max_size: u64,
    init: i32,
    stdout: RawFd,
    stderr: RawFd,
    /// The container's stdin (pipe or pty), -1 for none.
    input: RawFd,
    tty: bool,
    attach: Option<JobAttach>,
    /// The socket later callers attach on, -1 for none.
    listener: RawFd,
    exit_command: Vec<String>,
    #[serde(default)]
    handover: bool,
    #[serde(default)]
    trash: Option<std::path::PathBuf>,
    #[serde(default)]
    held: Vec<RawFd>,
}

fn serve_after_exec(text: &str) -> i32 {
    let Ok(state) = serde_json::from_str::<ServeState>(text) else {
        return 2;
    };
    // Kept across execve, but cheap to be sure of.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let (Ok(id), Ok(signals)) = (state.id.parse::<ContainerId>(), signal_fd()) else {
        return 1;
    };
    // A stream the first stage saw end is -1.
    let streams = [("stdout", state.stdout), ("stderr", state.stderr)].map(|(name, fd)| {
        // SAFETY: the first stage passed these descriptors to us by number.
        let fd = (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) });
        if let Some(fd) = &fd {
            set_cloexec(fd.as_raw_fd(), true);
        }
        Stream {
            name,
            fd,
            lines: LineBuffer::default(),
        }
    });
    // SAFETY: prctl with a valid NUL-terminated name (not "exe").
    unsafe { libc::prctl(libc::PR_SET_NAME, c"muelle-monitor".as_ptr(), 0, 0, 0) };
    // SAFETY: the first stage passed these descriptors to us by number.
    let input = (state.input >= 0).then(|| unsafe { OwnedFd::from_raw_fd(state.input) });
    if let Some(fd) = &input {
        set_cloexec(fd.as_raw_fd(), true);
    }
    // SAFETY: as above.
    let attached = state
        .attach
        .map(|a| unsafe { Attached::from_raw(a, state.tty) });
    // SAFETY: as above.
    let listener = (state.listener >= 0).then(|| unsafe { OwnedFd::from_raw_fd(state.listener) });
    if let Some(fd) = &listener {
        set_cloexec(fd.as_raw_fd(), true);
    }
    // SAFETY: as above.
    let held = state
        .held
        .iter()
        .map(|&fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    for &fd in &state.held {
        set_cloexec(fd, true);
    }
    drop_clean_file_pages();
    Monitor {
        root: StateRoot::new(&state.state_root),
        id,
        init: Pid::from_raw(state.init),
        exit_path: state.exit_path,
        log: JsonLog::open(&state.log_path, state.log_max_size).ok(),
        log_path: state.log_path,
        log_max_size: state.log_max_size,
        streams,
        signals,
        input,
        tty: state.tty,
        attached: attached.into_iter().collect(),
        listener,
        exit_command: state.exit_command,
        handover: state.handover,
        mount_ns: None,
        trash: state.trash,
        held,
    }
    .serve()
}

/// Unmaps the resident pages of our read-only file mappings that were
/// never written (code and constants of the binary and its libraries):
/// loading maps far more of them than the loop uses, and those it uses
/// come back from the page cache on their next touch. Mappings with an
/// anonymous (copied on write: relocated data) page are left alone.
/// ("Private_Dirty" is no guide: it counts page-cache pages not yet
/// written back, as a freshly linked binary's are.)
fn drop_clean_file_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut candidates = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    let mut clean = true;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            if let Some(range) = current.take()
                && clean
            {
                candidates.push(range);
            }
            let perms = words.next().unwrap_or("");
            let path = words.nth(3).unwrap_or("");
            clean = true;
            if path.starts_with('/') && !perms.contains('w') {
                current = Some((start, end));
            }
        } else if first == "Anonymous:" && words.next() != Some("0") {
            clean = false;
        }
    }
    if let Some(range) = current
        && clean
    {
        candidates.push(range);
    }
    drop(smaps);
    for (start, end) in candidates {
        // SAFETY: a clean, read-only file mapping of ours: its pages are
        // read back from the file as they were.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
}

/// The signals the monitor handles, blocked and read from a signalfd.
fn signal_fd() -> nix::Result<SignalFd> {
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        mask.add(s);
    }
    mask.thread_block()?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
}

/// Sets or clears close-on-exec on one of our descriptors.
fn set_cloexec(fd: RawFd, on: bool) {
    // SAFETY: fcntl on a descriptor of ours.
    unsafe { libc::fcntl(fd, libc::F_SETFD, if on { libc::FD_CLOEXEC } else { 0 }) };
}

struct Stream {
    name: &'static str,
    fd: Option<OwnedFd>,
    lines: LineBuffer,
}

struct Monitor {
    root: StateRoot,
    id: ContainerId,
    init: Pid,
    exit_path: std::path::PathBuf,
    log_path: std::path::PathBuf,
    log_max_size: u64,
    log: Option<JsonLog>,
    streams: [Stream; 2],
    signals: SignalFd,
    /// The container's stdin: a pipe's write end (`-i`), or a copy of the
    /// pty master (`-it`).
    input: Option<OwnedFd>,
    /// streams[0] is the pty master.
    tty: bool,
    /// Callers attached now: the one `run`/`start -a` started with, and
    /// those `attach` brought.
    attached: Vec<Attached>,
    listener: Option<OwnedFd>,
    exit_command: Vec<String>,
    /// The caller the container started with takes the exit over
    /// ([`super::Job::handover`]), while it stays attached.
    handover: bool,
    /// The container's mount namespace, until its exit is told: the first
    /// stage's only (a long run need not save its teardown's time).
    mount_ns: Option<OwnedFd>,
    /// See [`super::Job::trash`].
    trash: Option<std::path::PathBuf>,
    /// See [`super::Job::hold`].
    held: Vec<OwnedFd>,
}

fn dup2(from: RawFd, to: RawFd) {
    // SAFETY: dup2 between descriptors this process holds.
    unsafe { libc::dup2(from, to) };
}

/// A close-on-exec copy of `fd` above the standard ones.
fn dup_high(fd: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: fcntl on one of our descriptors; the copy is owned below.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if copy < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: just returned to us, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

pub(super) fn report(to: &mut Option<std::fs::File>, line: &str) {
    if let Some(mut file) = to.take() {
        let _ = writeln!(file, "{}", line.replace('\n', " "));
    }
}

impl Monitor {
    /// Detaches, creates and starts the container, and tells the spawner.
    fn start(
        job: &Job,
        tty: bool,
        mut reporter: Option<std::fs::File>,
        stage: Stage,
    ) -> Result<Monitor, ()> {
        // SAFETY: the spawner passed these to us under these numbers.
        let attach = job.attach.map(|a| unsafe { Attached::from_raw(a, tty) });
        // SAFETY: as above; close-on-exec, so init never has them.
        let held: Vec<OwnedFd> = job
            .hold
            .iter()
            .map(|&fd| unsafe { OwnedFd::from_raw_fd(fd) })
            .collect();
        for fd in &held {
            set_cloexec(fd.as_raw_fd(), true);
        }
        let fail = |reporter: &mut Option<std::fs::File>, what: String| {
            report(reporter, &format!("err {what}"));
        };
        let null = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
        {
            Ok(null) => null,
            Err(e) => {
                fail(&mut reporter, format!("opening /dev/null: {e}"));
                return Err(());
            }
        };
        for fd in 0..3 {
            dup2(null.as_raw_fd(), fd);
        }
        // The second fork: the spawner waits for our parent only.
        // SAFETY: single-threaded; the parent only exits.
        match (stage == Stage::Spawned).then(|| unsafe { nix::unistd::fork() }) {
            Some(Ok(nix::unistd::ForkResult::Parent { .. })) => {
                // SAFETY: leaves at once, running no destructors or atexit.
                unsafe { libc::_exit(0) }
            }
            None | Some(Ok(nix::unistd::ForkResult::Child)) => {}
            Some(Err(e)) => {
                fail(&mut reporter, format!("forking the monitor: {e}"));
                return Err(());
            }
        }
        // Orphans of the container are reparented to us and reaped here.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };

        let id: ContainerId = match job.id.parse() {
            Ok(id) => id,
            Err(e) => {
                fail(&mut reporter, format!("{e}"));
                return Err(());
            }
        };
        let log = match JsonLog::open(&job.log_path, job.log_max_size) {
            Ok(log) => log,
            Err(e) => {
                fail(
                    &mut reporter,
                    format!("opening the log {}: {e}", job.log_path.display()),
                );
                return Err(());
            }
        };
        let listener = match job.attach_socket.as_deref().map(attach::listen).transpose() {
            Ok(listener) => listener,
            Err(e) => {
                fail(&mut reporter, format!("making the attach socket: {e}"));
                return Err(());
            }
        };
        let (out_r, out_w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
            Ok(p) => p,
            Err(e) => {
                fail(&mut reporter, format!("making a pipe: {e}"));
                return Err(());
            }
        };
        let (err_r, err_w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
            Ok(p) => p,
            Err(e) => {
                fail(&mut reporter, format!("making a pipe: {e}"));
                return Err(());
            }
        };
        // With -i (and no terminal) init's stdin is a pipe we feed.
        let stdin_pipe = if job.open_stdin && !tty {
            match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
                Ok(p) => Some(p),
                Err(e) => {
                    fail(&mut reporter, format!("making a pipe: {e}"));
                    return Err(());
                }
            }
        } else {
            None
        };
        // init inherits our 0, 1 and 2: /dev/null or the stdin pipe, and
        // the write ends.
        if let Some((r, _)) = &stdin_pipe {
            dup2(r.as_raw_fd(), 0);
        }
        dup2(out_w.as_raw_fd(), 1);
        dup2(err_w.as_raw_fd(), 2);
        drop((out_w, err_w));
        let root = StateRoot::new(&job.state_root);
        let created = container::create(
            &root,
            CreateOptions {
                id: id.clone(),
                bundle: job.bundle.clone(),
                pid_file: None,
                console_socket: None,
                preserve_fds: 0,
                // A terminal's master comes back to us.
                foreground: tty,
            },
        );
        // Only init holds the write ends now: its exit closes them.
        dup2(null.as_raw_fd(), 0);
        dup2(null.as_raw_fd(), 1);
        dup2(null.as_raw_fd(), 2);
        drop(null);
        let mut created = match created {
            Ok(created) => created,
            Err(e) => {
                fail(&mut reporter, e.to_string());
                return Err(());
            }
        };
        let pty = created.pty_master.take();
        let mut attach = attach;
        // The caller's window size, before the container's first look.
        if let (Some(master), Some(a)) = (&pty, attach.as_mut())
            && let Some(Control::Resize { rows, cols }) = a.pending_control()
        {
            attach::resize(master.as_raw_fd(), rows, cols);
        }
        let input = match (&pty, stdin_pipe) {
            (Some(master), _) if job.open_stdin => dup_high(master.as_raw_fd()).ok(),
            (_, Some((_, w))) => Some(w),
            _ => None,
        };
        let init = Pid::from_raw(created.record.pid);
        // Held so that init's exit does not wait for its mount namespace
        // to be torn down (the caller hears of the exit first).
        let mount_ns = std::fs::File::open(format!("/proc/{init}/ns/mnt"))
            .ok()
            .map(OwnedFd::from);
        // Blocked only now: init would keep the mask through execve.
        let signals = match signal_fd() {
            Ok(fd) => fd,
            Err(e) => {
                let _ = container::delete(&root, &id, true);
                fail(&mut reporter, format!("signalfd: {e}"));
                return Err(());
            }
        };
        if let Err(e) = container::start(&root, &id) {
            let _ = container::delete(&root, &id, true);
            fail(&mut reporter, e.to_string());
            return Err(());
        }
        let me = std::process::id() as i32;
        if let Some(path) = &job.monitor_path {
            let file = super::MonitorFile {
                pid: me,
                start_time: runtime_core::state::process_start_time(me).unwrap_or(0),
                init_pid: init.as_raw(),
            };
            let text = serde_json::to_vec(&file).unwrap_or_default();
            if let Err(e) = super::write_atomically(path, &text) {
                let _ = container::delete(&root, &id, true);
                fail(&mut reporter, format!("writing {}: {e}", path.display()));
                return Err(());
            }
        }
        report(&mut reporter, &format!("ok {me} {}", init.as_raw()));
        Ok(Monitor {
            root,
            id,
            init,
            exit_path: job.exit_path.clone(),
            log_path: job.log_path.clone(),
            log_max_size: job.log_max_size,
            log: Some(log),
            streams: [
                Stream {
                    name: "stdout",
                    // A terminal mixes both streams, as under docker.
                    fd: Some(pty.unwrap_or(out_r)),
                    lines: LineBuffer::default(),
                },
                Stream {
                    name: "stderr",
                    fd: Some(err_r),
                    lines: LineBuffer::default(),
                },
            ],
            signals,
            input,
            tty,
            attached: attach.into_iter().collect(),
            listener,
            exit_command: job.exit_command.clone(),
            handover: job.handover,
            mount_ns,
            trash: job.trash.clone(),
            held,
        })
    }

    /// Serves here for [`REEXEC_AFTER`], then re-executes the monitor's
    /// own binary with the pipes and the signal mask (execve keeps both,
    /// and init stays our child); serves in this image if that fails. A
    /// container that is done by then (`run --rm IMG true`) is seen out
    /// without the re-exec's cost on its exit's way.
    fn reexec_and_serve(mut self, stage: Stage) -> i32 {
        let deadline = std::time::Instant::now() + REEXEC_AFTER;
        if let Some(code) = self.serve_until(Some(deadline)) {
            return self.finish_exit(code);
        }
        self.mount_ns = None;
        // The second stage takes the caller the container started with; one
        // that attached this early keeps the first stage.
        if self.attached.len() > 1 || self.attached.first().is_some_and(|a| !a.stdin_once()) {
            return self.serve();
        }
        // The second stage starts with empty line buffers.
        for i in 0..2 {
            self.log_partial_line(i);
        }
        let raw = |i: usize| self.streams[i].fd.as_ref().map_or(-1, |fd| fd.as_raw_fd());
        let state = ServeState {
            id: self.id.to_string(),
            state_root: self.root.path().to_path_buf(),
            exit_path: self.exit_path.clone(),
            log_path: self.log_path.clone(),
            log_max_size: self.log_max_size,
            init: self.init.as_raw(),
            stdout: raw(0),
            stderr: raw(1),
            input: self.input.as_ref().map_or(-1, |fd| fd.as_raw_fd()),
            tty: self.tty,
            attach: self.attached.first().map(Attached::raw),
            listener: self.listener.as_ref().map_or(-1, |fd| fd.as_raw_fd()),
            exit_command: self.exit_command.clone(),
            handover: self.handover,
            trash: self.trash.clone(),
            held: self.held.iter().map(|fd| fd.as_raw_fd()).collect(),
        };
        let mut passed = vec![state.stdout, state.stderr, state.input, state.listener];
        passed.extend(&state.held);
        passed.extend(state.attach.map(|a| a.fds()).unwrap_or_default());
        passed.retain(|fd| *fd >= 0);
        let args = [
            std::ffi::CString::new(super::BINARY),
            std::ffi::CString::new(SERVE),
            std::ffi::CString::new(serde_json::to_string(&state).unwrap_or_default()),
            // A forked first stage runs the command's binary, not ours.
            match stage {
                Stage::Spawned => Ok(c"/proc/self/exe".to_owned()),
                Stage::Forked => {
                    std::ffi::CString::new(super::binary().into_os_string().into_vec())
                }
            },
        ];
        if let [Ok(a0), Ok(a1), Ok(a2), Ok(path)] = &args {
            for &fd in &passed {
                set_cloexec(fd, false);
            }
            let argv = [a0.as_c_str(), a1.as_c_str(), a2.as_c_str()];
            let env: [&std::ffi::CStr; 0] = [];
            // Only returns on failure.
            let _ = nix::unistd::execve(path.as_c_str(), &argv, &env);
            for &fd in &passed {
                set_cloexec(fd, true);
            }
        }
        self.serve()
    }

    /// Copies output (and an attached caller's input) and reaps until init
    /// exits; then records the exit, deletes the container's runtime
    /// state, lets an attached caller go, runs the exit command and
    /// returns 0.
    fn serve(mut self) -> i32 {
        // Without a deadline the loop only ends with init's exit.
        let code = loop {
            if let Some(code) = self.serve_until(None) {
                break code;
            }
        };
        self.finish_exit(code)
    }

    /// The serve loop, until init exits (its exit code) or `deadline`
    /// passes (`None`).
    fn serve_until(&mut self, deadline: Option<std::time::Instant>) -> Option<i32> {
        loop {
            if let Some(code) = self.reap() {
                return Some(code);
            }
            let timeout = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1)
                }
            };
            let raw = |fd: Option<&OwnedFd>| fd.map_or(-1, |fd| fd.as_raw_fd());
            let mut fds = vec![
                self.signals.as_raw_fd(),
                raw(self.streams[0].fd.as_ref()),
                raw(self.streams[1].fd.as_ref()),
                raw(self.listener.as_ref()),
            ];
            for a in &self.attached {
                fds.push(raw(a.stdin.as_ref().filter(|_| self.input.is_some())));
                fds.push(a.control.as_raw_fd());
            }
            let mut fds: Vec<libc::pollfd> = fds
                .into_iter()
                .map(|fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            // SAFETY: `fds` is a valid array of pollfd of that length.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n <= 0 {
                continue;
            }
            if fds[0].revents != 0 {
                self.handle_signals();
            }
            for i in 0..2 {
                if fds[i + 1].revents != 0 {
                    self.copy(i, false);
                }
            }
            // Last first: letting one go keeps the others' places.
            for k in (0..self.attached.len()).rev() {
                let still = fds[4 + 2 * k].revents == 0 || self.forward_input(k);
                if still && fds[5 + 2 * k].revents != 0 {
                    self.handle_control(k);
                }
            }
            if fds[3].revents != 0
                && let Some(listener) = &self.listener
                && let Some(caller) = Attached::accept(listener, self.tty)
            {
                self.attached.push(caller);
            }
        }
    }

    /// After init's exit: the last output, the runtime state deleted, the
    /// exit recorded, the callers told, the exit command run (unless the
    /// caller it was handed over to removed the container).
    fn finish_exit(mut self, code: i32) -> i32 {
        // What init (and anything else) wrote before it died.
        for i in 0..2 {
            self.copy(i, true);
        }
        // The heir hears first: it opens the store while the runtime
        // state goes.
        let heir = self.heir();
        if let Some(heir) = &heir {
            heir.say_exit(code);
        }
        // Its teardown now, while the heir gets on with the removal.
        self.mount_ns = None;
        // Leftovers of a container without its own pid namespace die here.
        let _ = container::delete(&self.root, &self.id, true);
        for i in 0..2 {
            self.copy(i, true);
            self.finish(i);
        }
        self.write_exit(code);
        // The exit code, then the socket's end, tell the callers.
        for caller in self.attached.drain(..) {
            caller.exited(code);
        }
        if heir.is_some_and(Attached::hand_over) {
            // The caller removed the container, and left us its files.
            if let Some(trash) = &self.trash {
                let _ = std::fs::remove_dir_all(trash);
            }
            return 0;
        }
        self.run_exit_command();
        0
    }

    /// The caller the exit is handed over to, taken out of the attached
    /// ones: the one the container started with, if it is still there.
    fn heir(&mut self) -> Option<Attached> {
        if !self.handover {
            return None;
        }
        let k = self.attached.iter().position(Attached::stdin_once)?;
        Some(self.attached.remove(k))
    }

    /// Caller `k`'s input to the container; its end closes the
    /// container's stdin (without a terminal, for the caller it started
    /// with), the detach keys let the caller go. False when it went.
    fn forward_input(&mut self, k: usize) -> bool {
        let caller = &mut self.attached[k];
        let (data, detach) = match caller.read_input() {
            Input::Data(data) => (data, false),
            Input::Detach(data) => (data, true),
            Input::Eof => {
                caller.stdin = None;
                if !self.tty && caller.stdin_once() {
                    self.input = None;
                }
                return true;
            }
        };
        if let Some(input) = &self.input
            && !data.is_empty()
            && attach::write_all(input, &data).is_err()
        {
            self.input = None;
        }
        if detach {
            self.attached.remove(k).detached();
            return false;
        }
        true
    }

    fn handle_control(&mut self, k: usize) {
        match self.attached[k].read_control() {
            Some(Control::Gone) => {
                let caller = self.attached.remove(k);
                // Without a terminal, the stdin of the caller a container
                // started with going away is the end of the container's
                // (docker's StdinOnce).
                if caller.stdin.is_some() && !caller.tty() && caller.stdin_once() {
                    self.input = None;
                }
            }
            Some(Control::Resize { rows, cols }) => {
                if self.tty
                    && let Some(pty) = self.streams[0].fd.as_ref().or(self.input.as_ref())
                {
                    attach::resize(pty.as_raw_fd(), rows, cols);
                }
            }
            None => {}
        }
    }

    /// Runs the exit command in its own session, not waited for, with
    /// no signal blocked and the standard streams on /dev/null.
    fn run_exit_command(&self) {
        let Some((program, args)) = self.exit_command.split_first() else {
            return;
        };
        let mut command = std::process::Command::new(program);
        command
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: sigprocmask and setsid are async-signal-safe.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                let mut empty: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut empty);
                libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
                libc::setsid();
                Ok(())
            });
        }
        if let Err(e) = command.spawn() {
            // Nobody reads our stderr: the next command folds the exit.
            let _ = e;
        }
    }

    fn handle_signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            let signal = info.ssi_signo as i32;
            if signal == libc::SIGTERM || signal == libc::SIGINT || signal == libc::SIGHUP {
                // Stopping is the engine's job; we pass it on and outlive init.
                let _ = kill(self.init, Signal::SIGTERM);
            }
        }
    }

    /// Reaps every exited child; init's status once it is among them.
    fn reap(&mut self) -> Option<i32> {
        loop {
            match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == self.init => return Some(code),
                Ok(WaitStatus::Signaled(p, sig, _)) if p == self.init => {
                    return Some(128 + sig as i32);
                }
                Ok(WaitStatus::StillAlive) => return None,
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Reads what stream `i` has (everything, without blocking, if
    /// `drain`) into the log.
    fn copy(&mut self, i: usize, drain: bool) {
        let Some(fd) = self.streams[i].fd.as_ref() else {
            return;
        };
        let raw = fd.as_raw_fd();
        if drain {
            // SAFETY: fcntl on our own descriptor.
            unsafe {
                let flags = libc::fcntl(raw, libc::F_GETFL);
                libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK);
            }
        }
        let mut buf = [0u8; 16 * 1024];
        loop {
            // SAFETY: reading into a buffer of that length.
            let n = unsafe { libc::read(raw, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                if !drain {
                    // Not readable after all; a real error ends the stream.
                    if std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock {
                        self.finish(i);
                    }
                }
                return;
            }
            if n == 0 {
                self.finish(i);
                return;
            }
            for caller in &mut self.attached {
                caller.output(i, &buf[..n as usize]);
            }
            let (stream, log) = (&mut self.streams[i], &mut self.log);
            let name = stream.name;
            stream.lines.push(&buf[..n as usize], &mut |entry| {
                if let Some(l) = log.as_mut() {
                    let _ = l.write(name, entry);
                }
            });
            if !drain {
                return;
            }
        }
    }

    /// Logs what stream `i` holds of a line not ended yet.
    fn log_partial_line(&mut self, i: usize) {
        let (stream, log) = (&mut self.streams[i], &mut self.log);
        let name = stream.name;
        stream.lines.finish(&mut |entry| {
            if let Some(l) = log.as_mut() {
                let _ = l.write(name, entry);
            }
        });
    }

    /// Ends stream `i`: its last partial line is logged, its pipe closed.
    fn finish(&mut self, i: usize) {
        self.log_partial_line(i);
        self.streams[i].fd = None;
    }

    /// Written to a temporary file and renamed, so a reader sees all or
    /// nothing.
    fn write_exit(&self, exit_code: i32) {
        let record = ExitRecord {
            exit_code,
            finished_at: runtime_core::state::now_rfc3339(),
            oom_killed: false,
        };
        let text = serde_json::to_vec(&record).unwrap_or_default();
        let _ = super::write_atomically(&self.exit_path, &text);
    }
}
