//! Which image a user's words name, as docker reads them: a full image id
//! (`sha256:<hex>` or 64 hex), a reference (`busybox`, `busybox:1.36`,
//! `localhost/app`, looked up as docker's then as podman's local name), a
//! pinned manifest (`busybox@sha256:...`), or a unique id prefix of at
//! least three hex characters. A reference wins over a prefix (`abc` is
//! the tag `abc:latest` if there is one), as in docker.

use crate::{Digest, ImageError, ImageRecord, ImageRef, Result};

/// Shorter prefixes match too much to be meant: docker's CLI shows 12.
pub const MIN_PREFIX: usize = 3;

/// How the text named the image: removal treats a tag and an id
/// differently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum By {
    /// A tag, fully qualified (`docker.io/library/busybox:latest`).
    Tag(String),
    /// `name@sha256:...`: the manifest it was stored from.
    Digest,
    /// The image id or a prefix of it.
    Id,
}

fn lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub fn find(records: &[ImageRecord], text: &str) -> Result<(ImageRecord, By)> {
    let not_found = || ImageError::NotFound(text.to_owned());
    let prefixed = text.strip_prefix("sha256:");
    let hex = prefixed.unwrap_or(text);
    let is_hex = !hex.is_empty() && hex.len() <= 64 && lower_hex(hex);
    if is_hex && hex.len() == 64 {
        return records
            .iter()
            .find(|r| r.id.hex() == hex)
            .map(|r| (r.clone(), By::Id))
            .ok_or_else(not_found);
    }
    if prefixed.is_none() {
        match ImageRef::candidates(text) {
            Ok(candidates) => {
                for candidate in &candidates {
                    let hit = match candidate.digest() {
                        Some(d) => records
                            .iter()
                            .find(|r| &r.manifest == d)
                            .map(|r| (r.clone(), By::Digest)),
                        None => {
                            let full = candidate.full();
                            records
                                .iter()
                                .find(|r| r.tags.contains(&full))
                                .map(|r| (r.clone(), By::Tag(full)))
                        }
                    };
                    if let Some(hit) = hit {
                        return Ok(hit);
                    }
                }
            }
            // Not a reference and not an id: say what is wrong with it.
            Err(e) if !is_hex => return Err(e),
            Err(_) => {}
        }
    }
    if is_hex && hex.len() >= MIN_PREFIX {
        let matches: Vec<&ImageRecord> = records
            .iter()
            .filter(|r| r.id.hex().starts_with(hex))
            .collect();
        return match matches.as_slice() {
            [one] => Ok(((*one).clone(), By::Id)),
            [] => Err(not_found()),
            many => Err(ImageError::AmbiguousId {
                prefix: text.to_owned(),
                count: many.len(),
            }),
        };
    }
    Err(not_found())
}

/// A stored tag as docker shows it (`busybox:latest`,
/// `localhost/app:v1`); the text itself if it does not parse.
pub fn familiar(full: &str) -> String {
    match full.parse::<ImageRef>() {
        Ok(r) => {
            let mut out = r.familiar_repository();
            if let Some(tag) = r.tag() {
                out.push(':');
                out.push_str(tag);
            }
            if let Some(d) = r.digest() {
                out.push('@');
                out.push_str(&d.to_string());
            }
            out
        }
        Err(_) => full.to_owned(),
    }
}

/// `(familiar repository, tag)` of a stored tag.
pub fn split_tag(full: &str) -> Option<(String, String)> {
    let r: ImageRef = full.parse().ok()?;
    Some((r.familiar_repository(), r.tag()?.to_owned()))
}

/// docker's RepoDigests entry: `repository@manifest digest`.
pub fn repo_digest(full: &str, manifest: &Digest) -> Option<String> {
    let r: ImageRef = full.parse().ok()?;
    Some(format!("{}@{manifest}", r.familiar_repository()))
}
