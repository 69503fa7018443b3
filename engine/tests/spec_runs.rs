//! A spec built by the engine runs under runtime-core: a busybox rootfs,
//! user `app` from the image's /etc/passwd, `--cap-drop ALL --cap-add
//! NET_BIND_SERVICE`, docker's default seccomp profile and /dev; then the
//! same as root.
//!
//! Root only; skipped with the reason printed otherwise, or without
//! /bin/busybox. Runs with `harness = false` (see Cargo.toml): the
//! container's stdout and stderr are this process's, pointed at a file
//! while it runs.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

use engine::config::{ContainerConfig, ImageSource, parse_cap};
use engine::spec::{ResolvedMounts, build};
use oci_spec::image::ImageConfiguration;
use runtime_core::container::{self, RunOptions};
use runtime_core::state::{ContainerId, StateRoot};

mod support;

use support::{BUSYBOX, cgroup_dirs, make_rootfs, remove_default_cgroup_parents, unique_id};
const SCRIPT: &str = "id -u; cat /proc/self/status | grep -e CapEff -e CapBnd; ls /dev";

fn main() {
    if !nix::unistd::geteuid().is_root() {
        println!("spec_runs: skipped: running containers needs root");
        return;
    }
    if !Path::new(BUSYBOX).exists() {
        println!("spec_runs: skipped: {BUSYBOX} is missing (apt-get install busybox-static)");
        return;
    }
    if std::env::var_os(PRIVILEGED_CHILD).is_some() {
        privileged_child();
        return;
    }
    spec_runs_under_runtime_core();
    println!("spec_runs: ok");
}

/// Set in the child process that runs the privileged container.
const PRIVILEGED_CHILD: &str = "MUELLE_ENGINE_TEST_PRIVILEGED_BUNDLE";

fn spec_runs_under_runtime_core() {
    let bundle = tempfile::Builder::new()
        .prefix("muelle-engine-test")
        .tempdir()
        .expect("bundle folder");
    let rootfs = bundle.path().join("rootfs");
    make_rootfs(&rootfs, &["sh", "id", "cat", "grep", "ls"]);

    // As `app`: the bounding set is NET_BIND_SERVICE alone; the effective
    // set is empty, as under docker: a non-root user's exec keeps no
    // capability without an ambient set, which docker (23+) leaves empty.
    let text = run_script(bundle.path(), "app", false);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("1000"),
        "id -u; output:\n{text}"
    );
    assert!(
        lines.contains(&"CapBnd:\t0000000000000400"),
        "bounding: only NET_BIND_SERVICE; output:\n{text}"
    );
    assert!(
        lines.contains(&"CapEff:\t0000000000000000"),
        "effective of a non-root user; output:\n{text}"
    );
    for device in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue",
    ] {
        assert!(
            lines.contains(&device),
            "/dev/{device} missing; output:\n{text}"
        );
    }
    assert!(
        !lines.iter().any(|l| l.starts_with("sd")),
        "host disks in /dev:\n{text}"
    );

    // As root the same set is effective.
    let text = run_script(bundle.path(), "root", false);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first().copied(), Some("0"), "id -u; output:\n{text}");
    assert!(
        lines.contains(&"CapEff:\t0000000000000400"),
        "effective: only NET_BIND_SERVICE; output:\n{text}"
    );

    // --privileged: in a child process, as the runtime must then run from
    // a sealed copy of its binary (the container holds CAP_SYS_PTRACE:
    // CVE-2019-5736), which replaces the process.
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .env(PRIVILEGED_CHILD, bundle.path())
        .output()
        .expect("privileged child");
    let (out, err) = (
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr),
    );
    assert!(
        child.status.success() && out.contains("privileged: ok"),
        "privileged child: {}\n{out}\n{err}",
        child.status
    );
}

/// The privileged container ignores the capability flags and gets the
/// host's devices: every capability the engine holds (this host's root
/// lacks CAP_SYS_RESOURCE), and /dev/null from the host's list.
fn privileged_child() {
    if !runtime_core::process::sealed_exe::running_sealed() {
        match runtime_core::process::sealed_exe::reexec() {
            Err(e) => panic!("running from a sealed copy: {e}"),
            Ok(never) => match never {},
        }
    }
    let bundle = PathBuf::from(std::env::var_os(PRIVILEGED_CHILD).unwrap_or_default());
    let text = run_script(&bundle, "root", true);
    let want = format!(
        "CapEff:\t{:016x}",
        engine::spec::Host::detect().holdable_caps
    );
    assert!(
        text.lines().any(|l| l == want),
        "privileged: {want}; output:\n{text}"
    );
    assert!(
        text.lines().any(|l| l == "null"),
        "/dev/null; output:\n{text}"
    );
    println!("privileged: ok");
}

/// Builds the spec for SCRIPT as `user` with `--cap-drop ALL --cap-add
/// NET_BIND_SERVICE` (and `--privileged` if asked) into the bundle, runs it, checks nothing is left,
/// and returns what the container printed.
fn run_script(bundle: &Path, user: &str, privileged: bool) -> String {
    let mut config = ContainerConfig::new(ImageSource {
        id: image::Digest::of_bytes(b"spec_runs"),
        reference: "localhost/busybox".into(),
    });
    config.cmd = Some(vec!["sh".into(), "-c".into(), SCRIPT.into()]);
    config.user = Some(user.into());
    config.cap_drop = vec![parse_cap("ALL").expect("ALL")];
    config.cap_add = vec![parse_cap("NET_BIND_SERVICE").expect("NET_BIND_SERVICE")];
    config.privileged = privileged;
    let image: ImageConfiguration = serde_json::from_value(serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": []}
    }))
    .expect("image config");

    let id = unique_id("e4");
    let rootfs = bundle.join("rootfs");
    let spec = build(&config, &image, &rootfs, &ResolvedMounts::default(), &id).expect("spec");
    spec.save(bundle.join("config.json")).expect("config.json");

    let state = tempfile::Builder::new()
        .prefix("muelle-engine-state")
        .tempdir()
        .expect("state root");
    let output = bundle.join("output");
    let result = run_with_output(state.path(), bundle, &id, &output);
    let text = std::fs::read_to_string(&output).unwrap_or_default();

    // Clean up before judging, so a failure leaves nothing behind either.
    if let Ok(cid) = id.parse::<ContainerId>() {
        let _ = container::delete(&StateRoot::new(state.path()), &cid, true);
    }
    remove_default_cgroup_parents();
    let code = result.unwrap_or_else(|e| panic!("run failed: {e}\noutput:\n{text}"));
    assert_eq!(code, 0, "exit status; output:\n{text}");
    assert!(!state.path().join(&id).exists(), "state folder left behind");
    assert_eq!(
        cgroup_dirs(&id),
        Vec::<PathBuf>::new(),
        "cgroups left behind"
    );
    text
}

/// Runs the bundle in the foreground with stdin from /dev/null and stdout
/// and stderr into `output`; our own are restored afterwards.
fn run_with_output(
    root: &Path,
    bundle: &Path,
    id: &str,
    output: &Path,
) -> Result<i32, Box<dyn std::error::Error>> {
    let file = std::fs::File::create(output)?;
    let null = std::fs::File::open("/dev/null")?;
    let saved: Vec<(i32, OwnedFd)> = [0, 1, 2]
        .into_iter()
        .map(|fd| Ok((fd, dup(fd)?)))
        .collect::<Result<_, nix::Error>>()?;
    dup2(null.as_raw_fd(), 0)?;
    dup2(file.as_raw_fd(), 1)?;
    dup2(file.as_raw_fd(), 2)?;
    let result = container::run(
        &StateRoot::new(root),
        RunOptions {
            id: id.parse()?,
            bundle: bundle.to_path_buf(),
            pid_file: None,
            console_socket: None,
            preserve_fds: 0,
            detach: false,
            keep: false,
        },
    );
    for (fd, copy) in &saved {
        dup2(copy.as_raw_fd(), *fd)?;
    }
    // `run` blocked the signals it forwards; a test process wants them back.
    let _ = nix::sys::signal::SigSet::all().thread_unblock();
    Ok(result?)
}

fn dup(fd: i32) -> Result<OwnedFd, nix::Error> {
    // SAFETY: dup of one of our standard descriptors; the new one is owned.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if copy < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: `copy` was just returned to us and nothing else owns it.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(copy) })
}

fn dup2(from: i32, to: i32) -> Result<(), nix::Error> {
    // SAFETY: plain dup2 between descriptors this process holds.
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}
