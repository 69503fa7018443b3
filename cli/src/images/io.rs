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
use crate::progress::{Progress, input_size};

/// Archives move in large writes rather than tar's 512-byte blocks.
const ARCHIVE_BUFFER: usize = 256 * 1024;

pub fn import(global: &Global, args: &ImportArgs, out: &mut impl Write) -> anyhow::Result<()> {
    // A bad name fails before a byte of the input is read.
    let reference = args
        .reference
        .as_deref()
        .map(str::parse::<ImageRef>)
        .transpose()?;
    let (input, size): (Box<dyn Read>, _) = match args.source.as_str() {
        "-" => {
            if std::io::stdin().is_terminal() {
                bail!("refusing to read a tarball from a terminal: give a FILE or redirect stdin");
            }
            (Box::new(std::io::stdin().lock()), input_size(None))
        }
        url if url.starts_with("http://") || url.starts_with("https://") => {
            bail!("importing from a URL is not supported: download {url}, then import the file")
        }
        path => {
            let file = File::open(path).map_err(|e| anyhow!("opening {path}: {e}"))?;
            let size = input_size(Some(&file));
            (Box::new(file), size)
        }
    };
    let images = super::images(global)?;
    let progress = Progress::bytes("Importing", size);
    let record = image::import::import(
        &images,
        progress.reader(input, "Storing the layer"),
        reference,
        &args.change,
        args.message.as_deref(),
    )?;
    // Cleared before the output, which the clearing would otherwise hit.
    drop(progress);
    writeln!(out, "{}", record.id)?;
    Ok(())
}

pub fn load(global: &Global, args: &LoadArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let (input, size): (Box<dyn Read>, _) = match &args.input {
        Some(path) => {
            let file = File::open(path).map_err(|e| anyhow!("opening {}: {e}", path.display()))?;
            let size = input_size(Some(&file));
            (Box::new(file), size)
        }
        None => {
            if std::io::stdin().is_terminal() {
                bail!(
                    "requested load from stdin, but stdin is a terminal: use -i FILE or redirect stdin"
                );
            }
            (Box::new(std::io::stdin().lock()), input_size(None))
        }
    };
    let images = super::images(global)?;
    // -q hides the progress (as docker's), not the `Loaded image:` lines.
    let progress = if args.quiet {
        Progress::hidden()
    } else {
        Progress::bytes("Loading", size)
    };
    let loaded = formats::load(&images, progress.reader(input, "Storing the layers"))?;
    drop(progress);
    for loaded in loaded {
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
    let progress = Progress::bytes("Saving", Some(layer_bytes(&plan)));
    let write =
        |out: &mut dyn Write| write_plan(&plan, &images, &mut progress.writer(out), args.format);
    match &args.output {
        None => write(stdout),
        Some(path) => write_file(path, write),
    }
}

/// What the archive holds, nearly: each layer blob once (configs,
/// manifests and tar headers are small beside them).
fn layer_bytes(plan: &SavePlan) -> u64 {
    let mut seen = std::collections::BTreeSet::new();
    plan.images()
        .iter()
        .flat_map(|i| &i.record.layers)
        .filter(|l| seen.insert(&l.digest))
        .map(|l| l.size)
        .sum()
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
