//! `kill`: a signal to the container's init, or to all its processes.

use nix::sys::signal::{Signal, kill as send};
use nix::unistd::Pid;

use crate::error::{Context, Error, Result};
use crate::state::{ContainerId, StateRoot, Status};

/// "KILL", "SIGKILL" and "9" all name SIGKILL.
pub fn parse_signal(text: &str) -> Result<Signal> {
    let bad = || Error::InvalidSpec(format!("unknown signal {text:?}"));
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().map_err(|_| bad())
}

pub fn kill(root: &StateRoot, id: &ContainerId, signal: Signal, all: bool) -> Result<()> {
    let c = super::load(root, id)?;
    if !all {
        c.require(
            &[Status::Created, Status::Running, Status::Paused],
            "kill",
            "created, running or paused",
        )?;
    }
    let (record, cgroup, status) = (c.record, c.cgroup, c.status);
    if all {
        for pid in cgroup.procs()?.into_iter().filter(|p| *p > 0) {
            let _ = send(Pid::from_raw(pid), signal);
        }
        // A frozen process only sees the signal once thawed.
        if status == Status::Paused && signal == Signal::SIGKILL {
            cgroup.thaw()?;
        }
        return Ok(());
    }
    send(Pid::from_raw(record.pid), signal).context(|| format!("signalling {id} with {signal}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_as_runc_takes_them() {
        for text in ["KILL", "SIGKILL", "sigkill", "9"] {
            assert_eq!(parse_signal(text).expect(text), Signal::SIGKILL);
        }
        assert_eq!(parse_signal("TERM").expect("TERM"), Signal::SIGTERM);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
