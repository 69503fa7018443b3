//! `cargo xtask bench storage`: whole `volume create|ls|inspect|rm` commands
//! of the `muelle` binary, side by side with `podman volume ...`, `ls` with
//! [`Args::volumes`] volumes present (1000 by default).
//!
//! Each tool gets a private store in a temporary directory (`muelle --root`,
//! `podman --root --runroot --tmpdir`), filled with the volumes for `ls`
//! first; nothing touches `/var/lib/muelle` or podman's own store, and the
//! directories are removed at the end, on success and on error alike
//! (podman's volumes first, which frees their machine-wide locks).
//!
//! The runs go in rounds of [`ROUND_RUNS`], each operation and tool in turn,
//! so that a change of load on the machine weighs on both tools alike. A
//! round leaves each store as it found it: `ls` runs first, then `create`
//! makes the round's volumes, `inspect` reads them and `rm` removes them.
//!
//! A tool that is missing is skipped, one that fails is reported; neither
//! stops the other. The result is a table (or JSON) of median and p90 wall
//! time, the ratio muelle/podman, and the state of the target.
//!
//! Under the table: what one metadata store session costs inside a process
//! (open, get or insert, close), measured in the same rounds on muelle's
//! store by a helper that links the storage crate (session.rs).

mod report;
mod session;

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Result;
use clap::ValueEnum;
use tempfile::TempDir;

use super::exec;
use super::stats::Summary;
use crate::util;

#[derive(clap::Args)]
pub struct Args {
    /// Timed runs per operation and tool
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Untimed warm-up runs before each round of timed runs
    #[arg(long, default_value_t = 1)]
    warmup: u32,
    /// Volumes present in each store while `volume ls` is timed
    #[arg(long, default_value_t = 1000)]
    volumes: u32,
    /// Tools to measure, comma-separated
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "muelle,podman"
    )]
    tools: Vec<Tool>,
    /// Measure this muelle binary instead of building it with `cargo build --release -p cli`
    #[arg(long, value_name = "PATH")]
    muelle: Option<PathBuf>,
    /// Print the results as JSON on stdout instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Tool {
    Muelle,
    Podman,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Self::Muelle => "muelle",
            Self::Podman => "podman",
        }
    }
}

/// The operations, in the order of the table.
const OPS: [Op; 4] = [Op::Create, Op::Ls, Op::Inspect, Op::Rm];

/// The operations in the order of a round: `ls` sees only the volumes made
/// for it, and `rm` removes what `create` made.
const ROUND_ORDER: [Op; 4] = [Op::Ls, Op::Create, Op::Inspect, Op::Rm];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Ls,
    Inspect,
    Rm,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Self::Create => "volume create",
            Self::Ls => "volume ls",
            Self::Inspect => "volume inspect",
            Self::Rm => "volume rm",
        }
    }

    /// Its place in [`OPS`].
    fn slot(self) -> usize {
        match self {
            Self::Create => 0,
            Self::Ls => 1,
            Self::Inspect => 2,
            Self::Rm => 3,
        }
    }

    /// The command's arguments after the tool's global ones; `volume` is
    /// the volume it acts on, if it acts on one.
    fn args(self, volume: &str) -> Vec<&str> {
        match self {
            Self::Create => vec!["volume", "create", volume],
            Self::Ls => vec!["volume", "ls"],
            Self::Inspect => vec!["volume", "inspect", volume],
            Self::Rm => vec!["volume", "rm", volume],
        }
    }
}

/// Timed runs per operation and tool in one round.
const ROUND_RUNS: u32 = 5;

/// The prefix of the volumes that are there for `ls`.
const FILL_PREFIX: &str = "bench-fill-";

/// One line of the result.
struct Row {
    op: Op,
    tool: Tool,
    result: RowResult,
}

type RowResult = super::common::RowResult<Measured>;

struct Measured {
    summary: Summary,
    runs: usize,
    failures: Vec<String>,
}

use super::common::Unavailable;

pub fn run(args: &Args) -> Result<()> {
    let mut rows = Vec::new();
    let mut benches = Vec::new();
    for tool in [Tool::Muelle, Tool::Podman]
        .into_iter()
        .filter(|t| args.tools.contains(t))
    {
        let prepared =
            locate(tool, args).and_then(|program| ToolBench::prepare(tool, &program, args.volumes));
        match prepared {
            Ok(bench) => benches.push(bench),
            Err(unavailable) => {
                eprintln!("{}: {unavailable}", tool.name());
                rows.extend(OPS.map(|op| Row {
                    op,
                    tool,
                    result: unavailable.to_result(),
                }));
            }
        }
    }

    let mut sessions = store_sessions(&benches, args);

    let rounds = args.runs.div_ceil(ROUND_RUNS);
    for round in 0..rounds {
        let runs = ROUND_RUNS.min(args.runs - round * ROUND_RUNS);
        eprintln!(
            "round {}/{rounds}: {} warm-up + {runs} timed runs of each",
            round + 1,
            args.warmup
        );
        for op in ROUND_ORDER {
            for bench in &mut benches {
                bench.run_round(op, round, args.warmup, runs);
            }
        }
        if let Some(Ok(sessions)) = &mut sessions {
            sessions.run_round(args.warmup, runs);
        }
    }
    rows.extend(benches.into_iter().flat_map(ToolBench::into_rows));
    rows.sort_by_key(|r| (r.op.slot(), r.tool != Tool::Muelle));

    if args.json {
        let session = sessions.map(|s| match s {
            Ok(s) => s.json(),
            Err(reason) => serde_json::json!({ "status": "failed", "reason": reason }),
        });
        println!("{:#}", report::json(args, &rows, session));
    } else {
        print!("{}", report::table(&rows));
        print!("{}", report::target(&rows));
        match sessions {
            Some(Ok(s)) => print!("{}", s.report()),
            Some(Err(reason)) => println!("one metadata store session: failed: {reason}"),
            None => {}
        }
    }
    Ok(())
}

/// The store session helper on muelle's store, once muelle's store is
/// ready; `None` when muelle is not measured.
fn store_sessions(benches: &[ToolBench], args: &Args) -> Option<Result<session::Sessions, String>> {
    let muelle = benches.iter().find(|b| b.tool == Tool::Muelle)?;
    if args.volumes == 0 {
        return Some(Err("no volume to read (--volumes 0)".to_owned()));
    }
    let volume = format!("{FILL_PREFIX}{:04}", args.volumes / 2);
    let made = session::build()
        .and_then(|helper| session::Sessions::new(helper, &muelle.root, volume, args.volumes));
    Some(made.map_err(|e| {
        eprintln!("store session: {e:#}");
        format!("{e:#}")
    }))
}

/// The tool's executable, or why there is none (skipped or failed).
fn locate(tool: Tool, args: &Args) -> Result<PathBuf, Unavailable> {
    match tool {
        Tool::Muelle => match &args.muelle {
            Some(path) if path.is_file() => Ok(path.clone()),
            Some(path) => Err(Unavailable::Failed(format!(
                "{} is not a file",
                path.display()
            ))),
            None => build_muelle().map_err(|e| Unavailable::Failed(format!("{e:#}"))),
        },
        Tool::Podman => util::find_program("podman").ok_or_else(|| {
            Unavailable::Skipped("not installed (apt-get install podman)".to_owned())
        }),
    }
}

/// `cargo build --release -p cli`, returning the muelle path cargo reports.
pub(super) fn build_muelle() -> Result<PathBuf> {
    super::common::cargo_build(&["-p", "cli"], "muelle")
}

/// One tool with its private store, measured round after round.
struct ToolBench {
    tool: Tool,
    program: PathBuf,
    /// The global options that point the tool at its private store.
    store_args: Vec<OsString>,
    /// The tool's data root in that store (`--root`).
    root: PathBuf,
    /// The commands' output goes here rather than to pipes, which would
    /// need draining.
    log: File,
    /// One per operation, in the order of [`OPS`].
    series: [Series; 4],
    /// The store, removed on drop; declared last so that it goes last.
    _dir: StoreDir,
}

/// A tool's private store. podman gives each volume a lock in shared
/// memory (`/dev/shm/libpod_lock`, 2048 for all the stores of the machine)
/// that only removing the volume frees: deleting the store alone would leak
/// them, and after two runs `volume create` fails with "exceeded
/// num_locks". So the volumes go first, then the directory.
struct StoreDir {
    cleanup: Option<Command>,
    dir: TempDir,
}

impl Drop for StoreDir {
    fn drop(&mut self) {
        if let Some(cmd) = &mut self.cleanup {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            match cmd.status() {
                Ok(status) if status.success() => {}
                outcome => eprintln!(
                    "cannot remove the volumes of {} ({outcome:?}): their podman locks stay taken",
                    self.dir.path().display()
                ),
            }
        }
    }
}

#[derive(Default)]
struct Series {
    samples: Vec<f64>,
    failures: Vec<String>,
}

impl ToolBench {
    /// Makes the private store and fills it with `volumes` volumes, then
    /// checks that `volume ls` lists them all.
    fn prepare(tool: Tool, program: &Path, volumes: u32) -> Result<Self, Unavailable> {
        let failed =
            |what: &str, e: &dyn std::fmt::Display| Unavailable::Failed(format!("{what}: {e}"));
        let dir = tempfile::Builder::new()
            .prefix(&format!("muelle-bench-storage-{}-", tool.name()))
            .tempdir()
            .map_err(|e| failed("cannot create a store dir", &e))?;
        let log = tempfile::tempfile().map_err(|e| failed("cannot create a log file", &e))?;
        let at = |sub: &str| dir.path().join(sub).into_os_string();
        let store_args = match tool {
            Tool::Muelle => vec!["--root".into(), at("root"), "--runroot".into(), at("run")],
            Tool::Podman => vec![
                "--root".into(),
                at("storage"),
                "--runroot".into(),
                at("run"),
                "--tmpdir".into(),
                at("tmp"),
                "--events-backend".into(),
                "none".into(),
            ],
        };
        let root = dir.path().join(match tool {
            Tool::Muelle => "root",
            Tool::Podman => "storage",
        });
        let cleanup = (tool == Tool::Podman).then(|| {
            let mut cmd = Command::new(program);
            cmd.args(&store_args)
                .args(["volume", "rm", "--all", "--force"]);
            cmd
        });
        let mut bench = Self {
            tool,
            program: program.to_owned(),
            store_args,
            root,
            log,
            series: Default::default(),
            _dir: StoreDir { cleanup, dir },
        };
        bench.fill(volumes).map_err(Unavailable::Failed)?;
        Ok(bench)
    }

    fn command(&self, op: Op, volume: &str) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.store_args).args(op.args(volume));
        cmd
    }

    /// Creates the volumes for `ls`, one command each, and checks that
    /// `volume ls` lists them, so that a tool that exits 0 without doing
    /// the work is not timed as a fast one.
    fn fill(&mut self, volumes: u32) -> Result<(), String> {
        let name = self.tool.name();
        let started = Instant::now();
        for n in 0..volumes {
            let mut cmd = self.command(Op::Create, &format!("{FILL_PREFIX}{n:04}"));
            exec::timed(&mut cmd, &mut self.log)?;
        }
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "{name}: created {volumes} volumes for `volume ls` in {secs:.1} s ({:.1} ms each)",
            secs * 1000.0 / f64::from(volumes.max(1))
        );
        exec::timed(&mut self.command(Op::Ls, ""), &mut self.log)?;
        let listed = exec::read(&mut self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(FILL_PREFIX))
            .count();
        if listed != volumes as usize {
            return Err(format!(
                "`volume ls` listed {listed} of the {volumes} volumes created"
            ));
        }
        Ok(())
    }

    /// Runs `op` `warmup + runs` times, timing the last `runs`; failed runs
    /// are recorded, with their reason.
    fn run_round(&mut self, op: Op, round: u32, warmup: u32, runs: u32) {
        for n in 0..warmup + runs {
            let volume = format!("bench-r{round}-{n}");
            let mut cmd = self.command(op, &volume);
            let outcome = exec::timed(&mut cmd, &mut self.log);
            let series = &mut self.series[op.slot()];
            match outcome {
                Ok(ms) if n >= warmup => series.samples.push(ms),
                Ok(_) => {}
                Err(reason) => {
                    eprintln!(
                        "{}, {}: a run failed: {reason}",
                        self.tool.name(),
                        op.name()
                    );
                    if n >= warmup {
                        series.failures.push(reason);
                    }
                }
            }
        }
    }

    fn into_rows(self) -> Vec<Row> {
        let tool = self.tool;
        OPS.into_iter()
            .zip(self.series)
            .map(|(op, series)| {
                let result = match Summary::of(&series.samples) {
                    Some(summary) => RowResult::Measured(Measured {
                        summary,
                        runs: series.samples.len(),
                        failures: series.failures,
                    }),
                    None => RowResult::Failed(format!(
                        "every timed run failed: {}",
                        series.failures.first().map_or("", String::as_str)
                    )),
                };
                Row { op, tool, result }
            })
            .collect()
    }
}
