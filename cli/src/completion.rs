//! What is generated from the command line's own definition: shell
//! completion scripts (`muelle completion bash|zsh|fish`) and man pages
//! (the hidden `muelle __man DIR`, which `cargo xtask man` runs: the xtask
//! cannot link this binary crate, so the binary writes its own pages).
//! Hidden commands (`container cleanup`, `__man`) appear in neither.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::args::Cli;

pub fn completion(shell: Shell) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    // Into memory first: clap_complete panics when its writer fails (a
    // closed pipe), where muelle reports the error.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "muelle", &mut script);
    std::io::stdout()
        .lock()
        .write_all(&script)
        .context("writing the completion script")
}

/// One page per command and subcommand: `muelle.1`, `muelle-run.1`,
/// `muelle-container-run.1`, ... (docker's names for its pages).
pub fn man_pages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Gives every subcommand its full name (`muelle-container-run`).
    cmd.build();
    write_pages(&cmd, dir)
}

fn write_pages(cmd: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir)?;
    }
    let page = clap_mangen::Man::new(cmd.clone())
        .source(format!("muelle {}", env!("CARGO_PKG_VERSION")))
        .manual("muelle Manual");
    let path = page
        .generate_to(dir)
        .with_context(|| format!("writing a man page into {}", dir.display()))?;
    tracing::debug!("wrote {}", path.display());
    Ok(())
}
