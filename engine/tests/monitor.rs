//! The per-container monitor against real containers: a busybox rootfs,
//! a spec from `engine::spec::build`, the `muelle-monitor` binary started
//! through `engine::monitor::spawn`.
//!
//! Root only; skipped with the reason printed otherwise, or without
//! /bin/busybox. `harness = false`: the containers run one after the other
//! and the shared cgroup parent is removed at the end.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use engine::config::{ContainerConfig, ImageSource};
use engine::monitor::{ExitRecord, Job, JobAttach, MonitorError, MonitorHandle, spawn};
use engine::spec::{ResolvedMounts, build};
use oci_spec::image::ImageConfiguration;

mod support;

use support::{BUSYBOX, cgroup_dirs, make_rootfs, remove_default_cgroup_parents, unique_id};

fn main() {
    if !nix::unistd::geteuid().is_root() {
        println!("monitor: skipped: running containers needs root");
        return;
    }
    if !Path::new(BUSYBOX).exists() {
        println!("monitor: skipped: {BUSYBOX} is missing (apt-get install busybox-static)");
        return;
    }
    // MUELLE_MONITOR may name another build (a release one, to measure).
    if std::env::var_os(engine::monitor::BINARY_ENV).is_none() {
        // SAFETY: single-threaded still; nothing reads the environment meanwhile.
        unsafe {
            std::env::set_var(
                engine::monitor::BINARY_ENV,
                env!("CARGO_BIN_EXE_muelle-monitor"),
            )
        };
    }
    println!("monitor: binary {}", engine::monitor::binary().display());
    let work = tempfile::Builder::new()
        .prefix("muelle-monitor-test")
        .tempdir()
        .expect("work folder");
    let rootfs = work.path().join("rootfs");
    make_rootfs(&rootfs, &["sh", "sleep", "true", "printf", "echo"]);

    exit_status_and_logs(work.path());
    streams_that_end_before_the_reexec(work.path());
    killed_init_and_rss(work.path());
    sigterm_reaches_init(work.path());
    privileged_runs_sealed(work.path());
    create_error_comes_back(work.path());
    handover_calls_the_exit_command_off_only_when_done(work.path());
    remove_default_cgroup_parents();
    println!("monitor: ok");
}

/// `sh -c 'echo out; echo err >&2; exit 3'`: status 3, both lines logged
/// with their streams; the monitor is detached and leaves nothing.
fn exit_status_and_logs(work: &Path) {
    let ct = Container::new(work, &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    let handle = spawn(&ct.job, &[]).unwrap_or_else(|e| panic!("spawn: {e}"));
    let exit = ct.wait_exit(&handle);
    assert_eq!(exit.exit_code, 3, "{exit:?}");
    assert!(!exit.oom_killed);
    let log = std::fs::read_to_string(&ct.job.log_path).expect("log");
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let find = |text: &str| {
        entries
            .iter()
            .find(|e| e["log"] == text)
            .unwrap_or_else(|| panic!("{text:?} not logged:\n{log}"))
    };
    assert_eq!(find("out\n")["stream"], "stdout", "{log}");
    assert_eq!(find("err\n")["stream"], "stderr", "{log}");
    let time = find("out\n")["time"].as_str().expect("time").to_string();
    assert!(time.ends_with('Z') && time.len() == 30, "{time}");
    assert_eq!(entries.len(), 2, "{log}");
    ct.assert_gone(&handle);
}

/// stdout closed and a line half written before the monitor re-executes
/// (it serves its first moments in the first stage): the second stage
/// goes on without the ended stream, and the half line is logged.
fn streams_that_end_before_the_reexec(work: &Path) {
    let ct = Container::new(
        work,
        &[
            "sh",
            "-c",
            "printf half >&2; exec >&-; sleep 0.3; echo rest >&2; exit 4",
        ],
    );
    let handle = spawn(&ct.job, &[]).unwrap_or_else(|e| panic!("spawn: {e}"));
    let exit = ct.wait_exit(&handle);
    assert_eq!(exit.exit_code, 4, "{exit:?}");
    let log = std::fs::read_to_string(&ct.job.log_path).expect("log");
    assert!(log.contains(r#""log":"half""#), "{log}");
    assert!(log.contains(r#""log":"rest\n""#), "{log}");
    ct.assert_gone(&handle);
}

/// `sleep 100`, init killed with SIGKILL: status 137. Prints the monitor's
/// resident size while the container runs.
fn killed_init_and_rss(work: &Path) {
    let ct = Container::new(work, &["sleep", "100"]);
    let handle = spawn(&ct.job, &[]).unwrap_or_else(|e| panic!("spawn: {e}"));
    // Not our child: another session, reparented away from us.
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", handle.pid)).expect("stat");
    let fields: Vec<&str> = stat.rsplit_once(") ").expect("stat").1.split(' ').collect();
    let (ppid, sid): (i32, i32) = (fields[1].parse().unwrap(), fields[3].parse().unwrap());
    assert_ne!(ppid, std::process::id() as i32, "the monitor is our child");
    let our_sid = nix::unistd::getsid(None).expect("getsid").as_raw();
    assert_ne!(sid, our_sid, "the monitor is in our session");
    // The init is the monitor's child.
    let init_stat =
        std::fs::read_to_string(format!("/proc/{}/stat", handle.init_pid)).expect("init stat");
    let init_ppid: i32 = init_stat
        .rsplit_once(") ")
        .expect("stat")
        .1
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(init_ppid, handle.pid, "init's parent");
    std::thread::sleep(Duration::from_millis(200));
    let status = std::fs::read_to_string(format!("/proc/{}/status", handle.pid)).expect("status");
    for line in status.lines().filter(|l| {
        l.starts_with("VmRSS")
            || l.starts_with("RssAnon")
            || l.starts_with("RssFile")
            || l.starts_with("RssShmem")
    }) {
        println!(
            "monitor: idle monitor {}",
            line.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
    if std::env::var_os("MUELLE_MONITOR_SMAPS").is_some() {
        print_smaps(handle.pid);
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(handle.init_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill init");
    let exit = ct.wait_exit(&handle);
    assert_eq!(exit.exit_code, 137, "{exit:?}");
    ct.assert_gone(&handle);
}

/// SIGTERM to the monitor goes on to init (here a shell that traps it);
/// the monitor outlives it and records its status.
fn sigterm_reaches_init(work: &Path) {
    let ct = Container::new(
        work,
        &[
            "sh",
            "-c",
            "trap 'exit 143' TERM; echo ready; sleep 100 & wait",
        ],
    );
    let handle = spawn(&ct.job, &[]).unwrap_or_else(|e| panic!("spawn: {e}"));
    // The trap is set once "ready" is logged (pid 1 ignores SIGTERM without it).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&ct.job.log_path)
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(Instant::now() < deadline, "the container never got ready");
        std::thread::sleep(Duration::from_millis(10));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(handle.pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM to the monitor");
    let exit = ct.wait_exit(&handle);
    assert_eq!(exit.exit_code, 143, "{exit:?}");
    ct.assert_gone(&handle);
}

/// A container that holds CAP_SYS_PTRACE: the monitor first re-runs from
/// a sealed copy of itself (CVE-2019-5736), keeping its job.
fn privileged_runs_sealed(work: &Path) {
    let ct = Container::with(work, &["sh", "-c", "echo sealed; exit 5"], true);
    let handle = spawn(&ct.job, &[]).unwrap_or_else(|e| panic!("spawn: {e}"));
    let exit = ct.wait_exit(&handle);
    assert_eq!(exit.exit_code, 5, "{exit:?}");
    let log = std::fs::read_to_string(&ct.job.log_path).expect("log");
    assert!(log.contains("\"sealed\\n\""), "{log}");
    ct.assert_gone(&handle);
}

/// A bundle without a rootfs: spawn returns create's one-line error, and
/// nothing is left.
fn create_error_comes_back(work: &Path) {
    let ct = Container::new(work, &["true"]);
    let mut job = ct.job.clone();
    let empty = work.join("no-rootfs-bundle");
    std::fs::create_dir_all(&empty).expect("bundle");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ct.job.bundle.join("config.json")).expect("spec"))
            .expect("json");
    spec["root"]["path"] = "missing".into();
    std::fs::write(empty.join("config.json"), spec.to_string()).expect("config.json");
    job.bundle = empty;
    match spawn(&job, &[]) {
        Err(MonitorError::Container(reason)) => {
            assert!(!reason.contains('\n'), "{reason}");
            assert!(reason.contains("rootfs"), "{reason}");
            println!("monitor: create error reported: {reason}");
        }
        other => panic!("want a create error, got {other:?}"),
    }
    assert!(
        !job.state_root.join(&job.id).exists(),
        "state folder left behind"
    );
    assert!(!job.exit_path.exists());
}

/// `run --rm`'s handover: the caller hears `exit` and then `released`
/// (by then the exit file is written); with its `done` the exit command
/// does not run, and when it goes without the word, it does.
fn handover_calls_the_exit_command_off_only_when_done(work: &Path) {
    for done in [true, false] {
        let ct = Container::new(work, &["true"]);
        let marker = work.join(format!("exit-command-ran-{done}"));
        // One descriptor each: the monitor owns (and closes) both.
        let null = || {
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .expect("/dev/null")
        };
        let (out, err) = (null(), null());
        let (mut ours, theirs) = UnixStream::pair().expect("socketpair");
        let mut job = ct.job.clone();
        job.exit_command = vec![
            "/bin/busybox".into(),
            "touch".into(),
            marker.display().to_string(),
        ];
        job.handover = true;
        job.attach = Some(JobAttach {
            stdin: None,
            stdout: out.as_raw_fd(),
            stderr: err.as_raw_fd(),
            control: theirs.as_raw_fd(),
        });
        let fds = job.attach.map(|a| a.fds()).unwrap_or_default();
        let handle = spawn(&job, &fds).unwrap_or_else(|e| panic!("spawn: {e}"));
        drop((out, err, theirs));
        let mut said = String::new();
        let mut buf = [0u8; 64];
        while !said.contains("released\n") {
            let n = ours.read(&mut buf).expect("control socket");
            assert!(n > 0, "the monitor went after {said:?}");
            said.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        assert!(said.starts_with("exit 0\n"), "{said:?}");
        assert_eq!(
            ExitRecord::read(&job.exit_path)
                .expect("exit file")
                .exit_code,
            0
        );
        if done {
            ours.write_all(b"done\n").expect("done");
        }
        drop(ours);
        ct.assert_gone(&handle);
        if done {
            assert!(!marker.exists(), "the exit command ran after done");
        } else {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !marker.exists() {
                assert!(Instant::now() < deadline, "the exit command did not run");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

struct Container {
    job: Job,
    _state: tempfile::TempDir,
}

impl Container {
    fn new(work: &Path, cmd: &[&str]) -> Container {
        Self::with(work, cmd, false)
    }

    fn with(work: &Path, cmd: &[&str], privileged: bool) -> Container {
        let id = unique_id("e5");
        let bundle = work.join(format!("bundle-{id}"));
        std::fs::create_dir_all(&bundle).expect("bundle");
        std::os::unix::fs::symlink(work.join("rootfs"), bundle.join("rootfs"))
            .expect("rootfs link");
        let mut config = ContainerConfig::new(ImageSource {
            id: image::Digest::of_bytes(b"monitor"),
            reference: "localhost/busybox".into(),
        });
        config.cmd = Some(cmd.iter().map(|s| s.to_string()).collect());
        config.privileged = privileged;
        let image: ImageConfiguration = serde_json::from_value(serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": []}
        }))
        .expect("image config");
        let spec = build(
            &config,
            &image,
            &work.join("rootfs"),
            &ResolvedMounts::default(),
            &id,
        )
        .expect("spec");
        spec.save(bundle.join("config.json")).expect("config.json");
        let state = tempfile::Builder::new()
            .prefix("muelle-monitor-state")
            .tempdir()
            .expect("state root");
        Container {
            job: Job {
                id: id.clone(),
                bundle: bundle.clone(),
                state_root: state.path().to_path_buf(),
                log_path: bundle.join("ct.log"),
                exit_path: bundle.join("exit.json"),
                monitor_path: None,
                detach: true,
                log_max_size: engine::monitor::DEFAULT_LOG_MAX,
                open_stdin: false,
                exit_command: Vec::new(),
                attach: None,
                attach_socket: None,
                handover: false,
                facts: None,
                trash: None,
                hold: Vec::new(),
            },
            _state: state,
        }
    }

    fn wait_exit(&self, handle: &MonitorHandle) -> ExitRecord {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(exit) = ExitRecord::read(&self.job.exit_path) {
                return exit;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.job.log_path).unwrap_or_default();
                panic!("no exit file from monitor {handle:?}; log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The monitor and init are gone, and with them the runtime state and
    /// the container's cgroups.
    fn assert_gone(&self, handle: &MonitorHandle) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while [handle.pid, handle.init_pid].iter().any(|p| alive(*p)) {
            assert!(
                Instant::now() < deadline,
                "monitor or init still alive: {handle:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            !self.job.state_root.join(&self.job.id).exists(),
            "state folder left behind"
        );
        assert_eq!(
            cgroup_dirs(&self.job.id),
            Vec::<PathBuf>::new(),
            "cgroups left behind"
        );
        let tmp = format!("{}.tmp", self.job.exit_path.display());
        assert!(!Path::new(&tmp).exists());
    }
}

/// Each mapping's resident size (MUELLE_MONITOR_SMAPS=1, to see where
/// the monitor's memory goes).
fn print_smaps(pid: i32) {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut mapping = "";
    for line in smaps.lines() {
        if line.contains('-') && !line.starts_with(char::is_uppercase) {
            mapping = line;
        } else if let Some(rss) = line.strip_prefix("Rss:")
            && rss.trim() != "0 kB"
        {
            println!("monitor: smaps {} {mapping}", rss.trim());
        }
    }
}

/// Alive and not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}
