//! `create`: everything up to the point where the container's init waits
//! for `start`. On any error, whatever was made is undone before returning.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, Spec};
use serde_json::value::RawValue;

use crate::cgroups::Cgroup;
use crate::error::{Context, Error, Result};
use crate::namespaces::Plan;
use crate::process::channel::{self, Channel, Message};
use crate::process::clone::{Forked, clone_into};
use crate::process::init::{self, InitArgs};
use crate::rootfs::CgroupMount;
use crate::state::{ContainerId, Record, StateRoot, Status, process_start_time};
use crate::{console, hooks};

pub struct CreateOptions {
    pub id: ContainerId,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    /// `run` in the foreground: a terminal comes back to the runtime
    /// instead of going to a console socket.
    pub foreground: bool,
}

pub struct Created {
    pub record: Record,
    /// With `foreground` and a terminal: the pty master.
    pub pty_master: Option<OwnedFd>,
}

/// What a failed create must take down again.
struct Undo<'a> {
    root: &'a StateRoot,
    id: &'a ContainerId,
    cgroup: Option<Cgroup>,
    child: Option<Pid>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.child {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some(Err(e)) = self.cgroup.as_ref().map(Cgroup::destroy) {
            tracing::warn!("cleaning up after a failed create: {e}");
        }
        let _ = self.root.remove(self.id);
    }
}

/// The bundle's spec, and its text: the record keeps the text as it is.
fn load_spec(bundle: &Path) -> Result<(PathBuf, Spec, Box<RawValue>)> {
    let bundle =
        std::fs::canonicalize(bundle).context(|| format!("bundle {}", bundle.display()))?;
    let path = bundle.join("config.json");
    let invalid = |reason: String| Error::Spec {
        path: path.clone(),
        reason,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| invalid(e.to_string()))?;
    let spec: Spec = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let raw = RawValue::from_string(text).map_err(|e| invalid(e.to_string()))?;
    Ok((bundle, spec, raw))
}

pub fn create(root: &StateRoot, opts: CreateOptions) -> Result<Created> {
    let (bundle, spec, spec_json) = load_spec(&opts.bundle)?;
    let process = spec
        .process()
        .clone()
        .ok_or_else(|| Error::InvalidSpec("config.json has no process".into()))?;
    if crate::process::sealed_exe::needed_for(process.capabilities().as_ref()) {
        crate::process::sealed_exe::required()?;
    }
    // Read now, so that init inherits it instead of reading /proc itself.
    crate::capabilities::last_cap();
    let rootfs = rootfs_path(&bundle, &spec)?;
    let terminal = process.terminal().unwrap_or(false);
    console::check_console_request(terminal, opts.console_socket.is_some(), !opts.foreground)?;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::InvalidSpec("config.json has no linux section".into()))?;
    let namespaces = Plan::from_spec(linux.namespaces().as_deref().unwrap_or(&[]))?;
    let seccomp = linux
        .seccomp()
        .as_ref()
        .map(|s| crate::seccomp::compile_cached(s, &root.seccomp_cache()))
        .transpose()?;
    let console_socket = opts
        .console_socket
        .as_deref()
        .map(console::connect)
        .transpose()?;

    let cgroups_path = linux
        .cgroups_path()
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let cgroup = Cgroup::new(cgroups_path.as_deref(), opts.id.as_str())?;

    root.create_dir(&opts.id)?;
    let mut undo = Undo {
        root,
        id: &opts.id,
        cgroup: None,
        child: None,
        armed: true,
    };
    // Recorded before anything else exists (without an init it reads as
    // stopped), so that if this command is killed half-way, `delete` still
    // finds the cgroup to remove.
    let mut record = Record::new(
        opts.id.clone(),
        bundle.clone(),
        rootfs.clone(),
        &spec,
        spec_json,
        cgroup.clone(),
    );
    root.save(&record)?;
    let fifo_path = root.exec_fifo(&opts.id);
    nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o600))
        .context(|| format!("creating {}", fifo_path.display()))?;
    // O_RDWR: opening never blocks, and init's read blocks until `start`
    // writes a byte.
    let fifo = nix::fcntl::open(&fifo_path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .context(|| format!("opening {}", fifo_path.display()))?;

    cgroup.create()?;
    undo.cgroup = Some(cgroup);
    let cgroup = undo.cgroup.as_ref().expect("just set");
    if let Some(resources) = linux.resources() {
        cgroup.apply(&with_device_defaults(resources, linux))?;
    }

    let hooks = spec.hooks().as_ref();
    let runtime_hooks: Vec<_> = hooks
        .map(|h| {
            h.prestart()
                .iter()
                .flatten()
                .chain(h.create_runtime().iter().flatten())
                .cloned()
                .collect()
        })
        .unwrap_or_default();

    let (parent_end, child_end) = channel::pair()?;
    let init_args = InitArgs {
        spec: &spec,
        process: &process,
        rootfs: &rootfs,
        namespaces: &namespaces,
        seccomp: seccomp.as_ref(),
        exec_fifo: fifo.as_raw_fd(),
        console_socket: console_socket.as_ref().map(|s| s.as_raw_fd()),
        pty_to_runtime: terminal && opts.foreground && console_socket.is_none(),
        cgroup_mount: cgroup_mount(cgroup),
        runtime_hooks: !runtime_hooks.is_empty(),
        state: super::OciState::of(&record, Status::Creating),
        preserve_fds: opts.preserve_fds,
        parent_is_runtime: namespaces.join.is_empty(),
        runtime_end: parent_end.as_raw_fd(),
    };

    let pid = spawn_init(&namespaces, init_args, child_end, &parent_end, linux)?;
    undo.child = Some(pid);
    drop(fifo);
    drop(console_socket);

    parent_end.send_to_child(&Message::Pid(pid.as_raw()))?;
    parent_end.send_to_child(&Message::Go)?;
    cgroup.add_process(pid.as_raw())?;
    parent_end.send_to_child(&Message::Joined)?;
    record.pid = pid.as_raw();
    let mut pty_master = None;
    loop {
        match parent_end.recv()? {
            Some((Message::RunHooks, _)) => {
                let state = super::hook_state(&record, Status::Creating);
                hooks::run("createRuntime", &runtime_hooks, &state)?;
                parent_end.send_to_child(&Message::HooksDone)?;
            }
            Some((Message::PtyMaster, fd)) => pty_master = fd,
            Some((Message::Ready, _)) => break,
            Some((Message::Failed(text), _)) => return Err(Error::Init(text)),
            Some((other, _)) => {
                return Err(Error::Init(format!("unexpected {other:?} from init")));
            }
            None => {
                return Err(Error::Init(
                    "the container's init exited before it was ready".into(),
                ));
            }
        }
    }
    record.pid_start_time = process_start_time(pid.as_raw())
        .ok_or_else(|| Error::Init("the container's init exited before it was ready".into()))?;
    root.save_init(&opts.id, record.pid, record.pid_start_time)?;
    if let Some(pid_file) = &opts.pid_file {
        write_pid_file(pid_file, pid.as_raw())?;
    }
    undo.armed = false;
    Ok(Created { record, pty_master })
}

fn rootfs_path(bundle: &Path, spec: &Spec) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::InvalidSpec("config.json has no root".into()))?;
    let path = bundle.join(root.path());
    let path = std::fs::canonicalize(&path).context(|| format!("rootfs {}", path.display()))?;
    if !path.is_dir() {
        return Err(Error::InvalidSpec(format!(
            "rootfs {} is not a folder",
            path.display()
        )));
    }
    Ok(path)
}

/// A spec that restricts devices still lets the container use the ones it
/// is given.
fn with_device_defaults(
    resources: &oci_spec::runtime::LinuxResources,
    linux: &oci_spec::runtime::Linux,
) -> oci_spec::runtime::LinuxResources {
    let mut resources = resources.clone();
    if let Some(rules) = resources.devices().as_ref().filter(|r| !r.is_empty()) {
        let mut rules = rules.clone();
        for rule in
            crate::rootfs::devices::cgroup_allow_rules(linux.devices().as_deref().unwrap_or(&[]))
        {
            // A rule in force already (no deny after it) would change
            // nothing: docker's and the engine's specs list these very
            // rules, and each is a write to devices.allow on cgroup v1.
            let in_force = rules.iter().rposition(|r| !r.allow()).map_or(0, |i| i + 1);
            if !rules[in_force..].contains(&rule) {
                rules.push(rule);
            }
        }
        resources.set_devices(Some(rules));
    }
    resources
}

/// What the spec's `cgroup` mount shows: the container's own folders.
fn cgroup_mount(cgroup: &Cgroup) -> Option<CgroupMount> {
    use crate::cgroups::Mode;
    if cgroup.mode() == Mode::V2 {
        return cgroup.unified_path().map(|p| CgroupMount::V2(p.to_owned()));
    }
    let base = Path::new("/sys/fs/cgroup");
    let hierarchies = cgroup
        .paths()
        .filter_map(|p| {
            let name = p.strip_prefix(base).ok()?.components().next()?;
            Some((
                name.as_os_str().to_string_lossy().into_owned(),
                p.to_owned(),
            ))
        })
        .collect();
    Some(CgroupMount::V1(hierarchies))
}

/// Forks init. With no namespace to join, one clone(2) makes it directly in
/// its new namespaces. Joining a namespace by path needs an intermediate
/// process that joins first and then clones, so that new namespaces are
/// owned by the joined user namespace and the new pid namespace exists.
fn spawn_init(
    ns: &Plan,
    args: InitArgs<'_>,
    child_end: Channel,
    parent_end: &Channel,
    linux: &oci_spec::runtime::Linux,
) -> Result<Pid> {
    let new_user = ns.new.contains(CloneFlags::CLONE_NEWUSER);
    if ns.join.is_empty() {
        let pid = match clone_into(ns.new)? {
            Forked::Child => init::run(args, &child_end),
            Forked::Parent(pid) => pid,
        };
        drop(child_end);
        if new_user {
            write_id_maps(pid, linux)?;
        }
        return Ok(pid);
    }
    // The runtime reaps init itself (`run`): orphans come back to it.
    nix::sys::prctl::set_child_subreaper(true).context(|| "becoming a subreaper".into())?;
    let intermediate = match clone_into(CloneFlags::empty())? {
        Forked::Child => intermediate(ns, args, child_end),
        Forked::Parent(pid) => pid,
    };
    drop(child_end);
    let reap = || {
        let _ = waitpid(intermediate, None);
    };
    if new_user {
        if let Err(e) = parent_end.expect(Message::Go) {
            reap();
            return Err(e);
        }
        write_id_maps(intermediate, linux)?;
        parent_end.send_to_child(&Message::Go)?;
    }
    let pid = match parent_end.recv() {
        Ok(Some((Message::Pid(pid), _))) => Pid::from_raw(pid),
        Ok(Some((Message::Failed(text), _))) => {
            reap();
            return Err(Error::Init(text));
        }
        other => {
            reap();
            return Err(Error::Init(format!(
                "no pid from the intermediate process: {other:?}"
            )));
        }
    };
    reap();
    Ok(pid)
}

fn intermediate(ns: &Plan, args: InitArgs<'_>, channel: Channel) -> ! {
    let result = (|| -> Result<Pid> {
        ns.join_all()?;
        let mut flags = ns.new;
        if flags.contains(CloneFlags::CLONE_NEWUSER) {
            nix::sched::unshare(CloneFlags::CLONE_NEWUSER)
                .context(|| "creating the user namespace".into())?;
            channel.send(&Message::Go)?;
            channel.expect(Message::Go)?;
            flags.remove(CloneFlags::CLONE_NEWUSER);
        }
        match clone_into(flags)? {
            Forked::Child => init::run(args, &channel),
            Forked::Parent(pid) => Ok(pid),
        }
    })();
    let code = match result {
        Ok(pid) => channel
            .send(&Message::Pid(pid.as_raw()))
            .map(|_| 0)
            .unwrap_or(1),
        Err(e) => {
            let _ = channel.send(&Message::Failed(e.to_string()));
            1
        }
    };
    // SAFETY: leave the fork without the parent's destructors.
    unsafe { libc::_exit(code) }
}

fn write_id_maps(pid: Pid, linux: &oci_spec::runtime::Linux) -> Result<()> {
    let render = |maps: &[LinuxIdMapping]| {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    let uid = linux.uid_mappings().as_deref().unwrap_or(&[]);
    let gid = linux.gid_mappings().as_deref().unwrap_or(&[]);
    if uid.is_empty() || gid.is_empty() {
        return Err(Error::InvalidSpec(
            "a user namespace needs linux.uidMappings and linux.gidMappings".into(),
        ));
    }
    for (file, content) in [("uid_map", render(uid)), ("gid_map", render(gid))] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, &content).context(|| format!("writing {path}"))?;
    }
    Ok(())
}

/// runc writes the pid file through a temporary name so that a reader never
/// sees it empty.
fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .context(|| "reading the current folder".into())?
            .join(path)
    };
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, pid.to_string())
        .context(|| format!("writing pid file {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).context(|| format!("writing pid file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
        serde_json::from_str(json).expect("rules")
    }

    fn with_defaults(spec_rules: &str) -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
        let resources: oci_spec::runtime::LinuxResources =
            serde_json::from_str(&format!(r#"{{"devices": {spec_rules}}}"#)).expect("resources");
        let linux = oci_spec::runtime::Linux::default();
        with_device_defaults(&resources, &linux)
            .devices()
            .clone()
            .unwrap_or_default()
    }

    #[test]
    fn default_device_rules_the_spec_has_already_are_not_repeated() {
        let defaults = crate::rootfs::devices::cgroup_allow_rules(&[]);
        let deny_all = r#"[{"allow": false, "access": "rwm"}]"#;
        // Deny all, then the defaults: nothing to add.
        let mut spec = rules(deny_all);
        spec.extend(defaults.iter().cloned());
        let json = serde_json::to_string(&spec).expect("json");
        assert_eq!(with_defaults(&json), spec);
        // Only those missing are added.
        let mut spec = rules(deny_all);
        spec.push(defaults[2].clone());
        let json = serde_json::to_string(&spec).expect("json");
        let got = with_defaults(&json);
        assert_eq!(got.len(), 1 + defaults.len());
        assert_eq!(got.iter().filter(|r| **r == defaults[2]).count(), 1);
    }

    #[test]
    fn a_default_rule_denied_after_the_spec_allowed_it_comes_again() {
        let defaults = crate::rootfs::devices::cgroup_allow_rules(&[]);
        let mut spec = rules(r#"[{"allow": false, "access": "rwm"}]"#);
        spec.push(defaults[2].clone());
        spec.extend(rules(
            r#"[{"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]"#,
        ));
        let json = serde_json::to_string(&spec).expect("json");
        let got = with_defaults(&json);
        // The list still ends with every default allowed.
        assert_eq!(&got[got.len() - defaults.len()..], &defaults[..]);
    }
}
