//! `run`, `create` and `start -a`: docker's exit codes (125 when muelle
//! fails, 126/127 when the command cannot be run or is not found, else the
//! container's own status).

use engine::container::{CreateRequest, EngineError, StartOptions};
use engine::monitor::Zygote;
use engine::{Container, Engine};

use super::args::{AttachArgs, CreateArgs, CreateFlags, RunArgs};
use super::attach::{self, Ended};
use super::config::container_config;
use super::engine;
use crate::args::Global;
use crate::exit::{Coded, Status};

/// How long `run --rm` waits, once its container runs, for it to be over
/// before recording it running: about what recording it takes, so a
/// command done in no time is recorded once (and removed), not three times.
const OVER_AT_ONCE: std::time::Duration = std::time::Duration::from_millis(2);

/// An engine error as `run`/`create` end with it.
fn coded(e: EngineError) -> anyhow::Error {
    Coded::new(e.exit_code(), e).into()
}

/// The flags' container, recorded (the store is open meanwhile).
fn create_container(
    engine: &Engine,
    store: &storage::store::Store,
    flags: &CreateFlags,
) -> anyhow::Result<Container> {
    let image = engine.image_source(store, &flags.image).map_err(|e| {
        Coded::new(
            125,
            anyhow::Error::new(e)
                .context(format!("Unable to find image '{}' locally", flags.image)),
        )
    })?;
    let config = container_config(flags, image).map_err(|e| Coded::new(125, e))?;
    engine
        .create(
            store,
            CreateRequest {
                config,
                name: flags.name.clone(),
            },
        )
        .map_err(coded)
}

pub fn create(global: &Global, args: CreateArgs) -> anyhow::Result<()> {
    let engine = engine(global).map_err(|e| Coded::new(125, e))?;
    let store = engine.open_store().map_err(coded)?;
    let container = create_container(&engine, &store, &args.flags)?;
    println!("{}", container.id);
    Ok(())
}

pub fn run(global: &Global, args: RunArgs) -> anyhow::Result<()> {
    let flags = &args.flags;
    // Before the store (and its threads) exist, so every thread has them
    // blocked and the signalfd sees them.
    let signals = if args.detach {
        None
    } else {
        Some(attach::block_signals()?)
    };
    let engine = engine(global).map_err(|e| Coded::new(125, e))?;
    // Early, while we are one small thread: it gets ready while the
    // container is recorded. Without it, the monitor is spawned as for
    // `start`.
    let zygote = Zygote::fork()
        .inspect_err(|e| tracing::debug!("forking the monitor ahead: {e}"))
        .ok();
    let store = engine.open_store().map_err(coded)?;
    let container = create_container(&engine, &store, flags)?;
    let Some(signals) = signals else {
        let options = StartOptions {
            zygote,
            ..StartOptions::default()
        };
        engine
            .start_with(&store, &container.id, options)
            .map_err(coded)?;
        println!("{}", container.id);
        return Ok(());
    };
    let (attach, mut session) =
        match attach::prepare(signals, flags.interactive, flags.tty, flags.rm) {
            Ok(prepared) => prepared,
            Err(e) => {
                drop(store);
                if flags.rm {
                    remove_quietly(&engine, &container.id);
                }
                return Err(Coded::new(125, e.context("attaching to the container")).into());
            }
        };
    // A command done in no time is never recorded running: its `--rm`
    // follows with the store still open.
    let mut ended = None;
    let mut over_already = || {
        ended = session.ended_within(OVER_AT_ONCE);
        ended.is_some()
    };
    let options = StartOptions {
        attach: Some(attach),
        zygote,
        over_already: flags
            .rm
            .then_some(&mut over_already as &mut dyn FnMut() -> bool),
    };
    let started = engine.start_with(&store, &container.id, options);
    let container = match started {
        Ok(c) => c,
        Err(e) => {
            drop(store);
            if flags.rm {
                remove_quietly(&engine, &container.id);
            }
            return Err(coded(e));
        }
    };
    if let Some(ended) = ended {
        return remove_after(&engine, &container, ended, session, Ok(store));
    }
    drop(store);
    let ended = session.wait(&engine, &container, args.sig_proxy);
    if flags.rm {
        return remove_after(&engine, &container, ended, session, engine.open_store());
    }
    finish(&engine, &container, ended)
}

/// `start -a [-i]`: as `run` without `-d`, for an existing container.
pub fn start_attached(global: &Global, text: &str, interactive: bool) -> anyhow::Result<()> {
    let signals = attach::block_signals()?;
    let engine = engine(global)?;
    let store = engine.open_store()?;
    let container = engine.find(&store, text)?;
    if container.state.status.is_live() {
        // docker's `start -a` of a running container attaches to it.
        drop(store);
        return attach_to(&engine, text, interactive, true, signals);
    }
    let (attach, mut session) = attach::prepare(
        signals,
        interactive && container.config.open_stdin,
        container.config.tty,
        false,
    )?;
    let container = engine.start(&store, &container.id, Some(attach))?;
    drop(store);
    let ended = session.wait(&engine, &container, true);
    finish(&engine, &container, ended)
}

/// `attach`: our streams join a running container's until it exits
/// (its exit status is ours) or the detach keys let it go.
pub fn attach(global: &Global, args: AttachArgs) -> anyhow::Result<()> {
    let signals = attach::block_signals()?;
    let engine = engine(global)?;
    attach_to(
        &engine,
        &args.container,
        !args.no_stdin,
        args.sig_proxy,
        signals,
    )
}

fn attach_to(
    engine: &Engine,
    text: &str,
    stdin: bool,
    sig_proxy: bool,
    signals: nix::sys::signal::SigSet,
) -> anyhow::Result<()> {
    let store = engine.open_store()?;
    let (container, mut session) = attach::connect(engine, &store, text, stdin, signals)?;
    drop(store);
    let ended = session.wait(engine, &container, sig_proxy);
    finish(engine, &container, ended)
}

/// The exit status of an attached run.
fn finish(engine: &Engine, container: &Container, ended: Ended) -> anyhow::Result<()> {
    let code = match ended {
        Ended::Detached => return Ok(()),
        Ended::Exited(code) => code,
        Ended::Lost => {
            let store = engine.open_store()?;
            engine.find(&store, &container.id)?.state.exit_code
        }
    };
    exit_status(code)
}

/// `run --rm`: the exit status, once the container is gone. The monitor
/// handed the exit over: `store` was opened while it deletes the runtime
/// state, and its exit command is called off once the container is
/// removed (it runs, and removes it, if we die half-way).
fn remove_after(
    engine: &Engine,
    container: &Container,
    ended: Ended,
    mut session: attach::Session,
    store: Result<storage::store::Store, EngineError>,
) -> anyhow::Result<()> {
    let code = match ended {
        // Detached, the container runs on; its exit command removes it.
        Ended::Detached => return Ok(()),
        Ended::Exited(code) => Some(code),
        Ended::Lost => None,
    };
    // While the monitor deletes the runtime state; `remove` finishes.
    if let Err(e) = engine.remove_root(&container.id) {
        tracing::debug!(
            "removing the root filesystem of {} early: {e}",
            container.id
        );
    }
    session.released();
    let removed = store.and_then(|store| {
        let code = match code {
            Some(code) => code,
            None => engine.find(&store, &container.id)?.state.exit_code,
        };
        engine.remove_handed_over(&store, &container.id)?;
        Ok(code)
    });
    let code = match removed {
        Ok(code) => {
            session.done();
            code
        }
        Err(EngineError::NoSuchContainer(_)) => code.unwrap_or(0),
        Err(e) => {
            eprintln!("Error: removing container {}: {e}", container.id);
            code.unwrap_or(125)
        }
    };
    exit_status(code)
}

/// The container's exit status as ours.
fn exit_status(code: i32) -> anyhow::Result<()> {
    if code != 0 {
        return Err(Status(u8::try_from(code).unwrap_or(255)).into());
    }
    Ok(())
}

fn remove_quietly(engine: &Engine, id: &str) {
    let removed = engine
        .open_store()
        .and_then(|store| engine.remove(&store, id, true, true));
    match removed {
        Ok(_) | Err(EngineError::NoSuchContainer(_)) => {}
        Err(e) => eprintln!("Error: removing container {id}: {e}"),
    }
}
