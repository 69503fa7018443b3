//! `cargo xtask`: the project's chores (CI, benches) written in Rust instead
//! of shell and make. This file only parses the command line and dispatches;
//! each command lives in its own module.

mod bench;
mod bundle;
mod ci;
mod man;
mod plugins;
mod test_image;
mod tour;
mod util;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    bin_name = "cargo xtask",
    about = "muelle's project chores",
    arg_required_else_help = true,
    disable_version_flag = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build muelle and the busybox test image, then run the main job: a container writes to a volume, another reads it back
    Tour,
    /// Install missing prerequisites, then run fmt, clippy and every test: what CI runs
    Ci,
    /// Measure performance (`cargo xtask bench runtime|storage|image|engine|network`)
    Bench {
        #[command(subcommand)]
        what: bench::Bench,
    },
    /// Build every volume driver plugin we ship into one folder (NAME.so each) and print it
    Plugins(plugins::Options),
    /// Write one man page per muelle command and subcommand (default: <target dir>/man) and print the folder
    Man(man::Options),
    /// Build localhost/busybox:latest from the host's static busybox as an OCI archive and print its path
    TestImage(test_image::Options),
    /// Internal: runs one bench job described as JSON on stdin and prints the result as JSON
    #[command(hide = true)]
    BenchChild,
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Tour => tour::run(),
        Command::Ci => ci::run(),
        Command::Bench { what } => bench::run(what),
        Command::BenchChild => bench::run_child(),
        Command::Plugins(options) => plugins::run(&options),
        Command::TestImage(options) => test_image::run(&options),
        Command::Man(options) => man::run(&options),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
