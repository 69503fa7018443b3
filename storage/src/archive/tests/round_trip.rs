use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use nix::sys::time::TimeSpec;

use super::{is_root, tree};
use crate::archive::{Summary, pack, unpack};

const LONG: &str = "a-name-longer-than-the-hundred-bytes-a-plain-tar-header-holds-so-gnu-long-names-are-needed-here.txt";

fn set_mtime(path: &Path, secs: i64) {
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &TimeSpec::new(secs, 0),
        &TimeSpec::new(secs, 0),
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .expect("utimensat");
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn chown(path: &Path, uid: u32, gid: u32) {
    if is_root() {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).expect("chown");
    }
}

/// Whether `dir`'s filesystem takes user xattrs (tmpfs before 6.6 does not).
fn set_user_xattr(path: &Path) -> bool {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: NUL-terminated strings and a live value.
    let rc = unsafe {
        libc::setxattr(
            c_path.as_ptr(),
            c"user.muelle".as_ptr(),
            b"kept".as_ptr().cast(),
            4,
            0,
        )
    };
    rc == 0
}

fn get_user_xattr(path: &Path) -> Option<Vec<u8>> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    let mut buf = [0u8; 64];
    // SAFETY: NUL-terminated strings and a live buffer of that length.
    let n = unsafe {
        libc::getxattr(
            c_path.as_ptr(),
            c"user.muelle".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

/// A tree with one of everything `pack` keeps; returns whether it holds an
/// xattr (the filesystem may not take them).
fn make_tree(src: &Path) -> bool {
    std::fs::create_dir_all(src.join("d/deep/er")).expect("dirs");
    std::fs::write(src.join("d/file"), "hello").expect("file");
    chown(&src.join("d/file"), 1234, 5678);
    chmod(&src.join("d/file"), 0o4755);
    std::fs::hard_link(src.join("d/file"), src.join("d/hard")).expect("hard link");
    std::os::unix::fs::symlink("../d/file", src.join("d/rel")).expect("symlink");
    std::os::unix::fs::symlink("/etc/passwd", src.join("abs")).expect("symlink");
    std::os::unix::fs::symlink("/nowhere", src.join("dangling")).expect("symlink");
    std::fs::write(src.join("empty"), "").expect("empty");
    chmod(&src.join("empty"), 0o600);
    std::fs::write(src.join("d/deep/er").join(LONG), vec![7u8; 70_000]).expect("long");
    mknod(
        &src.join("fifo"),
        SFlag::S_IFIFO,
        Mode::from_bits_truncate(0o640),
        0,
    )
    .expect("fifo");
    if is_root() {
        mknod(
            &src.join("null"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(1, 3),
        )
        .expect("mknod");
        chown(&src.join("null"), 7, 8);
    }
    chown(&src.join("d/rel"), 11, 12);
    let xattr = set_user_xattr(&src.join("empty"));
    chmod(&src.join("d/deep"), 0o2775);
    chmod(&src.join("d"), 0o750);
    chown(&src.join("d"), 1000, 1001);
    chmod(src, 0o711);
    chown(src, 42, 43);
    for p in ["d/file", "empty", "fifo", "d/deep/er", "d/deep", "d", ""] {
        set_mtime(&src.join(p), 1_000_000_000);
    }
    set_mtime(&src.join("d/rel"), 1_100_000_000);
    xattr
}

#[test]
fn round_trip_keeps_modes_owners_links_fifos_devices_times_and_xattrs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    std::fs::create_dir(&src).expect("src");
    std::fs::create_dir(&dst).expect("dst");
    let xattr = make_tree(&src);
    // A socket cannot be archived: skipped, not an error.
    let _sock = std::os::unix::net::UnixListener::bind(src.join("sock")).expect("socket");
    set_mtime(&src, 1_000_000_000);

    let mut tar = Vec::new();
    let packed = pack(&src, &mut tar).expect("pack");
    assert_eq!(packed.skipped, 1, "{packed:?}");
    let unpacked = unpack(tar.as_slice(), &dst).expect("unpack");
    assert_eq!(
        unpacked,
        Summary {
            skipped: 0,
            ..packed
        }
    );

    let mut want = tree(&src);
    want.remove("sock");
    let got = tree(&dst);
    assert_eq!(got, want);
    assert_eq!(got["d/file"].mode, 0o4755, "setuid kept");
    assert_eq!(got[""].mode, 0o711, "the root's own mode");
    assert_eq!(got["d/rel"].mtime, None);
    let (a, b) = (
        std::fs::metadata(dst.join("d/file")).expect("file"),
        std::fs::metadata(dst.join("d/hard")).expect("hard"),
    );
    assert_eq!(a.ino(), b.ino(), "one inode, two names");
    assert_eq!(
        std::fs::symlink_metadata(dst.join("d/rel"))
            .expect("rel")
            .mtime(),
        1_100_000_000
    );
    if is_root() {
        assert_eq!((got["d/file"].uid, got["d/file"].gid), (1234, 5678));
        assert_eq!((got["d/rel"].uid, got["d/rel"].gid), (11, 12));
        assert_eq!(got["null"].kind, "char");
    }
    if xattr {
        assert_eq!(
            get_user_xattr(&dst.join("empty")).as_deref(),
            Some(&b"kept"[..])
        );
    }

    // The same tree gives the same archive.
    let mut again = Vec::new();
    pack(&src, &mut again).expect("pack again");
    assert!(tar == again, "pack is deterministic");
}

#[test]
fn unpacking_over_existing_content_merges_and_replaces() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    std::fs::create_dir_all(src.join("d")).expect("src");
    std::fs::write(src.join("d/f"), "new").expect("f");
    std::fs::create_dir_all(dst.join("d")).expect("dst");
    std::fs::write(dst.join("d/f"), "old").expect("old");
    std::fs::write(dst.join("d/mine"), "kept").expect("mine");
    let mut tar = Vec::new();
    pack(&src, &mut tar).expect("pack");
    unpack(tar.as_slice(), &dst).expect("unpack");
    assert_eq!(std::fs::read_to_string(dst.join("d/f")).expect("f"), "new");
    assert_eq!(
        std::fs::read_to_string(dst.join("d/mine")).expect("mine"),
        "kept"
    );
}

fn gnu_tar() -> bool {
    Command::new("tar")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn gnu_tar_and_pack_read_each_other() {
    if !gnu_tar() {
        eprintln!("skipped: no tar");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let (src, ours, theirs) = (
        tmp.path().join("src"),
        tmp.path().join("ours"),
        tmp.path().join("theirs"),
    );
    for d in [&src, &ours, &theirs] {
        std::fs::create_dir(d).expect("dir");
    }
    let xattr = make_tree(&src);

    // GNU tar extracts what pack wrote, identically.
    let archive = tmp.path().join("ours.tar");
    pack(&src, std::fs::File::create(&archive).expect("create")).expect("pack");
    let out = Command::new("tar")
        .args([
            "--xattrs",
            "--xattrs-include=user.*",
            "--numeric-owner",
            "-xpf",
        ])
        .arg(&archive)
        .arg("-C")
        .arg(&theirs)
        .output()
        .expect("tar -x");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "no warnings: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tree(&theirs), tree(&src));
    if xattr {
        assert_eq!(
            get_user_xattr(&theirs.join("empty")).as_deref(),
            Some(&b"kept"[..])
        );
    }

    // unpack restores what GNU tar wrote (its own long names, its own order).
    let out = Command::new("tar")
        .args(["--xattrs", "--numeric-owner", "-cf", "-", "-C"])
        .arg(&src)
        .arg(".")
        .output()
        .expect("tar -c");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    unpack(out.stdout.as_slice(), &ours).expect("unpack GNU tar's archive");
    assert_eq!(tree(&ours), tree(&src));
}
