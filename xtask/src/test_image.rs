//! `cargo xtask test-image [--out FILE] [--load-into ROOT]`: builds the
//! image `localhost/busybox:latest` that tests run, from the host's static
//! busybox, without any registry.
//!
//! The image is one uncompressed layer: `/bin/busybox`, a symlink to it for
//! every applet at the path `busybox --list-full` names, the usual empty
//! folders, and an `/etc/passwd` and `/etc/group` with root and nobody. Its
//! config runs `sh` with the usual `PATH`. Everything is built in Rust with
//! fixed times, owners and order, so the same busybox gives the same bytes
//! and the same digests on every machine.
//!
//! It is written as an OCI archive (`oci-archive:` to skopeo and podman; a
//! tar of an OCI image layout): `oci-layout`, `index.json` naming the one
//! manifest, and `blobs/sha256/` holding the layer, the config and the
//! manifest. The default file is `<target dir>/test-image/busybox.oci.tar`;
//! it is written under a temporary name and renamed into place, and rebuilt
//! only when busybox or this builder changed (a stamp next to it records
//! both), so a second run costs a stat. The path is printed on stdout, so
//! `archive=$(cargo xtask test-image)` works; progress goes to stderr.
//!
//! `--load-into ROOT` then loads it with the `muelle` CLI of this
//! workspace: `muelle --root ROOT load -i ARCHIVE`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::bundle::{BUSYBOX, is_static_elf};
use crate::util;

/// The image's name, as `podman images` and `muelle images` show it.
pub const IMAGE_NAME: &str = "localhost/busybox:latest";
const IMAGE_TAG: &str = "latest";

/// Bump whenever the archive's content changes for the same busybox: the
/// stamp then no longer matches and every checkout rebuilds its archive.
const BUILDER_VERSION: u32 = 1;

/// The Debian package with a statically linked `/bin/busybox`.
const BUSYBOX_PACKAGE: &str = "busybox-static";

/// Every time in the image (file mtimes, `created`): the epoch, so the
/// digests depend on busybox alone.
const MTIME: u64 = 0;
const CREATED: &str = "1970-01-01T00:00:00Z";
const CREATED_BY: &str = "cargo xtask test-image";

const ENV_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// The folders of the rootfs and their modes. The applets' folders must be
/// among them (see [`applet_paths`]).
const FOLDERS: &[(&str, u32)] = &[
    ("bin", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("home", 0o755),
    ("proc", 0o755),
    ("root", 0o700),
    ("sbin", 0o755),
    ("sys", 0o755),
    ("tmp", 0o1777),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("usr/sbin", 0o755),
    ("var", 0o755),
    ("var/www", 0o755),
];

/// The folders `busybox --list-full` may put applets in; others (Debian's
/// busybox also lists `linuxrc`, at the root, for initramfs use) are left out.
const APPLET_FOLDERS: &[&str] = &["bin", "sbin", "usr/bin", "usr/sbin"];

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

#[derive(clap::Args, Debug, Default)]
pub struct Options {
    /// The archive to write (default: <target dir>/test-image/busybox.oci.tar)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Then load it into the muelle instance at ROOT (`muelle --root ROOT load -i FILE`)
    #[arg(long, value_name = "ROOT")]
    pub load_into: Option<PathBuf>,
}

/// `cargo xtask test-image`: builds (when stale), loads when asked, prints
/// the archive's path.
pub fn run(options: &Options) -> Result<()> {
    let archive = build(options.out.as_deref())?;
    if let Some(root) = &options.load_into {
        load_into(root, &archive)?;
    }
    println!("{}", archive.display());
    Ok(())
}

/// Makes sure the archive at `out` (or the default place) is up to date
/// with the host's busybox and returns its absolute path.
pub fn build(out: Option<&Path>) -> Result<PathBuf> {
    let out = match out {
        Some(out) => std::path::absolute(out)
            .with_context(|| format!("cannot make {} absolute", out.display()))?,
        None => util::target_dir()?.join("test-image/busybox.oci.tar"),
    };
    ensure_busybox()?;
    let busybox = Path::new(BUSYBOX);
    // Taken before reading busybox: if it changes while we read, the next
    // run sees a different stamp and builds again.
    let stamp = stamp_of(busybox)?;
    let stamp_path = stamp_path(&out);
    if out.is_file() && fs::read_to_string(&stamp_path).is_ok_and(|old| old == stamp) {
        eprintln!("xtask test-image: {} is up to date", out.display());
        return Ok(out);
    }

    let dir = out
        .parent()
        .with_context(|| format!("{} has no parent folder", out.display()))?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let layer = layer_tar(busybox)?;
    let blobs = image_blobs(layer, host_architecture()?)?;
    write_atomically(&out, |file| write_archive(&blobs, file))?;
    // After the archive: a stamp never vouches for an archive not yet there.
    write_atomically(&stamp_path, |file| {
        file.write_all(stamp.as_bytes()).map_err(Into::into)
    })?;
    eprintln!(
        "xtask test-image: wrote {} ({IMAGE_NAME}, manifest {})",
        out.display(),
        blobs.manifest.digest
    );
    Ok(out)
}

/// Installs busybox-static when `/bin/busybox` is missing or not static
/// (Debian's plain `busybox` package is dynamic: it would not run in the
/// image) and we are root; otherwise fails naming the command to run.
fn ensure_busybox() -> Result<()> {
    let problem = busybox_problem()?;
    let Some(problem) = problem else {
        return Ok(());
    };
    let hint = util::apt_install_hint(&[BUSYBOX_PACKAGE]);
    if !util::is_root() {
        bail!("{BUSYBOX} {problem}; run: {hint}");
    }
    if util::find_program("apt-get").is_none() {
        bail!("{BUSYBOX} {problem} and there is no apt-get here; on Debian: {hint}");
    }
    eprintln!("xtask test-image: {BUSYBOX} {problem}: installing {BUSYBOX_PACKAGE}");
    util::apt_install(&[BUSYBOX_PACKAGE])
        .with_context(|| format!("{BUSYBOX} {problem}; installing it failed: {hint}"))?;
    if let Some(problem) = busybox_problem()? {
        bail!("{BUSYBOX} {problem} even after apt-get install {BUSYBOX_PACKAGE}");
    }
    Ok(())
}

/// What is wrong with `/bin/busybox`, if anything.
fn busybox_problem() -> Result<Option<&'static str>> {
    match fs::read(BUSYBOX) {
        Ok(image) if is_static_elf(&image) => Ok(None),
        Ok(_) => Ok(Some("is not a static 64-bit ELF")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Some("is missing")),
        Err(e) => Err(e).with_context(|| format!("cannot read {BUSYBOX}")),
    }
}

/// What the archive was built from: the builder's version and busybox's
/// identity (size, mtime, inode, as `apt-get install` replaces the file).
fn stamp_of(busybox: &Path) -> Result<String> {
    let meta =
        fs::metadata(busybox).with_context(|| format!("cannot stat {}", busybox.display()))?;
    Ok(format!(
        "builder {BUILDER_VERSION}\nbusybox {} size {} mtime {}.{:09} dev {} ino {}\n",
        busybox.display(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.dev(),
        meta.ino()
    ))
}

fn stamp_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_owned();
    name.push(".stamp");
    out.with_file_name(name)
}

/// One entry of the layer.
enum Node {
    Folder(u32),
    File(u32, Vec<u8>),
    Symlink(&'static str),
}

/// The layer: an uncompressed tar of the rootfs, entries sorted by path
/// (so every folder comes before what it holds), owned by 0:0, mtime 0.
fn layer_tar(busybox: &Path) -> Result<Vec<u8>> {
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    for (folder, mode) in FOLDERS {
        nodes.insert((*folder).to_owned(), Node::Folder(*mode));
    }
    for applet in applet_paths(&list_full(busybox)?) {
        nodes.insert(applet, Node::Symlink("/bin/busybox"));
    }
    let image = fs::read(busybox).with_context(|| format!("cannot read {}", busybox.display()))?;
    nodes.insert("bin/busybox".to_owned(), Node::File(0o755, image));
    nodes.insert(
        "etc/passwd".to_owned(),
        Node::File(0o644, PASSWD.as_bytes().to_vec()),
    );
    nodes.insert(
        "etc/group".to_owned(),
        Node::File(0o644, GROUP.as_bytes().to_vec()),
    );

    let mut tar = tar::Builder::new(Vec::new());
    for (path, node) in &nodes {
        let mut header = tar::Header::new_ustar();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(MTIME);
        match node {
            Node::Folder(mode) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_size(0);
                tar.append_data(&mut header, path, io::empty())
            }
            Node::File(mode, data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(data.len() as u64);
                tar.append_data(&mut header, path, data.as_slice())
            }
            Node::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, path, target)
            }
        }
        .with_context(|| format!("cannot add {path} to the layer"))?;
    }
    tar.into_inner().context("cannot finish the layer tar")
}

/// `busybox --list-full`: one applet a line, as a path relative to `/`.
fn list_full(busybox: &Path) -> Result<String> {
    let output = Command::new(busybox)
        .arg("--list-full")
        .output()
        .with_context(|| format!("cannot run {} --list-full", busybox.display()))?;
    if !output.status.success() {
        bail!(
            "{} --list-full failed ({})",
            busybox.display(),
            output.status
        );
    }
    String::from_utf8(output.stdout).context("busybox --list-full printed non-UTF-8")
}

/// The applet paths of a `--list-full` listing that go into the image:
/// those in [`APPLET_FOLDERS`] with a plain name, busybox itself excepted.
fn applet_paths(listing: &str) -> Vec<String> {
    listing
        .lines()
        .map(str::trim)
        .filter_map(|line| {
            let (folder, name) = line.rsplit_once('/')?;
            let plain = !name.is_empty() && name != "." && name != "..";
            (plain && APPLET_FOLDERS.contains(&folder) && line != "bin/busybox")
                .then(|| line.to_owned())
        })
        .collect()
}

/// The OCI name of the host's architecture, as in `GOARCH`.
fn host_architecture() -> Result<&'static str> {
    oci_architecture(std::env::consts::ARCH).with_context(|| {
        format!(
            "no OCI architecture name known for {}",
            std::env::consts::ARCH
        )
    })
}

fn oci_architecture(rust_arch: &str) -> Option<&'static str> {
    Some(match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        // is_static_elf wants little-endian: powerpc64 here is ppc64le.
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        _ => return None,
    })
}

/// A blob of the layout: its bytes and its descriptor's fields.
struct Blob {
    bytes: Vec<u8>,
    digest: String,
    hex: String,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Blob {
        let hex = hex::encode(Sha256::digest(&bytes));
        Blob {
            digest: format!("sha256:{hex}"),
            hex,
            bytes,
        }
    }

    fn descriptor(&self, media_type: &str) -> Value {
        json!({
            "mediaType": media_type,
            "digest": self.digest,
            "size": self.bytes.len(),
        })
    }
}

/// The image's blobs and the `index.json` that names it.
struct ImageBlobs {
    layer: Blob,
    config: Blob,
    manifest: Blob,
    index: Vec<u8>,
}

/// The config, manifest and index around `layer`.
fn image_blobs(layer: Vec<u8>, architecture: &str) -> Result<ImageBlobs> {
    let layer = Blob::new(layer);
    let config = json!({
        "created": CREATED,
        "architecture": architecture,
        "os": "linux",
        "config": {
            "Env": [ENV_PATH],
            "Cmd": ["sh"],
        },
        // Uncompressed, the layer's digest is its diff_id.
        "rootfs": { "type": "layers", "diff_ids": [layer.digest] },
        "history": [{ "created": CREATED, "created_by": CREATED_BY }],
    });
    let config = Blob::new(serde_json::to_vec(&config).context("cannot serialize the config")?);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config.descriptor(MEDIA_CONFIG),
        "layers": [layer.descriptor(MEDIA_LAYER)],
    });
    let manifest =
        Blob::new(serde_json::to_vec(&manifest).context("cannot serialize the manifest")?);
    let mut descriptor = manifest.descriptor(MEDIA_MANIFEST);
    descriptor["platform"] = json!({ "architecture": architecture, "os": "linux" });
    // ref.name is the tag, as the OCI layout spec has it; containerd's
    // import names the image by io.containerd.image.name.
    descriptor["annotations"] = json!({
        "io.containerd.image.name": IMAGE_NAME,
        "org.opencontainers.image.ref.name": IMAGE_TAG,
    });
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [descriptor],
    });
    let index = serde_json::to_vec(&index).context("cannot serialize index.json")?;
    Ok(ImageBlobs {
        layer,
        config,
        manifest,
        index,
    })
}

/// The OCI archive: the layout's files in a tar, sorted, 0:0, mtime 0.
fn write_archive(blobs: &ImageBlobs, file: &mut File) -> Result<()> {
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    let mut files: BTreeMap<String, &[u8]> = BTreeMap::new();
    files.insert("oci-layout".to_owned(), layout);
    files.insert("index.json".to_owned(), &blobs.index);
    for blob in [&blobs.layer, &blobs.config, &blobs.manifest] {
        files.insert(format!("blobs/sha256/{}", blob.hex), &blob.bytes);
    }

    let mut tar = tar::Builder::new(BufWriter::new(file));
    for folder in ["blobs", "blobs/sha256"] {
        let mut header = fixed_header(tar::EntryType::Directory, 0o755, 0);
        tar.append_data(&mut header, folder, io::empty())
            .with_context(|| format!("cannot add {folder} to the archive"))?;
    }
    for (path, bytes) in files {
        let mut header = fixed_header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        tar.append_data(&mut header, &path, bytes)
            .with_context(|| format!("cannot add {path} to the archive"))?;
    }
    let writer = tar.into_inner().context("cannot finish the archive")?;
    writer
        .into_inner()
        .map_err(|e| e.into_error())
        .context("cannot write the archive")?;
    Ok(())
}

fn fixed_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(MTIME);
    header
}

/// Writes `path` through a temporary file of its folder, synced, 0644, and
/// renamed over it: a reader sees the old file or the new one, never half.
fn write_atomically(path: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent folder", path.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".test-image-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    write(tmp.as_file_mut())?;
    let file = tmp.as_file();
    file.set_permissions(fs::Permissions::from_mode(0o644))
        .with_context(|| format!("cannot chmod {}", tmp.path().display()))?;
    file.sync_all()
        .with_context(|| format!("cannot sync {}", tmp.path().display()))?;
    // On failure the temporary file is dropped, which removes it.
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot rename into {}", path.display()))?;
    Ok(())
}

/// `muelle --root ROOT load -i ARCHIVE` with this workspace's CLI.
fn load_into(root: &Path, archive: &Path) -> Result<()> {
    load_with(&build_cli()?, root, archive)
}

/// `MUELLE --root ROOT load -i ARCHIVE`, telling a CLI without `load` apart
/// from a failed load.
fn load_with(muelle: &Path, root: &Path, archive: &Path) -> Result<()> {
    let mut cmd = Command::new(muelle);
    cmd.arg("--root")
        .arg(root)
        .args(["load", "-i"])
        .arg(archive)
        // stdout is for the archive's path alone.
        .stdout(Stdio::from(io::stderr()))
        .stderr(Stdio::piped());
    let line = util::display(&cmd);
    eprintln!("xtask test-image: {line}");
    let output = cmd
        .output()
        .with_context(|| format!("cannot start `{line}`"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprint!("{stderr}");
    if output.status.success() {
        return Ok(());
    }
    // clap's words for a verb it does not know.
    if stderr.contains("unrecognized subcommand") {
        bail!(
            "the muelle CLI ({}) has no `load` verb yet; the archive is at {}",
            muelle.display(),
            archive.display()
        );
    }
    bail!("`{line}` failed ({})", output.status)
}

/// `cargo build -p cli --bin muelle`; returns the executable cargo reports
/// (so the profile and target folder are whatever cargo used). A no-op
/// build when it is up to date.
fn build_cli() -> Result<PathBuf> {
    let mut cmd = util::cargo();
    cmd.args([
        "build",
        "-p",
        "cli",
        "--bin",
        "muelle",
        "--message-format=json-render-diagnostics",
    ]);
    let line = util::display(&cmd);
    eprintln!("xtask test-image: {line}");
    let output = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start `{line}`"))?;
    if !output.status.success() {
        bail!("`{line}` failed ({})", output.status);
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        // Lines that are not cargo's JSON (a build script's noise) are
        // not ours to judge.
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|message| executable_of(&message, "muelle"))
        .next_back()
        .with_context(|| format!("`{line}` reported no muelle executable"))
}

/// The executable of a `compiler-artifact` message about the binary `name`.
fn executable_of(message: &Value, name: &str) -> Option<PathBuf> {
    if message.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    if message.pointer("/target/name")?.as_str()? != name {
        return None;
    }
    message.get("executable")?.as_str().map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::time::SystemTime;

    /// Whether the tests that need the host's static busybox can run;
    /// prints why not.
    fn have_busybox(test: &str) -> bool {
        match busybox_problem() {
            Ok(None) => true,
            Ok(Some(problem)) => {
                eprintln!("skipping {test}: {BUSYBOX} {problem} (apt-get install busybox-static)");
                false
            }
            Err(e) => {
                eprintln!("skipping {test}: {e:#}");
                false
            }
        }
    }

    /// Every entry of a tar: path, type, mode, uid, gid, mtime, link, bytes.
    #[allow(clippy::type_complexity)]
    fn entries(
        tar_bytes: &[u8],
    ) -> Vec<(
        String,
        tar::EntryType,
        u32,
        u64,
        u64,
        u64,
        Option<String>,
        Vec<u8>,
    )> {
        let mut archive = tar::Archive::new(tar_bytes);
        archive
            .entries()
            .expect("entries")
            .map(|entry| {
                let mut entry = entry.expect("entry");
                let header = entry.header().clone();
                let path = entry.path().expect("path").to_string_lossy().into_owned();
                let link = entry
                    .link_name()
                    .expect("link")
                    .map(|l| l.to_string_lossy().into_owned());
                let mut data = Vec::new();
                entry.read_to_end(&mut data).expect("data");
                (
                    path,
                    header.entry_type(),
                    header.mode().expect("mode"),
                    header.uid().expect("uid"),
                    header.gid().expect("gid"),
                    header.mtime().expect("mtime"),
                    link,
                    data,
                )
            })
            .collect()
    }

    #[test]
    fn keeps_applets_in_the_usual_folders() {
        let listing = "usr/bin/[\nbin/busybox\nsbin/acpid\nlinuxrc\nbin/ash\n\
                       usr/sbin/arping\nopt/x\nbin/../etc/x\nbin/\n../bin/sh\n";
        assert_eq!(
            applet_paths(listing),
            ["usr/bin/[", "sbin/acpid", "bin/ash", "usr/sbin/arping"]
        );
    }

    #[test]
    fn names_architectures_as_oci_does() {
        assert_eq!(oci_architecture("x86_64"), Some("amd64"));
        assert_eq!(oci_architecture("aarch64"), Some("arm64"));
        assert_eq!(oci_architecture("mips"), None);
    }

    #[test]
    fn finds_the_executable_in_cargo_messages() {
        let message: Value = serde_json::from_str(
            r#"{"reason":"compiler-artifact","target":{"name":"muelle","kind":["bin"]},
                "executable":"/t/debug/muelle"}"#,
        )
        .expect("json");
        assert_eq!(
            executable_of(&message, "muelle"),
            Some(PathBuf::from("/t/debug/muelle"))
        );
        assert_eq!(executable_of(&message, "other"), None);
        let lib: Value = serde_json::from_str(
            r#"{"reason":"compiler-artifact","target":{"name":"muelle"},"executable":null}"#,
        )
        .expect("json");
        assert_eq!(executable_of(&lib, "muelle"), None);
    }

    #[test]
    fn tells_a_cli_without_load_from_a_failed_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = |name: &str, script: &str| {
            let path = dir.path().join(name);
            fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("write");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
            path
        };
        // What clap makes the muelle CLI print for a verb it lacks.
        let old = fake(
            "old",
            "echo \"error: unrecognized subcommand 'load'\" >&2; exit 125",
        );
        let broken = fake("broken", "echo 'error: not an archive' >&2; exit 1");
        let good = fake("good", "[ \"$*\" = '--root /r load -i /a.tar' ]");
        let (root, archive) = (Path::new("/r"), Path::new("/a.tar"));

        let err = load_with(&old, root, archive).expect_err("no load verb");
        assert!(
            format!("{err:#}").contains("has no `load` verb yet"),
            "{err:#}"
        );
        let err = load_with(&broken, root, archive).expect_err("failed load");
        assert!(!format!("{err:#}").contains("verb"), "{err:#}");
        load_with(&good, root, archive).expect("load with the expected arguments");
    }

    #[test]
    fn the_layer_is_deterministic_and_complete() {
        if !have_busybox("the_layer_is_deterministic_and_complete") {
            return;
        }
        let busybox = Path::new(BUSYBOX);
        let layer = layer_tar(busybox).expect("layer");
        assert_eq!(layer, layer_tar(busybox).expect("layer again"));

        let entries = entries(&layer);
        let paths: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        let mut sorted = paths.clone();
        sorted.sort_unstable();
        assert_eq!(paths, sorted, "entries sorted by path");
        for (path, _, _, uid, gid, mtime, _, _) in &entries {
            assert_eq!((*uid, *gid, *mtime), (0, 0, MTIME), "{path}");
        }
        let find = |wanted: &str| {
            entries
                .iter()
                .find(|e| e.0 == wanted)
                .unwrap_or_else(|| panic!("no {wanted} in the layer"))
        };
        let bin = find("bin/busybox");
        assert_eq!((bin.1, bin.2), (tar::EntryType::Regular, 0o755));
        assert_eq!(bin.7, fs::read(busybox).expect("read busybox"));
        assert_eq!(find("tmp").2, 0o1777);
        assert_eq!(find("root").2, 0o700);
        assert_eq!(find("var/www").1, tar::EntryType::Directory);
        assert_eq!(find("etc/passwd").7, PASSWD.as_bytes());
        assert_eq!(find("etc/group").7, GROUP.as_bytes());
        let sh = find("bin/sh");
        assert_eq!(sh.1, tar::EntryType::Symlink);
        assert_eq!(sh.6.as_deref(), Some("/bin/busybox"));
        let applets = applet_paths(&list_full(busybox).expect("list"));
        assert!(applets.len() > 100, "only {} applets", applets.len());
        for applet in &applets {
            assert_eq!(find(applet).6.as_deref(), Some("/bin/busybox"));
        }
    }

    #[test]
    fn the_archive_is_an_oci_layout_and_is_rebuilt_only_when_stale() {
        if !have_busybox("the_archive_is_an_oci_layout_and_is_rebuilt_only_when_stale") {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("sub/busybox.oci.tar");
        assert_eq!(build(Some(&out)).expect("build"), out);
        let first = fs::read(&out).expect("read");
        let entries = entries(&first);
        let file = |name: &str| -> Vec<u8> {
            entries
                .iter()
                .find(|e| e.0 == name)
                .unwrap_or_else(|| panic!("no {name} in the archive"))
                .7
                .clone()
        };
        let layout: Value = serde_json::from_slice(&file("oci-layout")).expect("oci-layout");
        assert_eq!(layout["imageLayoutVersion"], "1.0.0");
        let index: Value = serde_json::from_slice(&file("index.json")).expect("index");
        let descriptor = &index["manifests"][0];
        assert_eq!(
            descriptor["annotations"]["io.containerd.image.name"],
            IMAGE_NAME
        );
        // Every blob is stored under its digest.
        let blob = |digest: &Value| -> Vec<u8> {
            let digest = digest.as_str().expect("digest");
            let bytes = file(&format!(
                "blobs/sha256/{}",
                digest.strip_prefix("sha256:").expect("sha256")
            ));
            assert_eq!(
                format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
                digest
            );
            bytes
        };
        let manifest: Value =
            serde_json::from_slice(&blob(&descriptor["digest"])).expect("manifest");
        let config: Value =
            serde_json::from_slice(&blob(&manifest["config"]["digest"])).expect("config");
        assert_eq!(config["config"]["Cmd"], json!(["sh"]));
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            manifest["layers"][0]["digest"]
        );
        assert_eq!(manifest["layers"][0]["mediaType"], MEDIA_LAYER);
        blob(&manifest["layers"][0]["digest"]);

        // Up to date: not rewritten (same inode, same mtime).
        let before = fs::metadata(&out).expect("stat");
        build(Some(&out)).expect("build again");
        let after = fs::metadata(&out).expect("stat");
        assert_eq!(before.ino(), after.ino());
        assert_eq!(before.modified().ok(), after.modified().ok());

        // A stamp that no longer matches: rebuilt, to the same bytes.
        fs::write(stamp_path(&out), "builder 0\n").expect("spoil the stamp");
        build(Some(&out)).expect("rebuild");
        assert_ne!(fs::metadata(&out).expect("stat").ino(), before.ino());
        assert_eq!(fs::read(&out).expect("read"), first);
        let names: Vec<_> = fs::read_dir(out.parent().expect("parent"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 2, "archive and stamp only: {names:?}");
    }

    /// podman loads the archive into a private store and sees the image's
    /// name and command; skopeo (when installed) reads it too.
    #[test]
    fn podman_and_skopeo_read_the_archive() {
        let test = "podman_and_skopeo_read_the_archive";
        if !have_busybox(test) {
            return;
        }
        let Some(podman) = util::find_program("podman") else {
            eprintln!("skipping {test}: no podman (apt-get install podman)");
            return;
        };
        if !util::is_root() {
            eprintln!("skipping {test}: podman's private store needs root here");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = build(Some(&dir.path().join("busybox.oci.tar"))).expect("build");
        let store = dir.path().join("podman");
        let podman_cmd = |args: &[&str]| {
            let mut cmd = Command::new(&podman);
            // vfs: plain folders, no mounts left behind for the cleanup.
            cmd.arg("--root")
                .arg(store.join("root"))
                .arg("--runroot")
                .arg(store.join("run"))
                .args(["--storage-driver", "vfs", "--events-backend", "none"])
                .args(args);
            cmd
        };
        let run = |mut cmd: Command| -> String {
            let line = util::display(&cmd);
            let started = SystemTime::now();
            let output = cmd.output().expect("start");
            eprintln!("{line}: {:?}", started.elapsed().unwrap_or_default());
            assert!(
                output.status.success(),
                "`{line}` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        let archive_arg = archive.to_string_lossy().into_owned();
        let loaded = run(podman_cmd(&["load", "-i", &archive_arg]));
        eprintln!("podman load: {}", loaded.trim());
        let inspect = run(podman_cmd(&["image", "inspect", IMAGE_NAME]));
        let inspect: Value = serde_json::from_str(&inspect).expect("inspect json");
        let image = &inspect[0];
        assert_eq!(image["Config"]["Cmd"], json!(["sh"]));
        assert_eq!(image["Os"], "linux");
        assert_eq!(image["Architecture"], host_architecture().expect("arch"));
        assert_eq!(image["RootFS"]["Layers"].as_array().map(Vec::len), Some(1));
        // Leave nothing behind in the store's folders podman might hold.
        run(podman_cmd(&["rmi", "--all", "--force"]));

        let Some(skopeo) = util::find_program("skopeo") else {
            eprintln!("{test}: no skopeo, its check skipped");
            return;
        };
        let mut cmd = Command::new(skopeo);
        cmd.arg("inspect").arg(format!("oci-archive:{archive_arg}"));
        let inspect: Value = serde_json::from_str(&run(cmd)).expect("skopeo json");
        assert_eq!(inspect["Architecture"], host_architecture().expect("arch"));
        assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(1));
        assert_eq!(inspect["Env"], json!([ENV_PATH]));
    }
}
