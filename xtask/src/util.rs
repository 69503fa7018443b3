//! Helpers shared by several xtask commands: where the workspace is, how to
//! call cargo, where its target folder is, finding a program, running one
//! with a clear error, installing Debian packages.

use std::env;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// Directories searched after `PATH`: runtimes live in sbin, which a
/// non-login root shell may not have on its `PATH`.
const SBIN_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// The workspace root (the parent of the xtask crate).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
}

/// A `cargo` command run from the workspace root, using the same cargo that
/// started xtask when there is one.
pub fn cargo() -> Command {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root());
    cmd
}

/// The target folder cargo uses for this workspace (`CARGO_TARGET_DIR`,
/// `build.target-dir` and the default all count).
pub fn target_dir() -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["metadata", "--format-version", "1", "--no-deps"]);
    let line = display(&cmd);
    let output = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start `{line}`"))?;
    if !output.status.success() {
        bail!("`{line}` failed ({})", output.status);
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("`{line}` printed something that is not JSON"))?;
    let Some(dir) = metadata
        .get("target_directory")
        .and_then(serde_json::Value::as_str)
    else {
        bail!("`{line}` names no target_directory");
    };
    Ok(PathBuf::from(dir))
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The executable called `name` on `PATH` or in the sbin directories.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(SBIN_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `cmd` as a shell-like line for messages, the program by its file name.
pub fn display(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program());
    std::iter::once(program.file_name().unwrap_or(program.as_os_str()))
        .chain(cmd.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` with inherited stdio and fails unless it exits with status 0.
pub fn run_streaming(cmd: &mut Command) -> Result<()> {
    let line = display(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// The command line a user without root runs to install `packages`, for
/// error messages.
pub fn apt_install_hint(packages: &[&str]) -> String {
    format!(
        "sudo apt-get update && sudo apt-get install -y {}",
        packages.join(" ")
    )
}

/// As root: `apt-get update`, then `apt-get install` of `packages`, without
/// questions. apt's stdout goes to stderr, so that commands whose stdout is
/// their result (a path) stay usable in `$(...)`.
pub fn apt_install(packages: &[&str]) -> Result<()> {
    run_streaming(apt_get().arg("update"))?;
    run_streaming(
        apt_get()
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages),
    )
}

fn apt_get() -> Command {
    let mut cmd = Command::new("apt-get");
    cmd.env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::from(io::stderr()));
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_but_not_nonsense() {
        assert!(find_program("sh").is_some());
        assert!(find_program("no-such-program-xtask").is_none());
    }

    #[test]
    fn displays_program_and_args() {
        let mut cmd = Command::new("/usr/bin/cargo");
        cmd.args(["fmt", "--all"]);
        assert_eq!(display(&cmd), "cargo fmt --all");
    }
}
