//! How a command ends: docker's exit codes and the errors that carry them.

use std::io::BufRead;

/// A verb that goes on after a failure (`rmi a b`, `stop a b`) prints each
/// error itself and returns this, so that main exits 1 without a line of
/// its own.
#[derive(Debug)]
pub struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("errors were reported above")
    }
}

impl std::error::Error for Reported {}

/// An error with the exit code docker gives it (125 for `run` when muelle
/// itself fails, 126/127 when the command cannot be run or found).
#[derive(Debug)]
pub struct Coded {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Coded {
    pub fn new(code: u8, error: impl Into<anyhow::Error>) -> Coded {
        Coded {
            code,
            error: error.into(),
        }
    }
}

impl std::fmt::Display for Coded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Coded {}

/// The container's own exit status, passed on without a message.
#[derive(Debug)]
pub struct Status(pub u8);

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Status {}

/// docker's question on stderr: `WARNING! This will remove WHAT.` and
/// the prompt; anything but y/yes is no.
pub fn confirm(what: &str) -> anyhow::Result<bool> {
    ask(&format!(
        "WARNING! This will remove {what}.\nAre you sure you want to continue?"
    ))
}

/// `message` and docker's ` [y/N] ` on stderr; anything but y/yes is no.
pub fn ask(message: &str) -> anyhow::Result<bool> {
    eprint!("{message} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
