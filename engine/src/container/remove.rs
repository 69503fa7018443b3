//! `rm`: a container's files and records; with `force`, a running one is
//! killed first; with `volumes`, its anonymous volumes go too (named ones
//! never do, as in docker).

use std::time::Duration;

use nix::sys::signal::Signal;
use storage::store::Store;
use storage::volume::Volumes;

use super::create::volume_names;
use super::error::io;
use super::record::{Container, NameEntry, Status};
use super::wait::wait_for_exit;
use super::{Engine, EngineError, Result};

impl Engine {
    /// Unmounts the root filesystem of the container `id` and removes its
    /// layer, ahead of [`Engine::remove`] (which would do it, and still
    /// does what is left): `run --rm` does it while the monitor deletes
    /// the runtime state. Nothing else of the container changes.
    pub fn remove_root(&self, id: &str) -> Result<()> {
        let paths = self.paths(id);
        Ok(image::Rootfs::unmount_to_trash(
            paths.data(),
            &paths.rootfs(),
            &paths.trash(),
        )?)
    }

    /// [`Engine::remove`] (forced, anonymous volumes too) of a container
    /// whose exit its monitor handed over: the folder [`Engine::remove_root`]
    /// put in the trash is left for the monitor to delete once told
    /// `done` (a monitor told nothing runs the exit command, whose
    /// removal deletes it).
    pub fn remove_handed_over(&self, store: &Store, id: &str) -> Result<Container> {
        self.remove_keeping(store, id, true, true, Trash::LeftToMonitor)
    }

    /// Removes the container. Its folders go first: if one cannot be
    /// removed (something is still mounted there) the record stays, so
    /// that `rm` can be tried again.
    pub fn remove(
        &self,
        store: &Store,
        text: &str,
        force: bool,
        volumes: bool,
    ) -> Result<Container> {
        self.remove_keeping(store, text, force, volumes, Trash::Delete)
    }

    fn remove_keeping(
        &self,
        store: &Store,
        text: &str,
        force: bool,
        volumes: bool,
        trash: Trash,
    ) -> Result<Container> {
        let mut container = super::lookup(store, text)?;
        // An exit folded here is saved only if the record stays: one
        // write (and flush) for the whole removal.
        let folded = self.reconcile(store, &mut container);
        match self.remove_reconciled(store, &mut container, force, volumes, trash) {
            Ok(()) => Ok(container),
            Err(e) => {
                if folded {
                    store.table::<Container>()?.insert(&container)?;
                }
                Err(e)
            }
        }
    }

    fn remove_reconciled(
        &self,
        store: &Store,
        container: &mut Container,
        force: bool,
        volumes: bool,
        trash: Trash,
    ) -> Result<()> {
        if container.state.status == Status::Restarting && force {
            self.cancel_restart(store, container)?;
        }
        if container.state.status.is_live() {
            if !force {
                return Err(EngineError::RemoveRunning(container.name.clone()));
            }
            self.send_signal(container, Signal::SIGKILL)?;
            if let Some(monitor) = container.state.monitor {
                wait_for_exit(monitor, Some(Duration::from_secs(10)));
            }
            *container = self.refresh(store, container.clone())?;
            if container.state.status.is_live() {
                // A monitor that does not die: take the container down
                // without it.
                container.state.status = Status::Dead;
                self.teardown(store, container);
            }
        }
        // A run --rm whose container ended before it was recorded running
        // comes here without a teardown.
        self.networking.teardown(store, &container.id);
        let paths = self.paths(&container.id);
        image::Rootfs::unmount(paths.data(), &paths.rootfs())?;
        let trash = (trash == Trash::Delete).then(|| paths.trash());
        for dir in [paths.data(), paths.run()]
            .into_iter()
            .chain(trash.as_deref())
        {
            match std::fs::remove_dir_all(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io(format!("removing {}", dir.display()))(e));
                }
                _ => {}
            }
        }
        let used = volume_names(&container.mounts);
        store.transact_with(|tx| {
            tx.remove::<Container>(&container.id)?;
            if tx
                .get::<NameEntry>(&container.name)?
                .is_some_and(|e| e.id == container.id)
            {
                tx.remove::<NameEntry>(&container.name)?;
            }
            for volume in &used {
                Volumes::remove_user(tx, volume, &container.id)?;
            }
            Ok::<_, EngineError>(())
        })?;
        if volumes && !container.anonymous_volumes.is_empty() {
            let all = self.volumes(store)?;
            for name in &container.anonymous_volumes {
                match all.remove(name) {
                    Ok(_) | Err(storage::volume::VolumeError::NotFound(_)) => {}
                    Err(e) => tracing::warn!("volume {name} kept: {e}"),
                }
            }
        }
        Ok(())
    }
}

/// What becomes of a container folder moved to the trash.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trash {
    Delete,
    LeftToMonitor,
}
