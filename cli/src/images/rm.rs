//! `tag`, `rmi` / `image rm`, `image prune`.

use std::io::Write;

use image::ImageError;
use image::store::Removed;

use super::{Reported, collect, no_containers};
use crate::args::{Global, RmiArgs, TagArgs};
use crate::human;

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
    let mut failed = false;
    for name in &args.images {
        match images.remove(&store, name, args.force, &no_containers) {
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
    let images = super::images(global)?;
    let store = storage::store::Store::open(&global.root)?;
    let removed = images.prune(&store, all, &no_containers)?;
    let report = collect(&images, store);
    // docker's prune report: lowercase lines, a blank line, the total.
    if !removed.is_empty() {
        writeln!(out, "Deleted Images:")?;
        for r in &removed {
            match r {
                Removed::Untagged(tag) => writeln!(out, "untagged: {tag}")?,
                Removed::Deleted(id) => writeln!(out, "deleted: {id}")?,
            }
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "Total reclaimed space: {}",
        human::size(report.bytes, 4)
    )?;
    Ok(())
}

fn confirm(all: bool) -> anyhow::Result<bool> {
    crate::exit::confirm(if all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    })
}
