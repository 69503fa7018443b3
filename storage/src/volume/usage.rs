//! How much a volume holds, as docker's `UsageData.Size`: the bytes of its
//! files, each inode counted once (hard links), symlinks not followed.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{Result, VolumeError};

/// The size of the tree at `dir`, staying on its filesystem so a mount
/// inside the volume is not counted as the volume's.
pub fn disk_usage(dir: &Path) -> Result<u64> {
    let root = std::fs::symlink_metadata(dir).map_err(|source| VolumeError::Io {
        context: format!("measuring {}", dir.display()),
        source,
    })?;
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            // Removed meanwhile, or unreadable: docker skips it too.
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.dev() != root.dev() {
                continue;
            }
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() && (meta.nlink() == 1 || seen.insert(meta.ino())) {
                total = total.saturating_add(meta.len());
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_links_count_once_and_symlinks_not_at_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/a"), [0u8; 1000]).expect("write");
        std::fs::hard_link(dir.path().join("sub/a"), dir.path().join("b")).expect("link");
        std::fs::write(dir.path().join("c"), [0u8; 24]).expect("write");
        std::os::unix::fs::symlink("/usr", dir.path().join("usr")).expect("symlink");
        assert_eq!(disk_usage(dir.path()).expect("du"), 1024);
    }
}
