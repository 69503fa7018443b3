//! `stop` and `kill`. `stop` sends the stop signal, waits (without the
//! store) for the timeout, then kills; either way the user stopped it, so
//! no restart policy brings it back.

use std::time::Duration;

use nix::sys::signal::Signal;
use storage::store::Store;

use super::record::{Container, Status};
use super::wait::wait_for_exit;
use super::{Engine, EngineError, Result};
use crate::config::RestartPolicy;

/// docker's default `--stop-timeout`.
pub const DEFAULT_STOP_TIMEOUT: i32 = 10;

/// How long a SIGKILLed container may take to be reaped.
const KILL_GRACE: Duration = Duration::from_secs(10);

impl Engine {
    /// Stops the container: `signal` (`stop -s`; else its stop signal),
    /// then SIGKILL after `timeout` seconds (`-t`; else the container's
    /// `--stop-timeout`, else 10; negative: wait forever). A container not
    /// running is left as it is.
    pub fn stop(
        &self,
        text: &str,
        signal: Option<Signal>,
        timeout: Option<i32>,
    ) -> Result<Container> {
        let (container, monitor) = {
            let store = self.open_store()?;
            let mut container = self.find(&store, text)?;
            if container.state.status == Status::Restarting {
                self.cancel_restart(&store, &mut container)?;
                return Ok(container);
            }
            let Some(monitor) = container
                .state
                .monitor
                .filter(|_| container.state.status.is_live())
            else {
                // Exited just now: its monitor's cleanup may not have
                // applied the restart policy yet, and must not.
                if container.config.restart != RestartPolicy::No && !container.state.stopped_by_user
                {
                    container.state.stopped_by_user = true;
                    store.table::<Container>()?.insert(&container)?;
                }
                return Ok(container);
            };
            container.state.stopped_by_user = true;
            store.table::<Container>()?.insert(&container)?;
            let signal = signal.unwrap_or_else(|| {
                runtime_core::container::parse_signal(&container.stop_signal)
                    .unwrap_or(Signal::SIGTERM)
            });
            self.send_signal(&container, signal)?;
            (container, monitor)
        };
        let timeout = timeout
            .or(container.config.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT);
        let limit = u64::try_from(timeout).ok().map(Duration::from_secs);
        if !wait_for_exit(monitor, limit) {
            tracing::debug!(
                "container {} did not stop in {timeout} s: killing it",
                container.name
            );
            self.send_signal(&container, Signal::SIGKILL)?;
            wait_for_exit(monitor, Some(KILL_GRACE));
        }
        let store = self.open_store()?;
        self.find(&store, &container.id)
    }

    /// Waits (without the store) until the container is not running, and
    /// returns its exit code.
    pub fn wait(&self, text: &str) -> Result<i32> {
        let container = {
            let store = self.open_store()?;
            self.find(&store, text)?
        };
        if let Some(monitor) = container
            .state
            .monitor
            .filter(|_| container.state.status.is_live())
        {
            wait_for_exit(monitor, None);
            let store = self.open_store()?;
            return Ok(self.find(&store, &container.id)?.state.exit_code);
        }
        Ok(container.state.exit_code)
    }

    /// Sends `signal` to the container's init. docker's error when it is
    /// not running. SIGKILL counts as the user stopping it.
    pub fn kill(&self, store: &Store, text: &str, signal: Signal) -> Result<Container> {
        let mut container = self.find(store, text)?;
        // A crash loop waiting out its back-off: killing it ends the loop,
        // as `docker kill` does.
        if container.state.status == Status::Restarting {
            self.cancel_restart(store, &mut container)?;
            return Ok(container);
        }
        if container.state.status != Status::Running && container.state.status != Status::Paused {
            return Err(EngineError::NotRunning(container.id));
        }
        if signal == Signal::SIGKILL {
            container.state.stopped_by_user = true;
            store.table::<Container>()?.insert(&container)?;
        }
        self.send_signal(&container, signal)?;
        Ok(container)
    }

    /// `signal` to init; SIGKILL to every process of the container. A
    /// paused container is thawed after, so that the signal lands.
    pub fn send_signal(&self, container: &Container, signal: Signal) -> Result<()> {
        let id: runtime_core::state::ContainerId = container.id.parse()?;
        let all = signal == Signal::SIGKILL;
        let sent = match runtime_core::container::kill(&self.runtime_root(), &id, signal, all) {
            // Gone meanwhile: nothing left to signal.
            Ok(()) | Err(runtime_core::Error::NotFound(_)) => Ok(()),
            Err(runtime_core::Error::BadState { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        };
        self.thaw_after_signal(container);
        sent
    }
}
