//! Restart policies, `--volumes-from`, `--init`, and faults: a container's
//! process or the `muelle` command killed with SIGKILL at any moment
//! leaves a store that `ps` reads and `rm -f` empties, with nothing left
//! on the host.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{IMAGE, Instance, code, instance, stderr, stdout};

/// Polls `done` for up to 20 s.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn inspect(mu: &Instance, format: &str, container: &str) -> String {
    mu.ok(&["inspect", "--format", format, container])
        .trim()
        .to_owned()
}

/// No cgroup of the container `id` is left in any hierarchy.
fn assert_no_cgroup(id: &str) {
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
        .expect("cgroupfs")
        .flatten()
    {
        let dir = hierarchy.path().join("muelle").join(id);
        assert!(!dir.exists(), "cgroup left behind: {}", dir.display());
    }
}

#[test]
fn on_failure_restarts_up_to_its_count() {
    let Some(mu) = instance() else { return };
    mu.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        IMAGE,
        "sh",
        "-c",
        "echo ran; exit 3",
    ]);
    let summary = "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}";
    wait_for("two restarts", || {
        inspect(&mu, summary, "flaky") == "exited 3 2"
    });
    // The back-off after the second restart would be 400 ms: no third.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(inspect(&mu, summary, "flaky"), "exited 3 2");
    assert_eq!(mu.ok(&["logs", "flaky"]), "ran\nran\nran\n");
    assert_eq!(
        inspect(&mu, "{{.HostConfig.RestartPolicy.Name}}", "flaky"),
        "on-failure"
    );
    mu.remove_all_and_check();
}

#[test]
fn always_restarts_until_stopped_and_a_start_counts_anew() {
    let Some(mu) = instance() else { return };
    mu.ok(&[
        "run",
        "-d",
        "--name",
        "phoenix",
        "--restart",
        "always",
        IMAGE,
        "sh",
        "-c",
        "sleep 0.1",
    ]);
    wait_for("two restarts", || {
        inspect(&mu, "{{.RestartCount}}", "phoenix")
            .parse::<u32>()
            .is_ok_and(|n| n >= 2)
    });
    mu.ok(&["stop", "-t", "1", "phoenix"]);
    let stopped = inspect(&mu, "{{.State.Status}} {{.RestartCount}}", "phoenix");
    assert!(stopped.starts_with("exited "), "{stopped}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        inspect(&mu, "{{.State.Status}} {{.RestartCount}}", "phoenix"),
        stopped,
        "a stopped container stays stopped"
    );
    mu.ok(&["start", "phoenix"]);
    let count = inspect(&mu, "{{.RestartCount}}", "phoenix");
    assert!(
        count == "0" || count == "1",
        "start resets the count: {count}"
    );
    mu.ok(&["rm", "-f", "phoenix"]);
    mu.remove_all_and_check();
}

#[test]
fn restart_and_rm_conflict() {
    let Some(mu) = instance() else { return };
    let out = mu.muelle(&["run", "--rm", "--restart", "always", IMAGE, "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("Conflicting options: --restart and --rm"),
        "{}",
        stderr(&out)
    );
    mu.remove_all_and_check();
}

#[test]
fn volumes_from_shares_another_containers_volumes() {
    let Some(mu) = instance() else { return };
    mu.ok(&[
        "run",
        "--name",
        "source",
        "-v",
        "shared-data:/data",
        "-v",
        "/scratch",
        IMAGE,
        "sh",
        "-c",
        "echo named > /data/f; echo anonymous > /scratch/g",
    ]);
    assert_eq!(
        mu.ok(&[
            "run",
            "--rm",
            "--volumes-from",
            "source",
            IMAGE,
            "cat",
            "/data/f",
            "/scratch/g"
        ]),
        "named\nanonymous\n"
    );
    let out = mu.muelle(&[
        "run",
        "--rm",
        "--volumes-from",
        "source:ro",
        IMAGE,
        "touch",
        "/data/x",
    ]);
    assert_eq!(code(&out), 1, "read-only: {}", stderr(&out));
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );

    let out = mu.muelle(&["create", "--volumes-from", "nowhere", IMAGE]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("No such container: nowhere"),
        "{}",
        stderr(&out)
    );
    let out = mu.muelle(&["create", "--volumes-from", "source:rx", IMAGE]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("invalid mode: rx"),
        "{}",
        stderr(&out)
    );

    // The source's anonymous volume is shared, so rm -v of the source
    // keeps it while another container uses it.
    mu.ok(&[
        "create",
        "--name",
        "user",
        "--volumes-from",
        "source",
        IMAGE,
    ]);
    mu.ok(&["rm", "-v", "source"]);
    assert_eq!(
        mu.ok(&["start", "-a", "user"]),
        "",
        "the user still starts with the shared volumes"
    );
    mu.remove_all_and_check();
    mu.ok(&["volume", "prune", "-f", "-a"]);
}

#[test]
fn init_runs_as_pid_1_and_passes_the_exit_status_on() {
    let Some(mu) = instance() else { return };
    let out = mu.muelle(&[
        "run",
        "--rm",
        "--init",
        IMAGE,
        "sh",
        "-c",
        "cat /proc/1/comm; echo $$; exit 5",
    ]);
    if stderr(&out).contains("needs a static init binary") {
        eprintln!("skipped: no static init on the host (apt-get install tini or catatonit)");
        return;
    }
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"muelle-init"), "{text}");
    assert_ne!(lines.get(1), Some(&"1"), "the command is not PID 1: {text}");
    mu.remove_all_and_check();
}

#[test]
fn a_killed_container_process_exits_137_and_rm_cleans_up() {
    let Some(mu) = instance() else { return };
    let id = mu.ok(&["run", "-d", IMAGE, "sleep", "60"]);
    let id = id.trim().to_owned();
    let pid: i32 = inspect(&mu, "{{.State.Pid}}", &id).parse().expect("pid");
    assert!(pid > 0);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill init");
    wait_for("the exit", || {
        inspect(&mu, "{{.State.Status}} {{.State.ExitCode}}", &id) == "exited 137"
    });
    mu.ok(&["rm", "-f", &id]);
    assert_no_cgroup(&id);
    mu.remove_all_and_check();
}

/// SIGKILL to `muelle run` after `delay`, for several delays spanning
/// create, start and the attached wait.
#[test]
fn a_killed_cli_at_any_moment_leaves_a_store_rm_f_empties() {
    let Some(mu) = instance() else { return };
    for (i, delay_ms) in [0u64, 15, 30, 60, 100, 200, 400].into_iter().enumerate() {
        let volume = format!("vol{i}:/data");
        let mut child = mu
            .command(&[
                "run",
                "--name",
                &format!("victim{i}"),
                "-v",
                &volume,
                IMAGE,
                "sh",
                "-c",
                "echo hello > /data/f; sleep 5",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        // The store is readable at once, whatever the moment was.
        let out = mu.muelle(&["ps", "-a"]);
        assert!(
            out.status.success(),
            "after {delay_ms} ms: {}",
            stderr(&out)
        );
    }
    let ids = mu.ok(&["ps", "-aq", "--no-trunc"]);
    mu.remove_all_and_check();
    for id in ids.lines() {
        assert_no_cgroup(id);
    }
    // Every volume is free again: none is left in use by a half-made run.
    for i in 0..7 {
        let name = format!("vol{i}");
        let out = mu.muelle(&["volume", "rm", &name]);
        let err = stderr(&out);
        assert!(
            out.status.success() || err.contains("no such volume"),
            "{name}: {err}"
        );
    }
}

/// `run --rm` takes its container's exit over from the monitor; killed
/// before it could, the monitor's exit command removes the container.
#[test]
fn a_killed_run_rm_still_leaves_no_container() {
    let Some(mu) = instance() else { return };
    let mut child = mu
        .command(&["run", "--rm", "--name", "handed", IMAGE, "sleep", "0.5"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    wait_for("the container to run", || {
        let out = mu.muelle(&["inspect", "--format", "{{.State.Status}}", "handed"]);
        stdout(&out).trim() == "running"
    });
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    wait_for("the container to be removed", || {
        mu.ok(&["ps", "-aq"]).trim().is_empty()
    });
    mu.remove_all_and_check();
}

#[test]
fn kill_ends_a_crash_loop_waiting_out_its_back_off() {
    let Some(mu) = instance() else { return };
    mu.ok(&[
        "run",
        "-d",
        "--name",
        "crashy",
        "--restart",
        "always",
        IMAGE,
        "sh",
        "-c",
        "exit 1",
    ]);
    // From the fourth restart on, the back-off is 800 ms or more.
    wait_for("a long back-off", || {
        let state = inspect(&mu, "{{.State.Status}} {{.RestartCount}}", "crashy");
        let mut words = state.split(' ');
        words.next() == Some("restarting")
            && words
                .next()
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n >= 3)
    });
    mu.ok(&["kill", "crashy"]);
    let killed = inspect(&mu, "{{.State.Status}} {{.RestartCount}}", "crashy");
    assert!(killed.starts_with("exited "), "{killed}");
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(
        inspect(&mu, "{{.State.Status}} {{.RestartCount}}", "crashy"),
        killed,
        "no restart after kill"
    );
    mu.remove_all_and_check();
}
