//! Images in and out as files: `import`, `save`, `load`. The archive work
//! runs with the metadata store closed: load and import open it only to
//! commit (inside the image crate), save only to resolve its names.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use image::ImageRef;
use image::formats::{self, Format, SavePlan};

use crate::args::{Global, ImportArgs, LoadArgs, SaveArgs};

/// Archives move in large writes rather than tar's 512-byte blocks.
const ARCHIVE_BUFFER: usize = 256 * 1024;

pub fn import(global: &Global, args: &ImportArgs, out: &mut impl Write) -> anyhow::Result<()> {
    // A bad name fails before a byte of the input is read.
    let reference = args
        .reference
        .as_deref()
        .map(str::parse::<ImageRef>)
        .transpose()?;
    let input: Box<dyn Read> = match args.source.as_str() {
        "-" => {
            if std::io::stdin().is_terminal() {
                bail!("refusing to read a tarball from a terminal: give a FILE or redirect stdin");
            }
            Box::new(std::io::stdin().lock())
        }
        url if url.starts_with("http://") || url.starts_with("https://") => {
            bail!("importing from a URL is not supported: download {url}, then import the file")
        }
        path => Box::new(File::open(path).map_err(|e| anyhow!("opening {path}: {e}"))?),
    };
    let images = super::images(global)?;
    let record = image::import::import(
        &images,
        input,
        reference,
        &args.change,
        args.message.as_deref(),
    )?;
    writeln!(out, "{}", record.id)?;
    Ok(())
}

pub fn load(global: &Global, args: &LoadArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let input: Box<dyn Read> = match &args.input {
        Some(path) => {
            Box::new(File::open(path).map_err(|e| anyhow!("opening {}: {e}", path.display()))?)
        }
        None => {
            if std::io::stdin().is_terminal() {
                bail!(
                    "requested load from stdin, but stdin is a terminal: use -i FILE or redirect stdin"
                );
            }
            Box::new(std::io::stdin().lock())
        }
    };
    let images = super::images(global)?;
    // -q hides docker's progress; muelle shows none, so the lines stay.
    for loaded in formats::load(&images, input)? {
        for line in loaded.lines() {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

pub fn save(global: &Global, args: &SaveArgs, stdout: &mut impl Write) -> anyhow::Result<()> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        // docker's words.
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let images = super::images(global)?;
    // The plan holds the collector off until it is dropped, so the blobs
    // stay while the archive is written with the store closed.
    let plan = super::with_store(global, |store| {
        Ok(formats::plan_save(&images, store, &args.images)?)
    })?;
    let write = |out: &mut dyn Write| write_plan(&plan, &images, out, args.format);
    match &args.output {
        None => write(stdout),
        Some(path) => write_file(path, write),
    }
}

fn write_plan(
    plan: &SavePlan,
    images: &image::Images,
    out: &mut dyn Write,
    format: Format,
) -> anyhow::Result<()> {
    let mut out = BufWriter::with_capacity(ARCHIVE_BUFFER, out);
    plan.write(images, &mut out, format)?;
    out.flush().context("writing the archive")?;
    Ok(())
}

/// Writes FILE beside itself (`FILE.partial-PID`) and renames it into
/// place, so a failed save leaves no half archive and does not truncate an
/// old one. A path that is not a regular file (`-o /dev/null`, a fifo, a
/// symlink) is written through instead.
fn write_file(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let replaceable = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta.is_file(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    };
    if !replaceable {
        let mut file =
            File::create(path).map_err(|e| anyhow!("opening {}: {e}", path.display()))?;
        return write(&mut file);
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(format!(".partial-{}", std::process::id()));
    let partial = PathBuf::from(partial);
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .open(&partial)
        .map_err(|e| anyhow!("creating {}: {e}", partial.display()))?;
    let written = write(&mut file)
        .and_then(|()| {
            // On disk before the name says it is whole.
            file.sync_all()
                .map_err(|e| anyhow!("writing {}: {e}", partial.display()))
        })
        .and_then(|()| {
            std::fs::rename(&partial, path)
                .map_err(|e| anyhow!("renaming {} to {}: {e}", partial.display(), path.display()))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}
