//! `muelle plugin ...` end to end, against a private root and a muelle.toml
//! whose `[plugins] dirs` is a temporary folder. The fixture plugin comes
//! from MUELLE_TEST_PLUGIN_DIR (`cargo xtask plugins` builds it, `cargo
//! xtask ci` sets the variable); without it those tests are skipped with
//! a printed reason.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
mod support;

use support::{Instance, stderr, stdout};

fn fixture_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("MUELLE_TEST_PLUGIN_DIR").map(PathBuf::from);
    if dir.is_none() {
        eprintln!(
            "skipped: MUELLE_TEST_PLUGIN_DIR is not set (`cargo xtask plugins` builds the fixture plugin, `cargo xtask ci` sets it)"
        );
    }
    dir
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// An `Instance` whose muelle.toml's `[plugins] dirs` is a temporary
/// folder of its own.
struct Plugins {
    m: Instance,
    _tmp: tempfile::TempDir,
    plugins: PathBuf,
    config: PathBuf,
}

impl Plugins {
    fn new() -> Plugins {
        let tmp = tempfile::Builder::new()
            .prefix("muelle-test-plugins")
            .tempdir()
            .expect("tempdir");
        // The trust checks refuse plugins in folders others could write.
        chmod(tmp.path(), 0o755);
        let base = std::fs::canonicalize(tmp.path()).expect("canonical");
        let plugins = base.join("plugins");
        std::fs::create_dir(&plugins).expect("mkdir");
        chmod(&plugins, 0o755);
        let config = base.join("muelle.toml");
        std::fs::write(
            &config,
            format!(
                "[plugins]\ndirs = [\"{}\"]\ncall_timeout = \"10s\"\n",
                plugins.display()
            ),
        )
        .expect("write muelle.toml");
        Plugins {
            m: Instance::new().with_config(&config),
            _tmp: tmp,
            plugins,
            config,
        }
    }

    fn install(&self, fixture_dir: &Path) -> PathBuf {
        let path = self.plugins.join("fixture.so");
        std::fs::copy(fixture_dir.join("fixture.so"), &path).expect("copy fixture.so");
        chmod(&path, 0o644);
        path
    }
}

impl std::ops::Deref for Plugins {
    type Target = Instance;

    fn deref(&self) -> &Instance {
        &self.m
    }
}

#[test]
fn plugin_ls_shows_working_and_broken_files() {
    let Some(dir) = fixture_dir() else { return };
    let m = Plugins::new();
    let fixture = m.install(&dir);
    let broken = m.plugins.join("broken.so");
    std::fs::write(&broken, "not a library\n".repeat(40)).expect("write");
    chmod(&broken, 0o644);

    let ls = m.muelle(&["plugin", "ls"]);
    assert!(ls.status.success(), "{}", stderr(&ls));
    let text = stdout(&ls);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let columns: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(columns, ["NAME", "VERSION", "SCOPE", "PATH", "STATUS"]);
    let broken_row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        broken_row[..4],
        ["broken", "-", "-", broken.to_str().unwrap()]
    );
    assert!(
        lines[1].contains(&format!("cannot load plugin {}: ", broken.display())),
        "{text}"
    );
    let fixture_row: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        fixture_row,
        ["fixture", "0.1.0", "local", fixture.to_str().unwrap(), "ok"]
    );
    // Columns line up under their header.
    let status_at = lines[0].find("STATUS").expect("STATUS");
    assert_eq!(&lines[2][status_at..], "ok");

    let quiet = m.muelle(&["plugin", "ls", "-q"]);
    assert_eq!(stdout(&quiet), "broken\nfixture\n");

    let json = m.muelle(&["plugin", "ls", "--format", "json"]);
    assert!(json.status.success(), "{}", stderr(&json));
    let objects: Vec<serde_json::Value> = stdout(&json)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[1]["Name"], "fixture");
    assert_eq!(objects[1]["Version"], "0.1.0");
    assert_eq!(objects[1]["AbiVersion"], 1);
    assert_eq!(objects[1]["Scope"], "local");
    assert_eq!(objects[1]["Status"], "ok");
    assert_eq!(objects[0]["Name"], "broken");
    assert_eq!(objects[0]["AbiVersion"], serde_json::Value::Null);
    assert!(
        objects[0]["Status"]
            .as_str()
            .is_some_and(|s| s.starts_with("cannot load plugin ")),
        "{}",
        objects[0]
    );

    let bad = m.muelle(&["plugin", "ls", "--format", "yaml"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        stderr(&bad),
        "Error: unsupported --format \"yaml\": use table or json\n"
    );
}

#[test]
fn plugin_inspect_shows_json_and_unknown_names_fail() {
    let Some(dir) = fixture_dir() else { return };
    let m = Plugins::new();
    let fixture = m.install(&dir);

    let out = m.muelle(&["plugin", "inspect", "fixture"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        json,
        serde_json::json!([{
            "Name": "fixture",
            "Version": "0.1.0",
            "AbiVersion": 1,
            "Scope": "local",
            "Path": fixture,
            "StateDir": m.root().join("plugins-data/fixture"),
        }])
    );

    let missing = m.muelle(&["plugin", "inspect", "fixture", "nothing"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(stderr(&missing), "Error: no such plugin: nothing\n");
    let json: serde_json::Value = serde_json::from_slice(&missing.stdout).expect("json");
    assert_eq!(json[0]["Name"], "fixture", "found ones are still shown");

    let none = m.muelle(&["plugin", "inspect", "Nope"]);
    assert_eq!(none.status.code(), Some(1));
    assert_eq!(stdout(&none), "[]\n");
    assert_eq!(stderr(&none), "Error: no such plugin: Nope\n");
}

#[test]
fn plugin_inspect_of_a_refused_plugin_names_the_rule() {
    let Some(dir) = fixture_dir() else { return };
    let m = Plugins::new();
    let fixture = m.install(&dir);
    chmod(&fixture, 0o646);
    let out = m.muelle(&["plugin", "inspect", "fixture"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "Error: refusing plugin {0}: {0} is world-writable\n",
            fixture.display()
        )
    );
}

#[test]
fn an_unknown_key_in_the_plugins_section_is_an_error() {
    let m = Plugins::new();
    std::fs::write(&m.config, "[plugins]\nfolders = [\"/x\"]\n").expect("write");
    let out = m.muelle(&["plugin", "ls"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!("Error: {}: ", m.config.display())),
        "{err}"
    );
    assert!(err.contains("unknown field `folders`"), "{err}");
}

#[test]
fn plugin_ls_without_plugins_prints_the_header() {
    let m = Plugins::new();
    let out = m.muelle(&["plugin", "ls"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "NAME   VERSION   SCOPE   PATH   STATUS\n");
}
