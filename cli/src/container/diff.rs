//! `diff`: what a container changed in its image, one `C|A|D PATH` a line.

use std::io::Write;

use clap::Args;

use crate::args::Global;

#[derive(Args, Debug, Clone)]
pub struct DiffArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub fn diff(global: &Global, args: DiffArgs) -> anyhow::Result<()> {
    let engine = super::engine(global)?;
    let changes = engine.diff(&args.container)?;
    let mut out = std::io::stdout().lock();
    for change in changes {
        writeln!(out, "{} {}", change.kind.letter(), change.path.display())?;
    }
    Ok(())
}
