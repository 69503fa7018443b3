//! `container prune` and the monitor's exit command (`cleanup`).

use storage::store::Store;

use super::record::{Container, Status};
use super::{Engine, EngineError, Result};

impl Engine {
    /// Removes every container that is not running (created, exited,
    /// dead), with their anonymous volumes kept, as docker. Returns the
    /// removed ones; one that cannot be removed is reported and skipped.
    pub fn prune(&self, store: &Store) -> Result<Vec<Container>> {
        self.prune_matching(store, &|_| true)
    }

    /// [`Engine::prune`] of the stopped containers `selected` accepts
    /// (`--filter`).
    pub fn prune_matching(
        &self,
        store: &Store,
        selected: &dyn Fn(&Container) -> bool,
    ) -> Result<Vec<Container>> {
        let mut removed = Vec::new();
        for container in self.list(store)? {
            if container.state.status.is_live() || !selected(&container) {
                continue;
            }
            match self.remove(store, &container.id, false, false) {
                Ok(c) => removed.push(c),
                Err(e) => tracing::warn!("container {}: {e}", container.name),
            }
        }
        Ok(removed)
    }

    /// What a monitor runs once its container exited: the exit is folded
    /// into the record (and the run taken down); a `--rm` container is
    /// removed with its anonymous volumes. A container already gone is
    /// fine: `run --rm` in the foreground may have removed it first.
    pub fn cleanup(&self, store: &Store, id: &str) -> Result<()> {
        let container = match self.find(store, id) {
            Ok(c) => c,
            Err(EngineError::NoSuchContainer(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if container.config.auto_remove && container.state.status == Status::Exited {
            match self.remove(store, &container.id, false, true) {
                Ok(_) | Err(EngineError::NoSuchContainer(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
