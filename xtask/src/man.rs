//! `cargo xtask man [--out DIR]`: one man page per muelle command and
//! subcommand (`muelle.1`, `muelle-run.1`, `muelle-container-run.1`, ...),
//! generated from the clap definition with clap_mangen.
//!
//! The xtask cannot link the cli crate (a binary, and the product), so it
//! builds `muelle` and has it write its own pages through the hidden
//! `muelle __man DIR`. The folder (default `<target dir>/man`, the target
//! dir as cargo reports it, so `CARGO_TARGET_DIR` counts) is emptied of
//! old `.1` pages first, so a removed command leaves no stale page. Prints
//! the folder's absolute path on stdout; `man -l DIR/muelle-run.1` reads
//! one.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::util;

#[derive(clap::Args, Debug, Default)]
pub struct Options {
    /// The folder to write the pages into (default: <target dir>/man)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn run(options: &Options) -> Result<()> {
    let target = util::target_dir()?;
    let dir = match &options.out {
        Some(dir) => std::path::absolute(dir)
            .with_context(|| format!("cannot make {} absolute", dir.display()))?,
        None => target.join("man"),
    };
    util::run_streaming(util::cargo().args(["build", "--package", "cli", "--bin", "muelle"]))?;
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "1") {
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    let muelle = target.join("debug").join("muelle");
    util::run_streaming(Command::new(&muelle).arg("__man").arg(&dir))?;
    let pages = fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .count();
    eprintln!("xtask man: {pages} pages");
    println!("{}", dir.display());
    Ok(())
}
