//! `start`: mounts the root filesystem and the volumes, writes the
//! container's files and its OCI bundle, and has a monitor run it. A
//! start that fails undoes all of that and leaves the container as it was
//! (created or exited), with the reason in its record.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use image::{Images, Rootfs};
use storage::mounts::MountSpec;
use storage::store::Store;
use storage::volume::{Volumes, copy_up, open_subpath};

use super::error::io;
use super::record::{Container, MonitorRef, Status};
use super::{Engine, EngineError, Result, StartFailure, files};
use crate::monitor::{self, Job, JobAttach, SpecFacts, Zygote};
use crate::spec::{self, Host, ResolvedMounts};

/// The caller's own streams, handed to the monitor (`run` in the
/// foreground, `start -a`): the container's output is written straight
/// to them, and `stdin` (with `-i`) is copied to the container. The
/// monitor drops them when `control`'s other end closes, and closes
/// `control` when it exits.
pub struct Attach {
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// The monitor's end of a socket pair whose other end the caller
    /// keeps.
    pub control: OwnedFd,
    /// The caller takes the exit over and removes the container (`run
    /// --rm`); see [`crate::monitor::Job::handover`].
    pub handover: bool,
}

/// How [`Engine::start_with`] starts a container.
#[derive(Default)]
pub struct StartOptions<'a> {
    /// The caller's streams (see [`Attach`]).
    pub attach: Option<Attach>,
    /// A monitor forked ahead of time (used, or let go when the container
    /// is live already).
    pub zygote: Option<Zygote>,
    /// Asked once the container runs, before its record says so: true
    /// when it is over already and the caller removes it at once (`run
    /// --rm` of a command done in no time), so that the record is not
    /// written only to be removed.
    pub over_already: Option<&'a mut dyn FnMut() -> bool>,
}

impl Engine {
    /// Starts the container (a running one is left as it is). With
    /// `attach`, the monitor writes the output to the caller's streams.
    pub fn start(&self, store: &Store, text: &str, attach: Option<Attach>) -> Result<Container> {
        self.start_with(
            store,
            text,
            StartOptions {
                attach,
                ..StartOptions::default()
            },
        )
    }

    /// [`Engine::start`] with [`StartOptions`]. The container comes back
    /// running, recorded so unless `over_already` said it ended.
    pub fn start_with(
        &self,
        store: &Store,
        text: &str,
        options: StartOptions<'_>,
    ) -> Result<Container> {
        let StartOptions {
            attach,
            zygote,
            over_already,
        } = options;
        let mut container = self.find(store, text)?;
        // A restart policy's start, or the user's during its back-off.
        let restarting = container.state.status == Status::Restarting;
        if container.state.status.is_live() && !restarting {
            return Ok(container);
        }
        match self.launch(store, &container, attach, zygote) {
            Ok((handle, mounted_volumes)) => {
                let state = &mut container.state;
                if !restarting {
                    // The user's start begins the policy's count anew.
                    state.restart_count = 0;
                    state.restart_delay_ms = 0;
                }
                state.status = Status::Running;
                state.pid = handle.init_pid;
                state.monitor = MonitorRef::of(handle.pid);
                state.started_at = Some(runtime_core::state::now_rfc3339());
                state.error.clear();
                state.exit_code = 0;
                state.oom_killed = false;
                state.stopped_by_user = false;
                state.mounted_volumes = mounted_volumes;
                if !over_already.is_some_and(|over| over()) {
                    store.table::<Container>()?.insert(&container)?;
                }
                Ok(container)
            }
            Err(e) => {
                let reason = e.to_string();
                let kind = StartFailure::of(&reason);
                container.state.error = reason.clone();
                if restarting {
                    container.state.status = Status::Exited;
                    container.state.monitor = None;
                }
                container.state.exit_code = match kind {
                    StartFailure::CommandNotFound => 127,
                    StartFailure::CannotInvoke => 126,
                    StartFailure::Other => 128,
                };
                store.table::<Container>()?.insert(&container)?;
                Err(EngineError::Start {
                    name: container.name.clone(),
                    reason,
                    kind,
                })
            }
        }
    }

    /// Sets everything up and spawns the monitor; undoes what it did on
    /// failure. Returns the monitor and the volumes it mounted.
    fn launch(
        &self,
        store: &Store,
        container: &Container,
        attach: Option<Attach>,
        zygote: Option<Zygote>,
    ) -> Result<(monitor::MonitorHandle, Vec<String>)> {
        let paths = self.paths(&container.id);
        let images = Images::open(&self.data_root)?;
        let image = images.resolve(store, &container.config.image.id.to_string())?;
        let image_config = images.config(&image)?;
        let layers: Vec<PathBuf> = image
            .layers
            .iter()
            .map(|l| images.layer_path(&l.diff_id))
            .collect();

        let mut undo = Undo {
            volumes: self.volumes(store)?,
            id: &container.id,
            rootfs: None,
            mounted: Vec::new(),
            run_dir: None,
            network: None,
        };
        let rootfs = Rootfs::open(&self.data_root)?
            .volatile(container.config.auto_remove)
            .mount(&layers, paths.data(), &paths.rootfs())?;
        undo.rootfs = Some(rootfs.target().to_owned());
        // Dropped, not unmounted: `undo` and the teardown own it now.
        let rootfs_path = rootfs.target().to_owned();
        drop(rootfs);

        let mut resolved = ResolvedMounts::default();
        for mount in &container.mounts {
            let MountSpec::Volume(v) = mount else {
                continue;
            };
            let Some(name) = &v.name else { continue };
            let volume = undo.volumes.get(name)?;
            let host = undo.volumes.mount(&volume, &container.id)?;
            undo.mounted.push(name.clone());
            if !v.nocopy && v.subpath.is_none() {
                copy_up(&rootfs_path, &v.target, &host)?;
            }
            let source = match &v.subpath {
                // Checked inside the volume; bound by its path.
                Some(sub) => {
                    drop(open_subpath(&host, sub)?);
                    host.join(sub)
                }
                None => host,
            };
            resolved.volumes.insert(v.target.clone(), source);
        }

        if container.config.init {
            resolved.init = Some(super::init::find()?);
        }
        let exposed = image_config
            .config()
            .as_ref()
            .and_then(|c| c.exposed_ports().clone())
            .unwrap_or_default();
        let mut joined = self.join_networks(store, container, &exposed)?;
        if joined.sandbox {
            undo.network = Some((&self.networking, store));
        }
        resolved.netns = joined.netns.take();
        let host = Host::detect();
        let hostname = match joined.hostname.take() {
            Some(theirs) if container.config.hostname.is_none() => theirs,
            _ => spec::hostname(&container.config, &host, &container.id),
        };
        resolved.extra_binds = match joined.shared_files.take() {
            Some(theirs) => theirs,
            None => files::write(&paths, &hostname, &container.config, joined.facts)?,
        };
        let mut config = container.config.clone();
        config.mounts = container.mounts.clone();
        let spec = spec::build_on(
            &host,
            &config,
            &image_config,
            &rootfs_path,
            &resolved,
            &container.id,
        )?;

        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(paths.run())
            .map_err(io(format!("creating {}", paths.run().display())))?;
        undo.run_dir = Some(paths.run().to_owned());
        spec.save(paths.config_json())
            .map_err(|e| EngineError::Io {
                context: format!("writing {}", paths.config_json().display()),
                source: std::io::Error::other(e),
            })?;
        match std::fs::remove_file(paths.exit_file()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io(format!("removing {}", paths.exit_file().display()))(e));
            }
            _ => {}
        }

        let mut exit_command = self.exit_command.clone();
        if !exit_command.is_empty() {
            exit_command.push(container.id.clone());
        }
        let job = Job {
            id: container.id.clone(),
            bundle: paths.run().to_owned(),
            state_root: super::paths::runtime_root(&self.run_root),
            log_path: paths.log(),
            exit_path: paths.exit_file(),
            monitor_path: Some(paths.monitor_file()),
            detach: attach.is_none(),
            log_max_size: monitor::DEFAULT_LOG_MAX,
            open_stdin: container.config.open_stdin,
            exit_command,
            attach_socket: Some(paths.attach_socket()),
            attach: attach.as_ref().map(|a| JobAttach {
                stdin: a.stdin.as_ref().map(|fd| fd.as_raw_fd()),
                stdout: a.stdout.as_raw_fd(),
                stderr: a.stderr.as_raw_fd(),
                control: a.control.as_raw_fd(),
            }),
            handover: attach.as_ref().is_some_and(|a| a.handover),
            facts: Some(SpecFacts::of(&spec)),
            trash: attach
                .as_ref()
                .is_some_and(|a| a.handover)
                .then(|| paths.trash()),
            hold: joined.hold_fds(),
        };
        let handle = match zygote {
            Some(zygote) => zygote.launch(&job),
            None => monitor::spawn(&job, &job.passed_fds()),
        };
        // Ours are closed now: the monitor holds its copies.
        drop(attach);
        for fd in &job.hold {
            // SAFETY: `hold_fds` gave these numbers up to the job; the
            // monitor has its copies now.
            drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(*fd) });
        }
        let handle = handle?;
        let mounted = std::mem::take(&mut undo.mounted);
        undo.rootfs = None;
        undo.run_dir = None;
        undo.network = None;
        Ok((handle, mounted))
    }
}

/// What a failed start must take down.
struct Undo<'e, 's> {
    volumes: Volumes<'s>,
    id: &'e str,
    rootfs: Option<PathBuf>,
    mounted: Vec<String>,
    run_dir: Option<PathBuf>,
    /// The container's network sandbox was set up.
    network: Option<(&'e network::sandbox::Networking, &'s Store)>,
}

impl Drop for Undo<'_, '_> {
    fn drop(&mut self) {
        if let Some((networking, store)) = self.network {
            networking.teardown(store, self.id);
        }
        if let Some(dir) = &self.run_dir
            && let Err(e) = std::fs::remove_dir_all(dir)
        {
            tracing::warn!("removing {}: {e}", dir.display());
        }
        for name in self.mounted.drain(..).rev() {
            let unmounted = self
                .volumes
                .get(&name)
                .and_then(|v| self.volumes.unmount(&v, self.id));
            if let Err(e) = unmounted {
                tracing::warn!("unmounting volume {name} after a failed start: {e}");
            }
        }
        if let Some(target) = &self.rootfs
            && let Err(e) = Rootfs::release(target)
        {
            tracing::warn!("unmounting {} after a failed start: {e}", target.display());
        }
    }
}
