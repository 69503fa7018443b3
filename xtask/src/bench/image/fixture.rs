//! The image `bench image` loads and unpacks: five gzip layers, about
//! 100 MB of files uncompressed, generated here once and cached in
//! `<target dir>/bench-image/fixture-v<N>/`:
//!
//! - `image.oci.tar`: an OCI archive (`oci-layout`, `index.json`, blobs),
//!   which muelle, `podman load` and `skopeo copy oci-archive:` all read;
//! - `layers/<hex>.tar.gz`: the same layer blobs, for `tar -xzf` and the
//!   unpack helper;
//! - `fixture.json`: their digests, diff ids and sizes ([`Fixture`]).
//!
//! The content imitates a distribution image: a base layer of many small
//! documents, locale files, executables and libraries (with symlinks,
//! hardlinks, a setuid binary, empty folders), a runtime layer with one big
//! library, a layer of thousands of small source and bytecode files, an
//! assets layer with big files (some incompressible, as images and archives
//! are), and an application layer that replaces, deletes (`.wh.` files) and
//! hides (an opaque folder) what is below. Every byte comes from a seeded
//! generator: words for text (gzip gets ~3x), a small instruction table with
//! random operands for binaries (~2x), plain random for media (1x). Times,
//! owners and order are fixed, so the same [`VERSION`] gives the same
//! digests on every machine.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};

/// Bump whenever the generated content changes: the cache folder is named
/// after it, so every checkout makes the new one (and drops older ones).
pub const VERSION: u32 = 1;

/// The name the archive gives the image.
pub const IMAGE_NAME: &str = "localhost/bench/image:latest";
const IMAGE_TAG: &str = "latest";

const MTIME: u64 = 1_700_000_000;
const CREATED: &str = "2023-11-14T22:13:20Z";
const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

const META_FILE: &str = "fixture.json";
const ARCHIVE_FILE: &str = "image.oci.tar";
const LAYERS_DIR: &str = "layers";

/// What `fixture.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Fixture {
    pub version: u32,
    /// The archive, absolute.
    pub archive: PathBuf,
    pub manifest: String,
    pub layers: Vec<LayerFile>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LayerFile {
    /// The gzip blob, absolute.
    pub path: PathBuf,
    pub digest: String,
    pub diff_id: String,
    /// Compressed bytes.
    pub size: u64,
    /// The uncompressed tar, in bytes.
    pub tar_size: u64,
    /// Regular file data, in bytes.
    pub file_bytes: u64,
    pub entries: u64,
}

impl Fixture {
    pub fn tar_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.tar_size).sum()
    }

    pub fn gzip_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    pub fn entries(&self) -> u64 {
        self.layers.iter().map(|l| l.entries).sum()
    }

    /// Where `fixture.json` is for a fixture in `dir`.
    pub fn meta_path(dir: &Path) -> PathBuf {
        dir.join(META_FILE)
    }
}

/// The fixture under `bench_dir` (`<target>/bench-image`): the cached one
/// when it is whole, else generated now (through a temporary folder renamed
/// into place, so a half-made fixture is never used).
pub fn ensure(bench_dir: &Path) -> Result<Fixture> {
    let dir = bench_dir.join(format!("fixture-v{VERSION}"));
    if let Some(fixture) = cached(&dir) {
        return Ok(fixture);
    }
    fs::create_dir_all(bench_dir)
        .with_context(|| format!("cannot create {}", bench_dir.display()))?;
    remove_leftovers(bench_dir);
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".fixture-v{VERSION}-"))
        .tempdir_in(bench_dir)
        .with_context(|| format!("cannot create a folder in {}", bench_dir.display()))?;
    eprintln!("generating the bench image (once) in {}", dir.display());
    let started = std::time::Instant::now();
    generate(tmp.path(), &dir)?;
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    let tmp = tmp.keep();
    fs::rename(&tmp, &dir).with_context(|| format!("cannot rename into {}", dir.display()))?;
    let fixture = cached(&dir).context("the fixture just generated does not read back")?;
    eprintln!(
        "bench image: {} layers, {} entries, {:.1} MB of tar, {:.1} MB gzip, in {:.1} s",
        fixture.layers.len(),
        fixture.entries(),
        mb(fixture.tar_bytes()),
        mb(fixture.gzip_bytes()),
        started.elapsed().as_secs_f64()
    );
    Ok(fixture)
}

pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// The fixture in `dir` when its metadata reads and every file is there
/// with its size.
fn cached(dir: &Path) -> Option<Fixture> {
    let text = fs::read(Fixture::meta_path(dir)).ok()?;
    let fixture: Fixture = serde_json::from_slice(&text).ok()?;
    let whole = fixture.version == VERSION
        && fixture.archive.is_file()
        && fixture
            .layers
            .iter()
            .all(|l| fs::metadata(&l.path).is_ok_and(|m| m.len() == l.size));
    whole.then_some(fixture)
}

/// Older fixture versions, and temporary folders of generations that died.
fn remove_leftovers(bench_dir: &Path) {
    let Ok(entries) = fs::read_dir(bench_dir) else {
        return;
    };
    let current = format!("fixture-v{VERSION}");
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let old = name.starts_with("fixture-v") && name != current;
        if (old || name.starts_with(".fixture-v"))
            && let Err(e) = fs::remove_dir_all(entry.path())
        {
            eprintln!("cannot remove {}: {e}", entry.path().display());
        }
    }
}

/// Writes the layers, the archive and `fixture.json` into `tmp`, naming
/// the paths as they will be once `tmp` is renamed to `dir`.
fn generate(tmp: &Path, dir: &Path) -> Result<()> {
    fs::create_dir(tmp.join(LAYERS_DIR)).context("cannot create the layers folder")?;
    let mut layers = Vec::new();
    for (n, make) in LAYERS.iter().enumerate() {
        let mut rng = Rng::new(0x6d75_656c_6c65 + n as u64);
        let mut layer = Layer::default();
        make(&mut rng, &mut layer);
        let written = write_layer(&layer, &tmp.join(LAYERS_DIR))?;
        layers.push(written);
    }
    let blobs = image_blobs(&layers)?;
    write_archive(&tmp.join(ARCHIVE_FILE), &blobs, &layers, tmp)?;
    let fixture = Fixture {
        version: VERSION,
        archive: dir.join(ARCHIVE_FILE),
        manifest: blobs.manifest.0.clone(),
        layers: layers
            .into_iter()
            .map(|l| LayerFile {
                path: dir.join(LAYERS_DIR).join(l.file_name()),
                ..l
            })
            .collect(),
    };
    let text = serde_json::to_vec_pretty(&fixture).context("cannot serialize the fixture")?;
    fs::write(Fixture::meta_path(tmp), text).context("cannot write fixture.json")
}

/// SplitMix64: small, fast, and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the tiny modulo bias does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Log-uniform in `lo..=hi`: many small sizes, a few big ones, as file
    /// sizes are.
    pub fn size(&mut self, lo: u64, hi: u64) -> u64 {
        let (l, h) = ((lo.max(1) as f64).ln(), (hi.max(1) as f64).ln());
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((l + (h - l) * unit).exp() as u64).clamp(lo, hi)
    }
}

/// Text: words of a fixed vocabulary, common ones more often, in lines.
pub fn text(rng: &mut Rng, len: u64) -> Vec<u8> {
    static VOCABULARY: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    let words = VOCABULARY.get_or_init(|| {
        let mut rng = Rng::new(7);
        (0..4096)
            .map(|_| {
                let n = 2 + rng.below(5) + rng.below(5);
                (0..n).map(|_| b'a' + rng.below(26) as u8).collect()
            })
            .collect()
    });
    let len = len as usize;
    let mut out = Vec::with_capacity(len + 16);
    let mut in_line = 0;
    while out.len() < len {
        // The square skews toward the first words (Zipf-like).
        let r = rng.next_u64() & 0xffff;
        let word = &words[((r * r) >> 20) as usize % words.len()];
        out.extend_from_slice(word);
        in_line += 1;
        if in_line >= 8 + rng.below(8) {
            out.push(b'\n');
            in_line = 0;
        } else {
            out.push(b' ');
        }
    }
    out.truncate(len);
    out
}

/// Code-like binary: 8-byte "instructions" from a table of 512, some with
/// a random 4-byte operand, and runs of zeros (padding, tables).
pub fn binary(rng: &mut Rng, len: u64) -> Vec<u8> {
    static OPCODES: std::sync::OnceLock<Vec<[u8; 8]>> = std::sync::OnceLock::new();
    let table = OPCODES.get_or_init(|| {
        let mut rng = Rng::new(11);
        (0..512).map(|_| rng.next_u64().to_le_bytes()).collect()
    });
    let len = len as usize;
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        let r = rng.next_u64();
        match r & 0xf {
            0 => out.extend(std::iter::repeat_n(0, 8 + (r >> 8) as usize % 56)),
            1..=5 => {
                out.extend_from_slice(&table[(r >> 8) as usize % table.len()][..4]);
                out.extend_from_slice(&((r >> 32) as u32).to_le_bytes());
            }
            _ => out.extend_from_slice(&table[((r >> 8) as usize & 0xffff) % 96]),
        }
    }
    out.truncate(len);
    out
}

/// Incompressible, as media and archives inside images are.
pub fn random(rng: &mut Rng, len: u64) -> Vec<u8> {
    let len = len as usize;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// One entry of a layer.
enum Node {
    Folder {
        mode: u32,
    },
    File {
        mode: u32,
        owner: u64,
        data: Vec<u8>,
    },
    Symlink(String),
    Hardlink(String),
}

/// A layer's tree: paths relative to `/`, written sorted (a folder before
/// what it holds), hardlinks last (after their targets).
#[derive(Default)]
pub struct Layer {
    nodes: BTreeMap<String, Node>,
}

impl Layer {
    fn parents(&mut self, path: &str) {
        let mut at = 0;
        while let Some(slash) = path[at..].find('/') {
            let parent = &path[..at + slash];
            self.nodes
                .entry(parent.to_owned())
                .or_insert(Node::Folder { mode: 0o755 });
            at += slash + 1;
        }
    }

    fn folder(&mut self, path: &str, mode: u32) {
        self.parents(path);
        self.nodes.insert(path.to_owned(), Node::Folder { mode });
    }

    fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) {
        self.owned_file(path, mode, 0, data);
    }

    fn owned_file(&mut self, path: &str, mode: u32, owner: u64, data: Vec<u8>) {
        self.parents(path);
        self.nodes
            .insert(path.to_owned(), Node::File { mode, owner, data });
    }

    fn symlink(&mut self, path: &str, target: &str) {
        self.parents(path);
        self.nodes
            .insert(path.to_owned(), Node::Symlink(target.to_owned()));
    }

    fn hardlink(&mut self, path: &str, target: &str) {
        self.parents(path);
        self.nodes
            .insert(path.to_owned(), Node::Hardlink(target.to_owned()));
    }

    /// A whiteout of `path` (a file or folder of a lower layer).
    fn whiteout(&mut self, path: &str) {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let wh = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&wh, 0o644, Vec::new());
    }

    /// `dir` hides everything lower layers have in it.
    fn opaque(&mut self, dir: &str) {
        self.file(&format!("{dir}/.wh..wh..opq"), 0o644, Vec::new());
    }
}

type MakeLayer = fn(&mut Rng, &mut Layer);

/// The five layers, lowest first (sizes are of the files, uncompressed).
const LAYERS: [MakeLayer; 5] = [base, runtime, packages, assets, app];

/// ~30 MB, ~2500 entries: documents, locales, executables, libraries.
fn base(rng: &mut Rng, l: &mut Layer) {
    for (dir, mode) in [
        ("tmp", 0o1777),
        ("root", 0o700),
        ("home", 0o755),
        ("var/cache", 0o755),
        ("var/log", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
    ] {
        l.folder(dir, mode);
    }
    for n in 0..150 {
        let len = rng.size(100, 3000);
        l.file(&format!("etc/conf-{n:03}.conf"), 0o644, text(rng, len));
    }
    l.file("etc/motd", 0o644, text(rng, 400));
    for n in 0..260 {
        for doc in ["copyright", "changelog", "README"] {
            let len = rng.size(1000, 12_000);
            l.file(
                &format!("usr/share/doc/pkg-{n:03}/{doc}"),
                0o644,
                text(rng, len),
            );
        }
    }
    for locale in 0..50 {
        for n in 0..15 {
            let len = rng.size(2000, 20_000);
            l.file(
                &format!("usr/share/locale/l{locale:02}/LC_MESSAGES/pkg-{n:03}.mo"),
                0o644,
                binary(rng, len),
            );
        }
    }
    for n in 0..80 {
        let len = rng.size(20_000, 300_000);
        l.file(&format!("usr/bin/cmd-{n:03}"), 0o755, binary(rng, len));
    }
    for n in 0..100 {
        l.symlink(
            &format!("usr/bin/alias-{n:03}"),
            &format!("cmd-{:03}", n % 80),
        );
    }
    l.hardlink("usr/bin/cmd-000-hard", "usr/bin/cmd-000");
    l.hardlink("usr/bin/cmd-001-hard", "usr/bin/cmd-001");
    l.file("usr/bin/su", 0o4755, binary(rng, 60_000));
    l.symlink("bin", "usr/bin");
    for n in 0..25 {
        let len = rng.size(50_000, 500_000);
        let so = format!("usr/lib/x86_64-linux-gnu/libbase-{n:02}.so.1.2");
        l.file(&so, 0o644, binary(rng, len));
        l.symlink(
            &format!("usr/lib/x86_64-linux-gnu/libbase-{n:02}.so.1"),
            &format!("libbase-{n:02}.so.1.2"),
        );
    }
    l.file(
        "usr/lib/locale/locale-archive",
        0o644,
        binary(rng, 3_000_000),
    );
    l.file(
        "usr/lib/x86_64-linux-gnu/libbig.so.3",
        0o644,
        binary(rng, 4_000_000),
    );
}

/// ~20 MB: shared libraries, one big module file, headers.
fn runtime(rng: &mut Rng, l: &mut Layer) {
    for n in 0..50 {
        let len = rng.size(50_000, 600_000);
        l.file(
            &format!("usr/lib/x86_64-linux-gnu/librt-{n:02}.so"),
            0o644,
            binary(rng, len),
        );
    }
    l.file("usr/lib/runtime/lib/modules", 0o644, binary(rng, 8_000_000));
    for n in 0..200 {
        let len = rng.size(1000, 20_000);
        l.file(
            &format!("usr/include/runtime/h{n:03}.h"),
            0o644,
            text(rng, len),
        );
    }
}

/// ~21 MB, ~5000 files: a language's packages, source and bytecode.
fn packages(rng: &mut Rng, l: &mut Layer) {
    for pkg in 0..100 {
        for module in 0..25 {
            let base = format!("usr/lib/python3/dist-packages/pkg{pkg:03}");
            let len = rng.size(500, 16_000);
            l.file(
                &format!("{base}/module_{module:02}.py"),
                0o644,
                text(rng, len),
            );
            let len = rng.size(300, 8000);
            l.file(
                &format!("{base}/__pycache__/module_{module:02}.cpython-311.pyc"),
                0o644,
                binary(rng, len),
            );
        }
    }
}

/// ~16 MB: big files, some incompressible; the app's first config.
fn assets(rng: &mut Rng, l: &mut Layer) {
    l.file("srv/app/model/weights.bin", 0o644, binary(rng, 8_000_000));
    l.file("srv/app/static/bundle.js", 0o644, text(rng, 3_000_000));
    for n in 0..20 {
        let len = rng.size(50_000, 250_000);
        l.file(
            &format!("srv/app/static/images/img-{n:02}.png"),
            0o644,
            random(rng, len),
        );
    }
    l.file("srv/app/media.tar.gz", 0o644, random(rng, 2_000_000));
    for n in 0..10 {
        l.file(&format!("etc/app/old-{n}.conf"), 0o644, text(rng, 800));
    }
}

/// ~10 MB: the application, replacing, deleting and hiding lower content.
fn app(rng: &mut Rng, l: &mut Layer) {
    l.owned_file("srv/app/bin/server", 0o755, 1000, binary(rng, 6_000_000));
    for n in 0..300 {
        let len = rng.size(1000, 15_000);
        l.owned_file(
            &format!("srv/app/src/mod{n:03}.rs"),
            0o644,
            1000,
            text(rng, len),
        );
    }
    l.file("srv/app/static/bundle.js", 0o644, text(rng, 1_500_000));
    l.whiteout("usr/share/doc/pkg-000");
    l.whiteout("etc/motd");
    l.opaque("etc/app");
    l.file("etc/app/app.conf", 0o644, text(rng, 1200));
}

/// Writes `data` to `inner` and hashes it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    fn finish(self) -> (W, String, u64) {
        let digest = format!("sha256:{}", hex::encode(self.hash.finalize()));
        (self.inner, digest, self.bytes)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn header(kind: tar::EntryType, mode: u32, owner: u64, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(owner);
    header.set_gid(owner);
    header.set_mtime(MTIME);
    header.set_size(size);
    header
}

impl LayerFile {
    fn file_name(&self) -> String {
        format!("{}.tar.gz", self.digest.trim_start_matches("sha256:"))
    }
}

/// The layer as a gzip tar in `dir`, named by its digest.
fn write_layer(layer: &Layer, dir: &Path) -> Result<LayerFile> {
    let part = dir.join(".part");
    let file = File::create(&part).with_context(|| format!("cannot create {}", part.display()))?;
    let compressed = Hashing::new(BufWriter::with_capacity(1 << 20, file));
    let gzip = flate2::write::GzEncoder::new(compressed, flate2::Compression::default());
    let mut tar = tar::Builder::new(Hashing::new(gzip));
    let (mut entries, mut file_bytes) = (0, 0);
    let links = layer
        .nodes
        .iter()
        .filter(|(_, n)| matches!(n, Node::Hardlink(_)));
    let others = layer
        .nodes
        .iter()
        .filter(|(_, n)| !matches!(n, Node::Hardlink(_)));
    for (path, node) in others.chain(links) {
        use tar::EntryType as T;
        let added = match node {
            Node::Folder { mode } => {
                tar.append_data(&mut header(T::Directory, *mode, 0, 0), path, io::empty())
            }
            Node::File { mode, owner, data } => {
                file_bytes += data.len() as u64;
                let mut h = header(T::Regular, *mode, *owner, data.len() as u64);
                tar.append_data(&mut h, path, data.as_slice())
            }
            Node::Symlink(target) => {
                tar.append_link(&mut header(T::Symlink, 0o777, 0, 0), path, target)
            }
            Node::Hardlink(target) => {
                tar.append_link(&mut header(T::Link, 0o644, 0, 0), path, target)
            }
        };
        added.with_context(|| format!("cannot add {path} to a layer"))?;
        entries += 1;
    }
    let (gzip, diff_id, tar_size) = tar
        .into_inner()
        .context("cannot finish a layer tar")?
        .finish();
    let (buffered, digest, size) = gzip.finish().context("cannot finish gzip")?.finish();
    buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .context("cannot write a layer")?;
    let written = LayerFile {
        path: PathBuf::new(),
        digest,
        diff_id,
        size,
        tar_size,
        file_bytes,
        entries,
    };
    let path = dir.join(written.file_name());
    fs::rename(&part, &path).with_context(|| format!("cannot rename to {}", path.display()))?;
    Ok(LayerFile { path, ..written })
}

/// (digest, bytes) of the config, the manifest; and index.json.
struct ImageBlobs {
    config: (String, Vec<u8>),
    manifest: (String, Vec<u8>),
    index: Vec<u8>,
}

fn blob(value: &serde_json::Value) -> Result<(String, Vec<u8>)> {
    let bytes = serde_json::to_vec(value).context("cannot serialize a blob")?;
    Ok((
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
        bytes,
    ))
}

fn image_blobs(layers: &[LayerFile]) -> Result<ImageBlobs> {
    let history: Vec<_> = (0..layers.len())
        .map(|n| json!({ "created": CREATED, "created_by": format!("bench layer {n}") }))
        .collect();
    let config = blob(&json!({
        "created": CREATED,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/srv/app/bin/server"],
            "WorkingDir": "/srv/app",
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.diff_id.as_str()).collect::<Vec<_>>(),
        },
        "history": history,
    }))?;
    let manifest = blob(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": { "mediaType": MEDIA_CONFIG, "digest": config.0, "size": config.1.len() },
        "layers": layers
            .iter()
            .map(|l| json!({ "mediaType": MEDIA_LAYER, "digest": l.digest, "size": l.size }))
            .collect::<Vec<_>>(),
    }))?;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": manifest.0,
            "size": manifest.1.len(),
            "platform": { "architecture": "amd64", "os": "linux" },
            "annotations": {
                "io.containerd.image.name": IMAGE_NAME,
                "org.opencontainers.image.ref.name": IMAGE_TAG,
            },
        }],
    }))
    .context("cannot serialize index.json")?;
    Ok(ImageBlobs {
        config,
        manifest,
        index,
    })
}

/// The OCI archive: the layout's files, sorted, 0:0, fixed times.
fn write_archive(path: &Path, blobs: &ImageBlobs, layers: &[LayerFile], tmp: &Path) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
    let mut small: BTreeMap<String, &[u8]> = BTreeMap::new();
    small.insert("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#);
    small.insert("index.json".into(), &blobs.index);
    for (digest, bytes) in [&blobs.config, &blobs.manifest] {
        small.insert(blob_path(digest), bytes);
    }
    for dir in ["blobs", "blobs/sha256"] {
        tar.append_data(
            &mut header(tar::EntryType::Directory, 0o755, 0, 0),
            dir,
            io::empty(),
        )?;
    }
    let mut big: BTreeMap<String, &LayerFile> = BTreeMap::new();
    for layer in layers {
        big.insert(blob_path(&layer.digest), layer);
    }
    for (name, bytes) in small {
        let mut h = header(tar::EntryType::Regular, 0o644, 0, bytes.len() as u64);
        tar.append_data(&mut h, &name, bytes)?;
    }
    for (name, layer) in big {
        let source = tmp.join(LAYERS_DIR).join(layer.file_name());
        let file =
            File::open(&source).with_context(|| format!("cannot open {}", source.display()))?;
        let mut h = header(tar::EntryType::Regular, 0o644, 0, layer.size);
        tar.append_data(&mut h, &name, file)?;
    }
    let out = tar.into_inner().context("cannot finish the archive")?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all().context("cannot sync the archive")?;
    if fs::metadata(path)?.len() < layers.iter().map(|l| l.size).sum::<u64>() {
        bail!("{} came out shorter than its layers", path.display());
    }
    Ok(())
}

fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_are_deterministic_and_compress_as_meant() {
        let gz = |data: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).expect("gzip");
            e.finish().expect("gzip").len() as f64
        };
        let len = 1 << 20;
        let t = text(&mut Rng::new(1), len);
        assert_eq!(t, text(&mut Rng::new(1), len));
        assert_eq!(t.len() as u64, len);
        let b = binary(&mut Rng::new(1), len);
        let r = random(&mut Rng::new(1), len);
        let (t, b, r) = (
            len as f64 / gz(&t),
            len as f64 / gz(&b),
            len as f64 / gz(&r),
        );
        assert!((2.0..6.0).contains(&t), "text ratio {t}");
        assert!((1.4..4.0).contains(&b), "binary ratio {b}");
        assert!(r < 1.01, "random ratio {r}");
    }

    #[test]
    fn sizes_stay_in_range() {
        let mut rng = Rng::new(3);
        for _ in 0..1000 {
            let s = rng.size(100, 3000);
            assert!((100..=3000).contains(&s));
        }
    }

    #[test]
    fn layer_tar_has_parents_first_and_whiteouts() {
        let mut layer = Layer::default();
        app(&mut Rng::new(5), &mut layer);
        let names: Vec<&String> = layer.nodes.keys().collect();
        let pos = |p: &str| names.iter().position(|n| *n == p).expect(p);
        assert!(pos("srv") < pos("srv/app") && pos("srv/app") < pos("srv/app/bin/server"));
        assert!(layer.nodes.contains_key("usr/share/doc/.wh.pkg-000"));
        assert!(layer.nodes.contains_key("etc/app/.wh..wh..opq"));
    }
}
