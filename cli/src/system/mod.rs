//! `muelle system ...` (`df`, `prune`, `info`, `check`) and the top-level
//! `inspect`, which looks across containers, images and volumes, as
//! docker's system commands do.

mod df;
mod inspect;
pub(crate) mod prune;

use clap::Args;

use crate::args::{Global, SystemCommand};

pub use inspect::inspect;

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage.
    #[arg(short, long)]
    pub verbose: bool,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a Go template.
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images not just dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Prune anonymous volumes.
    #[arg(long)]
    pub volumes: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (label=KEY[=VALUE], label!=KEY[=VALUE], until=TIMESTAMP).
    #[arg(long)]
    pub filter: Vec<String>,
}

pub fn run(global: &Global, cmd: SystemCommand) -> anyhow::Result<()> {
    match cmd {
        SystemCommand::Check { repair } => crate::volume::check(global, repair),
        SystemCommand::Df(args) => df::run(global, &args),
        SystemCommand::Prune(args) => prune::run(global, &args),
        SystemCommand::Info { format } => crate::info::run(global, format.as_deref()),
    }
}

/// The size of what `dir` holds (0 when it is gone or unreadable: a
/// container removed meanwhile has nothing left to count).
fn disk_usage(dir: &std::path::Path) -> u64 {
    storage::volume::disk_usage(dir).unwrap_or(0)
}
