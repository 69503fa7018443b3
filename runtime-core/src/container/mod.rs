//! The lifecycle verbs, one file each, on top of the state folder.

mod create;
mod delete;
mod exec;
mod kill;
mod pause;
mod query;
mod run;
mod start;

pub use create::{CreateOptions, Created, create};
pub use delete::delete;
pub use exec::{ExecOptions, exec};
pub use kill::{kill, parse_signal};
pub use pause::{pause, resume};
pub use query::{Listed, OciState, list, processes, state};
pub use run::{RunOptions, run, wait_and_forward};
pub use start::start;

use crate::cgroups::Cgroup;
use crate::state::{ContainerId, Record, StateRoot, Status};

/// A recorded container with its cgroup and its status as of now.
pub(crate) struct Loaded {
    pub record: Record,
    pub cgroup: Cgroup,
    pub status: Status,
}

pub(crate) fn load(root: &StateRoot, id: &ContainerId) -> crate::Result<Loaded> {
    let record = root.load(id)?;
    let cgroup = record.cgroup.clone();
    let status = crate::state::status(root, &record, || cgroup.is_frozen().unwrap_or(false));
    Ok(Loaded {
        record,
        cgroup,
        status,
    })
}

impl Loaded {
    /// Fails unless the status is one of `allowed`, in words a user reads:
    /// "container web is stopped: start needs it created".
    pub fn require(
        &self,
        allowed: &[Status],
        action: &'static str,
        wanted: &'static str,
    ) -> crate::Result<()> {
        if allowed.contains(&self.status) {
            return Ok(());
        }
        Err(crate::Error::BadState {
            id: self.record.id.to_string(),
            status: self.status,
            action,
            wanted,
        })
    }
}

/// The container's state as hooks receive it on stdin.
pub(crate) fn hook_state(record: &Record, status: crate::state::Status) -> String {
    let state = query::OciState::of(record, status);
    serde_json::to_string(&state).unwrap_or_default()
}
