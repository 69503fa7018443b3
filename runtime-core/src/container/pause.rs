//! `pause` and `resume`: the cgroup freezer.

use crate::error::{Error, Result};
use crate::state::{ContainerId, StateRoot, Status};

pub fn pause(root: &StateRoot, id: &ContainerId) -> Result<()> {
    let record = root.load(id)?;
    let cgroup = super::cgroup_of(&record)?;
    let status = crate::state::status(root, &record, || cgroup.is_frozen().unwrap_or(false));
    if status != Status::Running && status != Status::Created {
        return Err(Error::BadState {
            id: id.to_string(),
            status,
            action: "pause",
            wanted: "running",
        });
    }
    Ok(cgroup.freeze()?)
}

pub fn resume(root: &StateRoot, id: &ContainerId) -> Result<()> {
    let record = root.load(id)?;
    let cgroup = super::cgroup_of(&record)?;
    let status = crate::state::status(root, &record, || cgroup.is_frozen().unwrap_or(false));
    if status != Status::Paused {
        return Err(Error::BadState {
            id: id.to_string(),
            status,
            action: "resume",
            wanted: "paused",
        });
    }
    Ok(cgroup.thaw()?)
}
