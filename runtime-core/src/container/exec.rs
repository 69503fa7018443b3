//! `exec`: a new process inside a running container's namespaces and
//! cgroup, with the container's seccomp filter, its own user, capabilities,
//! cwd and environment.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use nix::sched::{CloneFlags, setns};

use oci_spec::runtime::Process;

use crate::console;
use crate::error::{Context, Error, Result};
use crate::process::channel::{self, Channel, Message};
use crate::process::clone::{Forked, clone_into};
use crate::process::setup;
use crate::state::{ContainerId, StateRoot, Status};

pub struct ExecOptions {
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: u32,
}

/// The namespaces in join order: the user namespace first (it grants the
/// rights to join the rest), the mount namespace last (it changes our root).
const ORDER: [(&str, CloneFlags); 7] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// Returns the process's exit code (0 when detached).
pub fn exec(root: &StateRoot, id: &ContainerId, opts: ExecOptions) -> Result<i32> {
    let c = super::load(root, id)?;
    c.require(&[Status::Running, Status::Created], "exec", "running")?;
    let (record, cgroup) = (c.record, c.cgroup);
    let spec = record.spec()?;
    let mut opts = opts;
    inherit_from_container(&mut opts.process, &spec);
    let container_caps = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref());
    if crate::process::sealed_exe::needed_for(container_caps)
        || crate::process::sealed_exe::needed_for(opts.process.capabilities().as_ref())
    {
        crate::process::sealed_exe::required()?;
    }
    // Read now, so that the forked process inherits it.
    crate::capabilities::last_cap();
    let terminal = opts.process.terminal().unwrap_or(false);
    console::check_console_request(terminal, opts.console_socket.is_some(), opts.detach)?;
    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(|s| crate::seccomp::compile_cached(s, &root.seccomp_cache()))
        .transpose()?;
    let namespaces = open_namespaces(record.pid)?;
    let console_socket = opts
        .console_socket
        .as_deref()
        .map(console::connect)
        .transpose()?;
    let (parent_end, child_end) = channel::pair()?;

    // setns into a pid namespace only moves our future children: the
    // forked process lands in the container's pid namespace directly.
    let mut own_pid_ns = None;
    if let Some((_, fd)) = namespaces
        .iter()
        .find(|(f, _)| *f == CloneFlags::CLONE_NEWPID)
    {
        own_pid_ns = Some(
            std::fs::File::open("/proc/self/ns/pid")
                .context(|| "opening /proc/self/ns/pid".into())?,
        );
        setns(fd.as_fd(), CloneFlags::CLONE_NEWPID)
            .context(|| format!("joining the pid namespace of {id}"))?;
    }
    let tenant = Tenant {
        process: &opts.process,
        namespaces: &namespaces,
        seccomp: seccomp.as_ref(),
        console_socket: console_socket.as_ref().map(|s| s.as_raw_fd()),
        pty_to_runtime: terminal && console_socket.is_none(),
        preserve_fds: opts.preserve_fds,
        runtime_end: parent_end.as_raw_fd(),
    };
    let pid = match clone_into(CloneFlags::empty())? {
        Forked::Child => tenant.run(child_end),
        Forked::Parent(pid) => pid,
    };
    drop(child_end);
    drop(console_socket);
    let result = (|| -> Result<Option<OwnedFd>> {
        // Back to our own for later children: no thread (the terminal's
        // copy in the foreground) starts while they would land elsewhere.
        if let Some(ns) = &own_pid_ns {
            setns(ns.as_fd(), CloneFlags::CLONE_NEWPID)
                .context(|| "returning to our own pid namespace".into())?;
        }
        parent_end.send_to_child(&Message::Go)?;
        cgroup.add_process(pid.as_raw())?;
        parent_end.send_to_child(&Message::Joined)?;
        let mut pty = None;
        loop {
            match parent_end.recv()? {
                Some((Message::PtyMaster, fd)) => pty = fd,
                Some((Message::Ready, _)) => return Ok(pty),
                Some((Message::Failed(text), _)) => return Err(Error::Init(text)),
                other => {
                    return Err(Error::Init(format!("exec: unexpected {other:?}")));
                }
            }
        }
    })();
    let pty = match result {
        Ok(pty) => pty,
        Err(e) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
            return Err(e);
        }
    };
    if let Some(pid_file) = &opts.pid_file {
        std::fs::write(pid_file, pid.as_raw().to_string())
            .context(|| format!("writing pid file {}", pid_file.display()))?;
    }
    if opts.detach {
        return Ok(0);
    }
    let signals = super::run::forwarded_signals();
    signals
        .thread_block()
        .context(|| "blocking signals".into())?;
    match pty {
        Some(master) => super::run::wait_with_terminal(pid, master, &signals),
        None => super::wait_and_forward(pid, &signals),
    }
}

/// A process file without capabilities or rlimits gets the container's,
/// as under runc (no capabilities at all would surprise more than help).
fn inherit_from_container(process: &mut Process, spec: &oci_spec::runtime::Spec) {
    let Some(container) = spec.process().as_ref() else {
        return;
    };
    if process.capabilities().is_none() {
        process.set_capabilities(container.capabilities().clone());
    }
    if process.rlimits().as_ref().is_none_or(|r| r.is_empty()) {
        process.set_rlimits(container.rlimits().clone());
    }
    if process.user().umask().is_none() {
        let mut user = process.user().clone();
        user.set_umask(container.user().umask().or(Some(0o022)));
        process.set_user(user);
    }
}

/// The container's namespaces that differ from ours: joining one we are
/// already in fails for the user namespace, and is wasted work otherwise.
fn open_namespaces(pid: i32) -> Result<Vec<(CloneFlags, OwnedFd)>> {
    let mut out = Vec::new();
    for (name, flag) in ORDER {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let ours = format!("/proc/self/ns/{name}");
        let (Ok(t), Ok(o)) = (std::fs::metadata(&theirs), std::fs::metadata(&ours)) else {
            continue;
        };
        if t.ino() == o.ino() && t.dev() == o.dev() {
            continue;
        }
        let fd = nix::fcntl::open(
            theirs.as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .context(|| format!("opening {theirs}"))?;
        out.push((flag, fd));
    }
    Ok(out)
}

struct Tenant<'a> {
    process: &'a Process,
    namespaces: &'a [(CloneFlags, OwnedFd)],
    seccomp: Option<&'a crate::seccomp::Filter>,
    console_socket: Option<i32>,
    pty_to_runtime: bool,
    preserve_fds: u32,
    runtime_end: i32,
}

impl Tenant<'_> {
    fn run(&self, channel: Channel) -> ! {
        match self.prepare_and_exec(&channel) {
            Ok(never) => match never {},
            Err(e) => crate::process::fail_child(&channel, e),
        }
    }

    fn prepare_and_exec(&self, channel: &Channel) -> Result<Infallible> {
        // SAFETY: the runtime's copy of the channel, unused here; closed so
        // that the runtime's exit reads as end of file.
        unsafe { libc::close(self.runtime_end) };
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
            .context(|| "setting the parent-death signal".into())?;
        // The container's processes must not reach the runtime binary
        // through our /proc/PID/exe (CVE-2019-5736).
        nix::sys::prctl::set_dumpable(false)
            .context(|| "making the process non-dumpable".into())?;
        channel.expect(Message::Go)?;
        for (flag, fd) in self.namespaces {
            if *flag == CloneFlags::CLONE_NEWPID {
                continue;
            }
            setns(fd.as_fd(), *flag).context(|| format!("joining namespace {flag:?}"))?;
        }
        if self.process.terminal().unwrap_or(false) {
            let pty = console::open_pty()?;
            let size = self
                .process
                .console_size()
                .map(|b| (b.height() as u16, b.width() as u16));
            console::become_session_leader_on(&pty.slave_path, size)?;
            if let Some(socket) = self.console_socket {
                console::send_master(socket, pty.master.as_fd())?;
            } else if self.pty_to_runtime {
                channel.send_fd(&Message::PtyMaster, pty.master.as_fd())?;
            }
        }
        let cwd = self.process.cwd();
        setup::enter_cwd(cwd)?;
        if let Some(umask) = self.process.user().umask() {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
                umask as libc::mode_t,
            ));
        }
        setup::apply_rlimits(self.process)?;
        setup::write_oom_score_adj(self.process)?;
        let (path, argv, envp) = setup::resolve_executable(self.process)?;
        let no_new_privs = self.process.no_new_privileges().unwrap_or(false);
        if let (Some(filter), false) = (self.seccomp, no_new_privs) {
            filter.load()?;
        }
        setup::switch_user(self.process)?;
        if let (Some(filter), true) = (self.seccomp, no_new_privs) {
            filter.load()?;
        }
        // Exec'ing before the cgroup holds us would escape its limits.
        channel.expect(Message::Joined)?;
        nix::sys::prctl::set_pdeathsig(None)
            .context(|| "clearing the parent-death signal".into())?;
        channel.send(&Message::Ready)?;
        setup::close_inherited_fds(3 + self.preserve_fds)?;
        Err(setup::exec(&path, &argv, &envp))
    }
}
