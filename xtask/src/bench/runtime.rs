//! `cargo xtask bench runtime`: the full container lifecycle of `/bin/true`
//! in a busybox bundle (`RUNTIME --root DIR run --bundle BUNDLE ID`, which is
//! create+start+wait+delete) for muelle-runtime, runc and crun, with and
//! without a new network namespace.
//!
//! The runs go in rounds of [`ROUND_RUNS`], each runtime and variant in turn,
//! so that a change of load on the machine during the bench weighs on every
//! runtime alike rather than on whichever ran at that moment.
//!
//! A runtime that is missing is skipped, one that fails is reported; neither
//! stops the others. The result is a table (or JSON) of median and p90 wall
//! time, the ratio to crun and the peak RSS, and the state of the target
//! "muelle faster than crun".

pub mod job;
mod report;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use serde_json::Value;
use tempfile::TempDir;

use self::job::{Job, Outcome, Sample};
use super::stats::Summary;
use crate::bundle::{Bundle, BundleBuilder};
use crate::util;

#[derive(clap::Args)]
pub struct Args {
    /// Timed runs per runtime and variant
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Untimed warm-up runs before each round of timed runs
    #[arg(long, default_value_t = 2)]
    warmup: u32,
    /// Runtimes to measure, comma-separated
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "muelle,runc,crun"
    )]
    runtimes: Vec<Runtime>,
    /// Measure this muelle-runtime instead of building it with `cargo build --release -p runtime-core`
    #[arg(long, value_name = "PATH")]
    muelle: Option<PathBuf>,
    /// Print the results as JSON on stdout instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Runtime {
    Muelle,
    Runc,
    Crun,
}

impl Runtime {
    fn name(self) -> &'static str {
        match self {
            Self::Muelle => "muelle-runtime",
            Self::Runc => "runc",
            Self::Crun => "crun",
        }
    }
}

/// Timed runs per runtime and variant in one round.
const ROUND_RUNS: u32 = 5;

/// The bundle variants measured: with the host's network namespace, and
/// with a new one.
const VARIANTS: [Variant; 2] = [Variant::NoNetns, Variant::Netns];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    NoNetns,
    Netns,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Self::NoNetns => "no-netns",
            Self::Netns => "netns",
        }
    }

    /// This variant's bundle running `args`.
    fn bundle(self, args: &[&str]) -> Result<Bundle> {
        let builder = BundleBuilder::new().args(args.iter().copied());
        match self {
            Self::NoNetns => builder.without_namespace("network"),
            Self::Netns => builder,
        }
        .build()
        .with_context(|| format!("cannot build the {} bundle", self.name()))
    }
}

/// A variant's bundles: the timed one, and the probe run first.
struct Bundles {
    timed: Bundle,
    probe: Bundle,
}

/// One line of the result.
struct Row {
    runtime: Runtime,
    variant: Variant,
    result: RowResult,
}

type RowResult = super::common::RowResult<Measured>;

use super::common::Unavailable;

struct Measured {
    summary: Summary,
    runs: usize,
    failures: Vec<String>,
    peak_rss_kib: u64,
}

pub fn run(args: &Args) -> Result<()> {
    if !util::is_root() {
        bail!("bench runtime needs root (runtimes make namespaces and cgroups): run it with sudo");
    }
    let mut bundles = Vec::new();
    for variant in VARIANTS {
        let timed = variant.bundle(&["/bin/true"])?;
        let probe = variant.bundle(&job::PROBE_ARGS)?;
        bundles.push(Bundles { timed, probe });
    }
    if let Some(bundles) = bundles.first() {
        eprintln!("bundle config.json from {}", bundles.timed.spec_source());
    }

    let mut rows = Vec::new();
    let mut series = Vec::new();
    for runtime in all_selected(&args.runtimes) {
        let path = match locate(runtime, args) {
            Ok(path) => path,
            Err(unavailable) => {
                eprintln!("{}: {unavailable}", runtime.name());
                for variant in VARIANTS {
                    rows.push(Row {
                        runtime,
                        variant,
                        result: unavailable.to_result(),
                    });
                }
                continue;
            }
        };
        let hide = runtime == Runtime::Crun && job::cgroup2_controllers_need_hiding();
        if hide {
            eprintln!(
                "crun: runs in a private mount namespace where the hybrid cgroup2 mount shows no \
                 controllers (crun 1.8 refuses them)"
            );
        }
        for (variant, bundles) in VARIANTS.into_iter().zip(&bundles) {
            series.push(Series::new(runtime, variant, &path, bundles, hide)?);
        }
    }

    let rounds = args.runs.div_ceil(ROUND_RUNS);
    for round in 0..rounds {
        let runs = ROUND_RUNS.min(args.runs - round * ROUND_RUNS);
        eprintln!(
            "round {}/{rounds}: {} warm-up + {runs} timed runs of each",
            round + 1,
            args.warmup
        );
        for series in series.iter_mut().filter(|s| s.stopped.is_none()) {
            series.run_round(round, args.warmup, runs);
        }
    }
    rows.extend(series.into_iter().map(Series::into_row));

    if args.json {
        println!("{:#}", report::json(args, &rows));
    } else {
        print!("{}", report::table(&rows));
        print!("{}", report::target(&rows));
    }
    Ok(())
}

/// The selected runtimes in the fixed order muelle, runc, crun, once each.
fn all_selected(selected: &[Runtime]) -> impl Iterator<Item = Runtime> + '_ {
    [Runtime::Muelle, Runtime::Runc, Runtime::Crun]
        .into_iter()
        .filter(|r| selected.contains(r))
}

/// The runtime's executable, or why there is none (skipped or failed).
fn locate(runtime: Runtime, args: &Args) -> Result<PathBuf, Unavailable> {
    match runtime {
        Runtime::Muelle => match &args.muelle {
            Some(path) if path.is_file() => Ok(path.clone()),
            Some(path) => Err(Unavailable::Failed(format!(
                "{} is not a file",
                path.display()
            ))),
            None => build_muelle().map_err(|e| Unavailable::Failed(format!("{e:#}"))),
        },
        Runtime::Runc | Runtime::Crun => util::find_program(runtime.name()).ok_or_else(|| {
            Unavailable::Skipped(format!(
                "not installed (apt-get install {})",
                runtime.name()
            ))
        }),
    }
}

/// `cargo build --release -p runtime-core`, returning the muelle-runtime path
/// cargo reports.
fn build_muelle() -> Result<PathBuf> {
    let mut cmd = util::cargo();
    cmd.args([
        "build",
        "--release",
        "-p",
        "runtime-core",
        "--message-format=json-render-diagnostics",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    eprintln!("building muelle-runtime: cargo build --release -p runtime-core");
    let output = cmd.output().context("cannot run cargo build")?;
    if !output.status.success() {
        bail!(
            "cargo build --release -p runtime-core failed ({})",
            output.status
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|msg| {
            msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "muelle-runtime"
        })
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .context("cargo build reported no muelle-runtime executable")
}

/// One runtime in one variant, measured round after round.
struct Series {
    runtime: Runtime,
    variant: Variant,
    job: Job,
    /// The runtime's state directory, removed on drop.
    _root: TempDir,
    samples: Vec<Sample>,
    failures: Vec<String>,
    /// Why no more rounds are run, once a round failed as a whole.
    stopped: Option<String>,
}

impl Series {
    fn new(
        runtime: Runtime,
        variant: Variant,
        path: &Path,
        bundles: &Bundles,
        hide_cgroup2_controllers: bool,
    ) -> Result<Self> {
        let root = tempfile::Builder::new()
            .prefix("muelle-bench-root-")
            .tempdir()
            .context("cannot create a state dir for the runtime")?;
        let job = Job {
            runtime: path.to_owned(),
            root: root.path().to_owned(),
            bundle: bundles.timed.path().to_owned(),
            probe_bundle: Some(bundles.probe.path().to_owned()),
            id_prefix: String::new(),
            warmup: 0,
            runs: 0,
            hide_cgroup2_controllers,
        };
        Ok(Self {
            runtime,
            variant,
            job,
            _root: root,
            samples: Vec::new(),
            failures: Vec::new(),
            stopped: None,
        })
    }

    /// Runs one round in a bench-child; the probe goes with the first.
    fn run_round(&mut self, round: u32, warmup: u32, runs: u32) {
        let name = self.runtime.name();
        self.job.id_prefix = format!(
            "xtask{}-{name}-{}-r{round}",
            std::process::id(),
            self.variant.name()
        );
        self.job.warmup = warmup;
        self.job.runs = runs;
        let outcome = self.job.run_in_child();
        self.job.probe_bundle = None;
        match outcome {
            Ok(Outcome::Measured { samples, failures }) => {
                for failure in &failures {
                    eprintln!("{name}, {}: a run failed: {failure}", self.variant.name());
                }
                self.samples.extend(samples);
                self.failures.extend(failures);
            }
            Ok(Outcome::Failed { reason }) => self.stop(reason),
            Err(err) => self.stop(format!("{err:#}")),
        }
    }

    fn stop(&mut self, reason: String) {
        eprintln!("{}: failed: {reason}", self.runtime.name());
        self.stopped = Some(reason);
    }

    fn into_row(self) -> Row {
        let times: Vec<f64> = self.samples.iter().map(|s| s.ms).collect();
        let result = match (Summary::of(&times), self.stopped) {
            (Some(summary), stopped) => RowResult::Measured(Measured {
                summary,
                runs: self.samples.len(),
                peak_rss_kib: self.samples.iter().map(|s| s.maxrss_kib).max().unwrap_or(0),
                failures: self.failures.into_iter().chain(stopped).collect(),
            }),
            (None, Some(reason)) => RowResult::Failed(reason),
            (None, None) => RowResult::Failed(format!(
                "every timed run failed: {}",
                self.failures.first().map_or("", String::as_str)
            )),
        };
        Row {
            runtime: self.runtime,
            variant: self.variant,
            result,
        }
    }
}
