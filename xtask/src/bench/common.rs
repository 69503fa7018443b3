//! What every bench shares: the outcome of a row, the table layout, a
//! bounded wait on a child process, and building what is measured.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::util;

/// `cargo build --release ARGS`, returning the executable of the target
/// `name` as cargo reports it (so the target folder is whatever cargo uses).
pub fn cargo_build(args: &[&str], name: &str) -> Result<PathBuf> {
    let line = format!("cargo build --release {}", args.join(" "));
    let mut cmd = util::cargo();
    cmd.args(["build", "--release"])
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    eprintln!("building {name}: {line}");
    let output = cmd.output().context("cannot run cargo build")?;
    if !output.status.success() {
        bail!("{line} failed ({})", output.status);
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == name)
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("cargo build reported no {name} executable"))
}

/// One row of a bench table: measured, failed or skipped.
pub enum RowResult<M> {
    Measured(M),
    Failed(String),
    Skipped(String),
}

impl<M> RowResult<M> {
    /// The row as `--json` prints it: `head` (what the row is), its status,
    /// and for a measured row the fields `measured` gives.
    pub fn to_json(&self, mut head: Value, measured: impl FnOnce(&M) -> Value) -> Value {
        let fields = match self {
            RowResult::Measured(m) => {
                let mut fields = serde_json::json!({ "status": "ok" });
                if let (Some(f), Value::Object(more)) = (fields.as_object_mut(), measured(m)) {
                    f.extend(more);
                }
                fields
            }
            RowResult::Failed(reason) => {
                serde_json::json!({ "status": "failed", "reason": reason })
            }
            RowResult::Skipped(reason) => {
                serde_json::json!({ "status": "skipped", "reason": reason })
            }
        };
        if let (Some(head), Value::Object(fields)) = (head.as_object_mut(), fields) {
            head.extend(fields);
        }
        head
    }
}

/// The cells every bench table shows for a measured row: runs (`ok/total`
/// when some failed), median, p90, and the ratio to the row's peer.
pub fn timing_cells(
    runs: usize,
    failures: usize,
    summary: &crate::bench::stats::Summary,
    ratio: Option<f64>,
) -> [String; 4] {
    [
        if failures == 0 {
            runs.to_string()
        } else {
            format!("{runs}/{}", runs + failures)
        },
        format!("{:.2}", summary.median),
        format!("{:.2}", summary.p90),
        ratio.map_or("-".to_owned(), |r| format!("{r:.2}x")),
    ]
}

/// Why a tool was not measured at all.
#[derive(Clone)]
pub enum Unavailable {
    Skipped(String),
    Failed(String),
}

impl Unavailable {
    pub fn to_result<M>(&self) -> RowResult<M> {
        match self {
            Self::Skipped(reason) => RowResult::Skipped(reason.clone()),
            Self::Failed(reason) => RowResult::Failed(reason.clone()),
        }
    }
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Skipped(reason) => write!(f, "skipped: {reason}"),
            Self::Failed(reason) => write!(f, "failed: {reason}"),
        }
    }
}

/// Lays out a table: the first two columns (names) left-aligned, numbers
/// right-aligned; a row shorter than the header (a failure's reason after
/// the two names) lets its last cell span the rest.
pub fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        let columns = if row.len() == header.len() {
            row.len()
        } else {
            2
        };
        for (width, cell) in widths.iter_mut().zip(row).take(columns) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .enumerate()
            .map(|(i, cell)| match widths.get(i) {
                Some(w) if i < 2 => format!("{cell:<w$}"),
                Some(w) if cells.len() == header.len() => format!("{cell:>w$}"),
                _ => cell.clone(),
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let mut out = line(&header) + "\n";
    for row in rows {
        out += &line(row);
        out.push('\n');
    }
    out
}

/// Polls `fd` (a pidfd) for reading: `false` when `timeout` passes first.
pub fn readable_within(fd: &OwnedFd, timeout: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let left_ms = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
        let mut pollfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the whole call.
        match unsafe { libc::poll(&mut pollfd, 1, left_ms) } {
            0 => return Ok(false),
            n if n > 0 => return Ok(true),
            _ => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
        }
    }
}
