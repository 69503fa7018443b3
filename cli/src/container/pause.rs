//! `pause` and `unpause`: each container as typed on success, docker's
//! error for each that fails.

use super::args::PauseArgs;
use super::{engine, for_each};
use crate::args::Global;

/// `pause` (freeze) or `unpause` (thaw) every container named.
pub fn pause(global: &Global, args: PauseArgs, freeze: bool) -> anyhow::Result<()> {
    let engine = engine(global)?;
    let store = engine.open_store()?;
    for_each(&args.containers, |c| {
        if freeze {
            engine.pause(&store, c).map(|_| None)
        } else {
            engine.unpause(&store, c).map(|_| None)
        }
    })
}
