//! `pause` and `resume`: the cgroup freezer.

use crate::error::Result;
use crate::state::{ContainerId, StateRoot, Status};

pub fn pause(root: &StateRoot, id: &ContainerId) -> Result<()> {
    let c = super::load(root, id)?;
    c.require(&[Status::Running, Status::Created], "pause", "running")?;
    Ok(c.cgroup.freeze()?)
}

pub fn resume(root: &StateRoot, id: &ContainerId) -> Result<()> {
    let c = super::load(root, id)?;
    c.require(&[Status::Paused], "resume", "paused")?;
    Ok(c.cgroup.thaw()?)
}
