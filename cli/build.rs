//! Build facts that `muelle version` prints: the rustc version and, when
//! built from a git checkout with git at hand, the commit. Neither is
//! required: without them the lines say so.

use std::path::Path;
use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    // "rustc 1.95.0 (59807616e 2026-04-14)": the second word.
    let rustc_version = output(Command::new(rustc).arg("--version"))
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_default();
    println!("cargo:rustc-env=MUELLE_RUSTC_VERSION={rustc_version}");
    let commit = output(&mut git(&["rev-parse", "--short=7", "HEAD"])).unwrap_or_default();
    println!("cargo:rustc-env=MUELLE_GIT_COMMIT={commit}");
    // Run again when HEAD moves: HEAD itself, the branch it names, and the
    // packed refs where a branch may live.
    println!("cargo:rerun-if-changed=build.rs");
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watched.extend(output(&mut git(&["symbolic-ref", "-q", "HEAD"])));
    for name in watched {
        if let Some(path) = output(&mut git(&[
            "rev-parse",
            "--path-format=absolute",
            "--git-path",
            &name,
        ])) && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

fn git(args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.args(args);
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        cmd.current_dir(dir);
    }
    cmd
}

/// The trimmed stdout of a command that succeeded with some output.
fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}
