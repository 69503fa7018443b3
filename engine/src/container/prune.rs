//! `container prune`.

use storage::store::Store;

use super::record::Container;
use super::{Engine, Result};

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
}
