//! Image-layer options: OCI whiteouts converted to overlay form or applied,
//! refused device nodes, and the way back (`pack` with `oci_whiteouts`).
//! Overlay whiteouts (0:0 devices, `trusted.*` xattrs) need root: those
//! tests skip with a reason otherwise.

use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar::EntryType::{self, Char, Directory, Fifo, Regular, Symlink};
use tar::{Builder, Header};

use super::{Sandbox, archive, is_root, raw_entry, tree};
use crate::archive::{
    ArchiveError, PackOptions, UnpackOptions, Whiteouts, pack_dir_with, unpack, unpack_with,
};

const OVERLAY: UnpackOptions = UnpackOptions {
    whiteouts: Whiteouts::Overlay,
    devices: false,
};
const APPLY: UnpackOptions = UnpackOptions {
    whiteouts: Whiteouts::Apply,
    devices: true,
};

fn skip_unless_root(test: &str) -> bool {
    if !is_root() {
        eprintln!("{test} skipped: overlay whiteouts and trusted.* xattrs need root");
    }
    !is_root()
}

fn opaque(path: &Path) -> Option<Vec<u8>> {
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

fn is_whiteout(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
}

fn refused(result: crate::archive::Result<crate::archive::Summary>, entry: &str, why: &str) {
    let err = result.expect_err("must be refused");
    let msg = err.to_string();
    assert!(
        matches!(err, ArchiveError::Refused { entry: ref e, .. } if e == entry),
        "{msg}"
    );
    assert!(msg.contains(why), "{msg}");
}

#[test]
fn overlay_mode_turns_oci_whiteouts_into_overlay_ones() {
    if skip_unless_root("overlay_mode_turns_oci_whiteouts_into_overlay_ones") {
        return;
    }
    let s = Sandbox::new();
    let tar = archive(&[
        ("a/f", Regular, "", "kept"),
        ("a/.wh.gone", Regular, "", ""),
        ("b/.wh..wh..opq", Regular, "", ""),
        ("b/x", Regular, "", "x"),
        (".wh..wh.plnk/", Directory, "", ""),
        (".wh..wh.plnk/123.4", Regular, "", "aufs"),
        ("c/", Directory, "", ""),
        ("c/mine", Regular, "", "mine"),
        (".wh.c", Regular, "", ""),
        ("e", Regular, "", "same layer"),
        (".wh.e", Regular, "", ""),
        (".wh.h", Regular, "", ""),
        ("h/", Directory, "", ""),
        ("deep/er/.wh.x", Regular, "", ""),
    ]);
    let summary = unpack_with(tar.as_slice(), &s.target(), &OVERLAY).expect("unpack");
    let t = s.target();
    assert!(
        is_whiteout(&t.join("a/gone")),
        "a/.wh.gone became a 0:0 device"
    );
    assert!(!t.join("a/.wh.gone").exists());
    assert_eq!(opaque(&t.join("b")).as_deref(), Some(&b"y"[..]));
    assert!(t.join("b/x").is_file());
    assert!(!t.join(".wh..wh.plnk").exists(), "aufs metadata skipped");
    assert_eq!(
        opaque(&t.join("c")).as_deref(),
        Some(&b"y"[..]),
        "a whiteout of this layer's own folder hides only the lower one"
    );
    assert!(t.join("c/mine").is_file());
    assert_eq!(
        std::fs::read_to_string(t.join("e")).expect("e"),
        "same layer"
    );
    assert!(t.join("h").is_dir() && opaque(&t.join("h")).as_deref() == Some(&b"y"[..]));
    assert!(is_whiteout(&t.join("deep/er/x")));
    assert_eq!(opaque(&t.join("a")), None);
    assert_eq!(summary.whiteouts, 4, "{summary:?}");
    s.assert_outside_untouched();
}

#[test]
fn whiteouts_are_resolved_like_any_entry() {
    let s = Sandbox::new();
    let out = s.outside().display().to_string();
    for options in [OVERLAY, OCI, APPLY] {
        let tar = archive(&[("../.wh.secret", Regular, "", "")]);
        refused(
            unpack_with(tar.as_slice(), &s.target(), &options),
            "../.wh.secret",
            "`..`",
        );
        let tar = archive(&[
            ("link", Symlink, &out, ""),
            ("link/.wh.secret", Regular, "", ""),
        ]);
        refused(
            unpack_with(tar.as_slice(), &s.target(), &options),
            "link/.wh.secret",
            "\"link\" is a symlink",
        );
        let tar = archive(&[
            ("up", Symlink, "..", ""),
            ("up/outside/.wh..wh..opq", Regular, "", ""),
        ]);
        refused(
            unpack_with(tar.as_slice(), &s.target(), &options),
            "up/outside/.wh..wh..opq",
            "\"up\" is a symlink",
        );
        for name in [".wh...", ".wh..", ".wh."] {
            let tar = archive(&[(name, Regular, "", "")]);
            refused(
                unpack_with(tar.as_slice(), &s.target(), &options),
                name,
                "whiteout of",
            );
        }
        let tar = archive(&[(".wh.d/x", Regular, "", "")]);
        refused(
            unpack_with(tar.as_slice(), &s.target(), &options),
            ".wh.d/x",
            "used as a folder",
        );
        s.assert_outside_untouched();
    }
    assert!(!s.outside().join(".wh.secret").exists());
}

#[test]
fn keep_mode_writes_whiteout_names_as_plain_files() {
    let s = Sandbox::new();
    let tar = archive(&[
        (".wh.x", Regular, "", "plain"),
        ("d/.wh..wh..opq", Regular, "", ""),
    ]);
    let summary = unpack(tar.as_slice(), &s.target()).expect("unpack");
    assert!(s.target().join(".wh.x").is_file());
    assert!(s.target().join("d/.wh..wh..opq").is_file());
    assert_eq!(summary.whiteouts, 0);
}

fn device(name: &str, kind: EntryType) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    let mut h = Header::new_gnu();
    h.set_path(name).expect("path");
    h.set_entry_type(kind);
    h.set_mode(0o666);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    h.set_device_major(1).expect("major");
    h.set_device_minor(3).expect("minor");
    h.set_cksum();
    b.append(&h, std::io::empty()).expect("append");
    b.into_inner().expect("tar")
}

#[test]
fn device_nodes_are_refused_when_not_allowed() {
    let s = Sandbox::new();
    let tar = device("dev/null", Char);
    refused(
        unpack_with(tar.as_slice(), &s.target(), &OVERLAY),
        "dev/null",
        "a character device node (1:3), and device nodes are not allowed here",
    );
    let tar = device("dev/sda", EntryType::Block);
    refused(
        unpack_with(tar.as_slice(), &s.target(), &OVERLAY),
        "dev/sda",
        "a block device node (1:3)",
    );
    assert!(!s.target().join("dev/null").exists());
    // A fifo gives access to nothing: allowed.
    let tar = archive(&[("fifo", Fifo, "", "")]);
    unpack_with(tar.as_slice(), &s.target(), &OVERLAY).expect("fifo");
    assert!(
        std::fs::symlink_metadata(s.target().join("fifo"))
            .expect("fifo")
            .file_type()
            .is_fifo()
    );
    s.assert_outside_untouched();
}

#[test]
fn a_layer_cannot_forge_overlay_xattrs() {
    if skip_unless_root("a_layer_cannot_forge_overlay_xattrs") {
        return;
    }
    let s = Sandbox::new();
    let mut b = Builder::new(Vec::new());
    b.append_pax_extensions([
        ("SCHILY.xattr.trusted.overlay.opaque", &b"y"[..]),
        ("SCHILY.xattr.trusted.overlay.redirect", &b"/etc"[..]),
    ])
    .expect("pax");
    raw_entry(&mut b, "d/", Directory, "", b"");
    let tar = b.into_inner().expect("tar");
    unpack_with(tar.as_slice(), &s.target(), &OVERLAY).expect("unpack");
    assert!(s.target().join("d").is_dir());
    assert_eq!(opaque(&s.target().join("d")), None, "forged opaque dropped");
}

fn open_dir(path: &Path) -> OwnedFd {
    std::fs::File::open(path).expect("open dir").into()
}

const OCI: UnpackOptions = UnpackOptions {
    whiteouts: Whiteouts::Oci,
    devices: false,
};

/// A layer folder of either form packed with `oci_whiteouts` and applied
/// over a lower copy gives what overlayfs would show.
#[test]
fn packed_whiteouts_apply_over_a_lower_copy() {
    if skip_unless_root("packed_whiteouts_apply_over_a_lower_copy") {
        return;
    }
    for form in [OVERLAY, OCI] {
        let s = Sandbox::new();
        let lower = archive(&[
            ("keep", Regular, "", "lower"),
            ("-x", Regular, "", "lower"),
            ("gone/", Directory, "", ""),
            ("gone/deep/file", Regular, "", "x"),
            ("gone/link", Symlink, "/etc", ""),
            ("op/", Directory, "", ""),
            ("op/old", Regular, "", "old"),
            ("op/-first", Regular, "", "sorts before the marker"),
        ]);
        unpack_with(lower.as_slice(), &s.target(), &APPLY).expect("lower");

        let layer_dir = s.tmp.path().join("layer");
        std::fs::create_dir(&layer_dir).expect("layer");
        let upper = archive(&[
            (".wh.gone", Regular, "", ""),
            ("op/.wh..wh..opq", Regular, "", ""),
            ("op/-new", Regular, "", "this layer's"),
            ("added", Regular, "", "added"),
            // A whiteout never hides an entry of its own layer.
            ("-x", Regular, "", "upper"),
            (".wh.-x", Regular, "", ""),
        ]);
        unpack_with(upper.as_slice(), &layer_dir, &form).expect("layer");
        if form == OCI {
            let marker = std::fs::symlink_metadata(layer_dir.join(".wh.gone")).expect("marker");
            assert!(marker.is_file() && marker.len() == 0);
            assert!(layer_dir.join("op/.wh..wh..opq").is_file());
        } else {
            assert!(is_whiteout(&layer_dir.join("gone")));
        }

        let mut tar = Vec::new();
        pack_dir_with(
            open_dir(&layer_dir),
            &mut tar,
            &PackOptions {
                oci_whiteouts: true,
            },
        )
        .expect("pack");
        let names: Vec<String> = tar::Archive::new(tar.as_slice())
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        let mut want = vec![
            "./",
            ".wh.-x",
            ".wh.gone",
            "-x",
            "added",
            "op/",
            "op/.wh..wh..opq",
            "op/-new",
        ];
        if form == OVERLAY {
            // The overlay form had nothing to hide at `-x`: its own file does.
            want.retain(|n| *n != ".wh.-x");
        }
        assert_eq!(names, want, "{form:?}");

        unpack_with(tar.as_slice(), &s.target(), &APPLY).expect("apply");
        let got: Vec<String> = tree(&s.target()).into_keys().collect();
        assert_eq!(
            got,
            ["", "-x", "added", "keep", "op", "op/-new"],
            "{form:?}"
        );
        assert_eq!(
            std::fs::read_to_string(s.target().join("-x")).expect("-x"),
            "upper"
        );
        assert_eq!(
            opaque(&s.target().join("op")),
            None,
            "no overlay xattr copied"
        );
        std::fs::remove_dir_all(&layer_dir).expect("cleanup");
        s.assert_outside_untouched();
    }
}

#[test]
fn applied_whiteouts_never_remove_across_a_mount() {
    if skip_unless_root("applied_whiteouts_never_remove_across_a_mount") {
        return;
    }
    let s = Sandbox::new();
    let mnt = s.target().join("m/mnt");
    std::fs::create_dir_all(&mnt).expect("mnt");
    nix::mount::mount(
        Some("muelle-test"),
        &mnt,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .expect("mount tmpfs");
    std::fs::write(mnt.join("precious"), "data").expect("precious");
    let tar = archive(&[(".wh.m", Regular, "", "")]);
    let result = unpack_with(tar.as_slice(), &s.target(), &APPLY);
    let still = std::fs::read_to_string(mnt.join("precious"));
    nix::mount::umount(&mnt).expect("umount");
    refused(result, ".wh.m", "mount point");
    assert_eq!(still.expect("precious kept"), "data");
}
