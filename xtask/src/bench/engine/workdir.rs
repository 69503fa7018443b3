//! A bench's folders (`bench engine`'s, `bench network`'s: the bench's
//! *kind*): `<target>/bench-KIND/run-<pid>/` for the instances' data
//! (muelle's and podman's roots) and a short `/run/muelle-bench-KIND-<pid>/`
//! for their runtime state (podman wants its runroot under 50 characters,
//! and sockets live there). Both go on drop, on success and on error alike,
//! after whatever is mounted below them is unmounted ([`scratch::clear`]).
//!
//! A bench killed outright (SIGKILL) leaves its folders, and maybe
//! containers: [`stale`] finds the folders of benches whose process is
//! gone, so the next run can take their containers down and remove them.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::bench::image::scratch;

const PREFIX: &str = "run-";
const RUN_DIR: &str = "/run";

/// The start of the runtime folders' names of a kind of bench.
fn run_prefix(kind: &str) -> String {
    format!("muelle-bench-{kind}-")
}

/// A bench's pair of folders.
pub struct Dirs {
    /// Data: `<target>/bench-engine/run-<pid>`.
    pub data: PathBuf,
    /// Runtime state: `/run/muelle-bench-engine-<pid>`.
    pub run: PathBuf,
}

impl Dirs {
    fn of(bench_dir: &Path, kind: &str, pid: &str) -> Dirs {
        Dirs {
            data: bench_dir.join(format!("{PREFIX}{pid}")),
            run: Path::new(RUN_DIR).join(format!("{}{pid}", run_prefix(kind))),
        }
    }

    /// Unmounts what is left below both and removes them; the reasons of
    /// the ones kept.
    pub fn clear(&self) -> Vec<String> {
        [&self.data, &self.run]
            .into_iter()
            .filter_map(|dir| scratch::clear(dir).err())
            .collect()
    }
}

/// This bench's folders, made empty; removed on drop.
pub struct Workdir {
    pub dirs: Dirs,
}

impl Workdir {
    pub fn new(bench_dir: &Path, kind: &str) -> Result<Workdir> {
        let dirs = Dirs::of(bench_dir, kind, &std::process::id().to_string());
        // Owned from here on, so that a failure below still removes them.
        let workdir = Workdir { dirs };
        for dir in [&workdir.dirs.data, &workdir.dirs.run] {
            if let Err(e) = scratch::clear(dir) {
                anyhow::bail!("{e}");
            }
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Ok(workdir)
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        for problem in self.dirs.clear() {
            eprintln!("bench: {problem}");
        }
    }
}

/// The folders of earlier benches of the same kind whose process is gone.
pub fn stale(bench_dir: &Path, kind: &str) -> Vec<Dirs> {
    let run_prefix = run_prefix(kind);
    let mut pids: Vec<String> = Vec::new();
    for (dir, prefix) in [
        (bench_dir, PREFIX),
        (Path::new(RUN_DIR), run_prefix.as_str()),
    ] {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix(prefix) else {
                continue;
            };
            let dead = pid.parse::<u32>().is_ok_and(|pid| {
                pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
            });
            if dead && !pids.iter().any(|p| p == pid) {
                pids.push(pid.to_owned());
            }
        }
    }
    pids.iter()
        .map(|pid| Dirs::of(bench_dir, kind, pid))
        .collect()
}
