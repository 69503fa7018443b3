//! The container's init before it execs the user's program: runs in the
//! cloned child, inside the new namespaces, and talks to the runtime over
//! the sync channel. Every failure is reported over the channel and ends
//! the child: the runtime then undoes what it made.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, unshare};
use oci_spec::runtime::{Process, Spec};

use super::channel::{Channel, Message};
use super::setup;
use crate::console;
use crate::error::{Context, Error, Result};
use crate::hooks;
use crate::namespaces::Plan;
use crate::rootfs::{self, CgroupMount};
use crate::state::Status;

/// Everything init needs, prepared by the runtime before the fork.
pub struct InitArgs<'a> {
    pub spec: &'a Spec,
    pub process: &'a Process,
    pub rootfs: &'a Path,
    pub namespaces: &'a Plan,
    pub seccomp: Option<&'a crate::seccomp::Filter>,
    /// Read end of exec.fifo (opened O_RDWR): a byte on it means `start`.
    pub exec_fifo: RawFd,
    pub console_socket: Option<RawFd>,
    /// `run` in the foreground with a terminal: the pty master goes back to
    /// the runtime over the channel.
    pub pty_to_runtime: bool,
    pub cgroup_mount: Option<CgroupMount>,
    /// Whether the runtime has prestart/createRuntime hooks to run between
    /// mounts and pivot_root.
    pub runtime_hooks: bool,
    /// The container's state, for the hooks init runs itself; its pid
    /// (init's pid as the host sees it) arrives over the channel.
    pub state: crate::container::OciState,
    pub preserve_fds: u32,
    /// Whether init is the runtime's own child (one clone) rather than the
    /// intermediate process's.
    pub parent_is_runtime: bool,
    /// The runtime's end of the channel, inherited through the fork: init
    /// closes it so that the runtime's exit reads as end of file.
    pub runtime_end: RawFd,
}

/// Runs init; never returns.
pub fn run(args: InitArgs<'_>, channel: &Channel) -> ! {
    match prepare_and_exec(&args, channel) {
        Ok(never) => match never {},
        Err(e) => super::fail_child(channel, e),
    }
}

fn prepare_and_exec(args: &InitArgs<'_>, channel: &Channel) -> Result<Infallible> {
    // SAFETY: the fd is the runtime's copy, unused in this process.
    unsafe { libc::close(args.runtime_end) };
    // If the runtime dies during setup, so does init. (Forked by an
    // intermediate process that exits at once, init instead sees the
    // runtime go as the end of the channel.)
    if args.parent_is_runtime {
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
            .context(|| "setting the parent-death signal".into())?;
    }
    // Not dumpable: no process in the container may open our
    // /proc/PID/exe (the runtime binary) before we exec (CVE-2019-5736).
    nix::sys::prctl::set_dumpable(false).context(|| "making init non-dumpable".into())?;

    let host_pid = match channel.recv()? {
        Some((Message::Pid(pid), _)) => pid,
        _ => return Err(Error::Init("expected init's pid from the runtime".into())),
    };
    channel.expect(Message::Go)?;
    let mut joined = false;
    let ns = args.namespaces;
    if ns.in_user_namespace() {
        become_namespace_root()?;
    }
    set_hostname(args.spec, ns)?;

    if !ns.has(CloneFlags::CLONE_NEWNS) {
        return Err(Error::InvalidSpec("a mount namespace is required".into()));
    }
    rootfs::prepare(&rootfs::Setup {
        spec: args.spec,
        rootfs: args.rootfs,
        in_user_namespace: ns.in_user_namespace(),
        cgroup: args.cgroup_mount.as_ref(),
    })?;
    let cwd = args.process.cwd();
    if !cwd.is_absolute() {
        return Err(Error::InvalidSpec(format!(
            "process.cwd {} must be absolute",
            cwd.display()
        )));
    }
    rootfs::resolve::Root::open(args.rootfs)?.create_in(cwd, rootfs::resolve::Kind::Dir)?;
    if args.runtime_hooks {
        channel.send(&Message::RunHooks)?;
        channel.expect_noting_joined(Message::HooksDone, &mut joined)?;
    }
    if !joined {
        channel.expect(Message::Joined)?;
    }
    // After joining: the container's cgroup becomes the namespace's root.
    if ns.new_cgroup {
        unshare(CloneFlags::CLONE_NEWCGROUP).context(|| "creating the cgroup namespace".into())?;
    }
    if let Some(hooks) = args
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().as_deref())
    {
        hooks::run(
            "createContainer",
            hooks,
            &hook_state(args, host_pid, Status::Creating),
        )?;
    }
    rootfs::pivot(args.rootfs)?;

    // The container's own session: its init leads it, as under runc.
    let _ = nix::unistd::setsid();
    if args.process.terminal().unwrap_or(false) {
        setup_terminal(args, channel)?;
    }
    rootfs::write_sysctls(args.spec, args.namespaces)?;
    rootfs::finalize(args.spec)?;

    let umask = args.process.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        umask as libc::mode_t,
    ));
    setup::apply_rlimits(args.process)?;
    setup::write_oom_score_adj(args.process)?;
    setup::enter_cwd(cwd)?;
    let (path, argv, envp) = setup::resolve_executable(args.process)?;

    let no_new_privs = args.process.no_new_privileges().unwrap_or(false);
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it
    // while init still has it.
    if let (Some(filter), false) = (args.seccomp, no_new_privs) {
        filter.load()?;
    }
    setup::switch_user(args.process)?;
    if let (Some(filter), true) = (args.seccomp, no_new_privs) {
        filter.load()?;
    }

    nix::sys::prctl::set_pdeathsig(None).context(|| "clearing the parent-death signal".into())?;
    channel.send(&Message::Ready)?;
    wait_for_start(args.exec_fifo)?;
    if let Some(hooks) = args
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_deref())
    {
        hooks::run(
            "startContainer",
            hooks,
            &hook_state(args, host_pid, Status::Created),
        )?;
    }
    setup::close_inherited_fds(3 + args.preserve_fds)?;
    Err(setup::exec(&path, &argv, &envp))
}

/// The state JSON hooks read on stdin: engines' hooks (GPU, networking)
/// find the container's namespaces through its pid.
fn hook_state(args: &InitArgs<'_>, pid: i32, status: Status) -> String {
    let mut state = args.state.clone();
    state.pid = pid;
    state.status = status;
    serde_json::to_string(&state).unwrap_or_default()
}

/// In a new user namespace the process starts as the overflow uid until the
/// runtime writes the maps; then it takes uid/gid 0 of the namespace.
fn become_namespace_root() -> Result<()> {
    // SAFETY: plain syscalls.
    if unsafe { libc::setresgid(0, 0, 0) } != 0 {
        return Err(nix::Error::last())
            .context(|| "becoming gid 0 in the user namespace (is gid 0 mapped?)".into());
    }
    if unsafe { libc::setresuid(0, 0, 0) } != 0 {
        return Err(nix::Error::last())
            .context(|| "becoming uid 0 in the user namespace (is uid 0 mapped?)".into());
    }
    Ok(())
}

fn set_hostname(spec: &Spec, ns: &Plan) -> Result<()> {
    let hostname = spec.hostname().as_deref().filter(|h| !h.is_empty());
    let domainname = spec.domainname().as_deref().filter(|h| !h.is_empty());
    if (hostname.is_some() || domainname.is_some()) && !ns.has(CloneFlags::CLONE_NEWUTS) {
        return Err(Error::InvalidSpec(
            "a hostname needs its own UTS namespace".into(),
        ));
    }
    if let Some(name) = hostname {
        nix::unistd::sethostname(name).context(|| format!("setting hostname {name}"))?;
    }
    if let Some(name) = domainname {
        // SAFETY: setdomainname with a pointer and length of valid bytes.
        if unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } != 0 {
            return Err(nix::Error::last()).context(|| format!("setting domainname {name}"));
        }
    }
    Ok(())
}

fn setup_terminal(args: &InitArgs<'_>, channel: &Channel) -> Result<()> {
    let pty = console::open_pty()?;
    bind_console(&pty.slave_path)?;
    let size = args
        .process
        .console_size()
        .map(|b| (b.height() as u16, b.width() as u16));
    console::become_session_leader_on(&pty.slave_path, size)?;
    if let Some(socket) = args.console_socket {
        console::send_master(socket, pty.master.as_fd())?;
    } else if args.pty_to_runtime {
        channel.send_fd(&Message::PtyMaster, pty.master.as_fd())?;
    }
    drop::<OwnedFd>(pty.master);
    Ok(())
}

/// /dev/console is the pty slave, as on runc.
fn bind_console(slave: &Path) -> Result<()> {
    let console = PathBuf::from("/dev/console");
    let root = rootfs::resolve::Root::open(Path::new("/"))?;
    let target = root.create_in(&console, rootfs::resolve::Kind::File)?;
    nix::mount::mount(
        Some(slave),
        &rootfs::resolve::proc_fd_path(&target),
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .context(|| "binding the pty on /dev/console".into())?;
    let _ = target.as_raw_fd();
    Ok(())
}

/// Blocks until `start` writes to exec.fifo.
fn wait_for_start(fifo: RawFd) -> Result<()> {
    let mut byte = [0u8; 1];
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fifo) };
    loop {
        match nix::unistd::read(fd, &mut byte) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(Error::Init("exec.fifo closed before start".into())),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context(|| "waiting for start on exec.fifo".into()),
        }
    }
}
