//! What a monitor runs once its container exited (`muelle container
//! cleanup ID`): the exit is folded into the record, `--rm` honoured, and
//! the restart policy applied. There is no daemon to restart containers,
//! so this short-lived process is the one that does, as podman's
//! `container cleanup`: it marks the container `restarting`, waits out
//! docker's back-off without holding the store, and starts it again
//! unless somebody stopped, started or removed it meanwhile.
//!
//! While it waits, the record's monitor is this process: a cleanup that
//! is killed leaves the container exited (see `refresh`), never stuck in
//! `restarting`. Containers are not restarted after a reboot: nothing of
//! muelle runs then (podman needs a systemd unit for the same).

use std::time::Duration;

use storage::store::Store;

use super::record::{Container, MonitorRef, State, Status};
use super::{Engine, EngineError, Result};
use crate::config::RestartPolicy;
use crate::logs::Timestamp;

/// docker's restart back-off: 100 ms, doubled after each run shorter
/// than 10 s, at most a minute.
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
const LONG_RUN: Duration = Duration::from_secs(10);

impl Engine {
    /// Folds the container's exit, removes a `--rm` container and restarts
    /// one whose policy asks for it. A container already gone is fine:
    /// `run --rm` in the foreground may have removed it first.
    pub fn cleanup(&self, id: &str) -> Result<()> {
        let Some((guard, delay)) = self.plan_restart(id)? else {
            return Ok(());
        };
        std::thread::sleep(delay);
        let store = self.open_store()?;
        let mut container = match self.find(&store, id) {
            Ok(c) => c,
            Err(EngineError::NoSuchContainer(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        // Stopped, started or removed and made again meanwhile: not ours.
        if container.state.status != Status::Restarting || container.state.monitor != Some(guard) {
            return Ok(());
        }
        container.state.restart_count += 1;
        store.table::<Container>()?.insert(&container)?;
        self.start(&store, &container.id, None).map(|_| ())
    }

    /// Folds the exit and decides: `None` when nothing more is to be done
    /// (the container removed, or not to be restarted), else the guard
    /// recorded as the container's monitor and how long to wait.
    fn plan_restart(&self, id: &str) -> Result<Option<(MonitorRef, Duration)>> {
        let store = self.open_store()?;
        let mut container = match self.find(&store, id) {
            Ok(c) => c,
            Err(EngineError::NoSuchContainer(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        if container.state.status != Status::Exited {
            return Ok(None);
        }
        if container.config.auto_remove {
            return match self.remove(&store, &container.id, false, true) {
                Ok(_) | Err(EngineError::NoSuchContainer(_)) => Ok(None),
                Err(e) => Err(e),
            };
        }
        if !should_restart(container.config.restart, &container.state) {
            return Ok(None);
        }
        let Some(guard) = MonitorRef::of(std::process::id() as i32) else {
            return Ok(None);
        };
        let delay = next_delay(&container.state);
        let state = &mut container.state;
        state.status = Status::Restarting;
        state.monitor = Some(guard);
        state.restart_delay_ms = delay.as_millis() as u64;
        store.table::<Container>()?.insert(&container)?;
        Ok(Some((guard, delay)))
    }

    /// A container waiting to be restarted is taken out of it (`stop`,
    /// `rm -f`): exited, as its last run left it.
    pub(super) fn cancel_restart(&self, store: &Store, container: &mut Container) -> Result<()> {
        let state = &mut container.state;
        state.status = Status::Exited;
        state.monitor = None;
        state.stopped_by_user = true;
        store.table::<Container>()?.insert(container)?;
        Ok(())
    }
}

/// docker's rule: never after `stop`/`kill`; `always` and
/// `unless-stopped` after any exit; `on-failure[:N]` after a non-zero exit
/// while fewer than N restarts happened (N = 0: no limit).
fn should_restart(policy: RestartPolicy, state: &State) -> bool {
    if state.stopped_by_user {
        return false;
    }
    match policy {
        RestartPolicy::No => false,
        RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        RestartPolicy::OnFailure { max_retries } => {
            state.exit_code != 0 && (max_retries == 0 || state.restart_count < max_retries)
        }
    }
}

/// The wait before the next start: 100 ms after a run of 10 s or more (or
/// the first time), else twice the last wait, at most a minute.
fn next_delay(state: &State) -> Duration {
    let ran = match (&state.started_at, &state.finished_at) {
        (Some(start), Some(end)) => {
            match (
                Timestamp::parse_rfc3339(start),
                Timestamp::parse_rfc3339(end),
            ) {
                (Ok(s), Ok(e)) => Duration::from_nanos(
                    u64::try_from(e.unix_nanos() - s.unix_nanos()).unwrap_or(0),
                ),
                _ => Duration::ZERO,
            }
        }
        _ => Duration::ZERO,
    };
    if ran >= LONG_RUN || state.restart_delay_ms == 0 {
        return FIRST_DELAY;
    }
    (Duration::from_millis(state.restart_delay_ms) * 2).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(code: i32, restarts: u32) -> State {
        State {
            status: Status::Exited,
            exit_code: code,
            restart_count: restarts,
            ..State::default()
        }
    }

    #[test]
    fn policies_restart_as_dockers_do() {
        let on_failure = |n| RestartPolicy::OnFailure { max_retries: n };
        assert!(!should_restart(RestartPolicy::No, &exited(1, 0)));
        assert!(should_restart(RestartPolicy::Always, &exited(0, 7)));
        assert!(should_restart(RestartPolicy::UnlessStopped, &exited(0, 0)));
        assert!(!should_restart(on_failure(0), &exited(0, 0)));
        assert!(should_restart(on_failure(0), &exited(3, 100)));
        assert!(should_restart(on_failure(2), &exited(3, 1)));
        assert!(!should_restart(on_failure(2), &exited(3, 2)));
        let stopped = State {
            stopped_by_user: true,
            ..exited(137, 0)
        };
        assert!(!should_restart(RestartPolicy::Always, &stopped));
    }

    #[test]
    fn the_back_off_doubles_for_short_runs_and_resets_after_long_ones() {
        let run = |secs: u32, last_ms: u64| State {
            started_at: Some("2026-11-24T10:00:00Z".into()),
            finished_at: Some(format!("2026-11-24T10:00:{secs:02}Z")),
            restart_delay_ms: last_ms,
            ..State::default()
        };
        assert_eq!(next_delay(&run(1, 0)), FIRST_DELAY);
        assert_eq!(next_delay(&run(1, 100)), Duration::from_millis(200));
        assert_eq!(next_delay(&run(1, 40_000)), MAX_DELAY);
        assert_eq!(next_delay(&run(12, 6_400)), FIRST_DELAY);
    }
}
