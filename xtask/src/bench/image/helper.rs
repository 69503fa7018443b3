//! The `image-session` helper (session_main.rs) from the bench's side:
//! built with its cargo feature, run once per sample or round, its JSON
//! line read back.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use crate::bench::exec;

/// The helper's name and the cargo feature that builds it.
const HELPER: &str = "image-session";

/// A helper run longer than this is killed (an unpack takes a second or so).
const TIMEOUT: Duration = Duration::from_secs(600);

/// `cargo build --release -p xtask --features image-session --bin
/// image-session`, returning the executable cargo reports.
pub fn build() -> Result<PathBuf> {
    crate::bench::common::cargo_build(
        &["-p", "xtask", "--features", HELPER, "--bin", HELPER],
        HELPER,
    )
}

pub struct Helper {
    program: PathBuf,
}

/// What `unpack` reports.
pub struct Unpacked {
    pub total_ms: f64,
    pub layers: Vec<PathBuf>,
    pub driver: String,
}

/// What `rootfs` reports.
pub struct Rootfs {
    pub setup_ms: Vec<f64>,
    pub teardown_ms: Vec<f64>,
}

impl Helper {
    pub fn new(program: PathBuf) -> Helper {
        Helper { program }
    }

    /// One helper run: its JSON line.
    fn run(&self, args: &[&Path], log: &mut File) -> Result<Value, String> {
        let mut cmd = Command::new(&self.program);
        cmd.args(args);
        exec::timed_within(&mut cmd, log, TIMEOUT)?;
        let text = exec::read(log).unwrap_or_default();
        serde_json::from_str(text.trim())
            .map_err(|e| format!("{HELPER} printed {:?}: {e}", text.trim()))
    }

    /// The fixture's layers unpacked into the fresh `root`.
    pub fn unpack(&self, root: &Path, fixture: &Path, log: &mut File) -> Result<Unpacked, String> {
        let value = self.run(&[Path::new("unpack"), root, fixture], log)?;
        let layers = value["layers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Unpacked {
            total_ms: number(&value, "total_ms")?,
            layers,
            driver: value["driver"].as_str().unwrap_or("?").to_owned(),
        })
    }

    /// `warmup + runs` setups and teardowns on `root` (unpacked before).
    pub fn rootfs(
        &self,
        root: &Path,
        fixture: &Path,
        warmup: u32,
        runs: u32,
        log: &mut File,
    ) -> Result<Rootfs, String> {
        let (warmup, runs) = (warmup.to_string(), runs.to_string());
        let args = [
            Path::new("rootfs"),
            root,
            fixture,
            Path::new(&warmup),
            Path::new(&runs),
        ];
        let value = self.run(&args, log)?;
        let list = |name: &str| -> Result<Vec<f64>, String> {
            value[name]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .ok_or_else(|| format!("{HELPER} printed no {name}: {value}"))
        };
        Ok(Rootfs {
            setup_ms: list("setup_ms")?,
            teardown_ms: list("teardown_ms")?,
        })
    }

    /// The command that loads `archive` into `root` through the image
    /// crate, for a muelle CLI without `load`.
    pub fn load_command(&self, root: &Path, archive: &Path) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg("load").arg(root).arg(archive);
        cmd
    }
}

fn number(value: &Value, name: &str) -> Result<f64, String> {
    value[name]
        .as_f64()
        .ok_or_else(|| format!("{HELPER} printed no {name}: {value}"))
}
