//! `muelle images`, `image ...`, `history`, `tag`, `rmi`, `import`, `save`,
//! `load` end to end: whole commands against private roots, on images
//! imported from a small root filesystem built here (with the host's
//! /bin/busybox when there is one), so nothing depends on `cargo xtask
//! test-image` having run.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

mod support;

use support::{Instance, stderr, stdout};

/// image.rs's own helpers on top of the shared `Instance`.
trait ImageInstance {
    /// Imports the test root filesystem as `name`; returns the image id.
    fn import(&self, name: Option<&str>, extra: &[&str]) -> String;
    fn ids(&self) -> Vec<String>;
    fn path(&self, name: &str) -> PathBuf;
}

impl ImageInstance for Instance {
    fn import(&self, name: Option<&str>, extra: &[&str]) -> String {
        let tar = self.path("rootfs.tar");
        if !tar.exists() {
            std::fs::write(&tar, rootfs_tar()).expect("write rootfs.tar");
        }
        let tar = tar.to_str().expect("utf-8 path").to_owned();
        let mut args = vec!["import"];
        args.extend(extra);
        args.push(&tar);
        args.extend(name);
        let id = self.ok(&args).trim().to_owned();
        assert!(
            id.starts_with("sha256:") && id.len() == 71,
            "import prints the id: {id:?}"
        );
        id
    }

    fn ids(&self) -> Vec<String> {
        self.ok(&["images", "-q", "--no-trunc"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root().join(name)
    }
}

fn header(path: &str, kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).expect("path");
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    h
}

/// A root filesystem tarball: a few folders and files, and the host's
/// static busybox when present.
fn rootfs_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for dir in ["bin/", "etc/", "tmp/"] {
        b.append(&header(dir, tar::EntryType::Directory, 0, 0o755), &[][..])
            .expect("dir");
    }
    let hello = b"hello from muelle\n";
    b.append(
        &header(
            "etc/hello",
            tar::EntryType::Regular,
            hello.len() as u64,
            0o644,
        ),
        &hello[..],
    )
    .expect("file");
    if let Ok(busybox) = std::fs::read("/bin/busybox") {
        b.append(
            &header(
                "bin/busybox",
                tar::EntryType::Regular,
                busybox.len() as u64,
                0o755,
            ),
            busybox.as_slice(),
        )
        .expect("busybox");
    }
    b.into_inner().expect("tar")
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Go's architecture name for this host, as image configs say it.
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// A well-formed OCI archive (right digests and sizes) whose one layer
/// writes `../escaped`: the name is put in the raw header, since
/// `tar::Header::set_path` refuses it.
fn hostile_oci_archive() -> Vec<u8> {
    let mut layer = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    let name = b"../escaped";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(4);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    layer.append(&h, &b"evil"[..]).expect("layer entry");
    let layer = layer.into_inner().expect("layer");
    let config = serde_json::json!({
        "architecture": oci_arch(),
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [sha256(&layer)] },
    })
    .to_string();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(config.as_bytes()),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": sha256(&layer),
            "size": layer.len(),
        }],
    })
    .to_string();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256(manifest.as_bytes()),
            "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": "localhost/evil:1" },
        }],
    })
    .to_string();
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        b.append(
            &header(name, tar::EntryType::Regular, data.len() as u64, 0o644),
            data,
        )
        .expect("archive entry");
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    for blob in [&layer, config.as_bytes(), manifest.as_bytes()] {
        add(&format!("blobs/sha256/{}", &sha256(blob)[7..]), blob);
    }
    add("index.json", index.as_bytes());
    b.into_inner().expect("archive")
}

/// Every path under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&path));
            }
            out.push(path);
        }
    }
    out
}

fn blob_count(m: &Instance) -> usize {
    std::fs::read_dir(m.path("image/blobs/sha256")).map_or(0, |d| d.count())
}

#[test]
fn import_then_list_inspect_and_history() {
    let m = Instance::new();
    let id = m.import(
        Some("localhost/test:1"),
        &[
            "--change",
            r#"CMD ["sh"]"#,
            "-c",
            "ENV A=b",
            "-m",
            "built by a test",
        ],
    );
    let short = &id[7..19];

    let table = m.ok(&["images"]);
    let mut lines = table.lines();
    let head = lines.next().expect("header");
    assert!(
        head.starts_with("REPOSITORY       TAG       IMAGE ID       CREATED"),
        "{table}"
    );
    assert!(head.ends_with("SIZE"), "{table}");
    let row: Vec<&str> = lines
        .next()
        .expect("row")
        .split("   ")
        .map(str::trim)
        .collect();
    assert_eq!(row[0], "localhost/test", "{table}");
    assert!(row.contains(&short), "{table}");
    assert!(table.contains(" ago "), "CREATED is humanized: {table}");
    assert_eq!(
        m.ok(&["image", "ls", "--digests"])
            .lines()
            .next()
            .map(|h| h.contains("   DIGEST   ")),
        Some(true)
    );

    assert_eq!(m.ok(&["images", "-q"]), format!("{short}\n"));
    assert_eq!(m.ids(), std::slice::from_ref(&id));
    let json: serde_json::Value =
        serde_json::from_str(m.ok(&["images", "--format", "json"]).trim()).expect("one object");
    assert_eq!(json["Repository"], "localhost/test");
    assert_eq!(json["Tag"], "1");
    assert_eq!(json["ID"], short);
    assert_eq!(json["Digest"], "<none>");
    assert_eq!(json["Containers"], "N/A");
    assert!(json["Size"].as_str().is_some_and(|s| s.ends_with('B')));
    assert!(
        json["CreatedAt"]
            .as_str()
            .is_some_and(|s| s.ends_with(" +0000 UTC"))
    );

    // Filters: references are globs on the familiar name.
    assert_eq!(m.ok(&["images", "-q", "localhost/*"]), format!("{short}\n"));
    assert_eq!(
        m.ok(&["images", "-q", "--filter", "reference=*/test:1"]),
        format!("{short}\n")
    );
    assert_eq!(m.ok(&["images", "-q", "nothing*"]), "");
    assert_eq!(m.ok(&["images", "-q", "--filter", "dangling=true"]), "");
    let untagged = m.import(None, &[]);
    assert_eq!(
        m.ok(&["images", "-q", "--no-trunc", "-f", "dangling=true"]),
        format!("{untagged}\n")
    );
    assert!(
        m.ok(&["images"])
            .lines()
            .any(|l| l.split_whitespace().take(2).eq(["<none>", "<none>"]))
    );
    assert_eq!(
        m.muelle(&["images", "--filter", "label=x"]).status.code(),
        Some(1)
    );

    let inspect: serde_json::Value =
        serde_json::from_str(&m.ok(&["image", "inspect", "localhost/test:1"])).expect("json");
    let image = &inspect[0];
    assert_eq!(image["Id"], id);
    assert_eq!(image["RepoTags"], serde_json::json!(["localhost/test:1"]));
    assert!(
        image["RepoDigests"][0]
            .as_str()
            .is_some_and(|d| d.starts_with("localhost/test@sha256:"))
    );
    assert_eq!(image["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(image["Config"]["Env"], serde_json::json!(["A=b"]));
    assert_eq!(image["Os"], "linux");
    assert_eq!(image["Architecture"], oci_arch());
    assert_eq!(image["RootFS"]["Type"], "layers");
    assert_eq!(image["RootFS"]["Layers"].as_array().map(Vec::len), Some(1));
    assert!(image["Size"].as_u64().is_some_and(|s| s > 0));
    // Found ones are printed, the missing one fails the command.
    let both = m.muelle(&["image", "inspect", "--format", "json", short, "missing"]);
    assert_eq!(both.status.code(), Some(1));
    assert_eq!(stderr(&both), "Error: No such image: missing\n");
    let found: serde_json::Value = serde_json::from_slice(&both.stdout).expect("json");
    assert_eq!(found.as_array().map(Vec::len), Some(1));

    let history = m.ok(&["history", "localhost/test:1"]);
    let mut lines = history.lines();
    assert_eq!(
        lines
            .next()
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"])
    );
    let row = lines.next().expect("one step");
    assert!(
        row.starts_with(short) && row.ends_with("built by a test"),
        "{history}"
    );
    assert_eq!(
        m.ok(&["image", "history", "-q", short]),
        format!("{short}\n")
    );
    let step: serde_json::Value = serde_json::from_str(
        m.ok(&["history", "--format", "json", "--no-trunc", short])
            .trim(),
    )
    .expect("json");
    assert_eq!(step["ID"], id);
    assert_eq!(step["Comment"], "built by a test");
}

#[test]
fn tag_and_rmi_untag_before_they_delete() {
    let m = Instance::new();
    let id = m.import(Some("a:1"), &[]);
    assert_eq!(m.ok(&["tag", "a:1", "b:2"]), "");
    m.ok(&["image", "tag", &id, "localhost/c"]);
    let tags = |m: &Instance| -> serde_json::Value {
        let json: serde_json::Value =
            serde_json::from_str(&m.ok(&["image", "inspect", &id])).expect("json");
        json[0]["RepoTags"].clone()
    };
    assert_eq!(
        tags(&m),
        serde_json::json!(["a:1", "b:2", "localhost/c:latest"])
    );

    // By tag: only the tag goes while others remain.
    assert_eq!(m.ok(&["rmi", "a:1"]), "Untagged: a:1\n");
    assert_eq!(m.ids(), std::slice::from_ref(&id));
    // By id with several tags: refused unless forced.
    let refused = m.muelle(&["rmi", &id[7..]]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("referenced in multiple repositories"));
    // docker goes on after a failure, and exits 1.
    let mixed = m.muelle(&["rmi", "missing", "b:2"]);
    assert_eq!(mixed.status.code(), Some(1));
    assert_eq!(stdout(&mixed), "Untagged: b:2\n");
    assert_eq!(stderr(&mixed), "Error: No such image: missing\n");
    // -f: a missing image is reported, not a failure; the last tag goes
    // and the image with it.
    let forced = m.muelle(&["image", "rm", "-f", "missing", "localhost/c"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_eq!(
        stdout(&forced),
        format!("Untagged: localhost/c:latest\nDeleted: {id}\n")
    );
    assert!(m.ids().is_empty());
    assert_eq!(blob_count(&m), 0, "the blobs were collected");
    assert_eq!(m.muelle(&["tag", "missing", "x"]).status.code(), Some(1));
}

#[test]
fn save_in_both_formats_and_load_into_another_root() {
    let m = Instance::new();
    let id = m.import(Some("localhost/test:1"), &["--change", r#"CMD ["sh"]"#]);
    for format in ["docker-archive", "oci-archive"] {
        let file = m.path(&format!("{format}.tar"));
        let file_arg = file.to_str().expect("utf-8");
        m.ok(&[
            "save",
            "--format",
            format,
            "-o",
            file_arg,
            "localhost/test:1",
        ]);
        let leftovers: Vec<_> = walk(m.root())
            .into_iter()
            .filter(|p| p.to_string_lossy().contains(".partial-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        let other = Instance::new();
        assert_eq!(
            other.ok(&["load", "-i", file_arg]),
            "Loaded image: localhost/test:1\n"
        );
        assert_eq!(
            other.ids(),
            std::slice::from_ref(&id),
            "{format}: same image id"
        );
        let inspect: serde_json::Value =
            serde_json::from_str(&other.ok(&["image", "inspect", "localhost/test:1"]))
                .expect("json");
        assert_eq!(inspect[0]["Config"]["Cmd"], serde_json::json!(["sh"]));
    }

    // stdout (a pipe here) to stdin; by id, the image loads untagged.
    let piped = m.muelle(&["image", "save", &id]);
    assert!(piped.status.success(), "{}", stderr(&piped));
    let other = Instance::new();
    let loaded = other.with_stdin(&["image", "load", "-q"], &piped.stdout);
    assert!(loaded.status.success(), "{}", stderr(&loaded));
    assert_eq!(stdout(&loaded), format!("Loaded image ID: {id}\n"));
    assert_eq!(other.ids(), [id]);
}

#[test]
fn a_failed_save_keeps_the_old_file() {
    let m = Instance::new();
    m.import(Some("kept:1"), &[]);
    let file = m.path("old.tar");
    std::fs::write(&file, "old content").expect("old file");
    let file_arg = file.to_str().expect("utf-8");
    let failed = m.muelle(&["save", "-o", file_arg, "kept:1", "missing"]);
    assert_eq!(failed.status.code(), Some(1));
    assert_eq!(stderr(&failed), "Error: No such image: missing\n");
    assert_eq!(
        std::fs::read_to_string(&file).expect("old file"),
        "old content"
    );
    assert!(
        !walk(m.root())
            .iter()
            .any(|p| p.to_string_lossy().contains(".partial-"))
    );
    let bad_format = m.muelle(&["save", "--format", "zip", "-o", file_arg, "kept:1"]);
    assert_eq!(bad_format.status.code(), Some(125), "a clap error");
}

#[test]
fn a_hostile_archive_loads_nothing() {
    let m = Instance::new();
    let archive = m.path("evil.tar");
    std::fs::write(&archive, hostile_oci_archive()).expect("archive");
    let out = m.muelle(&["load", "-i", archive.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    // Refused for the entry, not for some other flaw of the archive.
    let err = stderr(&out);
    assert!(
        err.starts_with("Error: ") && err.contains("../escaped"),
        "{err}"
    );
    assert_eq!(stdout(&out), "");
    assert!(m.ids().is_empty(), "nothing recorded");
    // The layer unpacks deep inside the root: `..` from there stays in it.
    let escaped: Vec<_> = walk(m.root())
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "escaped"))
        .collect();
    assert!(escaped.is_empty(), "{escaped:?}");
    assert_eq!(blob_count(&m), 0, "its blobs were collected");

    // Not an archive at all, from stdin.
    let junk = m.with_stdin(&["load"], b"not a tar archive, only text");
    assert_eq!(junk.status.code(), Some(1));
    assert!(m.ids().is_empty());
}

#[test]
fn prune_removes_dangling_images_then_all_with_a() {
    let m = Instance::new();
    let tagged = m.import(Some("keep:1"), &[]);
    let dangling = m.import(None, &["-m", "another config, another id"]);
    assert_ne!(tagged, dangling);

    // Asked, and "no" keeps everything.
    let declined = m.with_stdin(&["image", "prune"], b"n\n");
    assert!(declined.status.success());
    assert!(stderr(&declined).contains(
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N]"
    ));
    assert_eq!(m.ids().len(), 2);

    let out = m.ok(&["image", "prune", "-f"]);
    assert!(
        out.starts_with(&format!(
            "Deleted Images:\ndeleted: {dangling}\n\nTotal reclaimed space: "
        )),
        "{out}"
    );
    assert_eq!(m.ids(), std::slice::from_ref(&tagged));

    let out = m.ok(&["image", "prune", "-a", "-f"]);
    assert!(
        out.starts_with(&format!(
            "Deleted Images:\nuntagged: keep:1\ndeleted: {tagged}\n\nTotal reclaimed space: "
        )),
        "{out}"
    );
    assert!(!out.ends_with("space: 0B\n"), "the layer's space: {out}");
    assert!(m.ids().is_empty());
    assert_eq!(blob_count(&m), 0);
    assert_eq!(
        m.ok(&["image", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
}

#[test]
fn import_refuses_bad_input_before_recording_anything() {
    let m = Instance::new();
    let tar = m.path("rootfs.tar");
    std::fs::write(&tar, rootfs_tar()).expect("tar");
    let tar = tar.to_str().expect("utf-8");
    for args in [
        vec!["import", "--change", "RUN rm -rf /", tar],
        vec!["import", tar, "Not/A:Name:"],
        vec!["import", "/nonexistent/rootfs.tar"],
    ] {
        let out = m.muelle(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).starts_with("Error: "),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let empty = m.with_stdin(&["import", "-"], b"");
    assert_eq!(empty.status.code(), Some(1));
    assert!(m.ids().is_empty());
    // From stdin, with a name.
    let bytes = std::fs::read(tar).expect("tar");
    let out = m.with_stdin(&["import", "-", "piped"], &bytes);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        m.ok(&["images", "--format", "json", "piped"])
            .lines()
            .count(),
        1
    );
    assert_eq!(m.muelle(&["images", "--bogus"]).status.code(), Some(125));
}

#[test]
fn info_names_the_rootfs_driver_and_counts_images() {
    let m = Instance::new();
    m.import(Some("localhost/info:1"), &[]);
    let text = m.ok(&["info"]);
    assert!(text.contains("Images: 1\n"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&m.ok(&["info", "--format", "json"])).expect("json");
    assert_eq!(json["Images"], 1);
    let driver = json["Driver"].as_str().expect("driver");
    assert!(matches!(driver, "overlay" | "copy"), "{driver}");
    assert!(
        text.contains(&format!("Storage Driver: {driver}\n")),
        "{text}"
    );
}
