//! Reconciliation: a live container's record against the host. The
//! monitor's exit file is the truth about an exit; a monitor that is gone
//! without one means the container was lost (its monitor was killed, or
//! the host rebooted) and its exit status is unknown.

use storage::store::Store;

use super::create::volume_names;
use super::record::{Container, MonitorRef, Status};
use super::{Engine, Result};
use crate::monitor::{ExitRecord, MonitorFile};

/// docker's exit code for a container whose end nobody saw.
pub const LOST_EXIT_CODE: i32 = 255;

impl Engine {
    /// Folds an exit that happened into the record (and saves it), taking
    /// down what the run set up. A container still running, or not live,
    /// comes back as it was.
    pub fn refresh(&self, store: &Store, mut container: Container) -> Result<Container> {
        if self.reconcile(store, &mut container) {
            store.table::<Container>()?.insert(&container)?;
        }
        Ok(container)
    }

    /// [`Engine::refresh`] without the save: true when the record changed
    /// (and must be saved, or removed).
    pub(super) fn reconcile(&self, store: &Store, container: &mut Container) -> bool {
        let adopted = !container.state.status.is_live() && self.adopt_unrecorded_start(container);
        if !container.state.status.is_live() {
            return false;
        }
        if container.state.status == Status::Restarting {
            // Its run was taken down already; what is left is the
            // cleanup waiting to start it again.
            if container.state.monitor.is_some_and(|m| m.is_alive()) {
                return false;
            }
            container.state.status = Status::Exited;
            container.state.monitor = None;
            return true;
        }
        let exit_file = self.paths(&container.id).exit_file();
        let exit = match ExitRecord::read(&exit_file) {
            Ok(exit) => exit,
            Err(_) if container.state.monitor.is_some_and(|m| m.is_alive()) => {
                // Still live; Paused holds only while the kernel keeps
                // the container frozen (a signal thaws it).
                if container.state.status == Status::Paused
                    && self.still_frozen(container) == Some(false)
                {
                    container.state.status = Status::Running;
                    return true;
                }
                return adopted;
            }
            // Written just before the monitor exited, or never.
            Err(_) => match ExitRecord::read(&exit_file) {
                Ok(exit) => exit,
                Err(_) => {
                    container.state.error = "the container's monitor is gone (killed, or the host rebooted): its exit status is unknown".into();
                    ExitRecord {
                        exit_code: LOST_EXIT_CODE,
                        finished_at: runtime_core::state::now_rfc3339(),
                        oom_killed: false,
                    }
                }
            },
        };
        let state = &mut container.state;
        state.status = Status::Exited;
        state.exit_code = exit.exit_code;
        state.finished_at = Some(exit.finished_at);
        state.oom_killed = exit.oom_killed;
        state.pid = 0;
        state.monitor = None;
        self.teardown(store, container);
        true
    }

    /// A start whose command was killed after the monitor ran the
    /// container and before the record said so: the monitor's file tells,
    /// and the record takes the run over (to be checked like any other).
    fn adopt_unrecorded_start(&self, container: &mut Container) -> bool {
        let path = self.paths(&container.id).monitor_file();
        let Ok(file) = MonitorFile::read(&path) else {
            return false;
        };
        let state = &mut container.state;
        state.status = Status::Running;
        state.pid = file.init_pid;
        state.monitor = Some(MonitorRef {
            pid: file.pid,
            start_time: file.start_time,
        });
        state.started_at = Some(runtime_core::state::now_rfc3339());
        state.error.clear();
        state.stopped_by_user = false;
        // What every start mounts.
        state.mounted_volumes = volume_names(&container.mounts);
        true
    }

    /// Takes down what a run set up, best effort (each failure is logged
    /// and the rest still done): runtime state and any process left in
    /// the container's cgroup, volume mounts, its network (sandbox,
    /// addresses, published ports), the root filesystem mount, the bundle
    /// folder. The container's own layer stays.
    pub(super) fn teardown(&self, store: &Store, container: &mut Container) {
        let paths = self.paths(&container.id);
        if let Ok(id) = container.id.parse::<runtime_core::state::ContainerId>() {
            match runtime_core::container::delete(&self.runtime_root(), &id, true) {
                Ok(()) | Err(runtime_core::Error::NotFound(_)) => {}
                Err(e) => tracing::warn!("container {}: {e}", container.name),
            }
        }
        if !container.state.mounted_volumes.is_empty() {
            match self.volumes(store) {
                Ok(volumes) => {
                    for name in std::mem::take(&mut container.state.mounted_volumes) {
                        let unmounted = volumes
                            .get(&name)
                            .and_then(|v| volumes.unmount(&v, &container.id));
                        if let Err(e) = unmounted {
                            tracing::warn!(
                                "container {}: unmounting volume {name}: {e}",
                                container.name
                            );
                        }
                    }
                }
                Err(e) => tracing::warn!("container {}: {e}", container.name),
            }
        }
        self.networking.teardown(store, &container.id);
        if let Err(e) = image::Rootfs::release(&paths.rootfs()) {
            tracing::warn!("container {}: {e}", container.name);
        }
        match std::fs::remove_dir_all(paths.run()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!("removing {}: {e}", paths.run().display());
            }
            _ => {}
        }
    }
}
