//! `cargo xtask bench image`: the image issue's speed targets, each beside
//! a peer measured in the same run.
//!
//! - **load**: whole commands loading a 100 MB, five-layer gzip image (the
//!   OCI archive of `fixture.rs`, generated once and cached under the
//!   target folder) into a fresh store: `muelle --root R load -i A`,
//!   `podman --root R ... --storage-driver overlay load -i A` (vfs when
//!   overlay fails here, said under the table), and `skopeo copy
//!   oci-archive:A oci:D:bench` + `umoci unpack --image D:bench B` (the
//!   two timed together).
//! - **unpack**: the same five layer blobs unpacked by muelle's
//!   `LayerStore::unpack` (in a helper process, timed inside it: blob
//!   verification, decompression, diff id hashing and the safe unpack)
//!   against `tar -xzf` of each into a fresh folder of the same
//!   filesystem. Target: muelle at no less than 80% of tar's speed.
//! - **rootfs setup/teardown**: `Rootfs::mount` of the five unpacked layers
//!   into a fresh container folder and `Rootfs::unmount` (in the helper),
//!   against `mount -t overlay` and `umount` by mount(8) on the same layers
//!   (whole commands; their folders made and removed untimed). Target:
//!   setup under 5 ms. podman is not measured here: `podman create` +
//!   `podman mount` does much more than set up a root filesystem.
//!
//! Every timed run starts from a fresh, empty folder (made untimed) inside
//! `<target>/bench-image/run-<pid>/` (runtime folders, podman's runroot
//! among them, which podman wants under 50 characters, inside
//! `/run/muelle-bench-image-<pid>/`), and is cleaned up untimed: podman's
//! stores with `podman system reset -f` (its network config, volume and tmp
//! folders pointed into the run's folder, so the reset touches nothing of
//! the host's), then anything mounted below is unmounted and the folder
//! removed; a `sync` follows so that one tool's writeback does not land in
//! the next one's time. The runs go in rounds, each tool once per round
//! (the order of the loaders rotating), so that load on the shared machine
//! weighs on all alike. A missing tool is skipped, a failing one reported;
//! neither stops the others.

mod fixture;
mod helper;
mod report;
pub(super) mod scratch;

use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

use self::fixture::Fixture;
use self::helper::Helper;
use self::scratch::Scratch;
use super::common::Unavailable;
use super::exec;
use super::stats::Summary;
use crate::util;

#[derive(clap::Args)]
pub struct Args {
    /// Timed runs of each load and unpack (rootfs: 5 setups and teardowns per run)
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Untimed warm-up runs of each before the timed ones
    #[arg(long, default_value_t = 1)]
    warmup: u32,
    /// Loaders to measure, comma-separated (unpack and rootfs rows need muelle)
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "muelle,podman,skopeo-umoci"
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
    SkopeoUmoci,
}

/// Root filesystem setups and teardowns per run (they take milliseconds).
const ROOTFS_RUNS: u32 = 5;

/// A load taking longer is killed and its run counted as failed.
const LOAD_TIMEOUT: Duration = Duration::from_secs(600);
const SHORT_TIMEOUT: Duration = Duration::from_secs(60);

/// The tag skopeo gives the image in its OCI layout, for umoci.
const LAYOUT_TAG: &str = "bench";

/// The source of mount(8)'s overlays: `grep muelle /proc/self/mountinfo`
/// finds one left behind.
const MOUNT_SOURCE: &str = "muelle-bench";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    Load,
    Unpack,
    Setup,
    Teardown,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Self::Load => "load",
            Self::Unpack => "unpack",
            Self::Setup => "rootfs setup",
            Self::Teardown => "rootfs teardown",
        }
    }
}

/// One line of the result.
pub struct Row {
    op: Op,
    tool: String,
    /// muelle's own row, the one the others are compared with.
    muelle: bool,
    result: RowResult,
}

type RowResult = super::common::RowResult<Measured>;

pub struct Measured {
    summary: Summary,
    runs: usize,
    failures: Vec<String>,
}

#[derive(Default)]
struct Series {
    samples: Vec<f64>,
    failures: Vec<String>,
}

impl Series {
    fn record(&mut self, outcome: Result<f64, String>, what: &str) {
        match outcome {
            Ok(ms) => self.samples.push(ms),
            Err(reason) => {
                eprintln!("{what}: a run failed: {reason}");
                self.failures.push(reason);
            }
        }
    }

    fn into_result(self) -> RowResult {
        match Summary::of(&self.samples) {
            Some(summary) => RowResult::Measured(Measured {
                summary,
                runs: self.samples.len(),
                failures: self.failures,
            }),
            None => RowResult::Failed(format!(
                "every timed run failed: {}",
                self.failures.first().map_or("", String::as_str)
            )),
        }
    }
}

/// A row being measured, or why it is not.
struct Contender<K> {
    kind: K,
    name: String,
    state: Result<Series, Unavailable>,
}

impl<K> Contender<K> {
    fn new(kind: K, name: &str) -> Self {
        Self {
            kind,
            name: name.to_owned(),
            state: Ok(Series::default()),
        }
    }

    fn unavailable(kind: K, name: &str, why: Unavailable) -> Self {
        eprintln!("{name}: {why}");
        Self {
            kind,
            name: name.to_owned(),
            state: Err(why),
        }
    }

    fn live(&self) -> bool {
        self.state.is_ok()
    }

    fn row(self, op: Op, muelle: bool) -> Row {
        Row {
            op,
            tool: self.name,
            muelle,
            result: match self.state {
                Ok(series) => series.into_result(),
                Err(why) => why.to_result(),
            },
        }
    }
}

/// How a loader loads.
enum Loader {
    /// `muelle --root R load -i A`.
    Muelle(PathBuf),
    /// The helper's `load` (the image crate's `formats::load`), for a
    /// muelle CLI without `load`.
    MuelleApi,
    /// podman with its storage driver.
    Podman(PathBuf, &'static str),
    SkopeoUmoci {
        skopeo: PathBuf,
        umoci: PathBuf,
    },
}

/// What every run needs.
struct Bench {
    fixture: Fixture,
    fixture_json: PathBuf,
    scratch: Scratch,
    helper: Option<Helper>,
    /// Commands' output, read back for errors and the helper's JSON.
    log: File,
}

pub fn run(args: &Args) -> Result<()> {
    if !util::is_root() {
        bail!("bench image needs root: it mounts overlays and loads into podman's stores");
    }
    let mounts_before = scratch::muelle_mounts();
    let bench_dir = util::target_dir()?.join("bench-image");
    let fixture = fixture::ensure(&bench_dir)?;
    let fixture_json = Fixture::meta_path(
        fixture
            .archive
            .parent()
            .context("the archive has no folder")?,
    );
    let measure_muelle = args.tools.contains(&Tool::Muelle);
    let helper = if measure_muelle {
        helper::build().map_err(|e| format!("{e:#}"))
    } else {
        Err("muelle is not among --tools".to_owned())
    };
    let mut bench = Bench {
        fixture,
        fixture_json,
        scratch: Scratch::new(&bench_dir)?,
        helper: helper.as_ref().ok().map(|p| Helper::new(p.clone())),
        log: tempfile::tempfile().context("cannot create a log file")?,
    };
    let helper_missing = |name: &str| match &helper {
        Ok(_) => None,
        Err(reason) if !measure_muelle => Some(Unavailable::Skipped(reason.clone())),
        Err(reason) => Some(Unavailable::Failed(format!("{name}: {reason}"))),
    };

    let mut notes = Vec::new();
    let mut loaders = loaders(args, &bench, &mut notes);
    let mut unpack_muelle = match helper_missing("image-session") {
        None => Contender::new((), "muelle"),
        Some(why) => Contender::unavailable((), "muelle", why),
    };
    let mut unpack_tar = match util::find_program("tar") {
        Some(tar) => Contender::new(tar, "tar -xzf"),
        None => Contender::unavailable(
            PathBuf::new(),
            "tar -xzf",
            Unavailable::Skipped("tar not installed".into()),
        ),
    };
    if !measure_muelle {
        unpack_tar.state = Err(Unavailable::Skipped("muelle is not among --tools".into()));
    }
    let (mut setup, mut teardown, mut reference) = rootfs_contenders(&mut bench, &mut notes);

    for n in 0..args.warmup {
        eprintln!("warm-up {}/{}", n + 1, args.warmup);
        for loader in &mut loaders {
            warm(&mut bench, loader, |b, k| b.load_once(k));
            let fallback = match (&loader.kind, &loader.state) {
                (Loader::Podman(program, "overlay"), Err(Unavailable::Failed(reason))) => {
                    Some((program.clone(), reason.clone()))
                }
                _ => None,
            };
            if let Some((program, reason)) = fallback {
                eprintln!("podman: overlay failed here ({reason}); trying vfs");
                notes.push(format!(
                    "podman: storage driver vfs (overlay failed: {})",
                    report::short(&reason)
                ));
                loader.kind = Loader::Podman(program, "vfs");
                loader.name = "podman (vfs)".to_owned();
                loader.state = Ok(Series::default());
                warm(&mut bench, loader, |b, k| b.load_once(k));
            }
        }
        warm(&mut bench, &mut unpack_muelle, |b, ()| b.unpack_muelle());
        warm(&mut bench, &mut unpack_tar, |b, tar| b.unpack_tar(tar));
    }

    let live = |l: &&Contender<Loader>| l.live();
    if loaders
        .iter()
        .filter(live)
        .any(|l| matches!(l.kind, Loader::Podman(_, "overlay")))
    {
        notes.push("podman: storage driver overlay".to_owned());
    }
    let foreign: Vec<&str> = loaders
        .iter()
        .filter(live)
        .filter(|l| matches!(l.kind, Loader::Podman(..) | Loader::SkopeoUmoci { .. }))
        .map(|l| l.name.as_str())
        .collect();
    if !foreign.is_empty() {
        notes.push(format!(
            "{}: unpack the archive in /var/tmp/oci* (removed after) and update \
             /var/lib/containers/cache/blob-info-cache-v1.boltdb (fixed paths)",
            foreign.join(", ")
        ));
    }

    for round in 0..args.runs {
        eprintln!("round {}/{}", round + 1, args.runs);
        let count = loaders.len();
        for i in 0..count {
            let loader = &mut loaders[(i + round as usize) % count];
            if let Ok(series) = &mut loader.state {
                let outcome = bench.load_once(&loader.kind);
                series.record(outcome, &format!("load, {}", loader.name));
            }
        }
        // muelle first in even rounds, tar first in odd ones.
        for tar_turn in [round % 2 == 1, round % 2 == 0] {
            if tar_turn {
                if let Ok(series) = &mut unpack_tar.state {
                    series.record(bench.unpack_tar(&unpack_tar.kind), "unpack, tar");
                }
            } else if let Ok(series) = &mut unpack_muelle.state {
                series.record(bench.unpack_muelle(), "unpack, muelle");
            }
        }
        bench.rootfs_round(&mut setup, &mut teardown);
        bench.mount_round(&mut reference);
    }

    let mut rows: Vec<Row> = loaders
        .into_iter()
        .map(|l| {
            let muelle = matches!(l.kind, Loader::Muelle(_) | Loader::MuelleApi);
            l.row(Op::Load, muelle)
        })
        .collect();
    if measure_muelle {
        rows.push(unpack_muelle.row(Op::Unpack, true));
        rows.push(unpack_tar.row(Op::Unpack, false));
        rows.push(setup.row(Op::Setup, true));
        let (mount, umount) = reference.split();
        rows.push(mount.row(Op::Setup, false));
        rows.push(teardown.row(Op::Teardown, true));
        rows.push(umount.row(Op::Teardown, false));
    }
    notes.push(
        "rootfs: podman not measured (podman create + podman mount is not equivalent)".to_owned(),
    );

    let layers = fixture_summary(&bench.fixture);
    drop(bench);
    let mounts_after = scratch::muelle_mounts();
    let leftovers = fs::read_dir(&bench_dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("run-"))
                .count()
        })
        .unwrap_or(0);
    eprintln!(
        "muelle mounts before/after: {mounts_before}/{mounts_after}; run folders left: {leftovers}"
    );
    if mounts_after != mounts_before {
        notes.push(format!(
            "WARNING: {mounts_before} mounts named muelle before the bench, {mounts_after} after"
        ));
    }

    let context = report::Context {
        runs: args.runs,
        warmup: args.warmup,
        rootfs_runs: ROOTFS_RUNS,
        layers,
        notes,
    };
    if args.json {
        println!("{:#}", report::json(&context, &rows));
    } else {
        print!("{}", report::text(&context, &rows));
    }
    Ok(())
}

fn fixture_summary(f: &Fixture) -> String {
    format!(
        "{} gzip layers, {} entries, {:.1} MB of tar, {:.1} MB compressed",
        f.layers.len(),
        f.entries(),
        fixture::mb(f.tar_bytes()),
        fixture::mb(f.gzip_bytes())
    )
}

/// Untimed warm-up runs; a contender whose warm-up fails is reported as
/// failed and not run again.
fn warm<K>(
    bench: &mut Bench,
    contender: &mut Contender<K>,
    mut once: impl FnMut(&mut Bench, &K) -> Result<f64, String>,
) {
    if !contender.live() {
        return;
    }
    if let Err(reason) = once(bench, &contender.kind) {
        eprintln!("{}: the warm-up failed: {reason}", contender.name);
        contender.state = Err(Unavailable::Failed(reason));
    }
}

/// The loaders of `--tools`, or why each is unavailable.
fn loaders(args: &Args, bench: &Bench, notes: &mut Vec<String>) -> Vec<Contender<Loader>> {
    let mut out = Vec::new();
    for tool in [Tool::Muelle, Tool::Podman, Tool::SkopeoUmoci] {
        if !args.tools.contains(&tool) {
            continue;
        }
        out.push(match tool {
            Tool::Muelle => match muelle_loader(args, bench) {
                Ok(Loader::MuelleApi) => {
                    notes.push(
                        "muelle load: the CLI has no `load`; timed image-session load \
                         (image::formats::load in a process of its own)"
                            .to_owned(),
                    );
                    Contender::new(Loader::MuelleApi, "muelle (image API)")
                }
                Ok(loader) => Contender::new(loader, "muelle"),
                Err(why) => Contender::unavailable(Loader::MuelleApi, "muelle", why),
            },
            Tool::Podman => match util::find_program("podman") {
                Some(p) => Contender::new(Loader::Podman(p, "overlay"), "podman"),
                None => Contender::unavailable(
                    Loader::MuelleApi,
                    "podman",
                    Unavailable::Skipped("not installed (apt-get install podman)".into()),
                ),
            },
            Tool::SkopeoUmoci => {
                match (util::find_program("skopeo"), util::find_program("umoci")) {
                    (Some(skopeo), Some(umoci)) => {
                        Contender::new(Loader::SkopeoUmoci { skopeo, umoci }, "skopeo+umoci")
                    }
                    _ => Contender::unavailable(
                        Loader::MuelleApi,
                        "skopeo+umoci",
                        Unavailable::Skipped("not installed (apt-get install skopeo umoci)".into()),
                    ),
                }
            }
        });
    }
    out
}

/// muelle's CLI when it has `load`, else the helper's `load`.
fn muelle_loader(args: &Args, bench: &Bench) -> Result<Loader, Unavailable> {
    let cli = match &args.muelle {
        Some(path) if path.is_file() => Ok(path.clone()),
        Some(path) => Err(format!("{} is not a file", path.display())),
        None => super::storage::build_muelle().map_err(|e| format!("{e:#}")),
    };
    let has_load = |cli: &Path| {
        Command::new(cli)
            .args(["load", "--help"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    match cli {
        Ok(cli) if has_load(&cli) => Ok(Loader::Muelle(cli)),
        Ok(_) | Err(_) if bench.helper.is_some() => Ok(Loader::MuelleApi),
        Ok(cli) => Err(Unavailable::Failed(format!(
            "{} has no `load` and the image-session helper did not build",
            cli.display()
        ))),
        Err(reason) => Err(Unavailable::Failed(reason)),
    }
}

/// mount(8) and umount(8) on the same layers, one pair per run.
struct Reference {
    mount: Contender<()>,
    umount: Series,
    layers: Vec<PathBuf>,
}

impl Reference {
    fn split(self) -> (Contender<()>, Contender<()>) {
        let umount = Contender {
            kind: (),
            name: "umount(8)".to_owned(),
            state: match &self.mount.state {
                Ok(_) => Ok(self.umount),
                Err(Unavailable::Skipped(r)) => Err(Unavailable::Skipped(r.clone())),
                Err(Unavailable::Failed(r)) => Err(Unavailable::Failed(r.clone())),
            },
        };
        (self.mount, umount)
    }
}

/// The rootfs rows: muelle's setup and teardown (on layers the helper
/// unpacked once, untimed, into `rootfs-*/root`), and mount(8)'s.
fn rootfs_contenders(
    bench: &mut Bench,
    notes: &mut Vec<String>,
) -> (Contender<PathBuf>, Contender<PathBuf>, Reference) {
    let prepared = match &bench.helper {
        None => Err(Unavailable::Skipped("no image-session helper".into())),
        Some(helper) => bench
            .scratch
            .fresh("rootfs")
            .and_then(|dir| {
                let root = dir.join("root");
                helper
                    .unpack(&root, &bench.fixture_json, &mut bench.log)
                    .map(|u| (root, u))
            })
            .map_err(Unavailable::Failed),
    };
    let (root, layers, driver) = match prepared {
        Ok((root, unpacked)) => (root, unpacked.layers, Ok(unpacked.driver)),
        Err(why) => (PathBuf::new(), Vec::new(), Err(why)),
    };
    let same = |why: &Unavailable| match why {
        Unavailable::Skipped(r) => Unavailable::Skipped(r.clone()),
        Unavailable::Failed(r) => Unavailable::Failed(r.clone()),
    };
    let (setup, teardown) = match &driver {
        Ok(driver) => {
            notes.push(format!("muelle rootfs driver: {driver}"));
            (
                Contender::new(root.clone(), "muelle"),
                Contender::new(root, "muelle"),
            )
        }
        Err(why) => (
            Contender::unavailable(root.clone(), "muelle", same(why)),
            Contender::unavailable(root, "muelle", same(why)),
        ),
    };
    let mount = match (&driver, util::find_program("mount")) {
        (Err(why), _) => Contender::unavailable((), "mount(8)", same(why)),
        (Ok(d), _) if d != "overlay" => Contender::unavailable(
            (),
            "mount(8)",
            Unavailable::Skipped(format!("the layers are unpacked for the {d} driver")),
        ),
        (Ok(_), None) => Contender::unavailable(
            (),
            "mount(8)",
            Unavailable::Skipped("mount not installed".into()),
        ),
        (Ok(_), Some(_)) => Contender::new((), "mount(8)"),
    };
    let reference = Reference {
        mount,
        umount: Series::default(),
        layers,
    };
    (setup, teardown, reference)
}

impl Bench {
    fn log_command(&mut self, cmd: &mut Command, timeout: Duration) -> Result<f64, String> {
        exec::timed_within(cmd, &mut self.log, timeout)
    }

    /// One load into a fresh folder, cleaned up after; the load's time.
    fn load_once(&mut self, loader: &Loader) -> Result<f64, String> {
        let dir = self.scratch.fresh("load")?;
        let run = self.scratch.fresh_run("load");
        let made = run.and_then(|run| {
            for sub in [dir.join("root"), dir.join("tmp"), run.join("run")] {
                fs::create_dir(&sub)
                    .map_err(|e| format!("cannot create {}: {e}", sub.display()))?;
            }
            Ok(run)
        });
        let loaded = match &made {
            Ok(run) => self.load_in(loader, &dir, run),
            Err(e) => Err(e.clone()),
        };
        let cleaned = match &made {
            Ok(run) => self
                .clean_load(loader, &dir, run)
                .and_then(|()| scratch::clear(run)),
            Err(_) => scratch::clear(&dir),
        };
        sync();
        let ms = loaded?;
        cleaned?;
        Ok(ms)
    }

    /// The load into `dir`, with runtime state in `run` (see `podman_store`).
    fn load_in(&mut self, loader: &Loader, dir: &Path, run: &Path) -> Result<f64, String> {
        let archive = self.fixture.archive.clone();
        let (root, tmp) = (dir.join("root"), dir.join("tmp"));
        match loader {
            Loader::Muelle(program) => {
                let mut cmd = Command::new(program);
                cmd.arg("--root")
                    .arg(&root)
                    .arg("--runroot")
                    .arg(run.join("run"))
                    .args(["load", "-i"])
                    .arg(&archive)
                    .env("TMPDIR", &tmp);
                let ms = self.log_command(&mut cmd, LOAD_TIMEOUT)?;
                self.check_muelle_load(&root)?;
                Ok(ms)
            }
            Loader::MuelleApi => {
                let helper = self.helper.as_ref().ok_or("no image-session helper")?;
                let mut cmd = helper.load_command(&root, &archive);
                cmd.env("TMPDIR", &tmp);
                let ms = self.log_command(&mut cmd, LOAD_TIMEOUT)?;
                self.check_muelle_load(&root)?;
                Ok(ms)
            }
            Loader::Podman(program, driver) => {
                let mut cmd = Command::new(program);
                cmd.args(podman_store(dir, run, driver))
                    .arg("load")
                    .arg("-i")
                    .arg(&archive)
                    .env("TMPDIR", &tmp);
                let ms = self.log_command(&mut cmd, LOAD_TIMEOUT)?;
                let layers = dir
                    .join("root")
                    .join(format!("{driver}-layers/layers.json"));
                let listed = fs::read(&layers)
                    .ok()
                    .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
                    .and_then(|v| v.as_array().map(Vec::len))
                    .unwrap_or(0);
                if listed != self.fixture.layers.len() {
                    return Err(format!(
                        "podman load exited 0 but {} lists {listed} layers",
                        layers.display()
                    ));
                }
                Ok(ms)
            }
            Loader::SkopeoUmoci { skopeo, umoci } => {
                let layout = format!("oci:{}:{LAYOUT_TAG}", dir.join("layout").display());
                let mut copy = Command::new(skopeo);
                copy.arg("copy")
                    .arg(format!("oci-archive:{}", archive.display()))
                    .arg(&layout)
                    .env("TMPDIR", &tmp);
                let copied = self.log_command(&mut copy, LOAD_TIMEOUT)?;
                let bundle = dir.join("bundle");
                let mut unpack = Command::new(umoci);
                unpack
                    .args(["unpack", "--image"])
                    .arg(format!("{}:{LAYOUT_TAG}", dir.join("layout").display()))
                    .arg(&bundle)
                    .env("TMPDIR", &tmp);
                let unpacked = self.log_command(&mut unpack, LOAD_TIMEOUT)?;
                let rootfs = bundle.join("rootfs");
                if !rootfs.join("srv/app/bin/server").is_file() || rootfs.join("etc/motd").exists()
                {
                    return Err("umoci unpack exited 0 but the rootfs is not the image's".into());
                }
                Ok(copied + unpacked)
            }
        }
    }

    /// A muelle root that does not hold every layer of the image is a
    /// failed load, whatever the exit status said.
    fn check_muelle_load(&self, root: &Path) -> Result<(), String> {
        let layers = root.join("image/layers");
        let complete = fs::read_dir(&layers)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().join("layer.json").is_file())
                    .count()
            })
            .unwrap_or(0);
        if complete != self.fixture.layers.len() {
            return Err(format!(
                "muelle load exited 0 but {} holds {complete} layers",
                layers.display()
            ));
        }
        Ok(())
    }

    /// podman's store goes through `podman system reset -f` first (its
    /// own cleanup, which also unmounts what its driver mounted); then
    /// whatever is left mounted is unmounted and the folder removed.
    fn clean_load(&mut self, loader: &Loader, dir: &Path, run: &Path) -> Result<(), String> {
        let reset = match loader {
            Loader::Podman(program, driver) => {
                let mut cmd = Command::new(program);
                cmd.args(podman_store(dir, run, driver))
                    .args(["system", "reset", "-f"])
                    .env("TMPDIR", dir.join("tmp"));
                self.log_command(&mut cmd, SHORT_TIMEOUT).map(drop)
            }
            _ => Ok(()),
        };
        let cleared = scratch::clear(dir);
        reset.map_err(|e| format!("podman system reset: {e}"))?;
        cleared
    }

    /// muelle's unpack of the five layers into a fresh root (in-process
    /// time), cleaned up after.
    fn unpack_muelle(&mut self) -> Result<f64, String> {
        let dir = self.scratch.fresh("unpack-muelle")?;
        let helper = self.helper.as_ref().ok_or("no image-session helper")?;
        let unpacked = helper.unpack(&dir.join("root"), &self.fixture_json, &mut self.log);
        let cleared = scratch::clear(&dir);
        sync();
        let unpacked = unpacked?;
        cleared?;
        if unpacked.layers.len() != self.fixture.layers.len() {
            return Err(format!("{} layers unpacked", unpacked.layers.len()));
        }
        Ok(unpacked.total_ms)
    }

    /// `tar -xzf` of each layer blob into its own fresh folder (made
    /// untimed); the sum of the five commands' times.
    fn unpack_tar(&mut self, tar: &Path) -> Result<f64, String> {
        let dir = self.scratch.fresh("unpack-tar")?;
        let outcome = (|| -> Result<f64, String> {
            let mut total = 0.0;
            for (n, layer) in self.fixture.layers.clone().iter().enumerate() {
                let into = dir.join(n.to_string());
                fs::create_dir(&into).map_err(|e| format!("cannot create {n}: {e}"))?;
                let mut cmd = Command::new(tar);
                cmd.arg("-xzf").arg(&layer.path).arg("-C").arg(&into);
                total += self.log_command(&mut cmd, LOAD_TIMEOUT)?;
            }
            Ok(total)
        })();
        let cleared = scratch::clear(&dir);
        sync();
        let total = outcome?;
        cleared?;
        Ok(total)
    }

    /// One helper run: a warm-up and [`ROOTFS_RUNS`] setups and teardowns.
    fn rootfs_round(&mut self, setup: &mut Contender<PathBuf>, teardown: &mut Contender<PathBuf>) {
        let (Ok(setups), Ok(teardowns)) = (&mut setup.state, &mut teardown.state) else {
            return;
        };
        let Some(helper) = &self.helper else { return };
        match helper.rootfs(
            &setup.kind,
            &self.fixture_json,
            1,
            ROOTFS_RUNS,
            &mut self.log,
        ) {
            Ok(measured) => {
                setups.samples.extend(measured.setup_ms);
                teardowns.samples.extend(measured.teardown_ms);
            }
            Err(reason) => {
                eprintln!("rootfs, muelle: a round failed: {reason}");
                setups.failures.push(reason.clone());
                teardowns.failures.push(reason);
            }
        }
    }

    /// A warm-up and [`ROOTFS_RUNS`] mount(8) + umount(8) pairs, each in a
    /// fresh folder.
    fn mount_round(&mut self, reference: &mut Reference) {
        if !reference.mount.live() {
            return;
        }
        for n in 0..=ROOTFS_RUNS {
            let outcome = self.mount_once(&reference.layers);
            let Ok(mounts) = &mut reference.mount.state else {
                return;
            };
            match outcome {
                Ok(_) if n == 0 => {}
                Ok((mount, umount)) => {
                    mounts.samples.push(mount);
                    reference.umount.samples.push(umount);
                }
                Err(reason) => {
                    eprintln!("rootfs, mount(8): a run failed: {reason}");
                    mounts.failures.push(reason.clone());
                    reference.umount.failures.push(reason);
                }
            }
        }
    }

    fn mount_once(&mut self, layers: &[PathBuf]) -> Result<(f64, f64), String> {
        let dir = self.scratch.fresh("mount")?;
        let outcome = (|| -> Result<(f64, f64), String> {
            let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
            for d in [&upper, &work, &merged] {
                fs::create_dir(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            }
            // overlay lists the top layer first.
            let lower: Vec<String> = layers
                .iter()
                .rev()
                .map(|l| l.display().to_string())
                .collect();
            let options = format!(
                "lowerdir={},upperdir={},workdir={}",
                lower.join(":"),
                upper.display(),
                work.display()
            );
            let mut mount = Command::new("mount");
            mount
                .args(["-t", "overlay", MOUNT_SOURCE, "-o", &options])
                .arg(&merged);
            let mounted = self.log_command(&mut mount, SHORT_TIMEOUT)?;
            let mut umount = Command::new("umount");
            umount.arg(&merged);
            let unmounted = self.log_command(&mut umount, SHORT_TIMEOUT)?;
            Ok((mounted, unmounted))
        })();
        let cleared = scratch::clear(&dir);
        let times = outcome?;
        cleared?;
        Ok(times)
    }
}

/// podman's global options that keep everything of a store in `dir`,
/// but its `--runroot`, which podman wants under 50 characters: `run/run`.
fn podman_store(dir: &Path, run: &Path, driver: &str) -> Vec<OsString> {
    let at = |sub: &str| dir.join(sub).into_os_string();
    vec![
        "--root".into(),
        at("root"),
        "--runroot".into(),
        run.join("run").into_os_string(),
        "--tmpdir".into(),
        at("libpod-tmp"),
        "--network-config-dir".into(),
        at("networks"),
        "--volumepath".into(),
        at("volumes"),
        "--events-backend".into(),
        "none".into(),
        "--storage-driver".into(),
        driver.into(),
    ]
}

/// Flushes what the last run wrote, untimed, so that its writeback does
/// not land in the next run's time.
fn sync() {
    // SAFETY: sync(2) takes nothing and cannot fail.
    unsafe { libc::sync() };
}
