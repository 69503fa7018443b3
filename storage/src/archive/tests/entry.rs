//! `pack_entry` (one entry under a name of the caller's), `unpack_at` (into
//! an open folder, with owners given) and `scan` (refusal without a write):
//! what `docker cp` needs.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use tar::EntryType::{Regular, Symlink};

use super::{Sandbox, archive, is_root};
use crate::archive::{Owners, UnpackOptions, pack_entry, scan, unpack_at};

fn open_dir(path: &Path) -> std::fs::File {
    std::fs::File::open(path).expect("open folder")
}

fn names(tar: &[u8]) -> Vec<String> {
    tar::Archive::new(tar)
        .entries()
        .expect("entries")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn an_entry_is_archived_under_the_name_asked_for() {
    let s = Sandbox::new();
    let src = s.target().join("src");
    std::fs::create_dir_all(src.join("sub")).expect("mkdir");
    std::fs::write(src.join("sub/f"), "data").expect("write");
    std::os::unix::fs::symlink("/etc/passwd", src.join("link")).expect("symlink");
    let parent = open_dir(&s.target());
    let never = |_: std::os::fd::BorrowedFd<'_>| false;

    let mut tar = Vec::new();
    pack_entry(
        parent.as_fd(),
        OsStr::new("src"),
        Path::new("dst"),
        &mut tar,
        &never,
    )
    .expect("pack");
    assert_eq!(names(&tar), ["dst/", "dst/link", "dst/sub/", "dst/sub/f"]);

    let mut tar = Vec::new();
    pack_entry(
        parent.as_fd(),
        OsStr::new("src"),
        Path::new("."),
        &mut tar,
        &never,
    )
    .expect("content");
    assert_eq!(names(&tar), ["./", "link", "sub/", "sub/f"]);

    // A symlink is one entry, not what it points at.
    let src_fd = open_dir(&src);
    let mut tar = Vec::new();
    pack_entry(
        src_fd.as_fd(),
        OsStr::new("link"),
        Path::new("renamed"),
        &mut tar,
        &never,
    )
    .expect("symlink");
    assert_eq!(names(&tar), ["renamed"]);

    let pruned = |fd: std::os::fd::BorrowedFd<'_>| {
        nix::sys::stat::fstat(fd).expect("fstat").st_ino
            == std::fs::metadata(src.join("sub")).expect("sub").ino()
    };
    let mut tar = Vec::new();
    pack_entry(
        parent.as_fd(),
        OsStr::new("src"),
        Path::new("src"),
        &mut tar,
        &pruned,
    )
    .expect("pruned");
    assert_eq!(names(&tar), ["src/", "src/link", "src/sub/"]);

    for bad in ["..", "a/b", "/abs"] {
        assert!(
            pack_entry(
                parent.as_fd(),
                OsStr::new("src"),
                Path::new(bad),
                Vec::new(),
                &never
            )
            .is_err(),
            "{bad}"
        );
    }
}

#[test]
fn unpack_at_gives_everything_to_the_owner_asked_for() {
    if !is_root() {
        eprintln!("skipped: owners need root");
        return;
    }
    let s = Sandbox::new();
    let src = s.tmp.path().join("outside/tree");
    std::fs::create_dir(&src).expect("mkdir");
    std::fs::write(src.join("suid"), "x").expect("write");
    std::os::unix::fs::chown(src.join("suid"), Some(1000), Some(1000)).expect("chown");
    std::fs::set_permissions(src.join("suid"), std::fs::Permissions::from_mode(0o6755))
        .expect("chmod");
    let mut tar = Vec::new();
    let never = |_: std::os::fd::BorrowedFd<'_>| false;
    let parent = open_dir(&src);
    pack_entry(
        parent.as_fd(),
        OsStr::new("suid"),
        Path::new("suid"),
        &mut tar,
        &never,
    )
    .expect("pack");
    std::fs::remove_dir_all(&src).expect("clean");

    let target = open_dir(&s.target());
    unpack_at(
        tar.as_slice(),
        target.as_fd(),
        &UnpackOptions::default(),
        Owners::All { uid: 0, gid: 0 },
    )
    .expect("unpack");
    let meta = std::fs::metadata(s.target().join("suid")).expect("meta");
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    assert_eq!(meta.mode() & 0o7777, 0o755, "setuid/setgid dropped");

    unpack_at(
        tar.as_slice(),
        target.as_fd(),
        &UnpackOptions::default(),
        Owners::FromArchive,
    )
    .expect("unpack");
    let meta = std::fs::metadata(s.target().join("suid")).expect("meta");
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (1000, 1000, 0o6755)
    );
    s.assert_outside_untouched();
}

#[test]
fn scan_refuses_what_unpack_would_without_writing() {
    let options = UnpackOptions::default();
    let ok = archive(&[
        ("a/", tar::EntryType::Directory, "", ""),
        ("a/f", Regular, "", "x"),
    ]);
    let summary = scan(ok.as_slice(), &options).expect("fine");
    assert_eq!((summary.dirs, summary.files, summary.bytes), (1, 1, 1));

    let dotdot = archive(&[("fine", Regular, "", "x"), ("../escape", Regular, "", "x")]);
    let err = scan(dotdot.as_slice(), &options).expect_err("..");
    assert!(err.to_string().contains("`..`"), "{err}");

    let through = archive(&[("l", Symlink, "/etc", ""), ("l/passwd", Regular, "", "x")]);
    let err = scan(through.as_slice(), &options).expect_err("symlink parent");
    assert!(err.to_string().contains("\"l\" is a symlink"), "{err}");

    // A folder replacing the archive's own symlink is fine, as in unpack.
    let replaced = archive(&[
        ("l", Symlink, "/etc", ""),
        ("l/", tar::EntryType::Directory, "", ""),
        ("l/x", Regular, "", "x"),
    ]);
    scan(replaced.as_slice(), &options).expect("replaced");

    let mut cut = archive(&[("big", Regular, "", &"y".repeat(2000))]);
    cut.truncate(1024);
    assert!(scan(cut.as_slice(), &options).is_err());

    let no_devices = UnpackOptions {
        devices: false,
        ..UnpackOptions::default()
    };
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Char);
    h.set_device_major(1).expect("major");
    h.set_device_minor(3).expect("minor");
    h.set_mode(0o666);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    b.append_data(&mut h, "null", std::io::empty())
        .expect("append");
    let dev = b.into_inner().expect("tar");
    assert!(scan(dev.as_slice(), &no_devices).is_err());
    scan(dev.as_slice(), &options).expect("devices allowed");
}
