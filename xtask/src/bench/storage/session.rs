//! What one metadata store session costs inside a process: open, get one
//! volume (or insert one, flushed), close, on muelle's bench store with its
//! `ls` volumes. The `store-session` helper (session_main.rs) does one
//! session per process and times its parts; the rest of a command's time is
//! the process itself (exec, dynamic linking, argument parsing, output).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::bench::exec;
use crate::bench::stats::Summary;

/// The helper's name and the cargo feature that builds it.
const HELPER: &str = "store-session";

/// `cargo build --release -p xtask --features store-session --bin
/// store-session`, returning the executable cargo reports.
pub fn build() -> Result<PathBuf> {
    crate::bench::common::cargo_build(
        &["-p", "xtask", "--features", HELPER, "--bin", HELPER],
        HELPER,
    )
}

#[derive(Clone, Copy)]
enum Kind {
    Read,
    Write,
}

impl Kind {
    fn mode(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Read => "read  (open + get + close)",
            Self::Write => "write (open + insert + flush + close)",
        }
    }
}

/// The parts of a session, in the helper's JSON.
const PARTS: [&str; 4] = ["total_ms", "open_ms", "work_ms", "close_ms"];

#[derive(Default)]
struct Series {
    /// One vector per entry of [`PARTS`].
    parts: [Vec<f64>; 4],
    failures: Vec<String>,
}

/// The sessions measured so far on one store.
pub struct Sessions {
    helper: PathBuf,
    root: PathBuf,
    /// The volume read, and copied by writes.
    volume: String,
    volumes: u32,
    log: File,
    read: Series,
    write: Series,
    /// Writes alternate insert and remove; an odd count left the copy.
    copy_present: bool,
}

impl Sessions {
    /// Sessions on the store at `root`, which holds `volumes` volumes, one
    /// of them `volume`.
    pub fn new(helper: PathBuf, root: &Path, volume: String, volumes: u32) -> Result<Self> {
        Ok(Self {
            helper,
            root: root.to_owned(),
            volume,
            volumes,
            log: tempfile::tempfile().context("cannot create a log file")?,
            read: Series::default(),
            write: Series::default(),
            copy_present: false,
        })
    }

    /// `warmup + runs` read sessions, then as many write sessions, the last
    /// `runs` of each timed; then the store is as it was.
    pub fn run_round(&mut self, warmup: u32, runs: u32) {
        for kind in [Kind::Read, Kind::Write] {
            for n in 0..warmup + runs {
                let outcome = self.once(kind);
                let series = match kind {
                    Kind::Read => &mut self.read,
                    Kind::Write => &mut self.write,
                };
                match outcome {
                    Ok(parts) if n >= warmup => {
                        for (samples, value) in series.parts.iter_mut().zip(parts) {
                            samples.push(value);
                        }
                    }
                    Ok(_) => {}
                    Err(reason) => {
                        eprintln!("store session, {}: a run failed: {reason}", kind.mode());
                        if n >= warmup {
                            series.failures.push(reason);
                        }
                    }
                }
            }
        }
        if self.copy_present && self.once(Kind::Write).is_err() {
            eprintln!("store session: could not remove the written copy");
        }
    }

    /// One helper run: the times of [`PARTS`], in milliseconds.
    fn once(&mut self, kind: Kind) -> Result<[f64; 4], String> {
        let mut cmd = Command::new(&self.helper);
        cmd.arg(&self.root).args([kind.mode(), &self.volume]);
        exec::timed(&mut cmd, &mut self.log)?;
        if let Kind::Write = kind {
            self.copy_present = !self.copy_present;
        }
        let text = exec::read(&mut self.log).unwrap_or_default();
        let value: Value = serde_json::from_str(text.trim())
            .map_err(|e| format!("{HELPER} printed {:?}: {e}", text.trim()))?;
        let mut parts = [0.0; 4];
        for (slot, name) in parts.iter_mut().zip(PARTS) {
            *slot = value[name]
                .as_f64()
                .ok_or_else(|| format!("{HELPER} printed no {name}: {value}"))?;
        }
        Ok(parts)
    }

    /// The lines printed under the table.
    pub fn report(&self) -> String {
        let mut out = format!(
            "one metadata store session inside a process ({} volumes; excludes process start):\n",
            self.volumes
        );
        for (kind, series) in [(Kind::Read, &self.read), (Kind::Write, &self.write)] {
            let line = match summaries(series) {
                Some([total, open, work, close]) => format!(
                    "median {:.2} ms, p90 {:.2} ms (open {:.2}, work {:.2}, close {:.2}){}",
                    total.median,
                    total.p90,
                    open.median,
                    work.median,
                    close.median,
                    failed(series)
                ),
                None => format!("failed: {}", first_failure(series)),
            };
            out += &format!("  {:<38} {line}\n", kind.label());
        }
        out
    }

    /// The same, for `--json`.
    pub fn json(&self) -> Value {
        let one = |series: &Series| match summaries(series) {
            Some(parts) => {
                let mut fields = serde_json::Map::new();
                fields.insert("status".into(), json!("ok"));
                fields.insert("runs".into(), json!(series.parts[0].len()));
                fields.insert("failures".into(), json!(series.failures));
                for (name, s) in PARTS.iter().zip(parts) {
                    let stem = name.trim_end_matches("_ms");
                    fields.insert(format!("{stem}_median_ms"), json!(s.median));
                    fields.insert(format!("{stem}_p90_ms"), json!(s.p90));
                }
                Value::Object(fields)
            }
            None => json!({ "status": "failed", "reason": first_failure(series) }),
        };
        json!({
            "volumes": self.volumes,
            "read": one(&self.read),
            "write": one(&self.write),
        })
    }
}

fn summaries(series: &Series) -> Option<[Summary; 4]> {
    let [a, b, c, d] = &series.parts;
    Some([
        Summary::of(a)?,
        Summary::of(b)?,
        Summary::of(c)?,
        Summary::of(d)?,
    ])
}

fn failed(series: &Series) -> String {
    match series.failures.len() {
        0 => String::new(),
        n => format!(", {n} failed: {}", first_failure(series)),
    }
}

fn first_failure(series: &Series) -> &str {
    series.failures.first().map_or("no runs", String::as_str)
}
