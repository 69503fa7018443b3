//! The `network-session` helper (session_main.rs) from the bench's side:
//! built with its cargo feature, run once per round (in a network
//! namespace it makes for itself), its JSON line read back.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use crate::bench::exec;

/// The helper's name and the cargo feature that builds it.
const HELPER: &str = "network-session";

/// A helper run longer than this is killed.
const TIMEOUT: Duration = Duration::from_secs(120);

/// After each detach, the helper waits this long (about a short
/// container's run) before it attaches the next container.
pub const PAUSE: Duration = Duration::from_millis(50);

/// How a container is attached, as the helper names it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Way {
    /// A new `Networking` for each container, as each muelle command has.
    Fresh,
    /// One `Networking` for all, its firewall backend known.
    Reused,
    /// A new `Networking`, one port published (`-p 127.0.0.1::80`).
    Published,
}

pub const WAYS: [Way; 3] = [Way::Fresh, Way::Reused, Way::Published];

impl Way {
    fn key(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Reused => "reused",
            Self::Published => "published",
        }
    }

    /// The way as the table says it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Fresh => "new Networking",
            Self::Reused => "firewall known",
            Self::Published => "-p 127.0.0.1::80",
        }
    }
}

/// `cargo build --release -p xtask --features network-session --bin
/// network-session`, returning the executable cargo reports.
pub fn build() -> Result<PathBuf> {
    crate::bench::common::cargo_build(
        &["-p", "xtask", "--features", HELPER, "--bin", HELPER],
        HELPER,
    )
}

/// One helper run's samples, in milliseconds.
pub struct Round {
    /// The firewall backend the network crate picked.
    pub firewall: String,
    /// Per way of [`WAYS`]: attach and detach times.
    pub ways: Vec<(Way, Vec<f64>, Vec<f64>)>,
    /// Published ports whose rules outlived their container's detach.
    pub published_left: Option<u64>,
}

pub struct Helper {
    program: PathBuf,
    log: File,
}

impl Helper {
    pub fn new(program: PathBuf) -> Result<Helper> {
        Ok(Helper {
            program,
            log: tempfile::tempfile()?,
        })
    }

    /// `warmup` untimed and `runs` timed attaches and detaches of each
    /// way, in a store at `root` with namespaces under `run_root`.
    pub fn round(
        &mut self,
        root: &Path,
        run_root: &Path,
        warmup: u32,
        runs: u32,
    ) -> Result<Round, String> {
        let mut cmd = Command::new(&self.program);
        cmd.arg(root)
            .arg(run_root)
            .arg(warmup.to_string())
            .arg(runs.to_string())
            .arg(PAUSE.as_millis().to_string());
        exec::timed_within(&mut cmd, &mut self.log, TIMEOUT)?;
        let text = exec::read(&mut self.log).unwrap_or_default();
        let value: Value = serde_json::from_str(text.trim())
            .map_err(|e| format!("{HELPER} printed {:?}: {e}", text.trim()))?;
        let list = |way: Way, name: &str| -> Result<Vec<f64>, String> {
            value["ways"][way.key()][name]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .ok_or_else(|| format!("{HELPER} printed no {} {name}: {value}", way.key()))
        };
        let mut ways = Vec::with_capacity(WAYS.len());
        for way in WAYS {
            ways.push((way, list(way, "attach_ms")?, list(way, "detach_ms")?));
        }
        Ok(Round {
            firewall: value["firewall"].as_str().unwrap_or("?").to_owned(),
            ways,
            published_left: value["published_left"].as_u64(),
        })
    }
}
