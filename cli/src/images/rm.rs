//! `tag`, `rmi` / `image rm`, `image prune`.

use std::io::Write;

use image::ImageError;
use image::store::Removed;

use super::{ImageUsers, Reported, collect};
use crate::args::{Global, RmiArgs, TagArgs};
use crate::human;
use crate::progress::Progress;

pub fn tag(global: &Global, args: &TagArgs) -> anyhow::Result<()> {
    let images = super::images(global)?;
    super::with_store(global, |store| {
        images.tag(store, &args.source, &args.target)?;
        Ok(())
    })
}

/// Each image in turn, as docker: `Untagged:`/`Deleted:` lines for what
/// went, `Error: ...` for what could not, and exit 1 after the rest if any
/// failed. With -f an image that is not there is reported but not a
/// failure (docker's rule).
pub fn rmi(global: &Global, args: &RmiArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let images = super::images(global)?;
    let store = storage::store::Store::open(&global.root)?;
    let users = ImageUsers::read(global, &store)?;
    let mut failed = false;
    for name in &args.images {
        match images.remove(&store, name, args.force, &|id| users.of(id)) {
            Ok(removed) => {
                for line in removed {
                    writeln!(out, "{line}")?;
                }
            }
            Err(e) => {
                eprintln!("Error: {e}");
                failed |= !(args.force && matches!(e, ImageError::NotFound(_)));
            }
        }
    }
    // The records are committed; what they no longer name goes now.
    collect(&images, store);
    if failed {
        return Err(Reported.into());
    }
    Ok(())
}

pub fn prune(global: &Global, all: bool, force: bool, out: &mut impl Write) -> anyhow::Result<()> {
    if !force && !confirm(all)? {
        return Ok(());
    }
    let progress = Progress::spinner("Deleting unused images");
    let pruned = prune_images(global, all, &|_| true)?;
    drop(progress);
    pruned.write_report(out)?;
    writeln!(
        out,
        "Total reclaimed space: {}",
        human::size(pruned.bytes, 4)
    )?;
    Ok(())
}

/// What `image prune` removed: the records' lines, and the bytes their
/// layers and blobs freed.
pub struct PrunedImages {
    pub removed: Vec<Removed>,
    pub bytes: u64,
}

impl PrunedImages {
    /// docker's lines: lowercase, then a blank line; nothing when nothing
    /// went.
    pub fn write_report(&self, out: &mut impl Write) -> std::io::Result<()> {
        if self.removed.is_empty() {
            return Ok(());
        }
        writeln!(out, "Deleted Images:")?;
        for r in &self.removed {
            match r {
                Removed::Untagged(tag) => writeln!(out, "untagged: {tag}")?,
                Removed::Deleted(id) => writeln!(out, "deleted: {id}")?,
            }
        }
        writeln!(out)
    }
}

/// Removes the dangling images (every unused one with `all`) that
/// `selected` accepts and no container uses, then collects their layers.
pub fn prune_images(
    global: &Global,
    all: bool,
    selected: &dyn Fn(&image::ImageRecord) -> bool,
) -> anyhow::Result<PrunedImages> {
    let images = super::images(global)?;
    let store = storage::store::Store::open(&global.root)?;
    let users = ImageUsers::read(global, &store)?;
    let removed = images.prune_matching(&store, all, &|id| users.of(id), selected)?;
    let report = collect(&images, store);
    Ok(PrunedImages {
        removed,
        bytes: report.bytes,
    })
}

fn confirm(all: bool) -> anyhow::Result<bool> {
    crate::exit::confirm(if all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    })
}
