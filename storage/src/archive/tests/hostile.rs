//! Archives built to write outside the target: each is refused with an
//! error naming the entry, and nothing outside changes.

use tar::EntryType::{Directory, Link, Regular, Symlink};

use super::{Sandbox, archive, raw_entry};
use crate::archive::{ArchiveError, unpack};

/// Unpacks and expects a one-line refusal naming `entry` that mentions `why`.
fn refused(sandbox: &Sandbox, tar: &[u8], entry: &str, why: &str) {
    let err = unpack(tar, &sandbox.target()).expect_err("must be refused");
    let msg = err.to_string();
    assert!(
        matches!(err, ArchiveError::Refused { entry: ref e, .. } if e == entry),
        "{msg}"
    );
    assert!(msg.contains(why), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
    sandbox.assert_outside_untouched();
}

#[test]
fn dotdot_names_are_refused() {
    let s = Sandbox::new();
    for name in ["../escape", "a/../../escape", "./../outside/secret"] {
        let tar = archive(&[(name, Regular, "", "pwned")]);
        refused(&s, &tar, name, "`..`");
    }
    assert!(!s.tmp.path().join("escape").exists());
}

#[test]
fn absolute_names_land_inside_the_target() {
    let s = Sandbox::new();
    let abs = format!("{}/secret", s.outside().display());
    let tar = archive(&[
        (&abs, Regular, "", "inside"),
        ("/etc/muelle-abs", Regular, "", "x"),
    ]);
    unpack(tar.as_slice(), &s.target()).expect("unpack");
    let inside = s.target().join(abs.trim_start_matches('/'));
    assert_eq!(std::fs::read_to_string(inside).expect("inside"), "inside");
    assert!(s.target().join("etc/muelle-abs").is_file());
    assert!(!std::path::Path::new("/etc/muelle-abs").exists());
    s.assert_outside_untouched();
}

#[test]
fn a_symlink_to_the_root_is_never_followed() {
    let s = Sandbox::new();
    let tar = archive(&[
        ("link", Symlink, "/", ""),
        ("link/etc/muelle-escape", Regular, "", "pwned"),
    ]);
    refused(&s, &tar, "link/etc/muelle-escape", "\"link\" is a symlink");
    assert!(!std::path::Path::new("/etc/muelle-escape").exists());

    let out = s.outside().display().to_string();
    let tar = archive(&[
        ("out", Symlink, &out, ""),
        ("out/new", Regular, "", "pwned"),
    ]);
    refused(&s, &tar, "out/new", "is a symlink");
}

#[test]
fn a_symlink_to_dotdot_is_never_followed() {
    let s = Sandbox::new();
    let tar = archive(&[
        ("up", Symlink, "..", ""),
        ("up/outside/new", Regular, "", "pwned"),
    ]);
    refused(&s, &tar, "up/outside/new", "\"up\" is a symlink");
    // Nor as a folder entry, nor one level down.
    let tar = archive(&[
        ("d/", Directory, "", ""),
        ("d/up", Symlink, "../..", ""),
        ("d/up/x/", Directory, "", ""),
    ]);
    refused(&s, &tar, "d/up/x/", "\"d/up\" is a symlink");
}

#[test]
fn a_symlink_already_in_the_target_is_never_followed() {
    let s = Sandbox::new();
    std::os::unix::fs::symlink(s.outside(), s.target().join("pre")).expect("symlink");
    let tar = archive(&[("pre/new", Regular, "", "pwned")]);
    refused(&s, &tar, "pre/new", "\"pre\" is a symlink");
}

#[test]
fn a_symlink_at_the_name_is_replaced_not_written_through() {
    let s = Sandbox::new();
    let secret = s.outside().join("secret").display().to_string();
    let tar = archive(&[("x", Symlink, &secret, ""), ("x", Regular, "", "mine")]);
    unpack(tar.as_slice(), &s.target()).expect("unpack");
    let meta = std::fs::symlink_metadata(s.target().join("x")).expect("x");
    assert!(meta.is_file());
    assert_eq!(
        std::fs::read_to_string(s.target().join("x")).expect("x"),
        "mine"
    );
    s.assert_outside_untouched();
}

#[test]
fn hard_links_must_stay_inside() {
    let s = Sandbox::new();
    let tar = archive(&[("pw", Link, "/etc/passwd", "")]);
    refused(&s, &tar, "pw", "does not exist in the target folder");
    let tar = archive(&[("out", Link, "../outside/secret", "")]);
    refused(&s, &tar, "out", "`..`");
    let abs = s.outside().join("secret").display().to_string();
    let tar = archive(&[("abs", Link, &abs, "")]);
    refused(&s, &tar, "abs", "does not exist in the target folder");
    let out = s.outside().display().to_string();
    let tar = archive(&[("l", Symlink, &out, ""), ("h", Link, "l/secret", "")]);
    refused(&s, &tar, "h", "\"l\" is a symlink");
    assert!(!s.target().join("pw").exists() && !s.target().join("h").exists());
    let passwd = std::fs::metadata("/etc/passwd").expect("passwd");
    assert_eq!(std::os::unix::fs::MetadataExt::nlink(&passwd), 1);
}

#[test]
fn an_entry_under_a_file_is_refused() {
    let s = Sandbox::new();
    let tar = archive(&[("f", Regular, "", "file"), ("f/x", Regular, "", "x")]);
    refused(&s, &tar, "f/x", "\"f\" is not a directory");
}

#[test]
fn a_full_directory_in_the_way_is_not_deleted() {
    let s = Sandbox::new();
    let tar = archive(&[("d/keep", Regular, "", "data"), ("d", Regular, "", "x")]);
    refused(&s, &tar, "d", "non-empty directory");
    assert!(s.target().join("d/keep").is_file());
}

#[test]
fn unsupported_types_and_truncated_data_are_named() {
    let s = Sandbox::new();
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, "label", tar::EntryType::new(b'V'), "", b"");
    let tar = b.into_inner().expect("tar");
    let err = unpack(tar.as_slice(), &s.target()).expect_err("refused");
    assert_eq!(
        err.to_string(),
        "archive entry \"label\": unsupported entry type 'V' (GNU volume label)"
    );

    let tar = archive(&[("big", Regular, "", &"x".repeat(2000))]);
    let err = unpack(&tar[..1024], &s.target()).expect_err("truncated");
    assert!(err.to_string().contains("archive ends inside it"), "{err}");

    let tar = archive(&[(".", Regular, "", "x")]);
    refused(&s, &tar, ".", "not a directory");
    s.assert_outside_untouched();
}
