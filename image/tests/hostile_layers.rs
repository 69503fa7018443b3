//! Layers are untrusted input: crafted tarballs that try to write outside
//! the unpack folder. Each is refused with an error naming the entry (or,
//! for absolute names, lands inside), nothing is kept in the layer store,
//! and nothing outside changes: a sentinel folder beside the data root,
//! and the host's /etc.
//!
//! Names are written into raw headers: `tar::Builder::set_path` refuses
//! the hostile ones these tests need.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::{BlobStore, Digest, ImageError, LayerForm, LayerStore};
use tar::EntryType::{self, Block, Char, Directory, Link, Regular, Symlink};
use tar::{Builder, Header};

const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// One hostile entry: name, type, link target, data, mode.
struct E {
    name: String,
    kind: EntryType,
    link: String,
    data: Vec<u8>,
    mode: u32,
}

#[allow(non_snake_case)]
fn E(name: &str, kind: EntryType, link: &str, data: &[u8], mode: u32) -> E {
    E {
        name: name.to_owned(),
        kind,
        link: link.to_owned(),
        data: data.to_vec(),
        mode,
    }
}

fn entry(name: &str, kind: EntryType, link: &str, data: &str) -> E {
    let mode = if kind == Directory { 0o755 } else { 0o644 };
    E(name, kind, link, data.as_bytes(), mode)
}

fn raw_tar(entries: &[E]) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    for E {
        name,
        kind,
        link,
        data,
        mode,
    } in entries
    {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(*mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        if matches!(kind, Char | Block) {
            h.set_device_major(8).expect("major");
            h.set_device_minor(0).expect("minor");
        }
        h.set_cksum();
        b.append(&h, data.as_slice()).expect("append");
    }
    b.into_inner().expect("tar")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

/// A data root beside a sentinel folder, and the host files a layer might
/// aim at, remembered to tell whether anything changed.
struct World {
    tmp: tempfile::TempDir,
    blobs: BlobStore,
    layers: LayerStore,
    passwd: (i64, i64, u64),
}

fn passwd_stamp() -> (i64, i64, u64) {
    let m = std::fs::symlink_metadata("/etc/passwd").expect("/etc/passwd");
    (m.mtime(), m.ctime(), m.nlink())
}

impl World {
    fn new() -> World {
        let tmp = tempfile::Builder::new()
            .prefix("muelle-hostile")
            .tempdir()
            .expect("tempdir");
        let data = tmp.path().join("data");
        std::fs::create_dir(&data).expect("data");
        std::fs::create_dir(tmp.path().join("outside")).expect("outside");
        std::fs::write(tmp.path().join("outside/secret"), "secret").expect("secret");
        World {
            blobs: BlobStore::open(&data).expect("blobs"),
            layers: LayerStore::open(&data).expect("layers"),
            passwd: passwd_stamp(),
            tmp,
        }
    }

    fn outside(&self) -> PathBuf {
        self.tmp.path().join("outside")
    }

    fn put(&self, blob: &[u8]) -> Digest {
        self.blobs.put_bytes(blob).expect("put")
    }

    fn unpack(&self, blob: &[u8], media_type: &str) -> image::Result<image::Unpacked> {
        let digest = self.put(blob);
        self.layers.unpack(&self.blobs, &digest, media_type, None)
    }

    /// Expects a refusal naming `entry` and saying `why`, and nothing kept.
    fn refused(&self, tar: &[u8], entry: &str, why: &str) {
        for (blob, media) in [(tar.to_vec(), TAR), (gzip(tar), GZIP)] {
            let err = self.unpack(&blob, media).expect_err("must be refused");
            let msg = err.to_string();
            assert!(matches!(err, ImageError::Layer { .. }), "{msg}");
            assert!(
                msg.contains(&format!("{entry:?}")),
                "names {entry:?}: {msg}"
            );
            assert!(msg.contains(why), "says {why:?}: {msg}");
            assert!(!msg.contains('\n'), "one line: {msg}");
            self.assert_nothing_kept();
            self.assert_outside_untouched();
        }
    }

    fn assert_nothing_kept(&self) {
        assert_eq!(self.layers.list().expect("list"), vec![]);
        let left: Vec<String> = std::fs::read_dir(self.layers.root())
            .expect("layers")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(left.is_empty(), "no temporary folder left: {left:?}");
    }

    fn assert_outside_untouched(&self) {
        let mut top: Vec<String> = std::fs::read_dir(self.tmp.path())
            .expect("tmp")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        top.sort();
        assert_eq!(top, ["data", "outside"], "nothing new beside the data root");
        let outside: Vec<String> = std::fs::read_dir(self.outside())
            .expect("outside")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(outside, ["secret"]);
        let secret = self.outside().join("secret");
        let meta = std::fs::symlink_metadata(&secret).expect("secret");
        assert_eq!((meta.nlink(), meta.mode() & 0o7777), (1, 0o644));
        assert_eq!(std::fs::read_to_string(&secret).expect("read"), "secret");
        assert_eq!(passwd_stamp(), self.passwd, "/etc/passwd unchanged");
        for host in [
            "/etc/muelle-hostile",
            "/muelle-hostile",
            "/usr/bin/muelle-hostile",
        ] {
            assert!(!Path::new(host).exists(), "{host} created on the host");
        }
    }
}

#[test]
fn dotdot_names_are_refused() {
    let w = World::new();
    for name in ["../escape", "a/../../escape", "./../outside/secret"] {
        w.refused(&raw_tar(&[entry(name, Regular, "", "pwned")]), name, "`..`");
    }
}

#[test]
fn absolute_names_land_inside_the_layer() {
    let w = World::new();
    let abs = format!("{}/secret", w.outside().display());
    let tar = raw_tar(&[
        entry(&abs, Regular, "", "inside"),
        entry("/etc/muelle-hostile", Regular, "", "inside"),
    ]);
    let got = w.unpack(&tar, TAR).expect("unpack");
    let diff = w.layers.path(&got.diff_id);
    let inside = diff.join(abs.trim_start_matches('/'));
    assert_eq!(std::fs::read_to_string(inside).expect("inside"), "inside");
    assert!(diff.join("etc/muelle-hostile").is_file());
    w.assert_outside_untouched();
}

#[test]
fn a_symlink_to_the_root_is_never_followed() {
    let w = World::new();
    let tar = raw_tar(&[
        entry("link", Symlink, "/", ""),
        entry("link/etc/muelle-hostile", Regular, "", "pwned"),
    ]);
    w.refused(&tar, "link/etc/muelle-hostile", "\"link\" is a symlink");
    let out = w.outside().display().to_string();
    let tar = raw_tar(&[
        entry("out", Symlink, &out, ""),
        entry("out/secret", Regular, "", "pwned"),
    ]);
    w.refused(&tar, "out/secret", "\"out\" is a symlink");
}

#[test]
fn a_symlink_chain_to_dotdot_is_never_followed() {
    let w = World::new();
    let tar = raw_tar(&[
        entry("a", Symlink, "b", ""),
        entry("b", Symlink, "c/..", ""),
        entry("c/", Directory, "", ""),
        entry("up", Symlink, "../../..", ""),
        entry("a/outside/new", Regular, "", "pwned"),
    ]);
    w.refused(&tar, "a/outside/new", "\"a\" is a symlink");
    let tar = raw_tar(&[
        entry("d/", Directory, "", ""),
        entry("d/up", Symlink, "../..", ""),
        entry("d/up/outside/", Directory, "", ""),
    ]);
    w.refused(&tar, "d/up/outside/", "\"d/up\" is a symlink");
}

#[test]
fn hard_links_out_of_the_layer_are_refused() {
    let w = World::new();
    let tar = raw_tar(&[entry("pw", Link, "/etc/passwd", "")]);
    w.refused(&tar, "pw", "does not exist in the target folder");
    let tar = raw_tar(&[entry("x", Link, "../x", "")]);
    w.refused(&tar, "x", "`..`");
    let secret = w.outside().join("secret").display().to_string();
    let tar = raw_tar(&[entry("s", Link, &secret, "")]);
    w.refused(&tar, "s", "does not exist in the target folder");
    let tar = raw_tar(&[
        entry("etc", Symlink, "/etc", ""),
        entry("pw", Link, "etc/passwd", ""),
    ]);
    w.refused(&tar, "pw", "\"etc\" is a symlink");
}

fn opaque_xattr(path: &Path) -> Option<Vec<u8>> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    let mut buf = [0u8; 8];
    // SAFETY: NUL-terminated strings and a live buffer of that length.
    let n = unsafe {
        libc::lgetxattr(
            c_path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    usize::try_from(n).ok().map(|n| buf[..n].to_vec())
}

#[test]
fn whiteouts_cannot_escape() {
    let w = World::new();
    w.refused(
        &raw_tar(&[entry(".wh...", Regular, "", "")]),
        ".wh...",
        "whiteout of",
    );
    w.refused(
        &raw_tar(&[entry("../.wh.outside", Regular, "", "")]),
        "../.wh.outside",
        "`..`",
    );
    w.refused(
        &raw_tar(&[entry("a/.wh.../x", Regular, "", "")]),
        "a/.wh.../x",
        "used as a folder",
    );
    let out = w.outside().display().to_string();
    let tar = raw_tar(&[
        entry("o", Symlink, &out, ""),
        entry("o/.wh.secret", Regular, "", ""),
    ]);
    w.refused(&tar, "o/.wh.secret", "\"o\" is a symlink");
    let tar = raw_tar(&[
        entry("e", Symlink, "/etc", ""),
        entry("e/.wh..wh..opq", Regular, "", ""),
    ]);
    w.refused(&tar, "e/.wh..wh..opq", "\"e\" is a symlink");
    let tar = raw_tar(&[
        entry("o", Symlink, &out, ""),
        entry("o/.wh..wh..opq", Regular, "", ""),
    ]);
    w.refused(&tar, "o/.wh..wh..opq", "\"o\" is a symlink");
    assert_eq!(opaque_xattr(Path::new("/etc")), None);
    assert_eq!(opaque_xattr(&w.outside()), None);
}

#[test]
fn device_nodes_are_refused_where_not_allowed() {
    let w = World::new();
    let strict = w.layers.clone().devices(false);
    let tar = raw_tar(&[
        entry("dev/sda", Block, "", ""),
        entry("dev/tty0", Char, "", ""),
    ]);
    let digest = w.put(&tar);
    let err = strict
        .unpack(&w.blobs, &digest, TAR, None)
        .expect_err("refused");
    let msg = err.to_string();
    assert!(msg.contains("\"dev/sda\""), "{msg}");
    assert!(msg.contains("a block device node (8:0)"), "{msg}");
    w.assert_nothing_kept();
    w.assert_outside_untouched();

    // By default, as docker when root: created, inside the layer only.
    if is_root() {
        let got = w
            .layers
            .unpack(&w.blobs, &digest, TAR, None)
            .expect("unpack");
        let sda =
            std::fs::symlink_metadata(w.layers.path(&got.diff_id).join("dev/sda")).expect("node");
        assert!(sda.file_type().is_block_device());
        w.assert_outside_untouched();
    }
}

#[test]
fn setuid_files_keep_their_bits_inside_and_write_nothing_outside() {
    let w = World::new();
    let tar = raw_tar(&[
        E("bin/", Directory, "", b"", 0o755),
        E("bin/su", Regular, "", b"#!su", 0o4755),
        E("bin/wall", Regular, "", b"#!wall", 0o2755),
    ]);
    let got = w.unpack(&tar, TAR).expect("unpack");
    let su = std::fs::metadata(w.layers.path(&got.diff_id).join("bin/su")).expect("su");
    assert_eq!(su.mode() & 0o7777, 0o4755, "setuid kept");
    let wall = std::fs::metadata(w.layers.path(&got.diff_id).join("bin/wall")).expect("wall");
    assert_eq!(wall.mode() & 0o7777, 0o2755, "setgid kept");
    // The layer store is root's alone: no host user reaches these.
    let store = std::fs::metadata(w.layers.root()).expect("layers");
    assert_eq!(store.permissions().mode() & 0o777, 0o700);
    w.layers.remove(&got.diff_id).expect("remove");

    let out = w.outside().display().to_string();
    for (tar, name, why) in [
        (
            raw_tar(&[E("../outside/secret", Regular, "", b"x", 0o4755)]),
            "../outside/secret",
            "`..`",
        ),
        (
            raw_tar(&[
                E("usr", Symlink, "/usr", b"", 0o777),
                E("usr/bin/muelle-hostile", Regular, "", b"x", 0o4755),
            ]),
            "usr/bin/muelle-hostile",
            "\"usr\" is a symlink",
        ),
        (
            raw_tar(&[
                E("o", Symlink, &out, b"", 0o777),
                E("o/secret", Regular, "", b"x", 0o4777),
            ]),
            "o/secret",
            "\"o\" is a symlink",
        ),
    ] {
        w.refused(&tar, name, why);
    }
}

#[test]
fn a_huge_declared_size_with_truncated_data_fails_fast() {
    let w = World::new();
    let mut h = Header::new_gnu();
    h.set_path("huge").expect("path");
    h.set_entry_type(Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(1 << 40);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend(vec![b'z'; 64 * 1024]);
    let started = Instant::now();
    for (blob, media) in [(tar.clone(), TAR), (gzip(&tar), GZIP)] {
        let err = w.unpack(&blob, media).expect_err("truncated");
        let msg = err.to_string();
        assert!(msg.contains("\"huge\""), "{msg}");
        assert!(msg.contains("the archive ends inside it"), "{msg}");
    }
    assert!(started.elapsed() < Duration::from_secs(10), "no hang");
    w.assert_nothing_kept();
    w.assert_outside_untouched();
}

#[test]
fn a_layer_whose_diff_id_differs_is_refused() {
    let w = World::new();
    let tar = raw_tar(&[entry("f", Regular, "", "data")]);
    let digest = w.put(&gzip(&tar));
    let wrong = Digest::of_bytes(b"another layer");
    let err = w
        .layers
        .unpack(&w.blobs, &digest, GZIP, Some(&wrong))
        .expect_err("mismatch");
    assert!(
        matches!(&err, ImageError::DiffIdMismatch { expected, actual, .. }
            if *expected == wrong && *actual == Digest::of_bytes(&tar)),
        "{err}"
    );
    w.assert_nothing_kept();
    let right = Digest::of_bytes(&tar);
    let got = w
        .layers
        .unpack(&w.blobs, &digest, GZIP, Some(&right))
        .expect("the right diff id");
    assert_eq!(got.diff_id, right);
}

#[test]
fn a_corrupt_blob_is_named_as_corrupt() {
    let w = World::new();
    let tar = raw_tar(&[entry("f", Regular, "", &"data".repeat(4096))]);
    for blob in [
        tar.clone(),
        gzip(&tar),
        zstd::encode_all(tar.as_slice(), 3).expect("zstd"),
    ] {
        let digest = w.put(&blob);
        let mut bad = blob.clone();
        // Damage in the middle: the tar or the compressed data still
        // parses for a while, and the digest check comes last.
        let at = bad.len() / 2;
        bad[at] ^= 0x55;
        std::fs::write(w.blobs.path(&digest), &bad).expect("corrupt it");
        let err = w
            .layers
            .unpack(&w.blobs, &digest, GZIP, None)
            .expect_err("corrupt");
        assert!(
            matches!(&err, ImageError::CorruptBlob { expected, .. } if *expected == digest),
            "{err}"
        );
        w.assert_nothing_kept();
    }
    w.assert_outside_untouched();
}

#[test]
fn layers_are_unpacked_once_whatever_the_media_type_says() {
    let w = World::new();
    let tar = raw_tar(&[
        E("etc/", Directory, "", b"", 0o755),
        E("etc/os-release", Regular, "", b"muelle", 0o644),
    ]);
    let want = Digest::of_bytes(&tar);
    // A gzip blob labelled as a plain tar and the other way round.
    let first = w.unpack(&gzip(&tar), TAR).expect("gzip");
    assert_eq!(
        first,
        image::Unpacked {
            diff_id: want.clone(),
            size: 6
        }
    );
    let file = w.layers.path(&want).join("etc/os-release");
    let inode = std::fs::metadata(&file).expect("file").ino();
    let zst = zstd::encode_all(tar.as_slice(), 3).expect("zstd");
    for (blob, media) in [(tar.clone(), GZIP), (zst, TAR)] {
        let again = w.unpack(&blob, media).expect("again");
        assert_eq!(again.diff_id, want);
    }
    assert_eq!(
        std::fs::metadata(&file).expect("file").ino(),
        inode,
        "shared, not redone"
    );
    assert_eq!(w.layers.list().expect("list"), vec![want.clone()]);
    assert!(w.layers.exists(&want));
    let info = w.layers.info(&want).expect("info");
    assert_eq!((info.size, info.tar_size), (6, tar.len() as u64));

    w.layers.remove(&want).expect("remove");
    assert!(!w.layers.exists(&want));
    w.assert_nothing_kept();
    w.layers.remove(&want).expect("removing nothing is fine");
}

#[test]
fn a_layer_with_a_mount_inside_is_not_removed() {
    if !is_root() {
        eprintln!("a_layer_with_a_mount_inside_is_not_removed skipped: mounting needs root");
        return;
    }
    let w = World::new();
    let tar = raw_tar(&[E("mnt/", Directory, "", b"", 0o755)]);
    let got = w.unpack(&tar, TAR).expect("unpack");
    let mnt = w.layers.path(&got.diff_id).join("mnt");
    nix::mount::mount(
        Some("muelle-test"),
        &mnt,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .expect("mount");
    std::fs::write(mnt.join("precious"), "data").expect("write");
    let result = w.layers.remove(&got.diff_id);
    let kept = std::fs::read_to_string(mnt.join("precious"));
    nix::mount::umount(&mnt).expect("umount");
    let err = result.expect_err("refused");
    assert!(matches!(err, ImageError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("mounted inside it"), "{err}");
    assert_eq!(kept.expect("kept"), "data");
    w.layers
        .remove(&got.diff_id)
        .expect("remove once unmounted");
}

#[test]
fn oci_whiteouts_become_overlay_whiteouts() {
    if !is_root() {
        eprintln!("oci_whiteouts_become_overlay_whiteouts skipped: overlay whiteouts need root");
        return;
    }
    let mut w = World::new();
    w.layers = w.layers.clone().with_form(LayerForm::Overlay);
    let tar = raw_tar(&[
        entry("etc/.wh.shadow", Regular, "", ""),
        entry("var/cache/.wh..wh..opq", Regular, "", ""),
        entry(".wh..wh.plnk/", Directory, "", ""),
    ]);
    let got = w.unpack(&tar, TAR).expect("unpack");
    let diff = w.layers.path(&got.diff_id);
    let shadow = std::fs::symlink_metadata(diff.join("etc/shadow")).expect("whiteout");
    assert!(shadow.file_type().is_char_device() && shadow.rdev() == 0);
    assert_eq!(
        opaque_xattr(&diff.join("var/cache")).as_deref(),
        Some(&b"y"[..])
    );
    assert!(!diff.join(".wh..wh.plnk").exists());
    w.assert_outside_untouched();
}

#[test]
fn oci_form_layers_keep_whiteouts_as_checked_markers() {
    let mut w = World::new();
    w.layers = w.layers.clone().with_form(LayerForm::Oci);
    let tar = raw_tar(&[
        // Whatever the entry type, a whiteout is stored as an empty file.
        entry("etc/.wh.shadow", Symlink, "/etc/shadow", ""),
        entry("var/cache/.wh..wh..opq", Directory, "", ""),
        entry(".wh..wh.plnk/", Directory, "", ""),
    ]);
    let got = w.unpack(&tar, TAR).expect("unpack");
    let diff = w.layers.path(&got.diff_id);
    let marker = std::fs::symlink_metadata(diff.join("etc/.wh.shadow")).expect("marker");
    assert!(marker.is_file() && marker.len() == 0);
    assert!(diff.join("var/cache/.wh..wh..opq").is_file());
    assert!(!diff.join(".wh..wh.plnk").exists());
    assert_eq!(
        w.layers.info(&got.diff_id).expect("info").form,
        LayerForm::Oci
    );
    // The store of the other form does not count it, and unpacking there
    // replaces it.
    if is_root() {
        let overlay = w.layers.clone().with_form(LayerForm::Overlay);
        assert!(!overlay.exists(&got.diff_id));
        let digest = w.put(&tar);
        overlay.unpack(&w.blobs, &digest, TAR, None).expect("again");
        assert!(overlay.exists(&got.diff_id));
        let shadow = std::fs::symlink_metadata(diff.join("etc/shadow")).expect("whiteout");
        assert!(shadow.file_type().is_char_device());
        w.layers.remove(&got.diff_id).expect("remove");
    } else {
        w.layers.remove(&got.diff_id).expect("remove");
    }
    w.refused(
        &raw_tar(&[entry(".wh...", Regular, "", "")]),
        ".wh...",
        "whiteout of",
    );
    w.assert_outside_untouched();
}
