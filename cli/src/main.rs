//! muelle: docker's command line, without a daemon. This crate only parses
//! arguments, calls the libraries and prints; errors are one line on
//! stderr with docker's exit codes.

mod args;
mod images;
mod info;
mod plugin;
mod volume;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // docker exits 125 on a bad flag; help and version are not errors.
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 125 } else { 0 });
        }
    };
    init_tracing(&cli.log_level);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Verbs that go on after a failure printed each error already.
            if !err.is::<images::Reported>() {
                eprintln!("Error: {err}");
            }
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(level: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Volume(cmd) => volume::run(&cli.global, cmd),
        Command::System(args::SystemCommand::Check { repair }) => {
            volume::check(&cli.global, repair)
        }
        Command::Plugin(cmd) => plugin::run(&cli.global, cmd),
        Command::Info { format } => info::run(&cli.global, format.as_deref()),
        Command::Image(cmd) => images::run(&cli.global, cmd),
        Command::Images(args) => images::run(&cli.global, args::ImageCommand::Ls(args)),
        Command::History(args) => images::run(&cli.global, args::ImageCommand::History(args)),
        Command::Tag(args) => images::run(&cli.global, args::ImageCommand::Tag(args)),
        Command::Rmi(args) => images::run(&cli.global, args::ImageCommand::Rm(args)),
        Command::Import(args) => images::run(&cli.global, args::ImageCommand::Import(args)),
        Command::Save(args) => images::run(&cli.global, args::ImageCommand::Save(args)),
        Command::Load(args) => images::run(&cli.global, args::ImageCommand::Load(args)),
    }
}
