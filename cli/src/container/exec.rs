//! `exec`: a command in a running container, its exit status passed on.
//! Failures read as docker's: `Error response from daemon: ...` and exit
//! 1 when the container cannot take an exec; the runtime's reason and
//! 126 (cannot invoke) or 127 (not found) when the command cannot start.

use anyhow::Context;
use engine::container::{EngineError, ExecRequest};

use super::args::ExecArgs;
use super::config::{env_file, expand_env};
use super::engine;
use crate::args::Global;
use crate::exit::{Reported, Status};

pub fn exec(global: &Global, args: ExecArgs) -> anyhow::Result<()> {
    if args.interactive
        && args.tty
        && !args.detach
        && !nix::unistd::isatty(std::io::stdin()).unwrap_or(false)
    {
        eprintln!("the input device is not a TTY");
        return Err(Reported.into());
    }
    let mut env = Vec::new();
    for file in &args.env_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("open {}: no such file or directory", file.display()))?;
        env.extend(env_file(&text).map(expand_env));
    }
    env.extend(args.env.iter().map(|e| expand_env(e)));
    let request = ExecRequest {
        cmd: args.command,
        env,
        workdir: args.workdir,
        user: args.user,
        privileged: args.privileged,
        tty: args.tty,
        interactive: args.interactive,
        detach: args.detach,
    };
    // Nothing here may start a thread before the exec: see Engine::exec.
    let engine = engine(global)?;
    match engine.exec(&args.container, &request) {
        Ok(0) => Ok(()),
        Ok(code) => Err(Status(u8::try_from(code).unwrap_or(255)).into()),
        // docker writes this into the exec's own stream and exits with
        // the exec's code; a detached exec's start fails as a request.
        Err(e @ EngineError::ExecFailed { .. }) if !request.detach => {
            eprintln!("{e}");
            Err(Status(e.exit_code()).into())
        }
        Err(e) => {
            eprintln!("Error response from daemon: {e}");
            Err(Reported.into())
        }
    }
}
