//! Who uses a mounted `local` volume: one container id a line in
//! `ROOT/volumes/NAME/callers`, read and rewritten under an exclusive lock
//! on that file, because several muelle commands (each its own process)
//! mount and unmount at once. The first caller in mounts; the last one out
//! unmounts.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The callers file, locked until dropped.
pub struct Callers {
    file: File,
    pub ids: BTreeSet<String>,
}

impl Callers {
    pub fn lock(path: &Path) -> std::io::Result<Callers> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        file.lock()?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        let ids = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Callers { file, ids })
    }

    pub fn save(&mut self) -> std::io::Result<()> {
        let mut text = String::new();
        for id in &self.ids {
            text.push_str(id);
            text.push('\n');
        }
        self.file.seek(SeekFrom::Start(0))?;
        self.file.set_len(0)?;
        self.file.write_all(text.as_bytes())
    }
}
