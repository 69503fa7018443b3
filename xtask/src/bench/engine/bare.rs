//! runc and crun alone, without an engine: what an engine's `run` and
//! `exec` cost at the least on this machine.
//!
//! - `run`: `RUNTIME --root R run --bundle B ID` of a bundle running
//!   `true`, timed by the same child process as `cargo xtask bench
//!   runtime` (its [`Job`]), crun's in a private mount namespace where the
//!   hybrid cgroup2 mount shows no controllers (crun 1.8 refuses them).
//! - `exec`: `RUNTIME --root R exec ID true` on a container running `sleep
//!   1000`, started once with `run -d` (crun's in `unshare -m` with the
//!   same bind mount).
//!
//! The bundles' root filesystem is the test image's layer, so the runtimes
//! run the very files muelle and podman run; their config.json is
//! `runc spec`'s (new pid, network, ipc, uts and mount namespaces: the
//! network one holds only a loopback, as `--network none`). `crun*` is
//! crun running the config.json muelle itself generates for `run --network
//! none` (docker's defaults: its seccomp profile, capabilities, masked and
//! read-only paths, the cgroup mounts), so that the difference to muelle is
//! what the engine adds around the runtime.
//!
//! Clean-up ([`Bare::clean_up`], also on drop) deletes, forcibly, every
//! container left in the runtime's state folder.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::cli::TIMEOUT;
use super::guard::{self, Quiet};
use crate::bench::exec;
use crate::bench::runtime::job::{self, Job, Outcome};
use crate::bundle::BundleBuilder;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Runtime {
    Runc,
    Crun,
    /// crun on muelle's own config.json.
    CrunMuelleSpec,
}

impl Runtime {
    pub fn name(self) -> &'static str {
        match self {
            Self::Runc => "runc",
            Self::Crun => "crun",
            Self::CrunMuelleSpec => "crun*",
        }
    }

    /// The program it runs.
    pub fn program(self) -> &'static str {
        match self {
            Self::Runc => "runc",
            Self::Crun | Self::CrunMuelleSpec => "crun",
        }
    }
}

/// The bundles the runtimes run, all on the test image's files, in a
/// folder of the bench (which removes them with the folder): `runc
/// spec`'s, and muelle's once [`Bundles::add_muelle_spec`] made them.
pub struct Bundles {
    pub runc_spec: BundleSet,
    pub muelle_spec: Option<BundleSet>,
    dir: PathBuf,
}

/// One config's bundles.
pub struct BundleSet {
    /// `true`, timed.
    pub run: PathBuf,
    /// [`job::PROBE_ARGS`], run first.
    pub probe: PathBuf,
    /// `sleep 1000`, for `exec`.
    pub sleep: PathBuf,
}

impl Bundles {
    /// Makes the bundles in `dir`: each a config.json as [`BundleBuilder`]
    /// writes it (runc's default spec, the command set, no terminal) and a
    /// rootfs unpacked from the archive's layers.
    pub fn new(archive: &Path, dir: &Path) -> Result<Bundles> {
        Ok(Bundles {
            runc_spec: BundleSet::new(archive, dir)?,
            muelle_spec: None,
            dir: dir.to_owned(),
        })
    }

    /// Bundles on `config` (a config.json muelle wrote for a container of
    /// the test image, its mount sources kept outside muelle's instance),
    /// sharing the runc spec bundles' root filesystem.
    pub fn add_muelle_spec(&mut self, config: &Value) -> Result<()> {
        let rootfs = self.runc_spec.run.join("rootfs");
        let bundle = |name: &str, args: &[&str]| -> Result<PathBuf> {
            let path = self.dir.join(name);
            fs::create_dir_all(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut config = config.clone();
            // crun 1.8 knows spec versions up to 1.0.x; nothing muelle
            // writes needs a later one.
            config["ociVersion"] = Value::from("1.0.2");
            config["root"] = serde_json::json!({"path": rootfs, "readonly": false});
            config["process"]["args"] = serde_json::json!(args);
            config["process"]["terminal"] = Value::Bool(false);
            if let Some(linux) = config["linux"].as_object_mut() {
                linux.remove("cgroupsPath");
            }
            if let Some(obj) = config.as_object_mut() {
                obj.remove("hooks");
            }
            let text = serde_json::to_vec_pretty(&config)?;
            fs::write(path.join("config.json"), text)
                .with_context(|| format!("cannot write {}/config.json", path.display()))?;
            Ok(path)
        };
        self.muelle_spec = Some(BundleSet {
            run: bundle("spec-true", &["true"])?,
            probe: bundle("spec-probe", &job::PROBE_ARGS)?,
            sleep: bundle("spec-sleep", &["sleep", "1000"])?,
        });
        Ok(())
    }
}

impl BundleSet {
    fn new(archive: &Path, dir: &Path) -> Result<BundleSet> {
        let layout = dir.join("layout");
        fs::create_dir_all(&layout)
            .with_context(|| format!("cannot create {}", layout.display()))?;
        let layers = image_layers(archive, &layout)?;
        let bundle = |name: &str, args: &[&str]| -> Result<PathBuf> {
            let path = dir.join(name);
            let rootfs = path.join("rootfs");
            fs::create_dir_all(&rootfs)
                .with_context(|| format!("cannot create {}", rootfs.display()))?;
            let spec = BundleBuilder::new().args(args.iter().copied()).build()?;
            fs::copy(spec.path().join("config.json"), path.join("config.json"))
                .with_context(|| format!("cannot write {}/config.json", path.display()))?;
            for layer in &layers {
                let file = File::open(layer)
                    .with_context(|| format!("cannot open {}", layer.display()))?;
                tar::Archive::new(file)
                    .unpack(&rootfs)
                    .with_context(|| format!("cannot unpack {}", layer.display()))?;
            }
            Ok(path)
        };
        Ok(BundleSet {
            run: bundle("true", &["true"])?,
            probe: bundle("probe", &job::PROBE_ARGS)?,
            sleep: bundle("sleep", &["sleep", "1000"])?,
        })
    }
}

/// Unpacks the OCI archive into `layout` and returns its image's layer
/// blobs, bottom first (uncompressed tars, as the test image has them).
fn image_layers(archive: &Path, layout: &Path) -> Result<Vec<PathBuf>> {
    let file = File::open(archive).with_context(|| format!("cannot open {}", archive.display()))?;
    tar::Archive::new(file)
        .unpack(layout)
        .with_context(|| format!("cannot unpack {}", archive.display()))?;
    let index = read_json(&layout.join("index.json"))?;
    let manifest = index["manifests"][0]["digest"]
        .as_str()
        .context("index.json names no manifest")?;
    let manifest = read_json(&blob(layout, manifest)?)?;
    let layers = manifest["layers"]
        .as_array()
        .context("the manifest lists no layers")?;
    layers
        .iter()
        .map(|layer| {
            let media = layer["mediaType"].as_str().unwrap_or_default();
            if media != "application/vnd.oci.image.layer.v1.tar" {
                bail!("a layer of the test image is {media:?}, not an uncompressed tar");
            }
            blob(layout, layer["digest"].as_str().unwrap_or_default())
        })
        .collect()
}

/// The path of a blob in an OCI layout; the digest is checked to be
/// sha256 hex, so that it names a file inside the layout.
fn blob(layout: &Path, digest: &str) -> Result<PathBuf> {
    match digest.split_once(':') {
        Some(("sha256", hex)) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(layout.join("blobs/sha256").join(hex))
        }
        _ => bail!("{digest:?} is not a sha256 digest"),
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// A runtime with its own state folder.
pub struct Bare {
    pub runtime: Runtime,
    program: PathBuf,
    /// `--root`: its state folder, in the bench's /run folder.
    root: PathBuf,
    /// crun: hide the hybrid cgroup2 mount's controllers when it creates.
    hide: bool,
    /// The container `exec` runs in, once started.
    sleeper: Option<String>,
    log: File,
    cleaned: bool,
}

impl Bare {
    pub fn new(runtime: Runtime, program: &Path, root: PathBuf) -> Result<Bare, String> {
        Ok(Bare {
            runtime,
            program: program.to_owned(),
            root,
            hide: runtime != Runtime::Runc && job::cgroup2_controllers_need_hiding(),
            sleeper: None,
            log: tempfile::tempfile().map_err(|e| format!("cannot create a log file: {e}"))?,
            cleaned: false,
        })
    }

    pub fn name(&self) -> &'static str {
        self.runtime.name()
    }

    /// Its name as container ids may hold it.
    fn id_name(&self) -> &'static str {
        match self.runtime {
            Runtime::CrunMuelleSpec => "crunms",
            other => other.name(),
        }
    }

    /// Whether crun runs in a private mount namespace, for the notes.
    pub fn hides_controllers(&self) -> bool {
        self.hide
    }

    /// Its bundles.
    fn set<'b>(&self, bundles: &'b Bundles) -> Result<&'b BundleSet> {
        match self.runtime {
            Runtime::CrunMuelleSpec => bundles
                .muelle_spec
                .as_ref()
                .context("no bundles on muelle's config.json"),
            _ => Ok(&bundles.runc_spec),
        }
    }

    /// `runs` timed `run`s of the `true` bundle in a bench child; the probe
    /// goes first in round 0.
    pub fn run_round(&self, bundles: &Bundles, round: u32, runs: u32) -> Result<Outcome> {
        let bundles = self.set(bundles)?;
        let job = Job {
            runtime: self.program.clone(),
            root: self.root.clone(),
            bundle: bundles.run.clone(),
            probe_bundle: (round == 0).then(|| bundles.probe.clone()),
            id_prefix: format!("mbe{}-{}-r{round}", std::process::id(), self.id_name()),
            warmup: 0,
            runs,
            hide_cgroup2_controllers: self.hide,
        };
        let outcome = job.run_in_child();
        guard::reap();
        outcome
    }

    /// `RUNTIME --root R ARGS`, in a process group of its own.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg("--root").arg(&self.root).args(args).own_group();
        cmd
    }

    /// Starts the `sleep 1000` container that `exec` runs in.
    pub fn start_sleeper(&mut self, bundles: &Bundles) -> Result<(), String> {
        let id = format!("mbe{}-{}-exec", std::process::id(), self.id_name());
        let bundle = self
            .set(bundles)
            .map_err(|e| format!("{e:#}"))?
            .sleep
            .to_string_lossy()
            .into_owned();
        let args = ["run", "-d", "--bundle", &bundle, &id];
        // Kept until the container runs: the bind mount's source.
        let empty = tempfile::NamedTempFile::new().map_err(|e| format!("empty file: {e}"))?;
        let mut cmd = if self.hide {
            let mut cmd = Command::new("unshare");
            cmd.args(["-m", "--propagation", "private", "sh", "-c"])
                .arg(format!(
                    "mount --bind \"$1\" {} && shift && exec \"$@\"",
                    job::HYBRID_CONTROLLERS
                ))
                .arg("sh")
                .arg(empty.path())
                .arg(&self.program)
                .arg("--root")
                .arg(&self.root)
                .args(args)
                .own_group();
            cmd
        } else {
            self.command(&args)
        };
        self.sleeper = Some(id);
        let outcome = exec::timed_within(&mut cmd, &mut self.log, TIMEOUT);
        guard::reap();
        outcome.map(drop)
    }

    /// One timed `exec ID true`.
    pub fn exec_once(&mut self) -> Result<f64, String> {
        let id = self.sleeper.clone().ok_or("no container to exec in")?;
        let outcome = exec::timed_within(
            &mut self.command(&["exec", &id, "true"]),
            &mut self.log,
            TIMEOUT,
        );
        guard::reap();
        outcome
    }

    /// Deletes every container in the state folder; the problems met.
    pub fn clean_up(&mut self) -> Vec<String> {
        if self.cleaned || !self.root.exists() {
            return Vec::new();
        }
        self.cleaned = true;
        let mut problems = Vec::new();
        let listed = exec::timed_within(&mut self.command(&["list", "-q"]), &mut self.log, TIMEOUT);
        let ids: Vec<String> = match listed {
            Ok(_) => exec::read(&mut self.log)
                .unwrap_or_default()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            Err(e) => {
                problems.push(format!("cannot list its containers: {e}"));
                Vec::new()
            }
        };
        for id in ids {
            let deleted = exec::timed_within(
                &mut self.command(&["delete", "-f", &id]),
                &mut self.log,
                TIMEOUT,
            );
            if let Err(e) = deleted {
                problems.push(e);
            }
        }
        guard::reap();
        for problem in &problems {
            eprintln!("{} clean-up: {problem}", self.name());
        }
        problems
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        self.clean_up();
    }
}
