//! The image store's verbs over real blobs, layers and a metadata store in
//! a temporary data root: tag/untag/rmi in docker's rules, id prefixes,
//! garbage collection, save and load round trips, import, and archives
//! that must be refused.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::Path;

use image::formats::{self, Format};
use image::import::import;
use image::manifest::media;
use image::record::Layer;
use image::store::{ImageUser, Removed};
use image::{Digest, ImageError, ImageRecord, ImageRef, Images};
use storage::store::Store;

/// A GNU header with owner root and time 0 (new_gnu leaves them blank).
fn header() -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// A rootfs tar: a folder, a file with `content`, a symlink.
fn rootfs_tar(content: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dir = header();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    b.append_data(&mut dir, "etc/", std::io::empty())
        .expect("dir");
    let mut file = header();
    file.set_mode(0o644);
    file.set_size(content.len() as u64);
    b.append_data(&mut file, "etc/hello", content.as_bytes())
        .expect("file");
    let mut link = header();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_mode(0o777);
    link.set_size(0);
    b.append_link(&mut link, "hello", "etc/hello")
        .expect("link");
    b.into_inner().expect("tar")
}

fn no_users(_: &Digest) -> Vec<ImageUser> {
    Vec::new()
}

struct Root {
    _dir: tempfile::TempDir,
    images: Images,
}

impl Root {
    fn new() -> Root {
        let dir = tempfile::tempdir().expect("tempdir");
        let images = Images::open(dir.path()).expect("open images");
        Root { _dir: dir, images }
    }

    fn path(&self) -> &Path {
        self.images.data_root()
    }

    /// Runs `f` with the metadata store open, closed again after.
    fn with<T>(&self, f: impl FnOnce(&Store, &Images) -> T) -> T {
        let store = Store::open(self.path()).expect("open store");
        f(&store, &self.images)
    }

    fn import(&self, content: &str, name: Option<&str>, changes: &[&str]) -> ImageRecord {
        let changes: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
        let reference = name.map(|n| n.parse::<ImageRef>().expect("reference"));
        import(
            &self.images,
            Cursor::new(rootfs_tar(content)),
            reference,
            &changes,
            None,
        )
        .expect("import")
    }

    fn resolve(&self, text: &str) -> Result<ImageRecord, ImageError> {
        self.with(|s, i| i.resolve(s, text))
    }

    fn rmi(&self, text: &str, force: bool) -> Result<Vec<String>, ImageError> {
        self.with(|s, i| i.remove(s, text, force, &no_users))
            .map(|r| r.iter().map(Removed::to_string).collect())
    }

    fn gc(&self) -> image::store::GcReport {
        self.with(|s, i| i.gc(s)).expect("gc")
    }

    fn save(&self, refs: &[&str], format: Format) -> Vec<u8> {
        let refs: Vec<String> = refs.iter().map(|r| r.to_string()).collect();
        let mut out = Vec::new();
        self.with(|s, i| formats::save(i, s, &refs, &mut out, format))
            .expect("save");
        out
    }
}

#[test]
fn a_tag_goes_before_its_image() {
    let root = Root::new();
    let image = root.import("one", Some("app:v1"), &[]);
    assert_eq!(
        image.tags,
        BTreeSet::from(["docker.io/library/app:v1".to_owned()])
    );
    let tagged = root
        .with(|s, i| i.tag(s, "app:v1", "localhost/app"))
        .expect("tag");
    assert_eq!(tagged.id, image.id);
    assert_eq!(
        root.resolve("localhost/app:latest").expect("by tag").id,
        image.id
    );
    // A short name finds podman's localhost/ form too.
    assert_eq!(root.resolve("app").expect("short").id, image.id);

    assert_eq!(
        root.rmi("app:v1", false).expect("untag"),
        ["Untagged: app:v1"]
    );
    assert!(root.resolve(&image.id.to_string()).is_ok(), "still there");
    let err = root.resolve("app:v1").expect_err("untagged");
    assert_eq!(err.to_string(), "No such image: app:v1");

    assert_eq!(
        root.rmi("localhost/app", false).expect("last tag"),
        [
            "Untagged: localhost/app:latest".to_owned(),
            format!("Deleted: {}", image.id)
        ]
    );
    assert!(root.with(|s, i| i.list(s)).expect("list").is_empty());
    let report = root.gc();
    assert_eq!((report.blobs, report.layers), (3, 1), "{report:?}");
    assert!(root.images.blobs().list().expect("blobs").is_empty());
}

#[test]
fn removal_by_id_refuses_several_tags_unless_forced() {
    let root = Root::new();
    let image = root.import("two", Some("a:1"), &[]);
    root.with(|s, i| i.tag(s, "a:1", "b:2")).expect("tag");
    let err = root.rmi(image.id.short(), false).expect_err("two tags");
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            image.id.short()
        )
    );
    assert_eq!(
        root.rmi(image.id.short(), true).expect("forced"),
        [
            "Untagged: a:1".to_owned(),
            "Untagged: b:2".to_owned(),
            format!("Deleted: {}", image.id)
        ]
    );
}

#[test]
fn an_image_in_use_is_kept_until_forced_and_then_only_untagged() {
    let root = Root::new();
    let image = root.import("three", Some("busy"), &[]);
    let user = |running| {
        let image_id = image.id.clone();
        move |id: &Digest| {
            if *id == image_id {
                vec![ImageUser {
                    container: "0123456789abcdef0123".to_owned(),
                    running,
                }]
            } else {
                Vec::new()
            }
        }
    };
    let used = user(false);
    let running = user(true);
    let err = root
        .with(|s, i| i.remove(s, "busy", false, &used))
        .expect_err("in use");
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to remove repository reference \"busy\" (must force) - container 0123456789ab is using its referenced image {}",
            image.id.short()
        )
    );
    let err = root
        .with(|s, i| i.remove(s, image.id.hex(), false, &used))
        .expect_err("in use by id");
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {} (must be forced) - image is being used by stopped container 0123456789ab",
            image.id.short()
        )
    );
    // A running container's image is not deleted even when forced.
    let err = root
        .with(|s, i| i.remove(s, image.id.hex(), true, &running))
        .expect_err("running");
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {} (cannot be forced) - image is being used by running container 0123456789ab",
            image.id.short()
        )
    );
    let out = root
        .with(|s, i| i.remove(s, "busy", true, &used))
        .expect("forced");
    assert_eq!(out, [Removed::Untagged("busy:latest".to_owned())]);
    // Untagged but kept: its container's layers stay.
    let kept = root.resolve(image.id.hex()).expect("kept");
    assert!(kept.tags.is_empty());
    let pruned = root.with(|s, i| i.prune(s, false, &used)).expect("prune");
    assert!(pruned.is_empty(), "in use: {pruned:?}");
    assert_eq!(root.gc().layers, 0);
    let pruned = root
        .with(|s, i| i.prune(s, false, &no_users))
        .expect("prune");
    assert_eq!(pruned, [Removed::Deleted(image.id.clone())]);
}

#[test]
fn prune_all_removes_every_unused_image_and_plain_prune_only_untagged() {
    let root = Root::new();
    let tagged = root.import("p1", Some("keep"), &[]);
    let dangling = root.import("p2", None, &[]);
    assert!(dangling.tags.is_empty());
    let out = root
        .with(|s, i| i.prune(s, false, &no_users))
        .expect("prune");
    assert_eq!(out, [Removed::Deleted(dangling.id.clone())]);
    let out = root
        .with(|s, i| i.prune(s, true, &no_users))
        .expect("prune -a");
    assert_eq!(
        out,
        [
            Removed::Untagged("keep:latest".to_owned()),
            Removed::Deleted(tagged.id.clone())
        ]
    );
}

/// A record with a chosen id (resolution reads records only).
fn fake(id_hex: &str, tags: &[&str]) -> ImageRecord {
    let id: Digest = format!("sha256:{id_hex}").parse().expect("digest");
    ImageRecord {
        id: id.clone(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        manifest: Digest::of_bytes(id_hex.as_bytes()),
        manifest_media_type: media::OCI_MANIFEST.to_owned(),
        layers: vec![Layer {
            digest: id.clone(),
            media_type: media::OCI_LAYER.to_owned(),
            diff_id: id,
            size: 1,
        }],
        created: None,
        size: 1,
        os: "linux".to_owned(),
        architecture: "amd64".to_owned(),
    }
}

#[test]
fn id_prefixes_resolve_when_unique_and_references_win() {
    let root = Root::new();
    let a = fake(&format!("abc1{}", "0".repeat(60)), &[]);
    let b = fake(&format!("abc2{}", "0".repeat(60)), &[]);
    let c = fake(
        &format!("def0{}", "0".repeat(60)),
        &["docker.io/library/abc:latest"],
    );
    root.with(|s, i| i.commit(s, &[a.clone(), b.clone(), c.clone()]))
        .expect("commit");
    // "abc" is first a reference, and the tag abc:latest exists.
    assert_eq!(root.resolve("abc").expect("tag wins").id, c.id);
    let err = root.resolve("sha256:abc").expect_err("ambiguous");
    assert!(
        matches!(err, ImageError::AmbiguousId { count: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("ambiguous"), "{err}");
    assert_eq!(root.resolve("abc1").expect("unique").id, a.id);
    assert_eq!(root.resolve("sha256:abc2").expect("prefixed").id, b.id);
    assert_eq!(root.resolve(a.id.hex()).expect("full hex").id, a.id);
    assert_eq!(root.resolve(&b.id.to_string()).expect("full").id, b.id);
    let pinned = format!("whatever@{}", a.manifest);
    assert_eq!(root.resolve(&pinned).expect("by manifest").id, a.id);
    for missing in ["ab", "fff", "nosuch:tag", &"f".repeat(64)] {
        let err = root.resolve(missing).expect_err(missing);
        assert_eq!(err.to_string(), format!("No such image: {missing}"));
    }
    assert!(matches!(
        root.resolve("Bad/Name").expect_err("invalid"),
        ImageError::InvalidReference { .. }
    ));
}

#[test]
fn a_tag_moves_and_leaves_its_old_image_untagged() {
    let root = Root::new();
    let old = root.import("old", Some("app"), &[]);
    let new = root.import("new", Some("app"), &[]);
    assert_ne!(old.id, new.id);
    assert!(root.resolve(old.id.hex()).expect("old").tags.is_empty());
    assert_eq!(root.resolve("app").expect("app").id, new.id);
    let index = std::fs::read_to_string(root.path().join("image/index.json")).expect("index");
    let index: serde_json::Value = serde_json::from_str(&index).expect("json");
    let names: Vec<Option<&str>> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&Some("docker.io/library/app:latest")));
    assert!(
        names.contains(&None),
        "the untagged image is listed unnamed"
    );
}

#[test]
fn collection_keeps_layers_another_image_shares() {
    let root = Root::new();
    let first = root.import("shared", Some("one"), &["CMD [\"a\"]"]);
    let second = root.import("shared", Some("two"), &["CMD [\"b\"]"]);
    assert_ne!(first.id, second.id, "different configs");
    assert_eq!(first.layers, second.layers, "one layer blob");
    let diff_id = &first.layers[0].diff_id;
    root.rmi("one", false).expect("rmi one");
    let report = root.gc();
    assert_eq!((report.blobs, report.layers), (2, 0), "{report:?}");
    assert!(root.images.layers().exists(diff_id));
    assert!(root.images.blobs().contains(&first.layers[0].digest));
    root.rmi("two", false).expect("rmi two");
    assert_eq!(root.gc().layers, 1);
    assert!(!root.images.layers().exists(diff_id));
}

#[test]
fn collection_waits_while_a_command_holds_the_store_open_for_blobs() {
    let root = Root::new();
    let image = root.import("held", None, &[]);
    root.rmi(image.id.hex(), false).expect("rmi");
    let hold = root.images.hold().expect("hold");
    let report = root.gc();
    assert!(report.skipped && report.blobs == 0, "{report:?}");
    drop(hold);
    assert_eq!(root.gc().blobs, 3);
}

#[test]
fn a_corrupt_blob_fails_the_save_naming_it() {
    let root = Root::new();
    let image = root.import("corrupt me", Some("c"), &[]);
    let layer = &image.layers[0].digest;
    let path = root.images.blobs().path(layer);
    let mut bytes = std::fs::read(&path).expect("read");
    let last = bytes.len() - 1024;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).expect("corrupt");
    for format in [Format::Oci, Format::Docker] {
        let refs = ["c".to_owned()];
        let mut out = Vec::new();
        let err = root
            .with(|s, i| formats::save(i, s, &refs, &mut out, format))
            .expect_err("corrupt");
        assert!(
            matches!(&err, ImageError::CorruptBlob { expected, .. } if expected == layer),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("blob {layer} is corrupt"))
        );
    }
}

fn hello(root: &Root, record: &ImageRecord) -> String {
    let layer = root.images.layer_path(&record.layers[0].diff_id);
    std::fs::read_to_string(layer.join("etc/hello")).expect("hello")
}

#[test]
fn save_and_load_round_trip_in_both_formats() {
    let source = Root::new();
    let image = source.import("round trip", Some("localhost/rt:1"), &["CMD [\"sh\"]"]);
    source
        .with(|s, i| i.tag(s, "localhost/rt:1", "rt:2"))
        .expect("tag");
    for format in [Format::Oci, Format::Docker] {
        let archive = source.save(&["localhost/rt:1", "rt:2", image.id.short()], format);
        let target = Root::new();
        let loaded = formats::load(&target.images, Cursor::new(archive)).expect("load");
        assert_eq!(loaded.len(), 1, "{format:?}");
        let record = &loaded[0].record;
        assert_eq!(
            record.id, image.id,
            "{format:?}: the config is kept byte for byte"
        );
        assert_eq!(
            record.tags,
            BTreeSet::from([
                "localhost/rt:1".to_owned(),
                "docker.io/library/rt:2".to_owned()
            ])
        );
        assert_eq!(
            loaded[0].lines(),
            ["Loaded image: rt:2", "Loaded image: localhost/rt:1"]
        );
        assert_eq!(hello(&target, record), "round trip");
        if format == Format::Oci {
            assert_eq!(record.manifest, image.manifest, "the manifest too");
        }
        let config = target.images.config(record).expect("config");
        let cmd = config.config().as_ref().and_then(|c| c.cmd().clone());
        assert_eq!(cmd, Some(vec!["sh".to_owned()]));
        // Nothing from the archive is left unreferenced.
        assert_eq!(target.gc().blobs, 0);
    }
}

#[test]
fn an_image_saved_by_id_loads_untagged_and_compressed_archives_load() {
    let source = Root::new();
    let image = source.import("by id", Some("named"), &[]);
    let archive = source.save(&[image.id.hex()], Format::Oci);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &archive).expect("gzip");
    let target = Root::new();
    let loaded =
        formats::load(&target.images, Cursor::new(gz.finish().expect("gz"))).expect("load");
    assert!(loaded[0].record.tags.is_empty());
    assert_eq!(
        loaded[0].lines(),
        [format!("Loaded image ID: {}", image.id)]
    );
}

#[test]
fn import_builds_a_one_layer_image_with_changes() {
    let root = Root::new();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &rootfs_tar("imported")).expect("gzip");
    let record = import(
        &root.images,
        Cursor::new(gz.finish().expect("gz")),
        Some("imp".parse().expect("ref")),
        &[
            "ENV PATH=/bin".to_owned(),
            "EXPOSE 80".to_owned(),
            "CMD echo hi".to_owned(),
            "WORKDIR /srv".to_owned(),
        ],
        Some("from a test"),
    )
    .expect("import");
    assert_eq!(record.layers.len(), 1);
    let layer = &record.layers[0];
    assert_eq!(
        layer.digest, layer.diff_id,
        "the layer blob is the plain tar"
    );
    assert_eq!(layer.media_type, media::OCI_LAYER);
    assert_eq!(hello(&root, &record), "imported");
    let config = root.images.config(&record).expect("config");
    assert_eq!(config.os().to_string(), "linux");
    assert_eq!(record.os, "linux");
    let run = config.config().clone().expect("config.config");
    assert_eq!(
        run.cmd().clone().expect("cmd"),
        ["/bin/sh", "-c", "echo hi"]
    );
    assert_eq!(run.env().clone().expect("env"), ["PATH=/bin"]);
    assert_eq!(run.exposed_ports().clone().expect("ports"), ["80/tcp"]);
    assert_eq!(run.working_dir().as_deref(), Some("/srv"));
    let history = root.images.history(&record).expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].comment, "from a test");
    assert_eq!(history[0].id.as_ref(), Some(&record.id));
    assert_eq!(history[0].size, "imported".len() as u64);

    let blobs = root.images.blobs().list().expect("blobs");
    let err = import(
        &root.images,
        Cursor::new(rootfs_tar("x")),
        None,
        &["ONBUILD RUN true".to_owned()],
        None,
    )
    .expect_err("onbuild");
    assert!(matches!(err, ImageError::InvalidChange { .. }), "{err}");
    let err = import(&root.images, Cursor::new(Vec::new()), None, &[], None).expect_err("empty");
    assert!(err.to_string().contains("empty"), "{err}");
    let err = import(
        &root.images,
        Cursor::new(b"not a tar".repeat(100)),
        None,
        &[],
        None,
    )
    .expect_err("not a tar");
    assert!(matches!(err, ImageError::Layer { .. }), "{err}");
    assert_eq!(
        root.images.blobs().list().expect("blobs"),
        blobs,
        "a failed import leaves no blob behind"
    );
}

/// An archive from raw (name, bytes) entries, written as given.
fn raw_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = header();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        // set_path refuses `..`; write the name bytes as a hostile tool would.
        let gnu = h.as_gnu_mut().expect("gnu");
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, *data).expect("append");
    }
    b.into_inner().expect("tar")
}

fn load_err(archive: Vec<u8>) -> String {
    let root = Root::new();
    let err = formats::load(&root.images, Cursor::new(archive)).expect_err("refused");
    // Whatever was staged is collected.
    assert!(root.images.blobs().list().expect("list").is_empty());
    err.to_string()
}

#[test]
fn hostile_or_broken_archives_are_refused() {
    let err = load_err(raw_tar(&[("../escape.json", b"{}")]));
    assert!(err.contains("climbs out"), "{err}");
    let err = load_err(raw_tar(&[("/manifest.json", b"[]")]));
    assert!(err.contains("absolute"), "{err}");
    let liar = format!("blobs/sha256/{}", Digest::of_bytes(b"truth").hex());
    let err = load_err(raw_tar(&[(&liar, b"a lie")]));
    assert!(err.contains("is corrupt"), "{err}");
    let err = load_err(raw_tar(&[("hello.txt", b"hi")]));
    assert!(err.contains("neither an OCI archive"), "{err}");
    let manifest = br#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["l/layer.tar"]}]"#;
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let err = load_err(raw_tar(&[("manifest.json", manifest), ("c.json", config)]));
    assert!(err.contains("names 1 layers, its config 0"), "{err}");
    let err = load_err(raw_tar(&[("manifest.json", b"{\"not\": \"a list\"}")]));
    assert!(err.contains("manifest.json does not parse"), "{err}");
}

#[test]
fn an_index_without_the_host_platform_is_refused_naming_what_it_offers() {
    let manifest = |arch: &str| {
        format!(
            r#"{{"mediaType":"{}","digest":"{}","size":10,"platform":{{"os":"linux","architecture":"{arch}"}}}}"#,
            media::OCI_MANIFEST,
            Digest::of_bytes(arch.as_bytes())
        )
    };
    let inner = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{},{}]}}"#,
        media::OCI_INDEX,
        manifest("riscv128"),
        manifest("mips")
    );
    let inner_digest = Digest::of_bytes(inner.as_bytes());
    let outer = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{inner_digest}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"localhost/multi:1"}}}}]}}"#,
        media::OCI_INDEX,
        inner.len()
    );
    let blob = format!("blobs/sha256/{}", inner_digest.hex());
    let err = load_err(raw_tar(&[
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        (&blob, inner.as_bytes()),
        ("index.json", outer.as_bytes()),
    ]));
    assert!(
        err.contains("no image for platform linux/")
            && err.contains("it offers: linux/riscv128, linux/mips"),
        "{err}"
    );
}
