//! Reads an image archive once, front to back, without extracting it: a
//! tar entry is never written to disk by its name. Small metadata files
//! (`manifest.json`, `index.json`, `oci-layout`, `*.json` configs) are kept
//! in memory, size-limited; blobs (`blobs/sha256/<hex>`, `*.tar`,
//! `*/layer.tar`) stream into the blob store, each verified against its
//! name when the name is a digest; links are remembered so that a name in
//! `manifest.json` can lead to the file it points at (podman's
//! docker-archive has `<id>/layer.tar -> ../<hex>.tar`). Everything else is
//! skipped unread.
//!
//! Blobs of an archive are stored before anything says which are wanted
//! (`manifest.json` and `index.json` often come last), so a hostile
//! archive can make us store junk it never references: the caller holds
//! the collector off while loading and collects afterwards.

use std::collections::BTreeMap;
use std::io::Read;

use crate::blobs::MAX_METADATA_BLOB;
use crate::{BlobStore, Digest, ImageError, Result};

/// Far more entries than any image archive has (one per blob, plus a few
/// per image in docker's format).
const MAX_ENTRIES: usize = 100_000;
/// All metadata held in memory together.
const MAX_SMALL_TOTAL: u64 = 64 << 20;
/// Hops through links to reach a file (docker chains at most one).
const MAX_LINK_HOPS: usize = 8;
/// A name longer than this is not one any image tool writes.
const MAX_NAME: usize = 1024;

#[derive(Debug, Default)]
pub struct Staged {
    /// Metadata files by name.
    small: BTreeMap<String, Vec<u8>>,
    /// Files stored as blobs: name → digest and size.
    blobs: BTreeMap<String, (Digest, u64)>,
    /// Symlinks and hard links: name → the archive name they lead to.
    links: BTreeMap<String, String>,
}

fn bad(reason: String) -> ImageError {
    ImageError::InvalidArchive(reason)
}

/// An archive member's name as a relative path of plain components
/// (`./a//b` → `a/b`). Refuses absolute names and `..`: nothing honest
/// has them, and refusing keeps every name inside the archive.
pub fn clean_name(raw: &[u8]) -> Result<String> {
    let shown = String::from_utf8_lossy(raw);
    let text =
        std::str::from_utf8(raw).map_err(|_| bad(format!("entry name {shown:?} is not UTF-8")))?;
    if text.len() > MAX_NAME || text.contains('\0') {
        return Err(bad(format!(
            "entry name {shown:?} is too long or has a NUL"
        )));
    }
    if text.starts_with('/') {
        return Err(bad(format!("entry {text:?} has an absolute name")));
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(bad(format!("entry {text:?} climbs out with '..'"))),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Where a link's target leads, as an archive name; `None` when it leaves
/// the archive (dangling for our purposes).
fn link_target(link: &str, target: &[u8], symbolic: bool) -> Option<String> {
    let target = std::str::from_utf8(target).ok()?;
    if target.starts_with('/') || target.len() > MAX_NAME {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    if symbolic {
        // Relative to the link's folder; a hard link names from the root.
        parts.extend(link.split('/'));
        parts.pop();
    }
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

fn is_metadata(name: &str) -> bool {
    matches!(name, "oci-layout" | "repositories") || name.ends_with(".json")
}

fn is_blob(name: &str) -> bool {
    name.starts_with("blobs/") || name.ends_with(".tar")
}

/// The digest a blob's name promises: `blobs/sha256/<hex>`.
fn named_digest(name: &str) -> Option<Digest> {
    let hex = name.strip_prefix("blobs/sha256/")?;
    format!("sha256:{hex}").parse().ok()
}

pub fn read(blobs: &BlobStore, input: impl Read) -> Result<Staged> {
    let mut archive = tar::Archive::new(input);
    let mut staged = Staged::default();
    let mut small_total = 0u64;
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("not a tar archive: {e}")))?;
    for (count, entry) in entries.enumerate() {
        if count >= MAX_ENTRIES {
            return Err(bad(format!("more than {MAX_ENTRIES} entries")));
        }
        let mut entry = entry.map_err(|e| bad(format!("reading entry {count}: {e}")))?;
        let name = clean_name(&entry.path_bytes())?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry.link_name_bytes().unwrap_or_default().into_owned();
            match link_target(&name, &target, kind.is_symlink()) {
                Some(t) => staged.links.insert(name, t),
                None => staged.links.remove(&name),
            };
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        staged.links.remove(&name);
        if is_blob(&name) {
            let expected = named_digest(&name);
            if name.starts_with("blobs/") && expected.is_none() {
                continue;
            }
            let (digest, size) = blobs
                .put(&mut entry, expected.as_ref())
                .map_err(|e| match e {
                    ImageError::CorruptBlob { .. } => bad(format!("entry {name}: {e}")),
                    other => other,
                })?;
            staged.blobs.insert(name, (digest, size));
        } else if is_metadata(&name) {
            let size = entry.size();
            if size > MAX_METADATA_BLOB {
                return Err(bad(format!(
                    "{name} is larger than {MAX_METADATA_BLOB} bytes"
                )));
            }
            small_total += size;
            if small_total > MAX_SMALL_TOTAL {
                return Err(bad(format!(
                    "more than {MAX_SMALL_TOTAL} bytes of metadata"
                )));
            }
            let mut bytes = Vec::with_capacity(size as usize);
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| bad(format!("reading {name}: {e}")))?;
            staged.small.insert(name, bytes);
        }
    }
    Ok(staged)
}

impl Staged {
    /// The name a link chain ends at.
    fn follow(&self, name: &str) -> Result<String> {
        let mut current = clean_name(name.as_bytes())?;
        for _ in 0..MAX_LINK_HOPS {
            match self.links.get(&current) {
                Some(next) => current = next.clone(),
                None => return Ok(current),
            }
        }
        Err(bad(format!("{name}: too many links")))
    }

    pub fn small(&self, name: &str) -> Result<Option<&[u8]>> {
        Ok(self.small.get(&self.follow(name)?).map(Vec::as_slice))
    }

    pub fn blob(&self, name: &str) -> Result<Option<&(Digest, u64)>> {
        Ok(self.blobs.get(&self.follow(name)?))
    }

    pub fn has(&self, name: &str) -> bool {
        self.small.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_archive() {
        assert_eq!(clean_name(b"./a//b/./c").expect("clean"), "a/b/c");
        for bad in [&b"/etc/passwd"[..], b"a/../../b", b"..", b"a\xff"] {
            assert!(clean_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            link_target("id/layer.tar", b"../abc.tar", true).as_deref(),
            Some("abc.tar")
        );
        assert_eq!(link_target("a", b"../../x", true), None);
        assert_eq!(link_target("a/b", b"c/d", false).as_deref(), Some("c/d"));
        assert_eq!(link_target("a", b"/etc/passwd", true), None);
    }
}
