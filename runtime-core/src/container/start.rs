//! `start`: releases a created container's init to exec the user program.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::error::{Context, Error, Result};
use crate::hooks;
use crate::state::{ContainerId, StateRoot, Status};

pub fn start(root: &StateRoot, id: &ContainerId) -> Result<()> {
    let c = super::load(root, id)?;
    c.require(&[Status::Created], "start", "created")?;
    let record = c.record;
    let fifo_path = root.exec_fifo(id);
    // O_NONBLOCK: with no reader left (init died) this fails with ENXIO
    // at once instead of blocking forever.
    let fifo = match nix::fcntl::open(
        &fifo_path,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Err(Errno::ENXIO) => {
            return Err(Error::BadState {
                id: id.to_string(),
                status: Status::Stopped,
                action: "start",
                wanted: "created",
            });
        }
        other => other.context(|| format!("opening {}", fifo_path.display()))?,
    };
    nix::unistd::write(&fifo, b"0").context(|| format!("writing {}", fifo_path.display()))?;
    drop(fifo);
    // Without the fifo the container reads as running from now on.
    std::fs::remove_file(&fifo_path).context(|| format!("removing {}", fifo_path.display()))?;
    if let Some(poststart) = record.hooks.as_ref().and_then(|h| h.poststart().as_deref()) {
        let state = super::hook_state(&record, Status::Running);
        // The container runs already: a failing poststart hook is reported,
        // as the spec says, without stopping it.
        if let Err(e) = hooks::run("poststart", poststart, &state) {
            tracing::warn!("{e}");
            eprintln!("muelle-runtime: warning: {e}");
        }
    }
    Ok(())
}
