//! `pause` and `unpause`: the cgroup freezer, through runtime-core. The
//! record says Paused while the container is frozen; a signal to a paused
//! container thaws it afterwards (docker's rule: a frozen process would
//! only get it once thawed), and reconciliation takes a container that is
//! no longer frozen back to Running.

use storage::store::Store;

use super::record::{Container, Status};
use super::{Engine, EngineError, Result};

impl Engine {
    /// Freezes every process of the running container `text` names.
    pub fn pause(&self, store: &Store, text: &str) -> Result<Container> {
        let mut container = self.find(store, text)?;
        match container.state.status {
            Status::Running => {}
            Status::Paused => return Err(EngineError::AlreadyPaused(container.id)),
            Status::Restarting => return Err(EngineError::Restarting(container.id)),
            _ => return Err(EngineError::NotRunning(container.id)),
        }
        let id = container.id.parse()?;
        runtime_core::container::pause(&self.runtime_root(), &id)?;
        container.state.status = Status::Paused;
        store.table::<Container>()?.insert(&container)?;
        Ok(container)
    }

    /// Thaws the paused container `text` names.
    pub fn unpause(&self, store: &Store, text: &str) -> Result<Container> {
        let mut container = self.find(store, text)?;
        if container.state.status != Status::Paused {
            return Err(EngineError::NotPaused(container.id));
        }
        let id = container.id.parse()?;
        runtime_core::container::resume(&self.runtime_root(), &id)?;
        container.state.status = Status::Running;
        store.table::<Container>()?.insert(&container)?;
        Ok(container)
    }

    /// After a signal to a paused container: thaws it so the signal lands.
    /// A container that is not frozen (any more) is left as it is.
    pub(super) fn thaw_after_signal(&self, container: &Container) {
        if container.state.status != Status::Paused {
            return;
        }
        let Ok(id) = container.id.parse() else {
            return;
        };
        match runtime_core::container::resume(&self.runtime_root(), &id) {
            Ok(())
            | Err(runtime_core::Error::BadState { .. } | runtime_core::Error::NotFound(_)) => {}
            Err(e) => tracing::warn!("container {}: thawing after a signal: {e}", container.name),
        }
    }

    /// Whether the kernel still holds the container frozen (`None` when
    /// that cannot be read): a record that says Paused is checked against
    /// it, since a signal may have thawed the container.
    pub(super) fn still_frozen(&self, container: &Container) -> Option<bool> {
        let id = container.id.parse().ok()?;
        let state = runtime_core::container::state(&self.runtime_root(), &id).ok()?;
        Some(state.status == runtime_core::state::Status::Paused)
    }
}
