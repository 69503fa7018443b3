//! `muelle volume ...` end to end: whole commands against a private root,
//! as a user types them.

use std::process::{Command, Output};

const MUELLE: &str = env!("CARGO_BIN_EXE_muelle");

struct Instance {
    root: tempfile::TempDir,
}

impl Instance {
    fn new() -> Instance {
        Instance {
            root: tempfile::Builder::new()
                .prefix("muelle-test-root")
                .tempdir()
                .expect("temp root"),
        }
    }

    fn muelle(&self, args: &[&str]) -> Output {
        Command::new(MUELLE)
            .arg("--root")
            .arg(self.root.path())
            .arg("--runroot")
            .arg(self.root.path().join("run"))
            .args(args)
            .output()
            .expect("spawn muelle")
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

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
        m.root.path().join("volumes/data/_data").to_str().unwrap()
    );
    assert!(std::path::Path::new(&mountpoint).is_dir());

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
    assert!(!m.root.path().join("volumes").exists());
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
    let meta = std::fs::metadata(m.root.path().join("volumes/owned/_data")).expect("data");
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
}

#[test]
fn twenty_parallel_creates_all_succeed() {
    let m = Instance::new();
    let spawned: Vec<_> = (0..20)
        .map(|i| {
            Command::new(MUELLE)
                .arg("--root")
                .arg(m.root.path())
                .args(["volume", "create", &format!("con-{i}")])
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
}

#[test]
fn rename_moves_the_data_and_refuses_taken_names() {
    let m = Instance::new();
    assert!(m.muelle(&["volume", "create", "old"]).status.success());
    assert!(m.muelle(&["volume", "create", "taken"]).status.success());
    let data = m.root.path().join("volumes/old/_data");
    std::fs::write(data.join("file"), "kept").unwrap();

    let out = m.muelle(&["volume", "rename", "old", "taken"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert!(data.join("file").exists(), "a refused rename moves nothing");

    let out = m.muelle(&["volume", "rename", "old", "new"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let moved = m.root.path().join("volumes/new/_data/file");
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
