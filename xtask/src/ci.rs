//! `cargo xtask ci`: the project's one test command, run by `.ci/run`.
//!
//! First it makes sure the Debian packages the tests need are installed
//! (installing them when running as root, naming the command otherwise),
//! then runs fmt, clippy, `cargo xtask plugins` and the tests (given the
//! plugin folder as MUELLE_TEST_PLUGIN_DIR) with their output streamed. It stops
//! at the first failing step, names it, and fails; on success it ends with a
//! one-line summary.

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::plugins;
use crate::util::{self, run_streaming};

/// Where the tests find the plugins `cargo xtask plugins` built.
const PLUGIN_DIR_VAR: &str = "MUELLE_TEST_PLUGIN_DIR";

/// Debian packages the build and the tests need.
const PACKAGES: &[&str] = &[
    // /bin/busybox, statically linked, for the rootfs of test bundles.
    "busybox-static",
    // Headers and .pc file to build the libseccomp crate.
    "libseccomp-dev",
    "pkg-config",
    // Rivals for benches and interop tests (tests skip without them).
    "runc",
    "crun",
    // Engines that drive muelle-runtime in the interop tests.
    "podman",
    "containerd",
    // Tools that read muelle's images and store (image interop tests).
    "skopeo",
    "umoci",
    // tini-static: the init `run --init` puts in front of a command.
    "tini",
    // Bridge networks' firewall rules: nft, and iptables where nft is missing
    // (the network tests run both); `ip` for the tests' own namespaces.
    "nftables",
    "iptables",
    "iproute2",
];

/// The cargo steps, in order: name and arguments.
const STEPS: &[(&str, &[&str])] = &[
    ("fmt", &["fmt", "--all", "--", "--check"]),
    (
        "clippy",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    ),
    // --no-fail-fast: run every test binary, so one log shows every failure.
    ("test", &["test", "--workspace", "--no-fail-fast"]),
];

pub fn run() -> Result<()> {
    let started = Instant::now();
    let mut passed: Vec<(&str, Duration)> = Vec::new();

    let step_started = Instant::now();
    heading("prerequisites", "check Debian packages");
    if let Err(err) = ensure_packages() {
        return Err(failed("prerequisites", &passed, started, err));
    }
    passed.push(("prerequisites", step_started.elapsed()));

    let mut plugin_dir = None;
    for (name, args) in STEPS {
        if *name == "test" {
            // The tests load the plugins we ship from this folder.
            let step_started = Instant::now();
            heading("plugins", "cargo xtask plugins");
            match plugins::build(&plugins::Options::default()) {
                Ok(dir) => plugin_dir = Some(dir),
                Err(err) => return Err(failed("plugins", &passed, started, err)),
            }
            passed.push(("plugins", step_started.elapsed()));
        }
        let step_started = Instant::now();
        let mut cmd = util::cargo();
        cmd.args(*args);
        let mut shown = util::display(&cmd);
        if let Some(dir) = &plugin_dir {
            cmd.env(PLUGIN_DIR_VAR, dir);
            shown = format!("{PLUGIN_DIR_VAR}={} {shown}", dir.display());
        }
        heading(name, &shown);
        if let Err(err) = run_streaming(&mut cmd) {
            return Err(failed(name, &passed, started, err));
        }
        passed.push((name, step_started.elapsed()));
    }

    let mut summary = String::new();
    for (name, took) in &passed {
        let _ = write!(summary, "{name} {}, ", format_duration(*took));
    }
    println!(
        "xtask ci: OK, every step passed: {summary}total {}",
        format_duration(started.elapsed())
    );
    Ok(())
}

fn heading(step: &str, what: &str) {
    println!("==> xtask ci: {step}: {what}");
}

/// The error that ends a failed run: which step failed, why, and what passed.
fn failed(
    step: &str,
    passed: &[(&str, Duration)],
    started: Instant,
    err: anyhow::Error,
) -> anyhow::Error {
    let passed: Vec<&str> = passed.iter().map(|(name, _)| *name).collect();
    let passed = if passed.is_empty() {
        "none".to_owned()
    } else {
        passed.join(", ")
    };
    anyhow!(
        "xtask ci: FAILED at step `{step}` after {} (steps passed: {passed}): {err:#}",
        format_duration(started.elapsed())
    )
}

/// Installs the missing packages when root; otherwise fails naming the command.
fn ensure_packages() -> Result<()> {
    let Some(missing) = missing_packages()? else {
        println!("no dpkg-query here (not Debian?): skipping the package check");
        return Ok(());
    };
    if missing.is_empty() {
        println!("all present: {}", PACKAGES.join(" "));
        return Ok(());
    }
    let list = missing.join(" ");
    if !util::is_root() {
        bail!(
            "missing Debian packages; run: {}",
            util::apt_install_hint(&missing)
        );
    }
    println!("installing missing packages: {list}");
    util::apt_install(&missing)?;
    let still = missing_packages()?.unwrap_or_default();
    if !still.is_empty() {
        bail!("still missing after apt-get install: {}", still.join(" "));
    }
    Ok(())
}

/// The packages of [`PACKAGES`] that dpkg does not list as installed, or
/// `None` when there is no dpkg-query to ask.
fn missing_packages() -> Result<Option<Vec<&'static str>>> {
    let Some(dpkg_query) = util::find_program("dpkg-query") else {
        return Ok(None);
    };
    // Exits 1 when some package is unknown; the known ones are still listed.
    let output = Command::new(dpkg_query)
        .args(["--show", "--showformat=${Package}\t${Status}\n"])
        .args(PACKAGES)
        .output()
        .context("cannot run dpkg-query")?;
    let listing = String::from_utf8_lossy(&output.stdout);
    Ok(Some(not_installed(PACKAGES, &listing)))
}

/// The `wanted` packages that a dpkg-query listing of `name\tstatus` lines
/// does not show as installed.
fn not_installed<'a>(wanted: &[&'a str], listing: &str) -> Vec<&'a str> {
    let installed: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(_, status)| status.split_whitespace().last() == Some("installed"))
        .map(|(name, _)| name)
        .collect();
    wanted
        .iter()
        .copied()
        .filter(|pkg| !installed.contains(pkg))
        .collect()
}

fn format_duration(took: Duration) -> String {
    let secs = took.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        format!("{}m{:02}s", took.as_secs() / 60, took.as_secs() % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dpkg_status() {
        let listing = "runc\tinstall ok installed\n\
                       crun\tdeinstall ok config-files\n\
                       pkg-config\thold ok installed\n";
        assert_eq!(
            not_installed(&["runc", "crun", "pkg-config", "busybox-static"], listing),
            ["crun", "busybox-static"]
        );
    }

    #[test]
    fn formats_durations() {
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m05s");
    }
}
