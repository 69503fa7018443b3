//! `muelle images`, `image ...`, `history`, `tag`, `rmi`, `import`, `save`,
//! `load`: docker's verbs over the image crate, with docker's output.
//!
//! A verb holds the metadata store (`ROOT/metadata.db`) only while it
//! reads or writes records: reading configs and layers, writing archives
//! and storing blobs run with it closed, so other commands are not kept
//! waiting behind a long save or load.

mod inspect;
mod io;
mod ls;
mod rm;

pub(crate) use inspect::inspect_value;
pub(crate) use rm::prune_images;

use std::io::Write;

use image::store::{GcReport, ImageUser};
use image::{Digest, Images};
use storage::store::Store;

use crate::args::{Global, ImageCommand};

pub use crate::exit::Reported;

pub fn run(global: &Global, cmd: ImageCommand) -> anyhow::Result<()> {
    let out = std::io::stdout();
    let mut out = out.lock();
    match cmd {
        ImageCommand::Ls(args) => ls::run(global, &args, &mut out)?,
        ImageCommand::Inspect(args) => inspect::inspect(global, &args, &mut out)?,
        ImageCommand::History(args) => inspect::history(global, &args, &mut out)?,
        ImageCommand::Tag(args) => rm::tag(global, &args)?,
        ImageCommand::Rm(args) => rm::rmi(global, &args, &mut out)?,
        ImageCommand::Prune { all, force } => rm::prune(global, all, force, &mut out)?,
        ImageCommand::Import(args) => io::import(global, &args, &mut out)?,
        ImageCommand::Save(args) => io::save(global, &args, &mut out)?,
        ImageCommand::Load(args) => io::load(global, &args, &mut out)?,
    }
    out.flush()?;
    Ok(())
}

/// The image store of this root; opens no metadata store.
fn images(global: &Global) -> anyhow::Result<Images> {
    Ok(Images::open(&global.root)?)
}

/// Opens the metadata store for the moment `f` needs it.
fn with_store<R>(
    global: &Global,
    f: impl FnOnce(&Store) -> anyhow::Result<R>,
) -> anyhow::Result<R> {
    let store = Store::open(&global.root)?;
    f(&store)
}

/// Which containers use which image: read from the engine's records,
/// refreshed, before the store transaction that removes images (the image
/// crate asks inside it, where the store cannot be read again).
pub(crate) struct ImageUsers(Vec<(Digest, ImageUser)>);

impl ImageUsers {
    pub(crate) fn read(global: &Global, store: &Store) -> anyhow::Result<ImageUsers> {
        let engine = crate::container::engine(global)?;
        let users = engine
            .list(store)?
            .into_iter()
            .map(|c| {
                let user = ImageUser {
                    running: c.state.status.is_live(),
                    container: c.id,
                };
                (c.config.image.id, user)
            })
            .collect();
        Ok(ImageUsers(users))
    }

    /// The containers using `image`, running ones first (docker names a
    /// running one when there is one).
    pub(crate) fn of(&self, image: &Digest) -> Vec<ImageUser> {
        let mut users: Vec<ImageUser> = self
            .0
            .iter()
            .filter(|(id, _)| id == image)
            .map(|(_, user)| user.clone())
            .collect();
        users.sort_by_key(|u| !u.running);
        users
    }
}

/// Deletes the blobs and layers no record names any more: found with the
/// store open, deleted after it is closed. Best effort: the records are
/// already right, and the next collection retries what this one missed.
fn collect(images: &Images, store: Store) -> GcReport {
    let garbage = match images.garbage(&store) {
        Ok(garbage) => garbage,
        Err(e) => {
            tracing::warn!("image garbage collection: {e}");
            return GcReport::default();
        }
    };
    drop(store);
    match garbage.sweep() {
        Ok(report) => {
            if report.skipped {
                tracing::warn!(
                    "another command is loading or saving images: unused layers are deleted by the next rmi or prune"
                );
            }
            report
        }
        Err(e) => {
            tracing::warn!("image garbage collection: {e}");
            GcReport::default()
        }
    }
}
