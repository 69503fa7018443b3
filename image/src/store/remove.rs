//! `rmi` and `image prune` over the records, in docker's rules
//! (daemon/images/image_delete.go):
//!
//! - By tag: the tag goes (`Untagged: busybox:latest`); the image goes
//!   too (`Deleted: sha256:...`) only when that was its last tag. While a
//!   container uses the image and this is its only tag, refused unless
//!   forced.
//! - By id (or prefix, or `name@digest`): an image a running container
//!   uses is refused even when forced; an image with several tags, or one
//!   a stopped container uses, is refused unless forced; otherwise its tags
//!   go and then the image.
//!
//! One deliberate difference: a forced removal of an image a container
//! still uses only untags it (docker deletes the record of a stopped
//! container's image but its layer store keeps the layers alive by
//! reference). Here the record is what keeps the layers from the
//! collector, so the image stays, untagged, until `image prune` finds it
//! unused.

use std::collections::BTreeMap;
use std::fmt;

use super::InUse;
use super::resolve::{By, familiar, find};
use crate::{Digest, ImageError, ImageRecord, Result};

/// One line of docker's rmi output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removed {
    /// A tag, in docker's familiar form.
    Untagged(String),
    Deleted(Digest),
}

impl fmt::Display for Removed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Removed::Untagged(t) => write!(f, "Untagged: {t}"),
            Removed::Deleted(d) => write!(f, "Deleted: {d}"),
        }
    }
}

/// Container ids as docker shows them in messages.
fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

pub fn remove(
    all: &mut BTreeMap<String, ImageRecord>,
    text: &str,
    force: bool,
    in_use: InUse<'_>,
) -> Result<Vec<Removed>> {
    let list: Vec<ImageRecord> = all.values().cloned().collect();
    let (image, by) = find(&list, text)?;
    let key = image.id.hex().to_owned();
    let users = in_use(&image.id);
    let mut out = Vec::new();
    match by {
        By::Tag(tag) => {
            if !force
                && image.tags.len() <= 1
                && let Some(user) = users.first()
            {
                return Err(ImageError::ReferenceInUse {
                    reference: text.to_owned(),
                    container: short(&user.container),
                    image: image.id.short().to_owned(),
                });
            }
            if let Some(record) = all.get_mut(&key) {
                record.tags.remove(&tag);
            }
            out.push(Removed::Untagged(familiar(&tag)));
            if image.tags.len() > 1 || !users.is_empty() {
                return Ok(out);
            }
        }
        By::Id | By::Digest => {
            // docker's order of conflicts: running (hard), several
            // repositories, stopped (soft: forcing passes them).
            if let Some(user) = users.iter().find(|u| u.running) {
                return Err(ImageError::ImageRunning {
                    image: image.id.short().to_owned(),
                    container: short(&user.container),
                });
            }
            if !force {
                if image.tags.len() > 1 {
                    return Err(ImageError::MultipleRepositories {
                        image: image.id.short().to_owned(),
                    });
                }
                if let Some(user) = users.first() {
                    return Err(ImageError::ImageInUse {
                        image: image.id.short().to_owned(),
                        container: short(&user.container),
                    });
                }
            }
            if let Some(record) = all.get_mut(&key) {
                out.extend(record.tags.iter().map(|t| Removed::Untagged(familiar(t))));
                record.tags.clear();
            }
            if !users.is_empty() {
                return Ok(out);
            }
        }
    }
    all.remove(&key);
    out.push(Removed::Deleted(image.id));
    Ok(out)
}

pub fn prune(
    all: &mut BTreeMap<String, ImageRecord>,
    every: bool,
    in_use: InUse<'_>,
    selected: &dyn Fn(&ImageRecord) -> bool,
) -> Vec<Removed> {
    let mut out = Vec::new();
    all.retain(|_, record| {
        let keep = (!every && !record.tags.is_empty())
            || !in_use(&record.id).is_empty()
            || !selected(record);
        if !keep {
            out.extend(record.tags.iter().map(|t| Removed::Untagged(familiar(t))));
            out.push(Removed::Deleted(record.id.clone()));
        }
        keep
    });
    out
}
