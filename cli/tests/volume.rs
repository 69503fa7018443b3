//! `muelle volume ...` end to end: whole commands against a private root,
//! as a user types them.

mod support;

use support::{Instance, stderr, stdout};

#[test]
fn create_list_inspect_remove() {
    let m = Instance::new();
    let out = m.muelle(&["volume", "create", "--label", "team=dock", "data"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "data\n");
    // Idempotent, as docker's.
    assert!(m.muelle(&["volume", "create", "data"]).status.success());

    let anon = m.muelle(&["volume", "create"]);
    let anon_name = stdout(&anon).trim().to_owned();
    assert_eq!(anon_name.len(), 64, "a random 64-hex name: {anon_name}");

    let ls = m.muelle(&["volume", "ls"]);
    let text = stdout(&ls);
    assert!(text.starts_with("DRIVER          VOLUME NAME\n"), "{text}");
    assert!(text.contains("local           data\n"), "{text}");
    let q = m.muelle(&["volume", "ls", "-q", "--filter", "label=team=dock"]);
    assert_eq!(stdout(&q), "data\n");

    let inspect = m.muelle(&["volume", "inspect", "data"]);
    let json: serde_json::Value = serde_json::from_slice(&inspect.stdout).expect("json");
    assert_eq!(json[0]["Name"], "data");
    assert_eq!(json[0]["Driver"], "local");
    assert_eq!(json[0]["Labels"]["team"], "dock");
    let mountpoint = json[0]["Mountpoint"]
        .as_str()
        .expect("mountpoint")
        .to_owned();
    assert_eq!(
        mountpoint,
        m.root().join("volumes/data/_data").to_str().unwrap()
    );
    assert!(std::path::Path::new(&mountpoint).is_dir());
    assert!(json[0].get("UsageData").is_none(), "only when asked");
    std::fs::write(std::path::Path::new(&mountpoint).join("f"), [7u8; 1500]).expect("write");
    let sized = m.muelle(&["volume", "inspect", "--size", "data"]);
    let json: serde_json::Value = serde_json::from_slice(&sized.stdout).expect("json");
    assert_eq!(json[0]["UsageData"]["Size"], 1500);
    assert_eq!(json[0]["UsageData"]["RefCount"], 0);

    let rm = m.muelle(&["volume", "rm", "data"]);
    assert!(rm.status.success(), "{}", stderr(&rm));
    assert_eq!(stdout(&rm), "data\n");
    assert!(!std::path::Path::new(&mountpoint).exists());
    let again = m.muelle(&["volume", "rm", "data"]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(stderr(&again), "Error: no such volume: data\n");
}

#[test]
fn bad_names_are_refused_and_change_nothing() {
    let m = Instance::new();
    for bad in ["..", "../etc", "a/b", "x", ".hidden"] {
        let out = m.muelle(&["volume", "create", bad]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(
            stderr(&out).contains("invalid volume name"),
            "{bad}: {}",
            stderr(&out)
        );
    }
    assert!(!m.root().join("volumes").exists());
    let out = m.muelle(&["volume", "create", "-o", "size=1g", "v1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid option \"size\""),
        "{}",
        stderr(&out)
    );
    let out = m.muelle(&["volume", "ls", "--filter", "colour=red"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid filter"), "{}", stderr(&out));
    // A bad flag is muelle's own failure: docker's 125.
    let out = m.muelle(&["volume", "create", "-x"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
}

#[test]
fn uid_and_gid_own_the_data_folder() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: chown needs root");
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let m = Instance::new();
    let out = m.muelle(&[
        "volume", "create", "--uid", "1234", "--gid", "5678", "owned",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let meta = std::fs::metadata(m.root().join("volumes/owned/_data")).expect("data");
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
}

#[test]
fn twenty_parallel_creates_all_succeed() {
    let m = Instance::new();
    let spawned: Vec<_> = (0..20)
        .map(|i| {
            m.command(&["volume", "create", &format!("con-{i}")])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for child in spawned {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let ls = m.muelle(&["volume", "ls", "-q", "--filter", "name=con-"]);
    assert_eq!(stdout(&ls).lines().count(), 20, "{}", stdout(&ls));
}

#[test]
fn prune_removes_unused_anonymous_volumes_or_all_with_a() {
    let m = Instance::new();
    assert!(m.muelle(&["volume", "create", "keep"]).status.success());
    let out = m.muelle(&["volume", "prune", "-f"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "Deleted Volumes:\n\nTotal reclaimed space: 0B\n"
    );
    let out = m.muelle(&["volume", "prune", "-a", "-f"]);
    assert_eq!(
        stdout(&out),
        "Deleted Volumes:\nkeep\n\nTotal reclaimed space: 0B\n"
    );
    assert_eq!(stdout(&m.muelle(&["volume", "ls", "-q"])), "");

    // What the data took is counted.
    assert!(m.muelle(&["volume", "create", "full"]).status.success());
    let path = m.ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", "full"]);
    std::fs::write(std::path::Path::new(path.trim()).join("data"), [7u8; 2000]).expect("write");
    let out = m.muelle(&["volume", "prune", "-a", "-f"]);
    assert_eq!(
        stdout(&out),
        "Deleted Volumes:\nfull\n\nTotal reclaimed space: 2kB\n"
    );
}

#[test]
fn rename_moves_the_data_and_refuses_taken_names() {
    let m = Instance::new();
    assert!(m.muelle(&["volume", "create", "old"]).status.success());
    assert!(m.muelle(&["volume", "create", "taken"]).status.success());
    let data = m.root().join("volumes/old/_data");
    std::fs::write(data.join("file"), "kept").unwrap();

    let out = m.muelle(&["volume", "rename", "old", "taken"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert!(data.join("file").exists(), "a refused rename moves nothing");

    let out = m.muelle(&["volume", "rename", "old", "new"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let moved = m.root().join("volumes/new/_data/file");
    assert_eq!(std::fs::read_to_string(moved).unwrap(), "kept");
    let inspect = m.muelle(&["volume", "inspect", "new"]);
    let json: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert!(
        json[0]["Mountpoint"]
            .as_str()
            .unwrap()
            .ends_with("volumes/new/_data")
    );
    assert_eq!(
        m.muelle(&["volume", "inspect", "old"]).status.code(),
        Some(1)
    );
    let out = m.muelle(&["volume", "rename", "new", "../x"]);
    assert!(
        stderr(&out).contains("invalid volume name"),
        "{}",
        stderr(&out)
    );
}

/// A ustar entry written byte by byte: the test needs names (`..`) that no
/// archive library would write.
fn tar_entry(name: &str, kind: u8, link: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"14000000000\0");
    h[148..156].copy_from_slice(b"        ");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..265].copy_from_slice(b"ustar\x0000");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut entry = h.to_vec();
    entry.extend_from_slice(data);
    entry.resize(entry.len().next_multiple_of(512), 0);
    entry
}

fn data_of(m: &Instance, volume: &str) -> std::path::PathBuf {
    m.root().join("volumes").join(volume).join("_data")
}

#[test]
fn export_then_import_into_a_new_volume_keeps_content_and_modes() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let m = Instance::new();
    assert!(m.muelle(&["volume", "create", "src"]).status.success());
    let src = data_of(&m, "src");
    std::fs::create_dir(src.join("private")).expect("mkdir");
    std::fs::write(src.join("private/key"), "secret").expect("write");
    std::fs::write(src.join("tool"), "#!/bin/sh\n").expect("write");
    std::fs::set_permissions(src.join("tool"), PermissionsExt::from_mode(0o4755)).expect("chmod");
    std::fs::set_permissions(src.join("private"), PermissionsExt::from_mode(0o700)).expect("chmod");
    std::os::unix::fs::symlink("private/key", src.join("link")).expect("symlink");
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(src.join("private/key"), Some(999), Some(998)).expect("chown");
    }

    let backup = m.root().join("src.tar");
    let out = m.muelle(&[
        "volume",
        "export",
        "-o",
        backup.to_str().expect("utf-8"),
        "src",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let out = m.muelle(&["volume", "import", "dst", backup.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&m.muelle(&["volume", "ls", "-q", "--filter", "name=dst"])),
        "dst\n"
    );

    let dst = data_of(&m, "dst");
    assert_eq!(
        std::fs::read_to_string(dst.join("private/key")).expect("key"),
        "secret"
    );
    let mode = |p: &str| std::fs::metadata(dst.join(p)).expect("meta").mode() & 0o7777;
    assert_eq!((mode("tool"), mode("private")), (0o4755, 0o700));
    assert_eq!(
        std::fs::read_link(dst.join("link")).expect("link"),
        std::path::Path::new("private/key")
    );
    if nix::unistd::geteuid().is_root() {
        let key = std::fs::metadata(dst.join("private/key")).expect("key");
        assert_eq!((key.uid(), key.gid()), (999, 998));
    }

    // Again into the same volume: a merge that replaces same-named files.
    std::fs::write(dst.join("private/key"), "changed").expect("write");
    std::fs::write(dst.join("extra"), "mine").expect("write");
    let out = m.muelle(&["volume", "import", "dst", backup.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dst.join("private/key")).expect("key"),
        "secret"
    );
    assert_eq!(
        std::fs::read_to_string(dst.join("extra")).expect("extra"),
        "mine"
    );
}

#[test]
fn import_reads_stdin_and_export_writes_stdout() {
    let m = Instance::new();
    assert!(m.muelle(&["volume", "create", "src"]).status.success());
    std::fs::write(data_of(&m, "src").join("f"), "piped").expect("write");
    let exported = m.muelle(&["volume", "export", "src"]);
    assert!(exported.status.success(), "{}", stderr(&exported));

    let out = m.with_stdin(&["volume", "import", "piped", "-"], &exported.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(data_of(&m, "piped").join("f")).expect("f"),
        "piped"
    );
}

#[test]
fn export_refuses_a_terminal() {
    let m = Instance::new();
    assert!(m.muelle(&["volume", "create", "src"]).status.success());
    let pty = nix::pty::openpty(None, None).expect("pty");
    let out = m
        .command(&["volume", "export", "src"])
        .stdout(std::process::Stdio::from(pty.slave))
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refusing to write a tar archive to a terminal"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_hostile_archive_is_refused_and_writes_nothing_outside() {
    let m = Instance::new();
    let outside = m.root().join("outside");
    std::fs::create_dir(&outside).expect("outside");
    let mut tar = tar_entry("ok", b'0', "", b"fine");
    tar.extend(tar_entry("../../../outside/escaped", b'0', "", b"pwned"));
    tar.extend([0u8; 1024]);
    let evil = m.root().join("evil.tar");
    std::fs::write(&evil, &tar).expect("write");

    let out = m.muelle(&["volume", "import", "fresh", evil.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "Error: importing into volume fresh: archive entry \"../../../outside/escaped\" \
         refused: a `..` component in the name\n"
    );
    assert_eq!(std::fs::read_dir(&outside).expect("ls").count(), 0);
    assert_eq!(
        stdout(&m.muelle(&["volume", "ls", "-q"])),
        "",
        "the volume made for the import went with it"
    );

    // Through a symlink, into an existing volume: refused at that entry.
    assert!(m.muelle(&["volume", "create", "kept"]).status.success());
    let mut tar = tar_entry("out", b'2', outside.to_str().expect("utf-8"), b"");
    tar.extend(tar_entry("out/escaped", b'0', "", b"pwned"));
    tar.extend([0u8; 1024]);
    std::fs::write(&evil, &tar).expect("write");
    let out = m.muelle(&["volume", "import", "kept", evil.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("\"out\" is a symlink"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_dir(&outside).expect("ls").count(), 0);
    assert_eq!(stdout(&m.muelle(&["volume", "ls", "-q"])), "kept\n");
}

#[test]
fn ls_and_inspect_take_go_templates() {
    let m = Instance::new();
    assert!(m.muelle(&["volume", "create", "plain"]).status.success());
    assert!(
        m.muelle(&["volume", "create", "--label", "tier=db", "tagged"])
            .status
            .success()
    );
    assert_eq!(
        m.ok(&["volume", "ls", "--format", "{{.Name}}:{{.Driver}}"]),
        "plain:local\ntagged:local\n"
    );
    assert_eq!(
        m.ok(&["volume", "ls", "--format", "table {{.Name}}\t{{.Labels}}"]),
        "VOLUME NAME   LABELS\nplain         \ntagged        tier=db\n"
    );
    assert_eq!(
        m.ok(&[
            "volume",
            "inspect",
            "--format",
            "{{.Name}} {{index .Labels \"tier\"}}",
            "tagged"
        ]),
        "tagged db\n"
    );
}
