//! `muelle volume ...`: output as docker prints it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use serde_json::json;
use storage::mounts::BindPolicy;
use storage::plugin::{PluginConfig, PluginHost};
use storage::store::Store;
use storage::volume::{
    CreateVolume, Drivers, Filter, Volume, VolumeError, VolumeName, Volumes, backup, disk_usage,
};

use crate::args::{Global, VolumeCommand};

pub fn run(global: &Global, cmd: VolumeCommand) -> anyhow::Result<()> {
    let out = std::io::stdout();
    let mut out = out.lock();
    match cmd {
        VolumeCommand::Create {
            driver,
            opt,
            label,
            uid,
            gid,
            name,
        } => {
            let req = CreateVolume {
                name: name.map(|n| n.parse::<VolumeName>()).transpose()?,
                driver: Some(driver),
                options: key_values(&opt, "--opt")?,
                labels: key_values(&label, "--label")?,
                uid,
                gid,
                anonymous: false,
            };
            let v = with_volumes(global, |volumes| Ok(volumes.create(req)?))?;
            writeln!(out, "{}", v.name)?;
        }
        VolumeCommand::Ls {
            quiet,
            filter,
            format,
        } => {
            let filters = filter
                .iter()
                .map(|f| f.parse::<Filter>())
                .collect::<Result<Vec<_>, _>>()?;
            let list = with_volumes(global, |volumes| Ok(volumes.list(&filters)?))?;
            if quiet {
                for v in &list {
                    writeln!(out, "{}", v.name)?;
                }
            } else if format.as_deref() == Some("json") {
                for v in &list {
                    writeln!(out, "{}", ls_json(v))?;
                }
            } else if format.as_deref().is_none_or(|f| f == "table") {
                writeln!(out, "{:<16}VOLUME NAME", "DRIVER")?;
                for v in &list {
                    writeln!(out, "{:<16}{}", v.driver, v.name)?;
                }
            } else if let Some(text) = format.as_deref() {
                let template = crate::template::Template::parse(text)?;
                let mut rendered = String::new();
                if template.is_table() {
                    rendered.push_str(&template.header(&|field| {
                        Some(match field {
                            "Driver" => "DRIVER",
                            "Name" => "VOLUME NAME",
                            "Mountpoint" => "MOUNTPOINT",
                            "Scope" => "SCOPE",
                            "Labels" => "LABELS",
                            "Links" => "LINKS",
                            "Size" => "SIZE",
                            _ => return None,
                        })
                    }));
                    rendered.push('\n');
                }
                for v in &list {
                    rendered.push_str(&template.render(&ls_json(v))?);
                    rendered.push('\n');
                }
                if template.is_table() {
                    rendered = crate::template::align_tabs(&rendered);
                }
                out.write_all(rendered.as_bytes())?;
            }
        }
        VolumeCommand::Inspect {
            format,
            size,
            names,
        } => {
            let template = match format.as_deref() {
                None | Some("json") => None,
                Some(text) => Some(crate::template::Template::parse(text)?),
            };
            let (volumes, missing) = with_volumes(global, |volumes| {
                let mut found = Vec::new();
                let mut missing = None;
                for name in &names {
                    match volumes.get(name) {
                        Ok(v) => found.push(v),
                        Err(e) => missing = Some(e),
                    }
                }
                Ok((found, missing))
            })?;
            let mut found: Vec<_> = volumes.iter().map(inspect_json).collect();
            if size {
                // Measured after the store is closed: a big volume takes a while.
                let drivers = drivers(global)?;
                for (json, v) in found.iter_mut().zip(&volumes) {
                    json["UsageData"] = usage_json(&drivers, v)?;
                }
            }
            match template {
                None => writeln!(out, "{}", serde_json::to_string_pretty(&found)?)?,
                Some(template) => {
                    for value in &found {
                        writeln!(out, "{}", template.render(value)?)?;
                    }
                }
            }
            if let Some(e) = missing {
                return Err(e.into());
            }
        }
        VolumeCommand::Rm { force, names } => {
            let failed = with_volumes(global, |volumes| {
                let mut failed = false;
                for name in &names {
                    match volumes.remove(name) {
                        Ok(v) => writeln!(out, "{}", v.name)?,
                        Err(storage::volume::VolumeError::NotFound(_)) if force => {}
                        Err(e) => {
                            eprintln!("Error: {e}");
                            failed = true;
                        }
                    }
                }
                Ok(failed)
            })?;
            if failed {
                // Each failure was printed; docker exits 1 after the rest.
                std::process::exit(1);
            }
        }
        VolumeCommand::Rename { old, new } => {
            let new = new.parse::<VolumeName>()?;
            let v = with_volumes(global, |volumes| Ok(volumes.rename(&old, &new)?))?;
            writeln!(out, "{}", v.name)?;
        }
        VolumeCommand::Prune { all, force } => {
            if !force && !confirm(all)? {
                return Ok(());
            }
            let no_filter = crate::system::prune::Filter::parse(&[])?;
            let mut report = Vec::new();
            let reclaimed =
                crate::system::prune::prune_volumes(global, all, &no_filter, &mut report)?;
            if report.is_empty() {
                report.extend_from_slice(b"Deleted Volumes:\n\n");
            }
            out.write_all(&report)?;
            writeln!(
                out,
                "Total reclaimed space: {}",
                crate::human::size(reclaimed, 4)
            )?;
        }
        VolumeCommand::Export {
            output,
            force,
            name,
        } => export(global, &name, output.as_deref(), force, &mut out)?,
        VolumeCommand::Import {
            force,
            name,
            source,
        } => import(global, &name, &source, force)?,
    }
    Ok(())
}

/// `system check`: one line per finding; exit 1 when something was found
/// and not repaired.
pub fn check(global: &Global, repair: bool) -> anyhow::Result<()> {
    let mut findings: Vec<String> = with_volumes(global, |volumes| Ok(volumes.check(repair)?))?
        .iter()
        .map(ToString::to_string)
        .collect();
    let engine = crate::container::engine(global)?;
    findings.extend(
        engine
            .network_check(&engine.open_store()?, repair)?
            .iter()
            .map(ToString::to_string),
    );
    for f in &findings {
        println!("{f}{}", if repair { ": repaired" } else { "" });
    }
    if findings.is_empty() {
        println!("no problems found");
    } else if !repair {
        bail!(
            "{} problem(s) found: run `muelle system check --repair`",
            findings.len()
        );
    }
    Ok(())
}

/// Opens the store for the moment `f` needs it, once per command. Every
/// write of the store is flushed before it returns, so a read-only command
/// pays no fsync of its own.
pub(crate) fn with_volumes<R>(
    global: &Global,
    f: impl FnOnce(&Volumes<'_>) -> anyhow::Result<R>,
) -> anyhow::Result<R> {
    let drivers = drivers(global)?;
    let store = Store::open(&global.root)?;
    f(&Volumes::with_drivers(&store, drivers))
}

/// The drivers this command may use: `local` under the operator's bind
/// policy, and the plugins the configuration names.
pub(crate) fn drivers(global: &Global) -> anyhow::Result<Drivers> {
    let policy = BindPolicy::load(&global.config)?;
    // Plugins load lazily: a command on local volumes opens none.
    let plugins = PluginHost::new(PluginConfig::load(&global.config, &global.root)?);
    Ok(Drivers::new(&global.root, policy).with_plugins(std::sync::Arc::new(plugins)))
}

pub(crate) fn key_values(items: &[String], flag: &str) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .with_context(|| format!("invalid {flag} {item:?}: use KEY=VALUE"))
        })
        .collect()
}

/// docker's `volume inspect` shape.
pub(crate) fn inspect_json(v: &Volume) -> serde_json::Value {
    json!({
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": v.mountpoint,
        "Name": v.name.as_str(),
        "Options": v.options,
        "Scope": v.scope,
    })
}

/// docker's UsageData: Size -1 when the driver has the data unmounted.
fn usage_json(drivers: &Drivers, v: &Volume) -> anyhow::Result<serde_json::Value> {
    let size = match drivers.get(&v.driver)?.path(&v.name)? {
        Some(path) => i64::try_from(disk_usage(&path)?).unwrap_or(i64::MAX),
        None => -1,
    };
    Ok(json!({ "RefCount": v.users.len(), "Size": size }))
}

/// docker's `volume ls --format json`: one object per line.
fn ls_json(v: &Volume) -> serde_json::Value {
    json!({
        "Driver": v.driver,
        "Labels": v.labels.iter().map(|(k, val)| format!("{k}={val}")).collect::<Vec<_>>().join(","),
        "Links": v.users.len().to_string(),
        "Mountpoint": v.mountpoint,
        "Name": v.name.as_str(),
        "Scope": v.scope,
        "Size": "N/A",
    })
}

fn confirm(all: bool) -> anyhow::Result<bool> {
    crate::exit::confirm(if all {
        "all local volumes not used by at least one container"
    } else {
        "anonymous local volumes not used by at least one container"
    })
}

/// Archives move in large writes rather than tar's 512-byte blocks.
const ARCHIVE_BUFFER: usize = 256 * 1024;

/// `volume export`: to FILE (written beside it and renamed into place, so
/// a failed export never leaves half a backup or truncates an old one), or
/// to stdout unless that is a terminal, as podman and docker refuse.
fn export(
    global: &Global,
    name: &str,
    output: Option<&Path>,
    force: bool,
    stdout: &mut impl Write,
) -> anyhow::Result<()> {
    if output.is_none() && std::io::stdout().is_terminal() {
        bail!(
            "refusing to write a tar archive to a terminal: use --output FILE or redirect stdout"
        );
    }
    let volume = with_volumes(global, |volumes| Ok(volumes.get(name)?))?;
    let Some(path) = output else {
        backup::export(
            &drivers(global)?,
            &volume,
            BufWriter::with_capacity(ARCHIVE_BUFFER, stdout),
            force,
        )?;
        return Ok(());
    };
    let replaceable = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta.is_file(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    };
    if !replaceable {
        // A device, fifo or symlink (`-o /dev/null`): write through it.
        let file = File::create(path).map_err(|e| anyhow!("opening {}: {e}", path.display()))?;
        backup::export(
            &drivers(global)?,
            &volume,
            BufWriter::with_capacity(ARCHIVE_BUFFER, file),
            force,
        )?;
        return Ok(());
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(format!(".partial-{}", std::process::id()));
    let partial = PathBuf::from(partial);
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(&partial)
        .map_err(|e| anyhow!("creating {}: {e}", partial.display()))?;
    let written = backup::export(
        &drivers(global)?,
        &volume,
        BufWriter::with_capacity(ARCHIVE_BUFFER, file),
        force,
    )
    .map_err(anyhow::Error::from)
    .and_then(|_| {
        std::fs::rename(&partial, path)
            .map_err(|e| anyhow!("renaming {} to {}: {e}", partial.display(), path.display()))
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

/// `volume import`: creates a missing volume (local driver) and removes it
/// again if the import fails, so a refused archive leaves nothing behind.
fn import(global: &Global, name: &str, source: &str, force: bool) -> anyhow::Result<()> {
    let name: VolumeName = name.parse()?;
    // The archive opens before any volume is made for it.
    let input: Box<dyn Read> = if source == "-" {
        if std::io::stdin().is_terminal() {
            bail!("refusing to read a tar archive from a terminal: give a FILE or redirect stdin");
        }
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(source).map_err(|e| anyhow!("opening {source}: {e}"))?)
    };
    let (volume, created) = with_volumes(global, |volumes| match volumes.get(name.as_str()) {
        Ok(v) => Ok((v, false)),
        Err(VolumeError::NotFound(_)) => {
            let req = CreateVolume {
                name: Some(name.clone()),
                ..Default::default()
            };
            Ok((volumes.create(req)?, true))
        }
        Err(e) => Err(e.into()),
    })?;
    let imported = backup::import(
        &drivers(global)?,
        &volume,
        BufReader::with_capacity(ARCHIVE_BUFFER, input),
        force,
    );
    if let Err(e) = imported {
        if created {
            let _ = with_volumes(global, |volumes| Ok(volumes.remove(name.as_str())?));
        }
        return Err(e.into());
    }
    Ok(())
}
