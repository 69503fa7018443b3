//! `top`: the processes of a running (or paused) container, as host pids
//! read from its cgroup; the caller shows them with the host's `ps`.

use storage::store::Store;

use super::record::{Container, Status};
use super::{Engine, EngineError, Result};

impl Engine {
    /// The container `text` names and the host pids of its processes,
    /// sorted. docker's errors when it is not running.
    pub fn processes(&self, store: &Store, text: &str) -> Result<(Container, Vec<i32>)> {
        let container = self.find(store, text)?;
        match container.state.status {
            Status::Running | Status::Paused => {}
            Status::Restarting => return Err(EngineError::Restarting(container.id)),
            _ => return Err(EngineError::NotRunning(container.id)),
        }
        let id = container.id.parse()?;
        match runtime_core::container::processes(&self.runtime_root(), &id) {
            Ok(pids) => Ok((container, pids)),
            // Exited after the record was read.
            Err(runtime_core::Error::NotFound(_)) => Err(EngineError::NotRunning(container.id)),
            Err(e) => Err(e.into()),
        }
    }
}
