//! `muelle plugin ...`: the volume driver plugins of the configured
//! folders (`[plugins] dirs` of muelle.toml), printed as docker prints its
//! lists: a table, `-q` names, `--format json` one object per line, and
//! `inspect` a JSON array.

use std::io::Write;

use anyhow::{anyhow, bail};
use serde_json::json;
use storage::plugin::{
    PluginConfig, PluginEntry, PluginError, PluginHost, PluginInfo, PluginStatus,
};

use crate::args::{Global, PluginCommand};

pub fn run(global: &Global, cmd: PluginCommand) -> anyhow::Result<()> {
    let host = PluginHost::new(PluginConfig::load(&global.config, &global.root)?);
    let out = std::io::stdout();
    let mut out = out.lock();
    match cmd {
        PluginCommand::Ls { quiet, format } => {
            let entries = host.list();
            if quiet {
                // Each driver name once: the file that provides it.
                for e in entries.iter().filter(|e| !is_shadowed(e)) {
                    writeln!(out, "{}", e.name)?;
                }
            } else if format.as_deref() == Some("json") {
                for e in &entries {
                    writeln!(out, "{}", ls_json(e))?;
                }
            } else if format.as_deref().is_none_or(|f| f == "table") {
                let rows: Vec<[String; 5]> = entries.iter().map(row).collect();
                write_table(
                    &mut out,
                    ["NAME", "VERSION", "SCOPE", "PATH", "STATUS"],
                    &rows,
                )?;
            } else {
                bail!(
                    "unsupported --format {:?}: use table or json",
                    format.unwrap_or_default()
                );
            }
        }
        PluginCommand::Inspect { format, names } => {
            if format.as_deref().is_some_and(|f| f != "json") {
                bail!("unsupported --format: use json");
            }
            let mut found = Vec::new();
            let mut failed = None;
            for name in &names {
                match host.driver(name) {
                    Ok(Some(driver)) => found.push(inspect_json(driver.info())),
                    Ok(None) | Err(PluginError::InvalidName(_)) => {
                        failed = Some(anyhow!("no such plugin: {name}"));
                    }
                    Err(e) => failed = Some(e.into()),
                }
            }
            writeln!(out, "{}", serde_json::to_string_pretty(&found)?)?;
            if let Some(e) = failed {
                return Err(e);
            }
        }
    }
    Ok(())
}

fn is_shadowed(e: &PluginEntry) -> bool {
    matches!(e.status, PluginStatus::Shadowed { .. })
}

/// `ok`, `shadowed by PATH`, or why the file cannot be used.
fn status(e: &PluginEntry) -> String {
    match &e.status {
        PluginStatus::Ready(_) => "ok".to_owned(),
        PluginStatus::Shadowed { by } => format!("shadowed by {}", by.display()),
        PluginStatus::Broken(err) => err.to_string(),
    }
}

fn row(e: &PluginEntry) -> [String; 5] {
    let (version, scope) = match &e.status {
        PluginStatus::Ready(info) => (info.version.clone(), info.scope.as_str().to_owned()),
        _ => ("-".to_owned(), "-".to_owned()),
    };
    [
        e.name.clone(),
        version,
        scope,
        e.path.display().to_string(),
        status(e),
    ]
}

/// Columns padded to their widest cell plus three spaces, as docker's
/// tabwriter does; the last one is not padded.
fn write_table<const N: usize>(
    out: &mut impl Write,
    header: [&str; N],
    rows: &[[String; N]],
) -> std::io::Result<()> {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: [&str; N]| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}", width = widths[i] + 3));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, header)?;
    for row in rows {
        line(out, row.each_ref().map(String::as_str))?;
    }
    Ok(())
}

/// `plugin ls --format json`: one object per line.
fn ls_json(e: &PluginEntry) -> serde_json::Value {
    let info = match &e.status {
        PluginStatus::Ready(info) => Some(info),
        _ => None,
    };
    json!({
        "Name": e.name,
        "Version": info.map(|i| i.version.as_str()).unwrap_or_default(),
        "AbiVersion": info.map(|i| i.abi_version),
        "Scope": info.map(|i| i.scope.as_str()).unwrap_or_default(),
        "Path": e.path,
        "Status": status(e),
    })
}

/// `plugin inspect`.
fn inspect_json(info: &PluginInfo) -> serde_json::Value {
    json!({
        "Name": info.name,
        "Version": info.version,
        "AbiVersion": info.abi_version,
        "Scope": info.scope.as_str(),
        "Path": info.path,
        "StateDir": info.state_dir,
    })
}
