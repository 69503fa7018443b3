//! Images in and out of muelle with the real tools (Debian's podman,
//! skopeo, umoci): podman's archives load into muelle, muelle's archives
//! load into podman and run there, skopeo reads muelle's OCI archive, and
//! skopeo and umoci read muelle's store as an OCI layout.
//!
//! The test image is built here from the host's static busybox (Debian's
//! busybox-static), so no network is needed. Each test skips, saying why,
//! when a tool or busybox is missing; podman runs on a private store
//! (`--root`/`--runroot`/`--tmpdir` in a temporary folder, vfs driver),
//! so nothing is left behind on the host.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use image::formats::{self, Format};
use image::import::import;
use image::{ImageRecord, Images};
use storage::store::Store;

const BUSYBOX: &str = "/bin/busybox";

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Why this test cannot run here, if it cannot.
fn missing(tools: &[&str]) -> Option<String> {
    if !Path::new(BUSYBOX).is_file() {
        return Some(format!(
            "{BUSYBOX} is missing (apt-get install busybox-static)"
        ));
    }
    let absent: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    (!absent.is_empty()).then(|| format!("not installed: {}", absent.join(", ")))
}

macro_rules! require {
    ($($tool:expr),*) => {
        if let Some(why) = missing(&[$($tool),*]) {
            println!("skipped: {why}");
            return;
        }
    };
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// A root filesystem: the static busybox, a few applet links, and the
/// account files a container's user lookup reads.
fn busybox_rootfs() -> Vec<u8> {
    let busybox = std::fs::read(BUSYBOX).expect("read busybox");
    let mut b = tar::Builder::new(Vec::new());
    for dir in ["bin/", "etc/", "tmp/"] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, dir, std::io::empty()).expect("dir");
    }
    let mut h = header(tar::EntryType::Regular, 0o755, busybox.len() as u64);
    b.append_data(&mut h, "bin/busybox", busybox.as_slice())
        .expect("busybox");
    for applet in ["sh", "true", "echo", "cat"] {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .expect("link");
    }
    for (name, text) in [
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        ("etc/group", "root:x:0:\n"),
    ] {
        let mut h = header(tar::EntryType::Regular, 0o644, text.len() as u64);
        b.append_data(&mut h, name, text.as_bytes()).expect("file");
    }
    b.into_inner().expect("tar")
}

/// podman on a store of its own.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Podman {
        Podman {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn command(&self) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--storage-driver", "vfs", "--events-backend", "none"]);
        c
    }

    /// Runs podman with `args`; its stdout, or a panic with its stderr.
    fn run(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().expect("spawn podman");
        assert!(
            out.status.success(),
            "podman {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The busybox image, made by `podman import`.
    fn busybox(&self, name: &str) {
        let tar = self.file("rootfs.tar");
        std::fs::write(&tar, busybox_rootfs()).expect("write rootfs");
        self.run(&["import", &tar.to_string_lossy(), name]);
    }

    /// `podman run --rm IMAGE ARGS...` (runc, and the rlimits this host's
    /// podman needs).
    fn run_image(&self, image: &str, args: &[&str]) -> String {
        let mut all = vec![
            "run",
            "--rm",
            "--runtime",
            "runc",
            "--ulimit",
            "nofile=20000:20000",
            "--ulimit",
            "nproc=32768:32768",
            "--network",
            "none",
            image,
        ];
        all.extend_from_slice(args);
        self.run(&all)
    }
}

impl Drop for Podman {
    /// Containers ran with --rm; the store is files only (vfs), except
    /// what `system reset` knows to undo.
    fn drop(&mut self) {
        let _ = self.command().args(["system", "reset", "--force"]).output();
    }
}

struct Muelle {
    _dir: tempfile::TempDir,
    images: Images,
}

impl Muelle {
    fn new() -> Muelle {
        let dir = tempfile::tempdir().expect("tempdir");
        let images = Images::open(dir.path()).expect("images");
        Muelle { _dir: dir, images }
    }

    fn load(&self, path: &Path) -> Vec<ImageRecord> {
        let file = std::fs::File::open(path).expect("open archive");
        formats::load(&self.images, std::io::BufReader::new(file))
            .expect("muelle load")
            .into_iter()
            .map(|l| l.record)
            .collect()
    }

    fn save(&self, refs: &[&str], format: Format, path: &Path) {
        let refs: Vec<String> = refs.iter().map(|r| r.to_string()).collect();
        let store = Store::open(self.images.data_root()).expect("store");
        let plan = formats::plan_save(&self.images, &store, &refs).expect("plan");
        drop(store);
        let file = std::fs::File::create(path).expect("create archive");
        plan.write(&self.images, std::io::BufWriter::new(file), format)
            .expect("muelle save");
    }

    fn import_busybox(&self, name: &str) -> ImageRecord {
        import(
            &self.images,
            Cursor::new(busybox_rootfs()),
            Some(name.parse().expect("reference")),
            &["CMD [\"sh\"]".to_owned()],
            None,
        )
        .expect("muelle import")
    }

    /// The layer of `record` has busybox in it, byte for byte.
    fn assert_busybox_inside(&self, record: &ImageRecord) {
        let found = record.layers.iter().any(|l| {
            let path = self.images.layer_path(&l.diff_id).join("bin/busybox");
            std::fs::read(path).ok() == std::fs::read(BUSYBOX).ok()
        });
        assert!(found, "no layer of {} holds busybox", record.id);
    }
}

fn tool_output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .expect("spawn tool");
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn podman_archive_loads_into_muelle(format: &str) {
    let podman = Podman::new();
    podman.busybox("localhost/bb:latest");
    let archive = podman.file("bb.tar");
    podman.run(&[
        "save",
        "--format",
        format,
        "-o",
        &archive.to_string_lossy(),
        "localhost/bb:latest",
    ]);
    let muelle = Muelle::new();
    let loaded = muelle.load(&archive);
    assert_eq!(loaded.len(), 1);
    let record = &loaded[0];
    assert!(
        record.tags.contains("localhost/bb:latest"),
        "{:?}",
        record.tags
    );
    assert_eq!(record.layers.len(), 1);
    muelle.assert_busybox_inside(record);
    // The same image id as podman's: the config came through unchanged.
    let podman_id = podman.run(&["image", "inspect", "--format", "{{.Id}}", "localhost/bb"]);
    assert_eq!(podman_id.trim(), record.id.hex());
}

#[test]
fn podman_oci_archive_loads_into_muelle() {
    require!("podman");
    podman_archive_loads_into_muelle("oci-archive");
}

#[test]
fn podman_docker_archive_loads_into_muelle() {
    require!("podman");
    podman_archive_loads_into_muelle("docker-archive");
}

/// A muelle archive loads into podman, which runs busybox from it.
fn muelle_archive_runs_in_podman(muelle: &Muelle, name: &str, format: Format) {
    let archive = muelle._dir.path().join(format!("{format:?}.tar"));
    muelle.save(&[name], format, &archive);
    let podman = Podman::new();
    let out = podman.run(&["load", "-i", &archive.to_string_lossy()]);
    assert!(out.contains(name), "podman load said: {out}");
    let id = podman.run(&["image", "inspect", "--format", "{{.Id}}", name]);
    let record = muelle
        .images
        .resolve(
            &Store::open(muelle.images.data_root()).expect("store"),
            name,
        )
        .expect("resolve");
    assert_eq!(id.trim(), record.id.hex(), "{format:?}");
    let echoed = podman.run_image(name, &["/bin/busybox", "echo", "from muelle"]);
    assert_eq!(echoed.trim(), "from muelle", "{format:?}");
}

#[test]
fn muelle_saves_load_into_podman_and_run() {
    require!("podman");
    let muelle = Muelle::new();
    // An uncompressed layer (import) and a gzip one (podman's OCI save).
    muelle.import_busybox("localhost/imported:1");
    let podman = Podman::new();
    podman.busybox("localhost/gz:1");
    let archive = podman.file("gz.tar");
    podman.run(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        &archive.to_string_lossy(),
        "localhost/gz:1",
    ]);
    let loaded = muelle.load(&archive);
    assert!(
        loaded[0].layers[0].media_type.ends_with("gzip"),
        "{:?}",
        loaded[0].layers
    );
    for name in ["localhost/imported:1", "localhost/gz:1"] {
        for format in [Format::Oci, Format::Docker] {
            muelle_archive_runs_in_podman(&muelle, name, format);
        }
    }
}

#[test]
fn skopeo_reads_muelles_oci_archive() {
    require!("skopeo");
    let muelle = Muelle::new();
    let record = muelle.import_busybox("localhost/sk:1");
    let archive = muelle._dir.path().join("sk.tar");
    muelle.save(&["localhost/sk:1"], Format::Oci, &archive);
    let out = tool_output(
        "skopeo",
        &["inspect", &format!("oci-archive:{}", archive.display())],
    );
    let json: serde_json::Value = serde_json::from_str(&out).expect("skopeo json");
    assert_eq!(
        json["Digest"].as_str(),
        Some(record.manifest.to_string().as_str())
    );
    assert_eq!(
        json["Layers"][0].as_str(),
        Some(record.layers[0].digest.to_string().as_str())
    );
    assert_eq!(json["Os"].as_str(), Some("linux"));
}

#[test]
fn skopeo_and_umoci_read_muelles_store_as_an_oci_layout() {
    require!("skopeo", "umoci");
    let muelle = Muelle::new();
    let record = muelle.import_busybox("localhost/layout:1");
    muelle.import_busybox("localhost/other:2");
    let layout = muelle.images.blobs().root().to_owned();

    let out = tool_output(
        "skopeo",
        &[
            "inspect",
            &format!("oci:{}:localhost/layout:1", layout.display()),
        ],
    );
    let json: serde_json::Value = serde_json::from_str(&out).expect("skopeo json");
    assert_eq!(
        json["Digest"].as_str(),
        Some(record.manifest.to_string().as_str())
    );

    let out = tool_output("umoci", &["ls", "--layout", &layout.to_string_lossy()]);
    let names: Vec<&str> = out.lines().collect();
    assert!(names.contains(&"localhost/layout:1"), "umoci ls: {out}");
    assert!(names.contains(&"localhost/other:2"), "umoci ls: {out}");
    let out = tool_output(
        "umoci",
        &[
            "stat",
            "--image",
            &format!("{}:localhost/layout:1", layout.display()),
        ],
    );
    assert!(out.contains("Imported from -"), "umoci stat: {out}");
}
