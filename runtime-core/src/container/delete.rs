//! `delete`: takes a stopped container down for good (with `force`, any
//! container): processes, cgroup, state folder, then the poststop hooks.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::hooks;
use crate::state::{ContainerId, StateRoot, Status};

pub fn delete(root: &StateRoot, id: &ContainerId, force: bool) -> Result<()> {
    let record = match root.load(id) {
        Ok(record) => record,
        // A folder without state.json is what a create killed half-way
        // leaves: nothing else of it can exist, so --force removes it.
        Err(Error::NotFound(_)) if force && root.container_dir(id).exists() => {
            return root.remove(id);
        }
        Err(e) => return Err(e),
    };
    let cgroup = &record.cgroup;
    let status = crate::state::status(root, &record, || cgroup.is_frozen().unwrap_or(false));
    match status {
        Status::Stopped => {}
        // A created container never ran user code: runc deletes it without
        // --force too.
        Status::Created => kill_init(&record),
        _ if force => kill_init(&record),
        _ => {
            return Err(Error::BadState {
                id: id.to_string(),
                status,
                action: "delete",
                wanted: "stopped (or use --force)",
            });
        }
    }
    // Whatever else is in the cgroup goes too: exec'd processes, and the
    // orphans of an init that had no pid namespace of its own.
    kill_cgroup(cgroup)?;
    wait_until_gone(&record)?;
    // Folders that are gone already are no error.
    cgroup.destroy()?;
    root.remove(id)?;
    if let Some(poststop) = record.hooks.as_ref().and_then(|h| h.poststop().as_deref()) {
        let state = super::hook_state(&record, Status::Stopped);
        if let Err(e) = hooks::run("poststop", poststop, &state) {
            tracing::warn!("{e}");
            eprintln!("muelle-runtime: warning: {e}");
        }
    }
    Ok(())
}

fn kill_init(record: &crate::state::Record) {
    if record.pid > 0 {
        let _ = kill(Pid::from_raw(record.pid), Signal::SIGKILL);
    }
}

fn kill_cgroup(cgroup: &crate::cgroups::Cgroup) -> Result<()> {
    // Unreadable: the cgroup is gone (or was never made).
    let pids: Vec<i32> = cgroup
        .procs()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| *p > 0)
        .collect();
    if pids.is_empty() {
        return Ok(());
    }
    for pid in pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    // A frozen process dies of SIGKILL only once thawed.
    if cgroup.is_frozen().unwrap_or(false) {
        cgroup.thaw()?;
    }
    Ok(())
}

/// init may not be our child (`create` exited long ago), so poll /proc.
fn wait_until_gone(record: &crate::state::Record) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pause = Duration::from_micros(100);
    while record.init_alive() {
        if Instant::now() > deadline {
            return Err(Error::Init(format!(
                "process {} of container {} did not die after SIGKILL",
                record.pid, record.id
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
    Ok(())
}
