//! `cargo xtask tour`: muelle's main job on a fresh machine, each command
//! printed before it runs. Builds muelle (release), makes the busybox test
//! image, loads it into a private instance, then: a container writes to a
//! named volume and is removed, a second container reads the data back.
//! The instance (under the target folder and /run/muelle-tour) is removed
//! at the end, whatever happened.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{test_image, util};

pub fn run() -> Result<()> {
    if !util::is_root() {
        bail!("the tour runs real containers: run it as root (sudo -E cargo xtask tour)");
    }
    let bin = build()?;
    let archive = test_image::build(None)?;
    let root = util::target_dir()?.join("muelle-tour");
    let tour = Tour {
        muelle: bin.join("muelle"),
        root: root.clone(),
        runroot: PathBuf::from("/run/muelle-tour"),
    };
    let result = tour.main_job(&archive);
    tour.clean_up();
    result
}

/// `cargo build --release` of the CLI and the monitor beside it.
fn build() -> Result<PathBuf> {
    let mut cmd = util::cargo();
    cmd.args([
        "build",
        "--release",
        "-p",
        "cli",
        "-p",
        "engine",
        "-p",
        "network",
        "--bins",
    ]);
    println!("$ {}", util::display(&cmd));
    util::run_streaming(&mut cmd)?;
    Ok(util::target_dir()?.join("release"))
}

struct Tour {
    muelle: PathBuf,
    root: PathBuf,
    runroot: PathBuf,
}

impl Tour {
    fn main_job(&self, archive: &Path) -> Result<()> {
        let archive = archive
            .to_str()
            .context("the archive's path is not UTF-8")?;
        self.muelle(&["load", "-i", archive])?;
        self.muelle(&[
            "run",
            "--rm",
            "--name",
            "writer",
            "-v",
            "tour-data:/data",
            "localhost/busybox",
            "sh",
            "-c",
            "echo \"hello from $(hostname), written at $(date -u +%H:%M:%S)\" > /data/greeting",
        ])?;
        self.muelle(&["volume", "ls"])?;
        let read = self.muelle(&[
            "run",
            "--rm",
            "--name",
            "reader",
            "-v",
            "tour-data:/data:ro",
            "localhost/busybox",
            "cat",
            "/data/greeting",
        ])?;
        if !read.starts_with("hello from ") {
            bail!("the second container did not read the first one's data back: {read:?}");
        }
        self.muelle(&["ps", "-a"])?;
        self.muelle(&["volume", "rm", "tour-data"])?;
        println!("\nThe tour is done: one container wrote to a volume, another read it back.");
        Ok(())
    }

    /// Runs `muelle ARGS` against the tour's instance, printing the command
    /// and its output; fails when it does.
    fn muelle(&self, args: &[&str]) -> Result<String> {
        println!("\n$ muelle {}", shell_words(args));
        let out = Command::new(&self.muelle)
            .arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .args(args)
            .output()
            .with_context(|| format!("cannot start {}", self.muelle.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        print!("{stdout}");
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            bail!("`muelle {}` failed ({})", shell_words(args), out.status);
        }
        Ok(stdout)
    }

    /// Removes every container and volume, then the instance's folders.
    fn clean_up(&self) {
        let _ = self.quiet(&["rm", "-f", "-v", "writer", "reader"]);
        let _ = self.quiet(&["volume", "rm", "-f", "tour-data"]);
        for dir in [&self.runroot, &self.root] {
            if let Err(e) = std::fs::remove_dir_all(dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                eprintln!("xtask tour: {} left behind: {e}", dir.display());
            }
        }
    }

    fn quiet(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        Command::new(&self.muelle)
            .arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .args(args)
            .output()
    }
}

/// The arguments as a shell would need them typed.
fn shell_words(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=".contains(c))
            {
                (*a).to_owned()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
