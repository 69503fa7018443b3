//! `cargo xtask bench engine`: the engine issue's measurements, each beside
//! its peers in the same run, on the same busybox test image (`cargo xtask
//! test-image`):
//!
//! - **run --rm**: `run --rm --network none IMAGE true` of muelle (a
//!   release build, a private instance), podman (a private instance, runc)
//!   and docker (only when a dockerd already runs), and bare `crun run` and
//!   `runc run` of an OCI bundle on the same files (bare.rs). Target:
//!   muelle within 1.5x of bare crun.
//! - **run -d / stop -t 0 / rm**: a container running `sleep 1000` made,
//!   stopped and removed, each command timed (muelle, podman).
//! - **exec**: `exec CT true` in a running container (muelle, podman, and
//!   `runc exec` / `crun exec` on a bare container). While `muelle exec`
//!   does not exist its row says so.
//! - **memory**: RSS and PSS of the process watching one idle container,
//!   `muelle-monitor` and podman's `conmon` (memory.rs). Target: the
//!   monitor under 1024 kB of RSS.
//! - **ps -a**: `ps -a` and `ps -a -q` with 1000 containers made by
//!   `create` (listing.rs); podman's only when making them fits in the
//!   time the bench allows it. Target: muelle under 50 ms.
//!
//! Every contender runs once untimed first (a probe that checks the
//! container really ran, or the same command), and one that fails there is
//! reported and not run again. The timed runs go in rounds of
//! [`ROUND_RUNS`], each contender in turn, so that the load of the shared
//! machine weighs on all alike.
//!
//! Everything the bench makes lives in its own folders (workdir.rs) and
//! goes at the end, on success, failure and ctrl-c alike (guard.rs): every
//! container, the instances' stores and mounts, the bundles, and the cgroups
//! muelle's containers needed (cgroups.rs). A bench killed outright leaves
//! its folders; the next run takes their containers down and removes them.

mod bare;
mod cgroups;
mod cli;
mod guard;
mod listing;
mod memory;
mod report;
mod workdir;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use clap::ValueEnum;

use self::bare::{Bare, Bundles, Runtime};
use self::cli::{Cli, Flavor};
use self::workdir::{Dirs, Workdir};
use super::common::{RowResult, Unavailable};
use super::runtime::job::Outcome;
use super::stats::Summary;
use crate::{test_image, util};

#[derive(clap::Args)]
pub struct Args {
    /// Timed runs of each command and tool
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Containers present while `ps -a` is timed
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    containers: u32,
    /// Tools to measure, comma-separated (docker only when a dockerd runs)
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "muelle,podman,docker,crun,runc"
    )]
    tools: Vec<Tool>,
    /// Measure this muelle (with muelle-monitor beside it) instead of
    /// building both with `cargo build --release -p cli -p engine --bins`
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
    Docker,
    Crun,
    Runc,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Self::Muelle => "muelle",
            Self::Podman => "podman",
            Self::Docker => "docker",
            Self::Crun => "crun",
            Self::Runc => "runc",
        }
    }
}

/// The config.json muelle writes for a `run -d --network none` container
/// of the test image, with the files it binds from the instance
/// (hostname, hosts, resolv.conf) copied to the bench's folder: the
/// container is removed again.
fn muelle_config(muelle: &mut Cli, dirs: &Dirs) -> Result<serde_json::Value, String> {
    let id = muelle.start_sleeper()?;
    let config = copy_muelle_config(&id, dirs);
    muelle.output(&["rm", "-f", &id])?;
    config
}

fn copy_muelle_config(id: &str, dirs: &Dirs) -> Result<serde_json::Value, String> {
    let path = dirs
        .run
        .join("muelle/containers")
        .join(id)
        .join("config.json");
    let text = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut config: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let instance = dirs.data.join("muelle");
    let files = dirs.data.join("bundles/spec-files");
    std::fs::create_dir_all(&files).map_err(|e| format!("{}: {e}", files.display()))?;
    for mount in config["mounts"].as_array_mut().into_iter().flatten() {
        let Some(source) = mount["source"].as_str().map(std::path::PathBuf::from) else {
            continue;
        };
        if !source.starts_with(&instance) {
            continue;
        }
        let Some(name) = source.file_name() else {
            continue;
        };
        let copy = files.join(name);
        std::fs::copy(&source, &copy).map_err(|e| format!("{}: {e}", source.display()))?;
        mount["source"] = serde_json::json!(copy);
    }
    Ok(config)
}

/// The same reason again (`Unavailable` is not `Clone`).
fn copy(why: &Unavailable) -> Unavailable {
    match why {
        Unavailable::Skipped(r) => Unavailable::Skipped(r.clone()),
        Unavailable::Failed(r) => Unavailable::Failed(r.clone()),
    }
}

/// Timed runs of each contender in one round.
const ROUND_RUNS: u32 = 5;

/// How long an idle container's watcher gets to settle before its memory
/// is read.
const SETTLE: Duration = Duration::from_secs(1);

/// What is timed, in the order of the table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    RunRm,
    RunDetached,
    Stop,
    Rm,
    Exec,
    Ps,
    PsQuiet,
}

const OPS: [Op; 7] = [
    Op::RunRm,
    Op::RunDetached,
    Op::Stop,
    Op::Rm,
    Op::Exec,
    Op::Ps,
    Op::PsQuiet,
];

impl Op {
    /// The operation as messages name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::RunRm => "run --rm true",
            Self::RunDetached => "run -d sleep",
            Self::Stop => "stop -t 0",
            Self::Rm => "rm",
            Self::Exec => "exec true",
            Self::Ps => "ps -a",
            Self::PsQuiet => "ps -a -q",
        }
    }

    /// The operation as the table names it: `ps` with how many
    /// containers it lists.
    pub fn label(self, containers: u32) -> String {
        match self {
            Self::Ps | Self::PsQuiet => format!("{} ({containers})", self.name()),
            _ => self.name().to_owned(),
        }
    }

    fn slot(self) -> usize {
        OPS.iter().position(|&op| op == self).unwrap_or(OPS.len())
    }
}

/// The tools in the order of the table's rows.
const TOOL_ORDER: [Tool; 5] = [
    Tool::Muelle,
    Tool::Podman,
    Tool::Docker,
    Tool::Crun,
    Tool::Runc,
];

/// What each tool is measured on.
fn ops_of(tool: &str) -> &'static [Op] {
    match tool {
        "muelle" | "podman" => &OPS,
        "docker" => &[Op::RunRm],
        _ => &[Op::RunRm, Op::Exec],
    }
}

/// One line of the timing table.
pub struct Row {
    pub op: Op,
    pub tool: &'static str,
    pub result: RowResult<Measured>,
}

pub struct Measured {
    pub summary: Summary,
    pub runs: usize,
    pub failures: Vec<String>,
}

/// One line of the memory table.
pub struct MemoryRow {
    /// The engine whose watcher it is.
    pub tool: &'static str,
    /// The watcher's process name.
    pub process: &'static str,
    pub result: RowResult<memory::Usage>,
}

#[derive(Default)]
struct Series {
    samples: Vec<f64>,
    failures: Vec<String>,
}

/// A row being measured, or why it is not.
struct Slot {
    op: Op,
    tool: &'static str,
    state: Result<Series, Unavailable>,
}

/// Every row being measured.
#[derive(Default)]
struct Slots(Vec<Slot>);

impl Slots {
    fn add(&mut self, tool: &'static str, state: &Result<(), Unavailable>) {
        for &op in ops_of(tool) {
            let state = match state {
                Ok(()) => Ok(Series::default()),
                Err(why) => Err(copy(why)),
            };
            self.0.push(Slot { op, tool, state });
        }
    }

    fn find(&mut self, op: Op, tool: &str) -> Option<&mut Slot> {
        self.0.iter_mut().find(|s| s.op == op && s.tool == tool)
    }

    fn live(&self, op: Op, tool: &str) -> bool {
        self.0
            .iter()
            .any(|s| s.op == op && s.tool == tool && s.state.is_ok())
    }

    /// The row will not be run (again), for this reason.
    fn stop(&mut self, op: Op, tool: &str, why: Unavailable) {
        eprintln!("{tool}, {}: {why}", op.name());
        if let Some(slot) = self.find(op, tool) {
            slot.state = Err(why);
        }
    }

    /// An untimed first run: the row stops when it failed.
    fn warm(&mut self, op: Op, tool: &str, outcome: Result<(), String>) {
        if let Err(reason) = outcome {
            self.stop(op, tool, Unavailable::Failed(reason));
        }
    }

    fn record(&mut self, op: Op, tool: &str, outcome: Result<f64, String>) {
        let Some(Slot {
            state: Ok(series), ..
        }) = self.find(op, tool)
        else {
            return;
        };
        match outcome {
            Ok(ms) => series.samples.push(ms),
            Err(reason) => {
                eprintln!("{tool}, {}: a run failed: {reason}", op.name());
                series.failures.push(reason);
            }
        }
    }

    fn into_rows(self) -> Vec<Row> {
        let mut rows: Vec<Row> = self
            .0
            .into_iter()
            .map(|slot| Row {
                op: slot.op,
                tool: slot.tool,
                result: match slot.state {
                    Ok(series) => match Summary::of(&series.samples) {
                        Some(summary) => RowResult::Measured(Measured {
                            summary,
                            runs: series.samples.len(),
                            failures: series.failures,
                        }),
                        None => RowResult::Failed(format!(
                            "every timed run failed: {}",
                            series.failures.first().map_or("", String::as_str)
                        )),
                    },
                    Err(why) => why.to_result(),
                },
            })
            .collect();
        let tool_slot = |tool: &str| TOOL_ORDER.iter().position(|t| t.name() == tool);
        rows.sort_by_key(|r| (r.op.slot(), tool_slot(r.tool)));
        rows
    }
}

/// The contenders and what came of them so far.
struct Bench {
    clis: Vec<Cli>,
    bare: Vec<Bare>,
    bundles: Option<Bundles>,
    slots: Slots,
    memory: Vec<MemoryRow>,
    notes: Vec<String>,
    /// The containers `exec` runs in and whose watcher is measured.
    sleepers: Vec<(Flavor, String)>,
}

pub fn run(args: &Args) -> Result<()> {
    if !util::is_root() {
        bail!("bench engine runs real containers: run it as root");
    }
    guard::install();
    let bench_dir = util::target_dir()?.join("bench-engine");
    let archive = test_image::build(None)?;
    // A killed bench's muelle containers need a muelle to go, measured
    // or not.
    let stale = workdir::stale(&bench_dir);
    let wanted = args.tools.contains(&Tool::Muelle);
    let muelle = if wanted || !stale.is_empty() {
        locate_muelle(args)
    } else {
        Err(Unavailable::Skipped("not among --tools".to_owned()))
    };
    clean_stale(stale, muelle.as_ref().ok());
    let workdir = Workdir::new(&bench_dir)?;
    let cgroups = cgroups::Watch::start();

    let mut bench = Bench::prepare(args, &workdir.dirs, &archive, muelle);
    let measured = bench.measure(args);

    eprintln!("cleaning up");
    let mut problems = Vec::new();
    let mut ids = Vec::new();
    for cli in &mut bench.clis {
        problems.extend(cli.clean_up());
        ids.append(&mut cli.ids);
    }
    for bare in &mut bench.bare {
        problems.extend(bare.clean_up());
    }
    problems.extend(
        cgroups
            .finish(&ids)
            .into_iter()
            .map(|leaf| format!("a container's cgroup was left: {leaf}")),
    );
    problems.extend(workdir.dirs.clear());
    measured?;

    let context = report::Context {
        runs: args.runs,
        containers: args.containers,
        notes: std::mem::take(&mut bench.notes),
        problems,
    };
    let rows = std::mem::take(&mut bench.slots).into_rows();
    if args.json {
        println!("{:#}", report::json(&context, &rows, &bench.memory));
    } else {
        print!("{}", report::text(&context, &rows, &bench.memory));
    }
    Ok(())
}

/// The muelle to measure: `--muelle`, or a release build of the CLI and
/// the monitor; muelle-monitor must be beside it.
fn locate_muelle(args: &Args) -> Result<PathBuf, Unavailable> {
    let muelle = match &args.muelle {
        Some(path) => path.clone(),
        None => super::common::cargo_build(
            &["-p", "cli", "-p", "engine", "-p", "network", "--bins"],
            "muelle",
        )
        .map_err(|e| Unavailable::Failed(format!("{e:#}")))?,
    };
    let monitor = muelle.with_file_name("muelle-monitor");
    if !muelle.is_file() || !monitor.is_file() {
        return Err(Unavailable::Failed(format!(
            "{} and muelle-monitor beside it are not both there",
            muelle.display()
        )));
    }
    Ok(muelle)
}

/// Takes down what benches killed outright left, and their folders.
fn clean_stale(stale: Vec<Dirs>, muelle: Option<&PathBuf>) {
    for dirs in stale {
        eprintln!(
            "removing {} and {}, left by a bench that died",
            dirs.data.display(),
            dirs.run.display()
        );
        let mut left: Vec<Result<Cli, String>> = Vec::new();
        if let Some(muelle) = muelle {
            left.push(Cli::muelle(muelle, &dirs));
        }
        if let Some(podman) = util::find_program("podman") {
            left.push(Cli::podman(&podman, &dirs));
        }
        drop(left);
        for runtime in [Runtime::Runc, Runtime::Crun] {
            if let Some(program) = util::find_program(runtime.name()) {
                drop(Bare::new(runtime, &program, dirs.run.join(runtime.name())));
            }
        }
        for problem in dirs.clear() {
            eprintln!("bench engine: {problem}");
        }
    }
}

impl Bench {
    /// Every selected tool found, its instance made and its image loaded,
    /// or the reason why not in its rows.
    fn prepare(
        args: &Args,
        dirs: &Dirs,
        archive: &Path,
        muelle: Result<PathBuf, Unavailable>,
    ) -> Bench {
        let mut bench = Bench {
            clis: Vec::new(),
            bare: Vec::new(),
            bundles: None,
            slots: Slots::default(),
            memory: Vec::new(),
            notes: Vec::new(),
            sleepers: Vec::new(),
        };
        let not_installed =
            |name: &str| Unavailable::Skipped(format!("not installed (apt-get install {name})"));
        let load = |cli: Result<Cli, String>| {
            let mut cli = cli.map_err(Unavailable::Failed)?;
            eprintln!("{}: loading {}", cli.name(), test_image::IMAGE_NAME);
            cli.load(archive)
                .map_err(|e| Unavailable::Failed(format!("load: {e}")))?;
            Ok::<Cli, Unavailable>(cli)
        };
        for tool in [Tool::Muelle, Tool::Podman, Tool::Docker] {
            if !args.tools.contains(&tool) {
                continue;
            }
            let cli = match tool {
                Tool::Muelle => muelle
                    .as_ref()
                    .map_err(copy)
                    .and_then(|p| load(Cli::muelle(p, dirs))),
                Tool::Podman => util::find_program("podman")
                    .ok_or_else(|| not_installed("podman"))
                    .and_then(|p| load(Cli::podman(&p, dirs))),
                _ => util::find_program("docker")
                    .ok_or_else(|| not_installed("docker.io"))
                    .and_then(|p| Cli::docker(&p))
                    .and_then(|cli| load(Ok(cli))),
            };
            let name = tool.name();
            match cli {
                Ok(cli) => {
                    bench.slots.add(name, &Ok(()));
                    bench.clis.push(cli);
                }
                Err(why) => {
                    eprintln!("{name}: {why}");
                    bench.slots.add(name, &Err(why));
                }
            }
        }
        bench.prepare_bare(args, dirs, archive);
        bench
    }

    /// runc and crun with their bundles.
    fn prepare_bare(&mut self, args: &Args, dirs: &Dirs, archive: &Path) {
        let mut wanted: Vec<Runtime> = [(Tool::Crun, Runtime::Crun), (Tool::Runc, Runtime::Runc)]
            .into_iter()
            .filter(|(tool, _)| args.tools.contains(tool))
            .map(|(_, runtime)| runtime)
            .collect();
        if wanted.is_empty() {
            return;
        }
        let mut bundles =
            Bundles::new(archive, &dirs.data.join("bundles")).map_err(|e| format!("{e:#}"));
        // crun on muelle's own config.json, beside crun on runc's.
        let muelle = self.clis.iter_mut().find(|c| c.flavor == Flavor::Muelle);
        if let (true, Some(muelle), Ok(bundles)) =
            (wanted.contains(&Runtime::Crun), muelle, bundles.as_mut())
        {
            let spec = muelle_config(muelle, dirs).and_then(|config| {
                bundles
                    .add_muelle_spec(&config)
                    .map_err(|e| format!("{e:#}"))
            });
            match spec {
                Ok(()) => {
                    wanted.insert(1, Runtime::CrunMuelleSpec);
                    self.notes.push(
                        "crun*: crun on the config.json muelle generates for `run --network none` \
                         (docker's seccomp profile, capabilities, masked paths, cgroup mounts): \
                         what muelle adds around the runtime is the difference to it"
                            .to_owned(),
                    );
                }
                Err(e) => eprintln!("crun*: skipped: {e}"),
            }
        }
        for runtime in wanted {
            let name = runtime.name();
            let program = runtime.program();
            let state = dirs.run.join(name.replace('*', "-muelle-spec"));
            let bare = match (&bundles, util::find_program(program)) {
                (_, None) => Err(Unavailable::Skipped(format!(
                    "not installed (apt-get install {program})"
                ))),
                (Err(e), _) => Err(Unavailable::Failed(format!("bundles: {e}"))),
                (Ok(_), Some(path)) => {
                    Bare::new(runtime, &path, state).map_err(Unavailable::Failed)
                }
            };
            match bare {
                Ok(bare) => {
                    if bare.hides_controllers() && runtime == Runtime::Crun {
                        self.notes.push(
                            "crun: runs and starts its containers in a private mount namespace \
                             where the hybrid cgroup2 mount shows no controllers (crun 1.8 \
                             refuses them)"
                                .to_owned(),
                        );
                    }
                    self.slots.add(name, &Ok(()));
                    self.bare.push(bare);
                }
                Err(why) => {
                    eprintln!("{name}: {why}");
                    self.slots.add(name, &Err(why));
                }
            }
        }
        self.bundles = bundles.ok();
    }

    fn measure(&mut self, args: &Args) -> Result<()> {
        self.warm_up()?;
        self.start_sleepers()?;
        std::thread::sleep(SETTLE);
        self.measure_memory();
        self.warm_up_exec()?;
        let rounds = args.runs.div_ceil(ROUND_RUNS);
        for round in 0..rounds {
            let runs = ROUND_RUNS.min(args.runs - round * ROUND_RUNS);
            eprintln!("round {}/{rounds}: {runs} timed runs of each", round + 1);
            self.run_rm_round(round, runs)?;
            self.lifecycle_round(runs)?;
            self.exec_round(runs)?;
        }
        self.remove_sleepers();
        listing::measure(self, args)
    }

    /// The untimed first runs: the probe for `run --rm`, one whole
    /// `run -d`/`stop`/`rm`.
    fn warm_up(&mut self) -> Result<()> {
        for cli in &mut self.clis {
            guard::check()?;
            let tool = cli.name();
            self.slots.warm(Op::RunRm, tool, cli.probe());
            if self.slots.live(Op::RunDetached, tool) {
                let [run, stop, rm] = lifecycle_once(cli);
                let first_error = [run, stop, rm]
                    .into_iter()
                    .find_map(|o| o.and_then(Result::err));
                if let Some(reason) = first_error {
                    for op in [Op::RunDetached, Op::Stop, Op::Rm] {
                        self.slots
                            .stop(op, tool, Unavailable::Failed(reason.clone()));
                    }
                }
            }
        }
        Ok(())
    }

    /// One `sleep 1000` container per tool measured on `exec`.
    fn start_sleepers(&mut self) -> Result<()> {
        for cli in &mut self.clis {
            guard::check()?;
            let tool = cli.name();
            if !self.slots.live(Op::Exec, tool) {
                continue;
            }
            match cli.start_sleeper() {
                Ok(id) => self.sleepers.push((cli.flavor, id)),
                Err(reason) => {
                    self.slots.stop(
                        Op::Exec,
                        tool,
                        Unavailable::Failed(format!("run -d: {reason}")),
                    );
                }
            }
        }
        let Some(bundles) = &self.bundles else {
            return Ok(());
        };
        for bare in &mut self.bare {
            guard::check()?;
            let outcome = bare.start_sleeper(bundles);
            self.slots.warm(
                Op::Exec,
                bare.name(),
                outcome.map_err(|e| format!("run -d: {e}")),
            );
        }
        Ok(())
    }

    /// RSS and PSS of muelle's and podman's watcher of their sleeper.
    fn measure_memory(&mut self) {
        for (flavor, process) in [
            (Flavor::Muelle, "muelle-monitor"),
            (Flavor::Podman, "conmon"),
        ] {
            if !self.clis.iter().any(|c| c.flavor == flavor) {
                continue;
            }
            let sleeper = self.sleepers.iter().find(|(f, _)| *f == flavor);
            let result = match sleeper {
                None => RowResult::Failed("no idle container to measure".to_owned()),
                Some((_, id)) => match memory::watcher(process, id).and_then(memory::usage) {
                    Ok(usage) => RowResult::Measured(usage),
                    Err(reason) => RowResult::Failed(reason),
                },
            };
            self.memory.push(MemoryRow {
                tool: flavor.name(),
                process,
                result,
            });
        }
    }

    /// One untimed `exec` each; a muelle without the verb is skipped.
    fn warm_up_exec(&mut self) -> Result<()> {
        for (flavor, id) in &self.sleepers {
            guard::check()?;
            let Some(cli) = self.clis.iter_mut().find(|c| c.flavor == *flavor) else {
                continue;
            };
            let tool = cli.name();
            match cli.timed(&["exec", id, "true"]) {
                Ok(_) => {}
                Err(reason) if cli.last_output().contains("unrecognized subcommand") => {
                    self.slots.stop(
                        Op::Exec,
                        tool,
                        Unavailable::Skipped(format!(
                            "this {tool} has no `exec` yet ({})",
                            reason.rsplit(": ").next().unwrap_or(&reason)
                        )),
                    );
                }
                Err(reason) => self.slots.stop(Op::Exec, tool, Unavailable::Failed(reason)),
            }
        }
        for bare in &mut self.bare {
            guard::check()?;
            let tool = bare.name();
            if self.slots.live(Op::Exec, tool) {
                self.slots.warm(Op::Exec, tool, bare.exec_once().map(drop));
            }
        }
        Ok(())
    }

    /// `runs` timed `run --rm` of every contender, the order turning
    /// with the round.
    fn run_rm_round(&mut self, round: u32, runs: u32) -> Result<()> {
        let count = self.clis.len();
        for i in 0..count {
            let cli = &mut self.clis[(i + round as usize) % count];
            let tool = cli.name();
            for _ in 0..runs {
                guard::check()?;
                if !self.slots.live(Op::RunRm, tool) {
                    break;
                }
                let args = cli.run_args(&["--rm"], &["true"]);
                let outcome = cli.timed(&args);
                self.slots.record(Op::RunRm, tool, outcome);
            }
        }
        let Some(bundles) = &self.bundles else {
            return Ok(());
        };
        for bare in &self.bare {
            guard::check()?;
            let tool = bare.name();
            if !self.slots.live(Op::RunRm, tool) {
                continue;
            }
            match bare.run_round(bundles, round, runs) {
                Ok(Outcome::Measured { samples, failures }) => {
                    for sample in samples {
                        self.slots.record(Op::RunRm, tool, Ok(sample.ms));
                    }
                    for failure in failures {
                        self.slots.record(Op::RunRm, tool, Err(failure));
                    }
                }
                // The probe or the first run failed: at once, the runtime
                // does not work; later, one run did not, and the samples
                // so far stand.
                Ok(Outcome::Failed { reason }) if round == 0 => {
                    self.slots
                        .stop(Op::RunRm, tool, Unavailable::Failed(reason));
                }
                Ok(Outcome::Failed { reason }) => {
                    self.slots.record(Op::RunRm, tool, Err(reason));
                }
                Err(e) => {
                    self.slots
                        .stop(Op::RunRm, tool, Unavailable::Failed(format!("{e:#}")));
                }
            }
        }
        Ok(())
    }

    /// `runs` times `run -d`, `stop -t 0`, `rm`, each timed.
    fn lifecycle_round(&mut self, runs: u32) -> Result<()> {
        for cli in &mut self.clis {
            let tool = cli.name();
            for _ in 0..runs {
                guard::check()?;
                if !self.slots.live(Op::RunDetached, tool) {
                    break;
                }
                let outcomes = lifecycle_once(cli);
                for (op, outcome) in [Op::RunDetached, Op::Stop, Op::Rm]
                    .into_iter()
                    .zip(outcomes)
                {
                    if let Some(outcome) = outcome {
                        self.slots.record(op, tool, outcome);
                    }
                }
            }
        }
        Ok(())
    }

    /// `runs` timed `exec CT true` of every contender.
    fn exec_round(&mut self, runs: u32) -> Result<()> {
        for (flavor, id) in &self.sleepers {
            let Some(cli) = self.clis.iter_mut().find(|c| c.flavor == *flavor) else {
                continue;
            };
            let tool = cli.name();
            for _ in 0..runs {
                guard::check()?;
                if !self.slots.live(Op::Exec, tool) {
                    break;
                }
                let outcome = cli.timed(&["exec", id, "true"]);
                self.slots.record(Op::Exec, tool, outcome);
            }
        }
        for bare in &mut self.bare {
            let tool = bare.name();
            for _ in 0..runs {
                guard::check()?;
                if !self.slots.live(Op::Exec, tool) {
                    break;
                }
                let outcome = bare.exec_once();
                self.slots.record(Op::Exec, tool, outcome);
            }
        }
        Ok(())
    }

    /// The engines' sleepers go before `ps` counts containers.
    fn remove_sleepers(&mut self) {
        for (flavor, id) in std::mem::take(&mut self.sleepers) {
            if let Some(cli) = self.clis.iter_mut().find(|c| c.flavor == flavor)
                && let Err(e) = cli.output(&["rm", "-f", &id])
            {
                eprintln!("{}: cannot remove {id}: {e}", cli.name());
            }
        }
    }
}

/// `run -d IMAGE sleep 1000`, `stop -t 0 ID`, `rm ID`, each timed; `None`
/// for a command not run because an earlier one failed. What a failure
/// left is removed untimed.
fn lifecycle_once(cli: &mut Cli) -> [Option<Result<f64, String>>; 3] {
    let args = cli.run_args(&["-d"], &["sleep", "1000"]);
    let run = cli.timed(&args);
    let id = match run
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|_| cli.last_id())
    {
        Ok(id) => id,
        Err(reason) => return [Some(Err(reason)), None, None],
    };
    let stop = cli.timed(&["stop", "-t", "0", &id]);
    if stop.is_err() {
        let _ = cli.output(&["rm", "-f", &id]);
        return [Some(run), Some(stop), None];
    }
    let rm = cli.timed(&["rm", &id]);
    if rm.is_err() {
        let _ = cli.output(&["rm", "-f", &id]);
    }
    [Some(run), Some(stop), Some(rm)]
}
