//! `cargo xtask tour`: muelle's main job on a fresh machine, each command
//! printed before it runs. Builds muelle (release), makes the busybox test
//! image, loads it into a private instance, then: a container writes to a
//! named volume and is removed, a second container reads the data back;
//! a web server serves that volume on a user network, where a client
//! container finds it by name, and on a published port of the host.
//! The tour runs in a network namespace of its own (its bridge and
//! firewall rules never reach the host's network), and the instance
//! (under the target folder and /run/muelle-tour) is removed at the end,
//! whatever happened.

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
    private_network()?;
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
        self.muelle(&["network", "create", "tour-net"])?;
        self.muelle(&[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "tour-net",
            "-p",
            "127.0.0.1:8080:80",
            "-v",
            "tour-data:/www:ro",
            "localhost/busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/www",
        ])?;
        self.muelle(&["ps"])?;
        let by_name = self.muelle(&[
            "run",
            "--rm",
            "--network",
            "tour-net",
            "localhost/busybox",
            "sh",
            "-c",
            "printf 'GET /greeting HTTP/1.0\\r\\n\\r\\n' | nc web 80",
        ])?;
        if !by_name.contains("hello from ") {
            bail!("a container on tour-net did not get the greeting from `web`: {by_name:?}");
        }
        println!("\n$ (from the host) GET http://127.0.0.1:8080/greeting");
        let published = http_get("127.0.0.1:8080", "/greeting")?;
        print!("{published}");
        if !published.contains("hello from ") {
            bail!("the published port did not serve the greeting: {published:?}");
        }
        self.muelle(&["rm", "-f", "web"])?;
        self.muelle(&["network", "rm", "tour-net"])?;
        self.muelle(&["ps", "-a"])?;
        self.muelle(&["volume", "rm", "tour-data"])?;
        println!(
            "\nThe tour is done: one container wrote to a volume, another read it back, and a web server served it by name on a network and on a published port."
        );
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
        let _ = self.quiet(&["rm", "-f", "-v", "writer", "reader", "web"]);
        let _ = self.quiet(&["network", "rm", "tour-net"]);
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

/// Moves the tour (and every process it starts) into a new network
/// namespace with `lo` up.
fn private_network() -> Result<()> {
    // SAFETY: unshare(2) with a flag; this thread alone moves (it starts
    // every process of the tour).
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error())
            .context("creating the tour's network namespace");
    }
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .context("running ip (apt-get install iproute2)")?;
    if !up.success() {
        bail!("ip link set lo up failed in the tour's network namespace");
    }
    Ok(())
}

/// An HTTP/1.0 GET, the whole answer (headers too).
fn http_get(address: &str, path: &str) -> Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address)
        .with_context(|| format!("connecting to {address}"))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
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
