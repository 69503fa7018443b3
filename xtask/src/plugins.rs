//! `cargo xtask plugins [--out DIR] [--release]`: builds every volume
//! driver plugin we ship into one folder, `NAME.so` each, as muelle's
//! plugin host wants them (see plugins/README.md):
//!
//! - the Rust ones with `cargo build`, their cdylib copied to `NAME.so`;
//! - the C ones with `cc`, from the header alone.
//!
//! The folder (default `<target dir>/muelle-plugins`, the target dir as
//! cargo reports it, so `CARGO_TARGET_DIR` counts) ends 0755 and each file
//! 0755, root-owned when run as root, since muelle loads only plugins that
//! nobody but root can change. Every file is written under a temporary
//! name in the folder and renamed into place: a test or a muelle command
//! loading the plugin meanwhile sees the old file or the new one, never
//! half of one, and a process that has the old one mapped keeps it.
//!
//! Prints the folder's absolute path on stdout (progress goes to stderr),
//! so `dir=$(cargo xtask plugins)` works. `cargo xtask ci` runs this
//! before the tests and passes the folder as `MUELLE_TEST_PLUGIN_DIR`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::util;

/// A plugin written in Rust: a cdylib crate of the workspace.
struct RustPlugin {
    package: &'static str,
    /// The library target's name (the package name with `_`): cargo makes
    /// `lib<lib>.so`.
    lib: &'static str,
    driver: &'static str,
}

const RUST_PLUGINS: &[RustPlugin] = &[
    RustPlugin {
        package: "muelle-quota",
        lib: "muelle_quota",
        driver: "quota",
    },
    RustPlugin {
        package: "muelle-plugin-fixture",
        lib: "muelle_plugin_fixture",
        driver: "fixture",
    },
];

/// A plugin written in C: one source file, the SDK header and libc.
struct CPlugin {
    source: &'static str,
    driver: &'static str,
}

const C_PLUGINS: &[CPlugin] = &[CPlugin {
    source: "plugins/cdir/cdir.c",
    driver: "cdir",
}];

/// Where `muelle_volume_plugin.h` is.
const C_INCLUDE_DIR: &str = "plugins/sdk/include";

/// Strict C99, every warning an error: the header must be enough for a
/// pedantic compiler.
const C_FLAGS: &[&str] = &[
    "-std=c99",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
    "-fPIC",
    "-shared",
    "-O2",
];

const FOLDER_MODE: u32 = 0o755;
const FILE_MODE: u32 = 0o755;

#[derive(clap::Args, Debug, Default)]
pub struct Options {
    /// The folder to fill (default: <target dir>/muelle-plugins)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Build the Rust plugins with the release profile
    #[arg(long)]
    pub release: bool,
}

/// `cargo xtask plugins`: builds, then prints the folder.
pub fn run(options: &Options) -> Result<()> {
    let dir = build(options)?;
    println!("{}", dir.display());
    Ok(())
}

/// Builds every plugin into the folder and returns its absolute path.
pub fn build(options: &Options) -> Result<PathBuf> {
    let dir = match &options.out {
        Some(dir) => std::path::absolute(dir)
            .with_context(|| format!("cannot make {} absolute", dir.display()))?,
        None => util::target_dir()?.join("muelle-plugins"),
    };
    prepare_folder(&dir)?;

    for (plugin, library) in cargo_build(options.release)? {
        install(&dir, plugin.driver, |tmp| copy_file(&library, tmp))?;
        eprintln!(
            "xtask plugins: {}.so <- {}",
            plugin.driver,
            library.display()
        );
    }
    for plugin in C_PLUGINS {
        install(&dir, plugin.driver, |tmp| compile_c(plugin, tmp))?;
        eprintln!("xtask plugins: {}.so <- {}", plugin.driver, plugin.source);
    }
    warn_if_untrusted(&dir);
    Ok(dir)
}

/// Makes `dir` (and its parents) and gives it the owner and mode muelle
/// trusts.
fn prepare_folder(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let meta = fs::metadata(dir).with_context(|| format!("cannot stat {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a folder", dir.display());
    }
    if util::is_root() {
        std::os::unix::fs::chown(dir, Some(0), Some(0))
            .with_context(|| format!("cannot give {} to root", dir.display()))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(FOLDER_MODE))
        .with_context(|| format!("cannot chmod {:o} {}", FOLDER_MODE, dir.display()))?;
    Ok(())
}

/// `cargo build` of the Rust plugins; returns each with the path of the
/// library cargo reported for it.
fn cargo_build(release: bool) -> Result<Vec<(&'static RustPlugin, PathBuf)>> {
    let mut cmd = util::cargo();
    cmd.arg("build");
    for plugin in RUST_PLUGINS {
        cmd.args(["-p", plugin.package]);
    }
    if release {
        cmd.arg("--release");
    }
    // JSON on stdout says where each library is; diagnostics still reach
    // the terminal, rendered, on stderr.
    cmd.arg("--message-format=json-render-diagnostics");
    let line = util::display(&cmd);
    eprintln!("xtask plugins: {line}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start `{line}`"))?;
    let mut found: Vec<Option<PathBuf>> = vec![None; RUST_PLUGINS.len()];
    if let Some(stdout) = child.stdout.take() {
        for message in BufReader::new(stdout).lines() {
            let message = message.with_context(|| format!("cannot read the output of `{line}`"))?;
            // Lines that are not cargo's JSON (a build script's noise) are
            // not ours to judge.
            let Ok(message) = serde_json::from_str::<Value>(&message) else {
                continue;
            };
            for (plugin, slot) in RUST_PLUGINS.iter().zip(found.iter_mut()) {
                if let Some(path) = cdylib_of(&message, plugin.lib) {
                    *slot = Some(path);
                }
            }
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("cannot wait for `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    RUST_PLUGINS
        .iter()
        .zip(found)
        .map(|(plugin, path)| match path {
            Some(path) => Ok((plugin, path)),
            None => bail!(
                "`{line}` built no lib{}.so: is {}'s crate-type cdylib?",
                plugin.lib,
                plugin.package
            ),
        })
        .collect()
}

/// The `.so` of a `compiler-artifact` message about the cdylib target
/// `lib`, if this is one.
fn cdylib_of(message: &Value, lib: &str) -> Option<PathBuf> {
    if message.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let target = message.get("target")?;
    if target.get("name")?.as_str()? != lib {
        return None;
    }
    let is_cdylib = target
        .get("kind")?
        .as_array()?
        .iter()
        .any(|kind| kind.as_str() == Some("cdylib"));
    if !is_cdylib {
        return None;
    }
    let wanted = format!("lib{lib}.so");
    message
        .get("filenames")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .map(PathBuf::from)
        .find(|path| path.file_name().is_some_and(|name| name == wanted.as_str()))
}

/// Writes `dir/DRIVER.so` atomically: `write` fills a temporary file of
/// the folder, which gets its owner and mode, is synced, and is renamed
/// over the old one.
fn install(dir: &Path, driver: &str, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let target = dir.join(format!("{driver}.so"));
    // Not `*.so`: nothing that looks for plugins picks it up.
    let tmp = dir.join(format!(".{driver}.so.tmp-{}", std::process::id()));
    remove_if_present(&tmp)?;
    let done = write(&tmp).and_then(|()| seal(&tmp)).and_then(|()| {
        fs::rename(&tmp, &target)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), target.display()))
    });
    if done.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    done
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove the leftover {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Gives the file at `path` the owner and mode muelle trusts and syncs it.
fn seal(path: &Path) -> Result<()> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    if util::is_root() {
        std::os::unix::fs::fchown(&file, Some(0), Some(0))
            .with_context(|| format!("cannot give {} to root", path.display()))?;
    }
    file.set_permissions(fs::Permissions::from_mode(FILE_MODE))
        .with_context(|| format!("cannot chmod {:o} {}", FILE_MODE, path.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot sync {}", path.display()))
}

/// Copies the bytes of `from` into the new file `to`.
fn copy_file(from: &Path, to: &Path) -> Result<()> {
    let mut source = File::open(from).with_context(|| format!("cannot open {}", from.display()))?;
    let mut dest = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(to)
        .with_context(|| format!("cannot create {}", to.display()))?;
    io::copy(&mut source, &mut dest)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// `cc FLAGS -I plugins/sdk/include -o OUT SOURCE`.
fn compile_c(plugin: &CPlugin, out: &Path) -> Result<()> {
    let root = util::workspace_root();
    let Some(cc) = util::find_program("cc") else {
        bail!(
            "no `cc` on PATH to build {}: install a C compiler (apt-get install gcc)",
            plugin.source
        );
    };
    let mut cmd = Command::new(cc);
    cmd.current_dir(root)
        .args(C_FLAGS)
        .arg("-I")
        .arg(root.join(C_INCLUDE_DIR))
        .arg("-o")
        .arg(out)
        .arg(root.join(plugin.source))
        // stdout is for the folder's path alone.
        .stdout(Stdio::from(io::stderr()));
    eprintln!("xtask plugins: {}", util::display(&cmd));
    util::run_streaming(&mut cmd)
}

/// Warns when muelle's trust rules would refuse the plugins of `dir`: an
/// owner other than root (or us) or a group/world-writable folder on the
/// way, the sticky /tmp excepted. Loading them would fail; building them
/// did not.
fn warn_if_untrusted(dir: &Path) {
    let resolved = match fs::canonicalize(dir) {
        Ok(path) => path,
        Err(e) => {
            eprintln!("warning: cannot resolve {}: {e}", dir.display());
            return;
        }
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    for (depth, folder) in resolved.ancestors().enumerate() {
        let Ok(meta) = fs::metadata(folder) else {
            continue;
        };
        let mode = meta.permissions().mode();
        let sticky = depth > 0 && mode & 0o1000 != 0;
        let problem = if meta.uid() != 0 && meta.uid() != euid {
            Some(format!("is owned by uid {}", meta.uid()))
        } else if mode & 0o022 != 0 && !sticky {
            Some("is group- or world-writable".to_owned())
        } else {
            None
        };
        if let Some(problem) = problem {
            eprintln!(
                "warning: muelle will refuse the plugins in {}: {} {problem}",
                dir.display(),
                folder.display()
            );
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cdylib_in_cargo_messages() {
        let message: Value = serde_json::from_str(
            r#"{"reason":"compiler-artifact","target":{"name":"muelle_quota","kind":["cdylib","rlib"]},
                "filenames":["/t/debug/libmuelle_quota.so","/t/debug/libmuelle_quota.rlib"]}"#,
        )
        .expect("json");
        assert_eq!(
            cdylib_of(&message, "muelle_quota"),
            Some(PathBuf::from("/t/debug/libmuelle_quota.so"))
        );
        assert_eq!(cdylib_of(&message, "muelle_plugin_fixture"), None);
        let rlib_only: Value = serde_json::from_str(
            r#"{"reason":"compiler-artifact","target":{"name":"muelle_quota","kind":["rlib"]},
                "filenames":["/t/debug/libmuelle_quota.rlib"]}"#,
        )
        .expect("json");
        assert_eq!(cdylib_of(&rlib_only, "muelle_quota"), None);
        let other: Value =
            serde_json::from_str(r#"{"reason":"build-finished","success":true}"#).expect("json");
        assert_eq!(cdylib_of(&other, "muelle_quota"), None);
    }

    #[test]
    fn installs_atomically_with_the_trusted_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = dir.path().join("plugins");
        prepare_folder(&folder).expect("folder");
        let source = dir.path().join("lib.so");
        fs::write(&source, b"first").expect("write");
        install(&folder, "demo", |tmp| copy_file(&source, tmp)).expect("install");
        fs::write(&source, b"second").expect("write");
        install(&folder, "demo", |tmp| copy_file(&source, tmp)).expect("reinstall");

        let target = folder.join("demo.so");
        assert_eq!(fs::read(&target).expect("read"), b"second");
        let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(mode(&target), FILE_MODE);
        assert_eq!(mode(&folder), FOLDER_MODE);
        let names: Vec<_> = fs::read_dir(&folder)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["demo.so"], "no temporary file left");

        let failed = install(&folder, "broken", |_| bail!("no"));
        assert!(failed.is_err());
        assert!(!folder.join("broken.so").exists());
    }
}
