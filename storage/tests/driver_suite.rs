//! One suite every volume driver passes: the built-in `local` (plain and
//! with mount options) and each plugin we ship, loaded through the C ABI
//! (those need `cargo xtask plugins`, which `cargo xtask ci` runs; without
//! MUELLE_TEST_PLUGIN_DIR they are skipped with a printed reason).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use storage::mounts::BindPolicy;
use storage::plugin::{PluginConfig, PluginHost};
use storage::store::Store;
use storage::volume::{CreateVolume, Drivers, Volume, VolumeError, Volumes};

struct Case {
    driver: &'static str,
    options: Vec<(String, String)>,
    /// Data stays on the host path while no caller has it mounted (a
    /// plain folder); false when the driver unmounts it (tmpfs, images).
    path_without_callers: bool,
    /// Data survives the last unmount (false for tmpfs).
    persistent: bool,
}

impl Case {
    fn new(driver: &'static str, options: &[(&str, &str)]) -> Case {
        Case {
            driver,
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            path_without_callers: true,
            persistent: true,
        }
    }
}

fn request(case: &Case, name: &str) -> CreateVolume {
    CreateVolume {
        name: Some(name.parse().expect("name")),
        driver: Some(case.driver.to_owned()),
        options: case.options.iter().cloned().collect::<BTreeMap<_, _>>(),
        ..Default::default()
    }
}

fn is_mount_point(path: &Path) -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let path = path.to_string_lossy();
    mountinfo
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path.as_ref()))
}

/// Unmounts whatever a failed assertion left mounted, so the suite leaves
/// nothing behind.
struct Unmounter<'v, 's> {
    volumes: &'v Volumes<'s>,
    held: Vec<(Volume, &'static str)>,
}

impl Drop for Unmounter<'_, '_> {
    fn drop(&mut self) {
        for (volume, caller) in self.held.drain(..) {
            let _ = self.volumes.unmount(&volume, caller);
        }
    }
}

fn run_suite(volumes: &Volumes<'_>, case: &Case) {
    let d = case.driver;
    let volume = volumes.create(request(case, "suite-a")).expect("create");
    assert_eq!(volume.driver, d);
    assert_eq!(
        volumes.create(request(case, "suite-a")).expect("again"),
        volume,
        "{d}: create is idempotent"
    );
    let driver = volumes.driver(d).expect("driver");
    assert!(
        driver.list().expect("list").contains(&volume.name),
        "{d}: list"
    );

    let mut guard = Unmounter {
        volumes,
        held: Vec::new(),
    };
    let path = volumes.mount(&volume, "c1").expect("mount c1");
    guard.held.push((volume.clone(), "c1"));
    assert!(path.is_dir(), "{d}: mount gives a folder");
    std::fs::write(path.join("hello"), "world").expect("write into the volume");
    let again = volumes.mount(&volume, "c2").expect("mount c2");
    guard.held.push((volume.clone(), "c2"));
    assert_eq!(again, path, "{d}: one path for every caller");
    assert_eq!(volumes.mount(&volume, "c2").expect("mount c2 twice"), path);
    assert_eq!(driver.path(&volume.name).expect("path"), Some(path.clone()));

    volumes.unmount(&volume, "c1").expect("unmount c1");
    guard.held.retain(|(_, c)| *c != "c1");
    assert_eq!(
        std::fs::read_to_string(path.join("hello")).expect("c2 still sees the data"),
        "world",
        "{d}: the first unmount keeps the volume for the other caller"
    );
    volumes.unmount(&volume, "c2").expect("unmount c2");
    guard.held.clear();
    let after = driver.path(&volume.name).expect("path");
    if case.path_without_callers {
        assert_eq!(after, Some(path.clone()), "{d}: a folder stays");
    } else {
        assert_eq!(after, None, "{d}: unmounted with the last caller");
        assert!(
            !is_mount_point(&path),
            "{d}: nothing left mounted at {}",
            path.display()
        );
    }

    let path = volumes.mount(&volume, "c3").expect("mount again");
    guard.held.push((volume.clone(), "c3"));
    assert_eq!(
        path.join("hello").exists(),
        case.persistent,
        "{d}: data outlives its mounts (unless tmpfs)"
    );
    let busy = volumes.remove("suite-a");
    if !case.path_without_callers {
        assert!(busy.is_err(), "{d}: a mounted volume is not removed");
        assert!(
            volumes.get("suite-a").is_ok(),
            "{d}: its record stays when the driver refuses"
        );
    }
    volumes.unmount(&volume, "c3").expect("unmount c3");
    guard.held.clear();
    if busy.is_ok() {
        volumes.create(request(case, "suite-a")).expect("recreate");
    }

    volumes.remove("suite-a").expect("remove");
    assert!(matches!(
        volumes.get("suite-a"),
        Err(VolumeError::NotFound(_))
    ));
    assert!(
        matches!(driver.get(&volume.name), Err(VolumeError::NotFound(_))),
        "{d}: gone from the driver"
    );
    assert!(!driver.list().expect("list").contains(&volume.name));

    let mut owned = request(case, "suite-owned");
    owned.uid = Some(1234);
    owned.gid = Some(5678);
    if case.driver == "local" && !case.options.is_empty() {
        assert!(
            volumes.create(owned).is_err(),
            "{d}: --uid on a mounted local volume is refused"
        );
    } else {
        let v = volumes.create(owned).expect("create with owner");
        let path = volumes.mount(&v, "c4").expect("mount");
        let meta = std::fs::metadata(&path).expect("stat");
        let _ = volumes.unmount(&v, "c4");
        assert_eq!(
            (meta.uid(), meta.gid()),
            (1234, 5678),
            "{d}: --uid/--gid own the data root"
        );
        volumes.remove("suite-owned").expect("remove");
    }

    let mut bad = request(case, "suite-bad");
    bad.options.insert("no-such-option".into(), "1".into());
    let err = volumes.create(bad).expect_err("unknown option refused");
    assert!(err.to_string().contains("no-such-option"), "{d}: {err}");
    assert!(volumes.get("suite-bad").is_err(), "{d}: nothing recorded");
    assert!(
        !driver
            .list()
            .expect("list")
            .iter()
            .any(|n| n.as_str() == "suite-bad")
    );
}

fn root_only() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: mounting volumes needs root");
    false
}

#[test]
fn local_plain_folder() {
    let root = tempfile::tempdir().expect("tempdir");
    let store = Store::open(root.path()).expect("store");
    run_suite(&Volumes::new(&store, root.path()), &Case::new("local", &[]));
}

#[test]
fn local_tmpfs() {
    if !root_only() {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let store = Store::open(root.path()).expect("store");
    let case = Case {
        path_without_callers: false,
        persistent: false,
        ..Case::new(
            "local",
            &[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=4m")],
        )
    };
    run_suite(&Volumes::new(&store, root.path()), &case);
}

#[test]
fn local_bind_of_a_host_folder() {
    if !root_only() {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let host = tempfile::tempdir().expect("host folder");
    let device = host.path().to_string_lossy().into_owned();
    let store = Store::open(root.path()).expect("store");
    let case = Case {
        path_without_callers: false,
        ..Case::new(
            "local",
            &[("type", "none"), ("device", &device), ("o", "bind")],
        )
    };
    run_suite(&Volumes::new(&store, root.path()), &case);
    assert!(
        host.path().join("hello").exists(),
        "the data went to the host folder"
    );
}

#[test]
fn a_bind_volume_obeys_the_operators_policy() {
    let root = tempfile::tempdir().expect("tempdir");
    let store = Store::open(root.path()).expect("store");
    let policy = BindPolicy::from_toml_str("[mounts]\ndeny = [\"/etc\"]\n").expect("policy");
    let volumes = Volumes::with_drivers(&store, Drivers::new(root.path(), policy));
    let err = volumes
        .create(CreateVolume {
            name: Some("etc".parse().expect("name")),
            options: [("type", "none"), ("device", "/etc/ssl"), ("o", "bind")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        })
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "bind mount of /etc/ssl refused by muelle.toml: mounts.deny contains \"/etc\""
    );
    assert!(volumes.get("etc").is_err());
    assert!(!root.path().join("volumes/etc").exists(), "nothing made");
}

/// The plugin folder `cargo xtask plugins` made, or None (and why).
fn plugin_dir(file: &str) -> Option<std::path::PathBuf> {
    let Some(dir) = std::env::var_os("MUELLE_TEST_PLUGIN_DIR") else {
        eprintln!(
            "skipped: MUELLE_TEST_PLUGIN_DIR is unset (cargo xtask ci sets it after cargo xtask plugins)"
        );
        return None;
    };
    let dir = std::path::PathBuf::from(dir);
    // Set means CI built every plugin we ship: a missing one is a failure.
    assert!(dir.join(file).is_file(), "{} has no {file}", dir.display());
    Some(dir)
}

fn run_plugin_suite(case: &Case) {
    let file = format!("{}.so", case.driver);
    let Some(dir) = plugin_dir(&file) else {
        return;
    };
    if !root_only() {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let config = PluginConfig {
        dirs: vec![dir],
        ..PluginConfig::defaults(root.path())
    };
    let drivers = Drivers::new(root.path(), BindPolicy::default())
        .with_plugins(Arc::new(PluginHost::new(config)));
    let store = Store::open(root.path()).expect("store");
    run_suite(&Volumes::with_drivers(&store, drivers), case);
}

#[test]
fn plugin_fixture() {
    run_plugin_suite(&Case {
        path_without_callers: false,
        ..Case::new("fixture", &[("note", "suite")])
    });
}

#[test]
fn plugin_quota_in_rust() {
    run_plugin_suite(&Case {
        path_without_callers: false,
        ..Case::new("quota", &[("size", "16m")])
    });
}

#[test]
fn plugin_cdir_in_c() {
    run_plugin_suite(&Case {
        path_without_callers: false,
        ..Case::new("cdir", &[("mode", "0750")])
    });
}
