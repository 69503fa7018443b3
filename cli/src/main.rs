//! muelle: docker's command line, without a daemon. This crate only parses
//! arguments, calls the libraries and prints; errors are one line on
//! stderr with docker's exit codes.

mod args;
mod completion;
mod container;
mod exit;
mod human;
mod images;
mod info;
mod network;
mod plugin;
mod progress;
mod system;
mod template;
mod text;
mod version;
mod volume;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, ContainerCommand};

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
            if let Some(exit::Status(code)) = err.downcast_ref::<exit::Status>() {
                return ExitCode::from(*code);
            }
            // Verbs that go on after a failure printed each error already.
            if !err.is::<exit::Reported>() {
                eprintln!("Error: {err}");
            }
            match err.downcast_ref::<exit::Coded>() {
                Some(coded) => ExitCode::from(coded.code),
                None => ExitCode::FAILURE,
            }
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
    let global = &cli.global;
    match cli.command {
        Command::Run(args) => container::run(global, ContainerCommand::Run(args)),
        Command::Create(args) => container::run(global, ContainerCommand::Create(args)),
        Command::Start(args) => container::run(global, ContainerCommand::Start(args)),
        Command::Attach(args) => container::run(global, ContainerCommand::Attach(args)),
        Command::Stop(args) => container::run(global, ContainerCommand::Stop(args)),
        Command::Restart(args) => container::run(global, ContainerCommand::Restart(args)),
        Command::Kill(args) => container::run(global, ContainerCommand::Kill(args)),
        Command::Rm(args) => container::run(global, ContainerCommand::Rm(args)),
        Command::Ps(args) => container::run(global, ContainerCommand::Ls(args)),
        Command::Logs(args) => container::run(global, ContainerCommand::Logs(args)),
        Command::Inspect(args) => system::inspect(global, args),
        Command::Wait(args) => container::run(global, ContainerCommand::Wait(args)),
        Command::Rename(args) => container::run(global, ContainerCommand::Rename(args)),
        Command::Exec(args) => container::run(global, ContainerCommand::Exec(args)),
        Command::Top(args) => container::run(global, ContainerCommand::Top(args)),
        Command::Stats(args) => container::run(global, ContainerCommand::Stats(args)),
        Command::Pause(args) => container::run(global, ContainerCommand::Pause(args)),
        Command::Unpause(args) => container::run(global, ContainerCommand::Unpause(args)),
        Command::Cp(args) => container::run(global, ContainerCommand::Cp(args)),
        Command::Export(args) => container::run(global, ContainerCommand::Export(args)),
        Command::Diff(args) => container::run(global, ContainerCommand::Diff(args)),
        Command::Port(args) => container::run(global, ContainerCommand::Port(args)),
        Command::Container(cmd) => container::run(global, cmd),
        Command::Volume(cmd) => volume::run(&cli.global, cmd),
        Command::Network(cmd) => network::run(&cli.global, cmd),
        Command::System(cmd) => system::run(global, cmd),
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
        Command::Version { format } => version::run(format.as_deref()),
        Command::Completion { shell } => completion::completion(shell),
        Command::Man { dir } => completion::man_pages(&dir),
    }
}
