//! The container verbs: `run`, `create`, `start`, `attach`, `stop`,
//! `restart`, `kill`, `rm`, `ps`, `logs`, `inspect`, `wait`, `rename`,
//! `exec`, `top`, `stats`, `pause`, `unpause`, `cp`, `export`, `diff`,
//! `port`, `container prune`, and the hidden `container cleanup` a monitor
//! runs.

pub mod args;
mod attach;
mod config;
mod cp;
mod diff;
mod exec;
mod export;
mod inspect;
mod logs;
mod pause;
mod port;
mod ps;
mod run;
mod stats;
mod top;

use std::io::Write;

use anyhow::Context;
use engine::{Engine, EngineError};

use crate::args::Global;
use crate::exit::{Coded, Reported};
use args::{ContainerCommand, KillArgs, RenameArgs, RmArgs, StartArgs, StopArgs, WaitArgs};

pub use inspect::{find_all, inspect};
pub use ps::status_text;

pub fn run(global: &Global, cmd: ContainerCommand) -> anyhow::Result<()> {
    match cmd {
        ContainerCommand::Run(args) => run::run(global, args),
        ContainerCommand::Create(args) => run::create(global, args),
        ContainerCommand::Start(args) => start(global, args),
        ContainerCommand::Attach(args) => run::attach(global, args),
        ContainerCommand::Stop(args) => stop(global, args, false),
        ContainerCommand::Restart(args) => stop(global, args, true),
        ContainerCommand::Kill(args) => kill(global, args),
        ContainerCommand::Rm(args) => rm(global, args),
        ContainerCommand::Ls(args) => ps::ps(global, args),
        ContainerCommand::Logs(args) => logs::logs(global, args),
        ContainerCommand::Inspect(args) => inspect(global, args),
        ContainerCommand::Wait(args) => wait(global, args),
        ContainerCommand::Rename(args) => rename(global, args),
        ContainerCommand::Prune(args) => prune(global, args),
        ContainerCommand::Exec(args) => exec::exec(global, args),
        ContainerCommand::Top(args) => top::top(global, args),
        ContainerCommand::Stats(args) => stats::stats(global, args),
        ContainerCommand::Pause(args) => pause::pause(global, args, true),
        ContainerCommand::Unpause(args) => pause::pause(global, args, false),
        ContainerCommand::Cp(args) => cp::cp(global, args),
        ContainerCommand::Export(args) => export::export(global, args),
        ContainerCommand::Diff(args) => diff::diff(global, args),
        ContainerCommand::Port(args) => port::port(global, args),
        ContainerCommand::Cleanup { container } => {
            // An instance removed meanwhile (a test's root) is not made
            // again by opening its store.
            if !global.root.join(storage::store::DB_NAME).exists() {
                return Ok(());
            }
            Ok(engine(global)?.cleanup(&container)?)
        }
    }
}

/// The engine of this instance; its monitors report back through
/// `muelle container cleanup` with the same roots and configuration.
pub fn engine(global: &Global) -> anyhow::Result<Engine> {
    let engine = Engine::new(&global.root, &global.runroot, &global.config)?;
    let Ok(exe) = std::env::current_exe() else {
        return Ok(engine);
    };
    let mut command = vec![exe.display().to_string()];
    for (flag, path) in [
        ("--root", &global.root),
        ("--runroot", &global.runroot),
        ("--config", &global.config),
    ] {
        command.push(flag.to_owned());
        command.push(path.display().to_string());
    }
    command.extend(["container".to_owned(), "cleanup".to_owned()]);
    Ok(engine.with_exit_command(command))
}

/// Runs `each` on every argument as docker does: the argument is printed
/// on success, each failure on stderr, and the command fails at the end
/// if any did.
fn for_each(
    items: &[String],
    mut each: impl FnMut(&str) -> Result<Option<String>, EngineError>,
) -> anyhow::Result<()> {
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    for item in items {
        match each(item) {
            Ok(line) => {
                writeln!(out, "{}", line.as_deref().unwrap_or(item))?;
            }
            Err(e) => {
                failed = true;
                eprintln!("Error response from daemon: {e}");
            }
        }
    }
    if failed {
        return Err(Reported.into());
    }
    Ok(())
}

fn start(global: &Global, args: StartArgs) -> anyhow::Result<()> {
    if args.attach || args.interactive {
        let [container] = args.containers.as_slice() else {
            anyhow::bail!("you cannot start and attach multiple containers at once");
        };
        return run::start_attached(global, container, args.interactive);
    }
    let engine = engine(global)?;
    let store = engine.open_store()?;
    for_each(&args.containers, |c| {
        engine.start(&store, c, None).map(|_| None)
    })
}

fn stop(global: &Global, args: StopArgs, restart: bool) -> anyhow::Result<()> {
    let engine = engine(global)?;
    for_each(&args.containers, |c| {
        let signal = args
            .signal
            .as_deref()
            .map(engine::container::parse_signal)
            .transpose()?;
        let stopped = engine.stop(c, signal, args.time)?;
        if restart {
            let store = engine.open_store()?;
            engine.start(&store, &stopped.id, None)?;
        }
        Ok(None)
    })
}

fn kill(global: &Global, args: KillArgs) -> anyhow::Result<()> {
    let signal = engine::container::parse_signal(&args.signal)?;
    let engine = engine(global)?;
    let store = engine.open_store()?;
    for_each(&args.containers, |c| {
        engine.kill(&store, c, signal).map(|_| None)
    })
}

fn rm(global: &Global, args: RmArgs) -> anyhow::Result<()> {
    let engine = engine(global)?;
    let store = engine.open_store()?;
    for_each(&args.containers, |c| {
        engine
            .remove(&store, c, args.force, args.volumes)
            .map(|_| None)
    })
}

fn wait(global: &Global, args: WaitArgs) -> anyhow::Result<()> {
    let engine = engine(global)?;
    for_each(&args.containers, |c| {
        engine.wait(c).map(|code| Some(code.to_string()))
    })
}

fn rename(global: &Global, args: RenameArgs) -> anyhow::Result<()> {
    let engine = engine(global)?;
    let store = engine.open_store()?;
    engine
        .rename(&store, &args.container, &args.new_name)
        .with_context(|| format!("renaming {}", args.container))
        .map_err(|e| Coded::new(1, e))?;
    Ok(())
}

/// `container prune [-f] [--filter until=|label=|label!=]`: the stopped
/// containers, through the same pruner as `system prune`, and the space
/// their own changes took.
fn prune(global: &Global, args: args::PruneArgs) -> anyhow::Result<()> {
    let filter = crate::system::prune::Filter::parse(&args.filter)?;
    if !args.force && !crate::exit::confirm("all stopped containers")? {
        return Ok(());
    }
    let mut report = Vec::new();
    let reclaimed = crate::system::prune::prune_containers(global, &filter, &mut report)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&report)?;
    writeln!(
        out,
        "Total reclaimed space: {}",
        crate::human::size(reclaimed, 4)
    )?;
    Ok(())
}
