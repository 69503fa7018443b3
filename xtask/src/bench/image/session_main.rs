//! `image-session`: what `cargo xtask bench image` times inside a process
//! that links the image crate (built with `--features image-session`):
//!
//! - `unpack ROOT FIXTURE_JSON`: the fixture's layer blobs hardlinked into
//!   ROOT's blob store and the rootfs driver probed (untimed), then each
//!   layer unpacked by `LayerStore::unpack`, checked against its diff id
//!   (timed). Prints `total_ms`, `layers_ms`, the layer folders, `driver`.
//! - `rootfs ROOT FIXTURE_JSON WARMUP RUNS`: on a ROOT where `unpack` ran,
//!   `WARMUP + RUNS` times: `Rootfs::mount` of the layers into a fresh
//!   container folder (setup), then `Rootfs::unmount` (teardown), each
//!   timed; the container folder is removed untimed. Prints `setup_ms` and
//!   `teardown_ms` of the last RUNS, and `driver`.
//! - `load ROOT ARCHIVE`: `image::formats::load`, as `muelle load -i`
//!   does it, for a muelle CLI without `load`. Prints `total_ms`.
//!
//! One JSON line on stdout; an error on stderr and exit status 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use image::{BlobStore, Digest, Images, LayerStore, Rootfs};
use serde_json::{Value, json};

/// The media type the fixture's layers have (see fixture.rs).
const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["unpack", root, fixture] => unpack(Path::new(root), Path::new(fixture)),
        ["rootfs", root, fixture, warmup, runs] => {
            match (warmup.parse::<u32>(), runs.parse::<u32>()) {
                (Ok(w), Ok(r)) => rootfs(Path::new(root), Path::new(fixture), w, r),
                _ => Err(format!(
                    "WARMUP and RUNS are counts, not {warmup:?} {runs:?}"
                )),
            }
        }
        ["load", root, archive] => load(Path::new(root), Path::new(archive)),
        _ => {
            eprintln!(
                "usage: image-session unpack ROOT FIXTURE_JSON\n       \
                 image-session rootfs ROOT FIXTURE_JSON WARMUP RUNS\n       \
                 image-session load ROOT ARCHIVE"
            );
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("image-session: {e}");
            ExitCode::FAILURE
        }
    }
}

fn ms(from: Instant) -> f64 {
    from.elapsed().as_secs_f64() * 1000.0
}

/// A layer of the fixture: its blob file, digest and diff id.
struct FixtureLayer {
    path: PathBuf,
    digest: Digest,
    diff_id: Digest,
}

fn fixture_layers(fixture: &Path) -> Result<Vec<FixtureLayer>, String> {
    let text = std::fs::read(fixture).map_err(|e| format!("reading {}: {e}", fixture.display()))?;
    let value: Value =
        serde_json::from_slice(&text).map_err(|e| format!("parsing {}: {e}", fixture.display()))?;
    let layers = value["layers"]
        .as_array()
        .ok_or_else(|| format!("{} lists no layers", fixture.display()))?;
    layers
        .iter()
        .map(|l| {
            let field = |name: &str| {
                l[name]
                    .as_str()
                    .ok_or_else(|| format!("a layer of {} has no {name}", fixture.display()))
            };
            let digest = |name: &str| field(name)?.parse::<Digest>().map_err(|e| e.to_string());
            Ok(FixtureLayer {
                path: PathBuf::from(field("path")?),
                digest: digest("digest")?,
                diff_id: digest("diff_id")?,
            })
        })
        .collect()
}

fn unpack(root: &Path, fixture: &Path) -> Result<Value, String> {
    let layers = fixture_layers(fixture)?;
    let blobs = BlobStore::open(root).map_err(|e| e.to_string())?;
    for layer in &layers {
        let to = blobs.path(&layer.digest);
        std::fs::hard_link(&layer.path, &to)
            .map_err(|e| format!("linking {} to {}: {e}", layer.path.display(), to.display()))?;
    }
    let store = LayerStore::open(root).map_err(|e| e.to_string())?;
    // The rootfs driver decides the layers' form; a fresh root probes it
    // (an overlay mount) here, untimed, as it is once per data root.
    let form = store.form();
    let driver = image::rootfs::driver(root).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut layers_ms = Vec::new();
    for layer in &layers {
        let one = Instant::now();
        let unpacked = store
            .unpack(&blobs, &layer.digest, MEDIA_LAYER, Some(&layer.diff_id))
            .map_err(|e| format!("unpacking {}: {e}", layer.digest))?;
        layers_ms.push(ms(one));
        if unpacked.diff_id != layer.diff_id {
            return Err(format!(
                "layer {} unpacked to another diff id",
                layer.digest
            ));
        }
    }
    let total_ms = ms(started);
    let paths: Vec<PathBuf> = layers.iter().map(|l| store.path(&l.diff_id)).collect();
    Ok(json!({
        "total_ms": total_ms,
        "layers_ms": layers_ms,
        "layers": paths,
        "form": format!("{form:?}"),
        "driver": driver.name(),
    }))
}

fn rootfs(root: &Path, fixture: &Path, warmup: u32, runs: u32) -> Result<Value, String> {
    let store = LayerStore::open(root).map_err(|e| e.to_string())?;
    let layers: Vec<PathBuf> = fixture_layers(fixture)?
        .iter()
        .map(|l| {
            if store.exists(&l.diff_id) {
                Ok(store.path(&l.diff_id))
            } else {
                Err(format!(
                    "layer {} is not unpacked in {}",
                    l.diff_id,
                    root.display()
                ))
            }
        })
        .collect::<Result<_, _>>()?;
    let rootfs = Rootfs::open(root).map_err(|e| e.to_string())?;
    let containers = root.join("containers");
    std::fs::create_dir_all(&containers)
        .map_err(|e| format!("creating {}: {e}", containers.display()))?;
    let (mut setup_ms, mut teardown_ms) = (Vec::new(), Vec::new());
    for n in 0..warmup + runs {
        let dir = containers.join(format!("bench-{}-{n}", std::process::id()));
        let target = dir.join("merged");
        let started = Instant::now();
        let mounted = rootfs
            .mount(&layers, &dir, &target)
            .map_err(|e| format!("setting up {}: {e}", target.display()))?;
        let setup = ms(started);
        let started = Instant::now();
        mounted
            .unmount()
            .map_err(|e| format!("tearing down {}: {e}", target.display()))?;
        let teardown = ms(started);
        std::fs::remove_dir_all(&dir).map_err(|e| format!("removing {}: {e}", dir.display()))?;
        if n >= warmup {
            setup_ms.push(setup);
            teardown_ms.push(teardown);
        }
    }
    Ok(json!({
        "setup_ms": setup_ms,
        "teardown_ms": teardown_ms,
        "driver": rootfs.driver().name(),
    }))
}

fn load(root: &Path, archive: &Path) -> Result<Value, String> {
    let started = Instant::now();
    let file =
        std::fs::File::open(archive).map_err(|e| format!("opening {}: {e}", archive.display()))?;
    let images = Images::open(root).map_err(|e| e.to_string())?;
    let loaded = image::formats::load(&images, file).map_err(|e| e.to_string())?;
    Ok(json!({ "total_ms": ms(started), "images": loaded.len() }))
}
