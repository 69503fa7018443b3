//! The plugin host end to end: real shared libraries loaded through the C
//! ABI. The `fixture` plugin comes from MUELLE_TEST_PLUGIN_DIR (`cargo
//! xtask plugins` builds it, `cargo xtask ci` sets the variable); without
//! it those tests are skipped with a printed reason. Hostile libraries are
//! C snippets compiled here with `cc`; their tests run without it.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use storage::plugin::{PluginConfig, PluginHost, PluginStatus};
use storage::volume::{Driver, DriverSource, Scope, VolumeError, VolumeName};

/// The folder holding `fixture.so`, or None (and the reason printed).
fn fixture_dir() -> Option<PathBuf> {
    match std::env::var_os("MUELLE_TEST_PLUGIN_DIR") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            eprintln!(
                "skipped: MUELLE_TEST_PLUGIN_DIR is not set (`cargo xtask plugins` builds the fixture plugin, `cargo xtask ci` sets it)"
            );
            None
        }
    }
}

macro_rules! need_fixture {
    () => {
        match fixture_dir() {
            Some(dir) => dir,
            None => return,
        }
    };
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn vol(name: &str) -> VolumeName {
    name.parse().expect("volume name")
}

/// A private world: `base/plugins` (searched) and `base/root` (the data
/// root), in a 0755 temporary folder so the trust checks pass.
struct World {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    plugins: PathBuf,
    root: PathBuf,
    /// `fixture.so`, for the tests that need it.
    fixture: Option<PathBuf>,
}

impl World {
    fn new(fixture_dir: &Path) -> World {
        World {
            fixture: Some(fixture_dir.join("fixture.so")),
            ..World::bare()
        }
    }

    /// A world for C plugins only.
    fn bare() -> World {
        let tmp = tempfile::Builder::new()
            .prefix("muelle-plugin-test")
            .tempdir()
            .expect("tempdir");
        chmod(tmp.path(), 0o755);
        let base = std::fs::canonicalize(tmp.path()).expect("canonical");
        let plugins = base.join("plugins");
        std::fs::create_dir(&plugins).expect("mkdir");
        chmod(&plugins, 0o755);
        World {
            _tmp: tmp,
            root: base.join("root"),
            plugins,
            base,
            fixture: None,
        }
    }

    /// Copies the fixture into `dir` as `file`.
    fn install_fixture_in(&self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(file);
        let fixture = self.fixture.as_ref().expect("a world with the fixture");
        std::fs::copy(fixture, &path).expect("copy fixture.so");
        chmod(&path, 0o644);
        path
    }

    fn install_fixture(&self) -> PathBuf {
        self.install_fixture_in(&self.plugins, "fixture.so")
    }

    fn config(&self, timeout: Duration) -> PluginConfig {
        PluginConfig {
            dirs: vec![self.plugins.clone()],
            call_timeout: timeout,
            data_root: self.root.clone(),
        }
    }

    fn host(&self) -> PluginHost {
        PluginHost::new(self.config(Duration::from_secs(10)))
    }

    /// Compiles `c_plugin()` with `defines` into `plugins/FILE.so`; None
    /// (and the reason printed) when there is no C compiler.
    fn compile(&self, file: &str, defines: &[&str]) -> Option<PathBuf> {
        let source = self.base.join(format!("{file}.c"));
        std::fs::write(&source, C_PLUGIN).expect("write C source");
        let out = self.plugins.join(format!("{file}.so"));
        let include = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/sdk/include");
        let status = Command::new("cc")
            .args(["-shared", "-fPIC", "-I", include])
            .args(defines)
            .arg("-o")
            .arg(&out)
            .arg(&source)
            .status();
        match status {
            Ok(s) if s.success() => {
                chmod(&out, 0o755);
                Some(out)
            }
            Ok(s) => panic!("cc failed ({s}) for {file}"),
            Err(e) => {
                eprintln!("skipped: cannot run cc: {e}");
                None
            }
        }
    }
}

/// One C plugin, bent by -D flags into each kind of broken library.
const C_PLUGIN: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "muelle_volume_plugin.h"

#ifndef ABI
#define ABI MUELLE_VOLUME_ABI_VERSION
#endif
#ifndef SIZE
#define SIZE sizeof(struct muelle_volume_plugin)
#endif
#ifndef NAME
#define NAME "cc"
#endif
#ifndef INIT_STATUS
#define INIT_STATUS MUELLE_OK
#endif

/* Buffers handed out and not yet given back. */
static long live = 0;

static muelle_buf text(const char *s) {
    size_t n = strlen(s);
    muelle_buf b = { malloc(n), n };
    memcpy(b.ptr, s, n);
    live++;
    return b;
}

static void free_buf(muelle_buf b) {
    if (b.ptr) { free(b.ptr); live--; }
}

static int32_t init(const muelle_host *h, void **instance, muelle_buf *out) {
    (void)h;
    *instance = NULL;
    if (INIT_STATUS != MUELLE_OK) *out = text("no licence");
    return INIT_STATUS;
}

static int32_t create(void *i, muelle_str n, const muelle_option *o, size_t l, muelle_buf *out) {
    (void)i; (void)n; (void)o; (void)l;
    *out = text("cc cannot create\nsecond line");
    return MUELLE_ERROR;
}

static int32_t rm(void *i, muelle_str n, muelle_buf *out) {
    (void)i; (void)n;
    *out = text("no such thing");
    return MUELLE_NOT_FOUND;
}

static int32_t mount(void *i, muelle_str n, muelle_str c, muelle_buf *out) {
    (void)i; (void)n; (void)c;
    *out = text("/srv/cc");
    return MUELLE_OK;
}

static int32_t unmount(void *i, muelle_str n, muelle_str c, muelle_buf *out) {
    (void)i; (void)n; (void)c;
    *out = text("what");
    return 42;
}

static int32_t path(void *i, muelle_str n, muelle_buf *out) {
    (void)i; (void)n; (void)out;
    return MUELLE_OK;
}

static int32_t get(void *i, muelle_str n, muelle_buf *out) {
    (void)i; (void)n;
    *out = text("/srv/cc");
    return MUELLE_OK;
}

static int32_t list(void *i, muelle_buf *out) {
    char s[64];
    (void)i;
    snprintf(s, sizeof s, "live-%ld\n", live);
    *out = text(s);
    return MUELLE_OK;
}

static const muelle_volume_plugin table = {
    ABI, SIZE,
    { (const uint8_t *)NAME, sizeof(NAME) - 1 },
    { (const uint8_t *)"1.0-c", 5 },
    MUELLE_SCOPE_GLOBAL,
    init, free_buf, create, rm, mount, unmount, path, get,
#ifdef NULL_LIST
    NULL,
#else
    list,
#endif
};

#ifndef NO_SYMBOL
const muelle_volume_plugin *muelle_volume_plugin_v1(void) {
#ifdef NULL_TABLE
    return NULL;
#else
    return &table;
#endif
}
#else
const muelle_volume_plugin *something_else(void) { return &table; }
#endif
"#;

/// The error of loading driver `name`, as text.
fn load_error(host: &PluginHost, name: &str) -> String {
    match host.driver(name) {
        Ok(Some(_)) => panic!("{name} loaded"),
        Ok(None) => panic!("{name} not found"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn fixture_serves_every_call_through_the_abi() {
    let dir = need_fixture!();
    let w = World::new(&dir);
    let path = w.install_fixture();
    let host = w.host();
    let driver = host.driver("fixture").expect("load").expect("found");

    let info = driver.info();
    assert_eq!(info.name, "fixture");
    assert_eq!(info.version, "0.1.0");
    assert_eq!(info.abi_version, 1);
    assert_eq!(info.scope, Scope::Local);
    assert_eq!(info.path, path);
    let state = w.root.join("plugins-data/fixture");
    assert_eq!(info.state_dir, state);
    let mode = std::fs::metadata(&state)
        .expect("state dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    assert_eq!(driver.name(), "fixture");
    assert_eq!(driver.scope(), Scope::Local);

    let data = vol("data");
    let options = BTreeMap::from([("note".to_owned(), "hello".to_owned())]);
    driver.create(&data, &options).expect("create");
    assert_eq!(
        std::fs::read_to_string(state.join("data/note")).expect("note"),
        "hello"
    );
    assert_eq!(driver.list().expect("list"), std::slice::from_ref(&data));
    assert_eq!(driver.get(&data).expect("get"), None, "not mounted");
    assert_eq!(driver.path(&data).expect("path"), None);

    let mounted = driver.mount(&data, "c1").expect("mount");
    assert_eq!(mounted, state.join("data/_data"));
    assert!(mounted.is_dir());
    assert_eq!(driver.mount(&data, "c1").expect("mount again"), mounted);
    assert_eq!(driver.path(&data).expect("path"), Some(mounted.clone()));
    assert_eq!(driver.get(&data).expect("get"), Some(mounted.clone()));
    assert_eq!(
        driver.remove(&data).expect_err("busy").to_string(),
        "volume driver fixture: volume data is mounted by c1"
    );
    driver.unmount(&data, "c1").expect("unmount");
    assert_eq!(driver.path(&data).expect("path"), None);
    driver.remove(&data).expect("remove");
    assert!(driver.list().expect("list").is_empty());

    let gone = vol("gone");
    assert!(matches!(driver.get(&gone), Err(VolumeError::NotFound(n)) if n == "gone"));
    assert_eq!(
        driver.remove(&gone).expect_err("missing").to_string(),
        "no such volume: gone"
    );
    let bad = BTreeMap::from([("size".to_owned(), "1G".to_owned())]);
    assert_eq!(
        driver.create(&data, &bad).expect_err("invalid").to_string(),
        "volume driver fixture: unknown option \"size\" (the fixture takes note=TEXT)"
    );
    // Logs travel through the host's callback (and must not crash it).
    driver.create(&vol("logs"), &BTreeMap::new()).expect("logs");

    // The same plugin again is the same instance, and DriverSource finds it.
    let again = host.driver("fixture").expect("load").expect("found");
    assert_eq!(again.info(), driver.info());
    let shared = host.find("fixture").expect("find").expect("found");
    assert_eq!(shared.name(), "fixture");
    assert!(host.find("nothing").expect("find").is_none());
}

#[test]
fn unknown_drivers_are_none_and_bad_names_are_errors() {
    let dir = need_fixture!();
    let w = World::new(&dir);
    let host = w.host();
    assert!(host.driver("nothing").expect("lookup").is_none());
    assert_eq!(
        load_error(&host, "../fixture"),
        "invalid volume driver name \"../fixture\": driver names are [a-z0-9][a-z0-9_.-]* and not \"local\""
    );
    assert!(host.driver("local").is_err());
}

#[test]
fn a_panic_names_plugin_and_call_and_the_process_survives() {
    let dir = need_fixture!();
    let w = World::new(&dir);
    w.install_fixture();
    let driver = w.host().driver("fixture").expect("load").expect("found");
    let err = driver
        .create(&vol("panic"), &BTreeMap::new())
        .expect_err("panics");
    assert_eq!(
        err.to_string(),
        "volume plugin fixture panicked in create: fixture asked to panic"
    );
    assert!(matches!(err, VolumeError::Plugin(_)));
    // The instance still answers.
    driver
        .create(&vol("after"), &BTreeMap::new())
        .expect("create after a panic");
    assert_eq!(driver.list().expect("list"), [vol("after")]);
}

#[test]
fn a_hung_call_times_out_and_later_calls_fail_fast() {
    let dir = need_fixture!();
    let w = World::new(&dir);
    w.install_fixture();
    let host = PluginHost::new(w.config(Duration::from_secs(1)));
    let driver = host.driver("fixture").expect("load").expect("found");

    let started = Instant::now();
    let err = driver
        .create(&vol("hang"), &BTreeMap::new())
        .expect_err("times out");
    let waited = started.elapsed();
    assert_eq!(
        err.to_string(),
        "volume plugin fixture: create timed out after 1s"
    );
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    let busy = "volume plugin fixture: still busy with a create call that timed out after 1s; not calling it again until that call returns";
    let started = Instant::now();
    assert_eq!(driver.list().expect_err("busy").to_string(), busy);
    assert_eq!(load_error(&host, "fixture"), busy);
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[test]
fn output_muelle_cannot_use_is_an_error() {
    let dir = need_fixture!();
    let w = World::new(&dir);
    w.install_fixture();
    let driver = w.host().driver("fixture").expect("load").expect("found");
    for name in ["badutf8", "relative"] {
        driver.create(&vol(name), &BTreeMap::new()).expect("create");
    }
    assert_eq!(
        driver
            .mount(&vol("badutf8"), "c1")
            .expect_err("bad")
            .to_string(),
        "volume plugin fixture: mount returned a path that is not UTF-8"
    );
    assert_eq!(
        driver
            .mount(&vol("relative"), "c1")
            .expect_err("bad")
            .to_string(),
        "volume plugin fixture: mount returned the path \"fixture/relative\", which is not an absolute path"
    );
}

#[test]
fn a_c_plugin_works_and_every_buffer_is_freed_once() {
    let w = World::bare();
    let Some(_) = w.compile("cc", &[]) else {
        return;
    };
    let driver = w.host().driver("cc").expect("load").expect("found");
    assert_eq!(driver.info().version, "1.0-c");
    assert_eq!(driver.scope(), Scope::Global);
    let x = vol("x1");
    assert_eq!(
        driver
            .create(&x, &BTreeMap::new())
            .expect_err("error")
            .to_string(),
        "volume driver cc: cc cannot create second line"
    );
    assert_eq!(
        driver.remove(&x).expect_err("missing").to_string(),
        "no such volume: x1"
    );
    assert_eq!(driver.mount(&x, "c1").expect("mount"), Path::new("/srv/cc"));
    assert_eq!(
        driver.unmount(&x, "c1").expect_err("unknown").to_string(),
        "volume plugin cc: unmount returned unknown status 42"
    );
    assert_eq!(driver.path(&x).expect("path"), None);
    assert_eq!(driver.get(&x).expect("get"), Some(PathBuf::from("/srv/cc")));
    // Every buffer above was given back exactly once: none is live (a
    // double free would abort or count below zero).
    assert_eq!(driver.list().expect("list"), [vol("live-0")]);
}

#[test]
fn a_failed_init_is_an_error_every_time() {
    let w = World::bare();
    let Some(_) = w.compile("cc", &["-DINIT_STATUS=MUELLE_ERROR"]) else {
        return;
    };
    let host = w.host();
    assert_eq!(
        load_error(&host, "cc"),
        "volume plugin cc: init failed: no licence"
    );
    assert_eq!(
        load_error(&host, "cc"),
        "volume plugin cc: init failed: no licence"
    );
}

#[test]
fn libraries_that_are_not_plugins_are_refused_by_name() {
    let w = World::bare();
    let host = w.host();
    let cases: [(&str, &[&str], String); 5] = [
        (
            "nosym",
            &["-DNO_SYMBOL"],
            "not a muelle volume plugin (no symbol muelle_volume_plugin_v1)".to_owned(),
        ),
        (
            "abi2",
            &["-DNAME=\"abi2\"", "-DABI=2"],
            "it speaks plugin ABI version 2, this muelle speaks 1".to_owned(),
        ),
        (
            "small",
            &["-DNAME=\"small\"", "-DSIZE=8"],
            format!(
                "its table is 8 bytes, ABI version 1 needs at least {}",
                size_of::<muelle_plugin_sdk::abi::Plugin>()
            ),
        ),
        (
            "null",
            &["-DNAME=\"null\"", "-DNULL_TABLE"],
            "muelle_volume_plugin_v1 returned no table (NULL)".to_owned(),
        ),
        (
            "nolist",
            &["-DNAME=\"nolist\"", "-DNULL_LIST"],
            "its table has no list function (NULL)".to_owned(),
        ),
    ];
    for (file, defines, defect) in cases {
        let Some(path) = w.compile(file, defines) else {
            return;
        };
        assert_eq!(
            load_error(&host, file),
            format!("invalid plugin {}: {defect}", path.display())
        );
    }
}

#[test]
fn a_name_mismatch_is_refused() {
    let dir = need_fixture!();
    let w = World::new(&dir);
    let path = w.install_fixture_in(&w.plugins, "other.so");
    assert_eq!(
        load_error(&w.host(), "other"),
        format!(
            "invalid plugin {}: it calls itself \"fixture\", but the file is named other.so",
            path.display()
        )
    );
}

#[test]
fn a_text_file_is_not_a_library() {
    let w = World::bare();
    let path = w.plugins.join("x.so");
    std::fs::write(&path, "this is not a shared library\n".repeat(40)).expect("write");
    chmod(&path, 0o644);
    let err = load_error(&w.host(), "x");
    let prefix = format!("cannot load plugin {}: ", path.display());
    assert!(err.starts_with(&prefix), "{err}");
    assert!(err.contains("invalid ELF header"), "{err}");
}

#[test]
fn a_world_writable_folder_is_refused() {
    let dir = need_fixture!();
    let w = World::new(&dir);
    let path = w.install_fixture();
    chmod(&w.plugins, 0o777);
    assert_eq!(
        load_error(&w.host(), "fixture"),
        format!(
            "refusing plugin {}: {} is world-writable",
            path.display(),
            w.plugins.display()
        )
    );
    chmod(&w.plugins, 0o775);
    assert_eq!(
        load_error(&w.host(), "fixture"),
        format!(
            "refusing plugin {}: {} is group-writable",
            path.display(),
            w.plugins.display()
        )
    );
}

#[test]
fn a_group_writable_file_is_refused() {
    let dir = need_fixture!();
    let w = World::new(&dir);
    let path = w.install_fixture();
    chmod(&path, 0o664);
    assert_eq!(
        load_error(&w.host(), "fixture"),
        format!("refusing plugin {0}: {0} is group-writable", path.display())
    );
}

#[test]
fn a_file_of_another_user_is_refused() {
    let dir = need_fixture!();
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: chown to another user needs root");
        return;
    }
    let w = World::new(&dir);
    let path = w.install_fixture();
    std::os::unix::fs::chown(&path, Some(65534), None).expect("chown");
    assert_eq!(
        load_error(&w.host(), "fixture"),
        format!(
            "refusing plugin {0}: {0} is owned by uid 65534, not root",
            path.display()
        )
    );
}

#[test]
fn a_world_writable_ancestor_needs_the_sticky_bit() {
    let dir = need_fixture!();
    let w = World::new(&dir);
    let open = w.base.join("open");
    let plugins = open.join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    chmod(&plugins, 0o755);
    chmod(&open, 0o777);
    let path = w.install_fixture_in(&plugins, "fixture.so");
    let host = PluginHost::new(PluginConfig {
        dirs: vec![plugins.clone()],
        ..w.config(Duration::from_secs(10))
    });
    assert_eq!(
        load_error(&host, "fixture"),
        format!(
            "refusing plugin {}: {} is world-writable",
            path.display(),
            open.display()
        )
    );
    chmod(&open, 0o1777);
    host.driver("fixture")
        .expect("sticky ancestor is fine")
        .expect("found");
}

#[test]
fn a_symlink_is_judged_by_what_it_points_at() {
    let dir = need_fixture!();
    let w = World::new(&dir);
    let elsewhere = w.base.join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    chmod(&elsewhere, 0o777);
    let target = w.install_fixture_in(&elsewhere, "fixture-0.1.so");
    let link = w.plugins.join("fixture.so");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    assert_eq!(
        load_error(&w.host(), "fixture"),
        format!(
            "refusing plugin {}: {} is world-writable",
            link.display(),
            elsewhere.display()
        )
    );
    chmod(&elsewhere, 0o755);
    let driver = w.host().driver("fixture").expect("load").expect("found");
    assert_eq!(driver.info().path, link);
    assert_eq!(driver.info().resolved, target);
}

#[test]
fn list_shows_ready_shadowed_and_broken_files() {
    let dir = need_fixture!();
    let w = World::new(&dir);
    let second = w.base.join("second");
    std::fs::create_dir(&second).expect("mkdir");
    chmod(&second, 0o755);
    let first_fixture = w.install_fixture();
    let shadowed = w.install_fixture_in(&second, "fixture.so");
    let broken = w.plugins.join("broken.so");
    std::fs::write(&broken, "text").expect("write");
    chmod(&broken, 0o644);
    std::fs::write(second.join("Bad.so"), "text").expect("write");
    std::fs::write(second.join("notes.txt"), "not a plugin").expect("write");
    let host = PluginHost::new(PluginConfig {
        dirs: vec![w.plugins.clone(), second.clone()],
        ..w.config(Duration::from_secs(10))
    });

    let entries = host.list();
    let summary: Vec<(String, PathBuf, String)> = entries
        .iter()
        .map(|e| {
            let status = match &e.status {
                PluginStatus::Ready(info) => format!("ready {}", info.version),
                PluginStatus::Shadowed { by } => format!("shadowed by {}", by.display()),
                PluginStatus::Broken(err) => err.to_string(),
            };
            (e.name.clone(), e.path.clone(), status)
        })
        .collect();
    assert_eq!(summary.len(), 4, "{summary:#?}");
    assert_eq!(summary[0].0, "broken");
    assert!(
        summary[0]
            .2
            .starts_with(&format!("cannot load plugin {}: ", broken.display())),
        "{summary:#?}"
    );
    assert_eq!(
        summary[1],
        (
            "fixture".into(),
            first_fixture.clone(),
            "ready 0.1.0".into()
        )
    );
    assert_eq!(
        summary[2],
        (
            "Bad".into(),
            second.join("Bad.so"),
            "invalid volume driver name \"Bad\": driver names are [a-z0-9][a-z0-9_.-]* and not \"local\"".into()
        )
    );
    assert_eq!(
        summary[3],
        (
            "fixture".into(),
            shadowed,
            format!("shadowed by {}", first_fixture.display())
        )
    );
}
