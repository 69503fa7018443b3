//! `scan`: reads a whole archive and refuses it as `unpack` would, writing
//! nothing: for a caller that must not write a byte of a hostile archive
//! (`cp -` from a user). What depends on the target (a symlink already
//! there in an entry's path) can only be found while unpacking; what the
//! archive says by itself is found here: names with `..`, symlinks the
//! archive makes and then writes through, unsupported entry types, bad
//! owners or times, device nodes where `options` refuse them, data that
//! ends early.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::Read;

use tar::EntryType;

use super::meta::Meta;
use super::name::{components, joined, shown};
use super::unpack::{describe, link_target};
use super::whiteout::{self, Role};
use super::{ArchiveError, Failure, Result, Summary, UnpackOptions, Whiteouts};

/// Reads the archive from `input` to its end and returns what `unpack_with`
/// with `options` would create, or the first entry it would refuse.
pub fn scan(input: impl Read, options: &UnpackOptions) -> Result<Summary> {
    let mut scanner = Scanner {
        options: *options,
        symlinks: HashSet::new(),
        summary: Summary::default(),
    };
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().map_err(ArchiveError::Read)? {
        let mut entry = entry.map_err(ArchiveError::Read)?;
        let raw = entry.path_bytes().into_owned();
        scanner
            .entry(&raw, &mut entry)
            .map_err(|f| f.named(&shown(&raw)))?;
    }
    Ok(scanner.summary)
}

struct Scanner {
    options: UnpackOptions,
    /// The symlinks the archive made so far, by path: an entry below one
    /// would be refused by `unpack`.
    symlinks: HashSet<Vec<Vec<u8>>>,
    summary: Summary,
}

fn key(parts: &[&OsStr]) -> Vec<Vec<u8>> {
    parts
        .iter()
        .map(|p| p.as_encoded_bytes().to_vec())
        .collect()
}

impl Scanner {
    fn entry<R: Read>(&mut self, raw: &[u8], entry: &mut tar::Entry<'_, R>) -> Result<(), Failure> {
        let mut kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            return Ok(());
        }
        if kind == EntryType::Regular && raw.ends_with(b"/") {
            kind = EntryType::Directory;
        }
        let parts = components(raw).map_err(Failure::Refused)?;
        if self.options.whiteouts != Whiteouts::Keep {
            let role = whiteout::role(&parts).map_err(Failure::Refused)?;
            if role != Role::Plain {
                self.summary.whiteouts += u64::from(role != Role::Ignored);
                return Ok(());
            }
        }
        Meta::of(entry)?;
        let Some((_, dirs)) = parts.split_last() else {
            if kind != EntryType::Directory {
                return Err(Failure::Refused(
                    "it names the target folder itself but is not a directory".into(),
                ));
            }
            self.summary.dirs += 1;
            return Ok(());
        };
        self.check_parents(dirs)?;
        let this = key(&parts);
        self.symlinks.remove(&this);
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let size = entry.size();
                let read = std::io::copy(entry, &mut std::io::sink())
                    .map_err(|e| Failure::Io("reading its data".into(), e))?;
                if kind != EntryType::GNUSparse && read != size {
                    return Err(Failure::Refused(format!(
                        "the archive ends inside it ({read} of {size} bytes)"
                    )));
                }
                self.summary.files += 1;
                self.summary.bytes += read;
            }
            EntryType::Directory => self.summary.dirs += 1,
            EntryType::Symlink => {
                link_target(entry)?;
                self.symlinks.insert(this);
                self.summary.symlinks += 1;
            }
            EntryType::Link => {
                let target = link_target(entry)?;
                let parts = components(&target)
                    .map_err(|reason| Failure::Refused(format!("hard link target: {reason}")))?;
                let Some((_, target_dirs)) = parts.split_last() else {
                    return Err(Failure::Refused(
                        "a hard link to the target folder itself".into(),
                    ));
                };
                self.check_parents(target_dirs).map_err(|f| match f {
                    Failure::Refused(reason) => {
                        Failure::Refused(format!("hard link target {:?}: {reason}", shown(&target)))
                    }
                    other => other,
                })?;
                self.summary.hardlinks += 1;
            }
            EntryType::Fifo => self.summary.special += 1,
            EntryType::Char | EntryType::Block => {
                let header = entry.header();
                let (Ok(Some(major)), Ok(Some(minor))) =
                    (header.device_major(), header.device_minor())
                else {
                    return Err(Failure::Refused("unreadable device numbers".into()));
                };
                if !self.options.devices {
                    return Err(Failure::Refused(format!(
                        "a device node ({major}:{minor}), and device nodes are not allowed here"
                    )));
                }
                self.summary.special += 1;
            }
            other => return Err(Failure::Unsupported(describe(other))),
        }
        Ok(())
    }

    /// Refuses a path through a symlink the archive made.
    fn check_parents(&self, dirs: &[&OsStr]) -> Result<(), Failure> {
        for end in 1..=dirs.len() {
            if self.symlinks.contains(&key(&dirs[..end])) {
                return Err(Failure::Refused(format!(
                    "its parent {:?} is a symlink, and symlinks are never followed",
                    joined(&dirs[..end])
                )));
            }
        }
        Ok(())
    }
}
