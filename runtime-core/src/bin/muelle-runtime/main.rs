//! muelle-runtime: the OCI runtime binary. It parses runc's command line,
//! calls runtime-core, and prints; errors are one line on stderr (and in
//! --log, as runc writes them) with exit status 1.

mod cli;
mod default_spec;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use runtime_core::container::{self, CreateOptions, ExecOptions, RunOptions};
use runtime_core::state::{ContainerId, StateRoot};

use cli::{Cli, Command, ListFormat, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = cli.log.clone();
    let format = cli.log_format;
    init_tracing(&cli);
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(err)
            if matches!(
                err.downcast_ref::<runtime_core::Error>(),
                Some(runtime_core::Error::SealedExeRequired)
            ) =>
        {
            // Nothing was made yet: run the same command again from the
            // sealed copy. Returns only on failure.
            let err = match runtime_core::process::sealed_exe::reexec() {
                Err(e) => e,
                Ok(never) => match never {},
            };
            eprintln!("muelle-runtime: {err}");
            ExitCode::FAILURE
        }
        Err(err) => {
            // Our errors carry their causes in their own text already.
            let message = format!("{err}");
            if let Some(path) = log {
                write_log_line(&path, format, &message);
            }
            eprintln!("muelle-runtime: {message}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(cli: &Cli) {
    let level = if cli.debug { "debug" } else { "warn" };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MUELLE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_target(false);
    let file = cli.log.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    match (file, cli.log_format) {
        (Some(f), LogFormat::Json) => builder.json().with_writer(std::sync::Mutex::new(f)).init(),
        (Some(f), LogFormat::Text) => builder.with_writer(std::sync::Mutex::new(f)).init(),
        (None, _) => builder.with_writer(std::io::stderr).init(),
    }
}

/// Engines such as podman read the runtime's error from --log: one JSON
/// object per line with level, msg and time, as runc writes.
fn write_log_line(path: &Path, format: LogFormat, message: &str) {
    let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    else {
        return;
    };
    let time = runtime_core::state::now_rfc3339();
    let line = match format {
        LogFormat::Json => {
            serde_json::json!({ "level": "error", "msg": message, "time": time }).to_string()
        }
        LogFormat::Text => format!("time=\"{time}\" level=error msg=\"{message}\""),
    };
    let _ = writeln!(file, "{line}");
}

fn id(text: &str) -> anyhow::Result<ContainerId> {
    Ok(text.parse::<ContainerId>()?)
}

fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    if cli.systemd_cgroup {
        anyhow::bail!(
            "--systemd-cgroup is not supported yet: use the cgroupfs manager (podman: --cgroup-manager cgroupfs)"
        );
    }
    let root = StateRoot::new(&cli.root);
    match cli.command {
        Command::Create(args) => {
            container::create(
                &root,
                CreateOptions {
                    id: id(&args.id)?,
                    bundle: args.bundle,
                    pid_file: args.pid_file,
                    console_socket: args.console_socket,
                    preserve_fds: args.preserve_fds,
                    foreground: false,
                },
            )?;
        }
        Command::Start { id: text } => container::start(&root, &id(&text)?)?,
        Command::Run {
            create: args,
            detach,
            keep,
            no_subreaper: _,
        } => {
            return Ok(container::run(
                &root,
                RunOptions {
                    id: id(&args.id)?,
                    bundle: args.bundle,
                    pid_file: args.pid_file,
                    console_socket: args.console_socket,
                    preserve_fds: args.preserve_fds,
                    detach,
                    keep,
                },
            )?);
        }
        Command::State { id: text } => {
            let state = container::state(&root, &id(&text)?)?;
            println!("{}", serde_json::to_string_pretty(&state)?);
        }
        Command::Kill {
            all,
            id: text,
            signal,
        } => {
            let signal = container::parse_signal(&signal)?;
            container::kill(&root, &id(&text)?, signal, all)?;
        }
        Command::Delete { force, id: text } => {
            let id = id(&text)?;
            match container::delete(&root, &id, force) {
                // runc's delete --force of a missing container succeeds, and
                // engines rely on it during cleanup.
                Err(runtime_core::Error::NotFound(_)) if force => {}
                other => other?,
            }
        }
        Command::Exec(args) => return exec(&root, *args),
        Command::List { format, quiet } => list(&root, format, quiet)?,
        Command::Ps {
            format,
            id: text,
            ps_args,
        } => ps(&root, &id(&text)?, format, &ps_args)?,
        Command::Pause { id: text } => container::pause(&root, &id(&text)?)?,
        Command::Resume { id: text } => container::resume(&root, &id(&text)?)?,
        Command::Spec { bundle } => {
            let rootless = cli.rootless.as_deref().is_some_and(|v| v != "false");
            let path = bundle.join("config.json");
            if path.exists() {
                anyhow::bail!("File {} exists. Remove it first", path.display());
            }
            let spec = default_spec::default_spec(rootless);
            std::fs::write(&path, serde_json::to_string_pretty(&spec)? + "\n")?;
        }
        Command::Features => println!(
            "{}",
            serde_json::to_string_pretty(&default_spec::features())?
        ),
        Command::Update { .. } => {
            anyhow::bail!("update is not supported yet: recreate the container with new resources")
        }
        Command::Checkpoint { .. } | Command::Restore { .. } => {
            anyhow::bail!("checkpoint/restore is not supported by muelle-runtime")
        }
        Command::Events { .. } => anyhow::bail!("events is not supported yet"),
    }
    Ok(0)
}

fn exec(root: &StateRoot, args: cli::ExecArgs) -> anyhow::Result<i32> {
    let id = id(&args.id)?;
    let process = match &args.process {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("reading process file {}: {e}", path.display()))?;
            serde_json::from_str::<oci_spec::runtime::Process>(&text)
                .map_err(|e| anyhow::anyhow!("process file {}: {e}", path.display()))?
        }
        None => process_from_args(root, &id, &args)?,
    };
    Ok(container::exec(
        root,
        &id,
        ExecOptions {
            process,
            console_socket: args.console_socket,
            pid_file: args.pid_file,
            detach: args.detach,
            preserve_fds: args.preserve_fds,
        },
    )?)
}

/// `exec ID CMD...`: the container's own process settings, with what the
/// flags change.
fn process_from_args(
    root: &StateRoot,
    id: &ContainerId,
    args: &cli::ExecArgs,
) -> anyhow::Result<oci_spec::runtime::Process> {
    if args.command.is_empty() {
        anyhow::bail!("exec needs a command (or --process FILE)");
    }
    let record = root.load(id)?;
    let mut process = record.spec()?.process().clone().unwrap_or_default();
    process.set_args(Some(args.command.clone()));
    process.set_terminal(Some(args.tty));
    process.set_console_size(None);
    if let Some(cwd) = &args.cwd {
        process.set_cwd(cwd.clone());
    }
    let mut env = process.env().clone().unwrap_or_default();
    for e in &args.env {
        let key = e.split('=').next().unwrap_or_default();
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    process.set_env(Some(env));
    if let Some(user) = &args.user {
        let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
        let mut u = process.user().clone();
        u.set_uid(
            uid.parse()
                .map_err(|_| anyhow::anyhow!("invalid --user {user:?}: want uid[:gid]"))?,
        );
        u.set_gid(
            gid.parse()
                .map_err(|_| anyhow::anyhow!("invalid --user {user:?}: want uid[:gid]"))?,
        );
        process.set_user(u);
    }
    if !args.additional_gids.is_empty() {
        let mut u = process.user().clone();
        u.set_additional_gids(Some(args.additional_gids.clone()));
        process.set_user(u);
    }
    if args.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    if !args.cap.is_empty() {
        let mut caps = process.capabilities().clone().unwrap_or_default();
        let added: Vec<oci_spec::runtime::Capability> = args
            .cap
            .iter()
            .map(|c| {
                c.parse()
                    .map_err(|_| anyhow::anyhow!("unknown capability {c:?}"))
            })
            .collect::<anyhow::Result<_>>()?;
        for set in [
            caps.bounding().clone(),
            caps.effective().clone(),
            caps.permitted().clone(),
        ]
        .iter()
        .enumerate()
        {
            let mut merged = set.1.clone().unwrap_or_default();
            merged.extend(added.iter().copied());
            match set.0 {
                0 => caps.set_bounding(Some(merged)),
                1 => caps.set_effective(Some(merged)),
                _ => caps.set_permitted(Some(merged)),
            };
        }
        process.set_capabilities(Some(caps));
    }
    Ok(process)
}

fn list(root: &StateRoot, format: ListFormat, quiet: bool) -> anyhow::Result<()> {
    let rows = container::list(root)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if quiet {
        for row in &rows {
            writeln!(out, "{}", row.state.id)?;
        }
        return Ok(());
    }
    match format {
        ListFormat::Json => {
            let states: Vec<_> = rows.iter().map(|r| &r.state).collect();
            writeln!(out, "{}", serde_json::to_string(&states)?)?;
        }
        ListFormat::Table => {
            writeln!(
                out,
                "{:<12} {:<10} {:<10} {:<40} {:<32} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            )?;
            for r in &rows {
                let s = &r.state;
                writeln!(
                    out,
                    "{:<12} {:<10} {:<10} {:<40} {:<32} root",
                    s.id,
                    s.pid,
                    s.status,
                    s.bundle.display(),
                    s.created
                )?;
            }
        }
    }
    Ok(())
}

fn ps(
    root: &StateRoot,
    id: &ContainerId,
    format: ListFormat,
    ps_args: &[String],
) -> anyhow::Result<()> {
    let pids = container::processes(root, id)?;
    if format == ListFormat::Json {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(());
    }
    // Like runc: ps(1)'s own table, filtered to the container's pids.
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let output = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| anyhow::anyhow!("running ps: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Ok(());
    };
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| anyhow::anyhow!("ps output has no PID column"))?;
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(())
}
