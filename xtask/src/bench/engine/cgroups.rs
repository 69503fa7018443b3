//! The cgroups the bench's containers leave: none, when each engine removes
//! its own. muelle puts containers under a `muelle` parent in every
//! hierarchy, which stays when its last container goes (as docker's does);
//! the bench removes that parent at the end when it made it and it is
//! empty. Leaves named after a container of the bench (podman's are
//! `libpod-<id>`) are removed and reported: an engine that leaks them has a
//! bug the bench should show.

use std::fs;
use std::path::{Path, PathBuf};

/// muelle's parent cgroup, and podman's with the cgroupfs manager.
const PARENTS: [&str; 2] = ["muelle", "libpod_parent"];
const MUELLE_PARENT: &str = "muelle";

/// The state of the cgroup hierarchies when the bench started.
pub struct Watch {
    /// The `muelle` parents that did not exist then.
    absent: Vec<PathBuf>,
}

impl Watch {
    pub fn start() -> Watch {
        let absent = hierarchies()
            .into_iter()
            .map(|h| h.join(MUELLE_PARENT))
            .filter(|p| !p.exists())
            .collect();
        Watch { absent }
    }

    /// Removes the leaves named after one of `ids` (leaked by an engine)
    /// and the `muelle` parents the bench made, when empty; returns what
    /// was leaked, for a warning.
    pub fn finish(&self, ids: &[String]) -> Vec<String> {
        // A short "id" would match leaves that are not the bench's.
        let ids: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| id.len() >= 12)
            .collect();
        let mut leaked = Vec::new();
        for hierarchy in hierarchies() {
            for parent in PARENTS {
                for leaf in leaves(&hierarchy.join(parent)) {
                    let name = leaf.file_name().map(|n| n.to_string_lossy().into_owned());
                    if name.is_some_and(|n| ids.iter().any(|id| n.contains(id))) {
                        let outcome = match fs::remove_dir(&leaf) {
                            Ok(()) => "removed".to_owned(),
                            Err(e) => format!("kept: {e}"),
                        };
                        leaked.push(format!("{} ({outcome})", leaf.display()));
                    }
                }
            }
        }
        for parent in &self.absent {
            // Busy or not empty: another instance's container is in it.
            let _ = fs::remove_dir(parent);
        }
        leaked
    }
}

/// The mount points of the cgroup hierarchies (v1 and v2).
fn hierarchies() -> Vec<PathBuf> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fstype = after.split(' ').next()?;
            (fstype == "cgroup" || fstype == "cgroup2")
                .then(|| before.split(' ').nth(4).map(PathBuf::from))
                .flatten()
        })
        .collect()
}

fn leaves(parent: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}
