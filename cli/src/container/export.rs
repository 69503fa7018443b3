//! `export`: a container's root filesystem as a tar archive.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};
use clap::Args;

use crate::args::Global;

/// Archives move in large writes rather than tar's 512-byte blocks.
const ARCHIVE_BUFFER: usize = 256 * 1024;

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub fn export(global: &Global, args: ExportArgs) -> anyhow::Result<()> {
    let Some(path) = &args.output else {
        if std::io::stdout().is_terminal() {
            // docker's words.
            bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
        }
        let mut out = BufWriter::with_capacity(ARCHIVE_BUFFER, std::io::stdout());
        write(global, &args.container, &mut out)?;
        return Ok(out.flush()?);
    };
    to_file(path, |out| write(global, &args.container, out))
}

fn write(global: &Global, container: &str, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let engine = super::engine(global)?;
    engine.export(container, out)?;
    Ok(())
}

/// As docker: a temporary file beside FILE, renamed over it once whole,
/// so a failed export leaves no half archive.
fn to_file(
    path: &Path,
    write: impl FnOnce(&mut (dyn Write + Send)) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let temp = dir.join(format!(".muelle_temp_{}", std::process::id()));
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|e| anyhow!("creating {}: {e}", temp.display()))?;
    let mut out = BufWriter::with_capacity(ARCHIVE_BUFFER, file);
    let written = write(&mut out)
        .and_then(|()| {
            out.flush()
                .map_err(|e| anyhow!("writing {}: {e}", temp.display()))
        })
        .and_then(|()| {
            std::fs::rename(&temp, path)
                .map_err(|e| anyhow!("renaming {} to {}: {e}", temp.display(), path.display()))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}
