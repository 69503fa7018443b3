//! `muelle volume ...`: output as docker prints it.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use anyhow::{Context, bail};
use serde_json::json;
use storage::mounts::BindPolicy;
use storage::store::Store;
use storage::volume::{CreateVolume, Filter, Volume, VolumeName, Volumes};

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
            } else {
                bail!(
                    "unsupported --format {:?}: use table or json",
                    format.unwrap_or_default()
                );
            }
        }
        VolumeCommand::Inspect { format, names } => {
            if format.as_deref().is_some_and(|f| f != "json") {
                bail!("unsupported --format: use json");
            }
            let (found, missing) = with_volumes(global, |volumes| {
                let mut found = Vec::new();
                let mut missing = None;
                for name in &names {
                    match volumes.get(name) {
                        Ok(v) => found.push(inspect_json(&v)),
                        Err(e) => missing = Some(e),
                    }
                }
                Ok((found, missing))
            })?;
            writeln!(out, "{}", serde_json::to_string_pretty(&found)?)?;
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
            let removed = with_volumes(global, |volumes| Ok(volumes.prune(all)?))?;
            writeln!(out, "Deleted Volumes:")?;
            for v in &removed {
                writeln!(out, "{}", v.name)?;
            }
            writeln!(out, "\nTotal reclaimed space: 0B")?;
        }
    }
    Ok(())
}

/// `system check`: one line per finding; exit 1 when something was found
/// and not repaired.
pub fn check(global: &Global, repair: bool) -> anyhow::Result<()> {
    let findings = with_volumes(global, |volumes| Ok(volumes.check(repair)?))?;
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
fn with_volumes<R>(
    global: &Global,
    f: impl FnOnce(&Volumes<'_>) -> anyhow::Result<R>,
) -> anyhow::Result<R> {
    let policy = BindPolicy::load(&global.config)?;
    let store = Store::open(&global.root)?;
    f(&Volumes::with_policy(&store, &global.root, policy))
}

fn key_values(items: &[String], flag: &str) -> anyhow::Result<BTreeMap<String, String>> {
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
fn inspect_json(v: &Volume) -> serde_json::Value {
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
    let what = if all {
        "all local volumes"
    } else {
        "anonymous local volumes"
    };
    eprint!(
        "WARNING! This will remove {what} not used by at least one container.\nAre you sure you want to continue? [y/N] "
    );
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
