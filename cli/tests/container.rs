//! The container lifecycle end to end, with real containers of the host's
//! busybox: what a docker user types, what they see, and that nothing is
//! left on the host afterwards.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{IMAGE, code, instance, read_pty_until, stderr, stdout, wait_until};

#[test]
fn run_shows_output_and_passes_the_exit_status_on() {
    let Some(mu) = instance() else { return };
    let out = mu.muelle(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");
    assert_eq!(code(&out), 3);
    assert_eq!(mu.ok(&["ps", "-aq"]), "", "--rm removed the container");
    mu.remove_all_and_check();
}

#[test]
fn the_container_is_isolated_and_named_by_its_id() {
    let Some(mu) = instance() else { return };
    let out = mu.ok(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo pid=$$; hostname; cat /etc/image-file; id -u",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pid=1");
    assert_eq!(lines[1].len(), 12, "hostname is the short id: {out}");
    assert_eq!(lines[2], "from the image");
    assert_eq!(lines[3], "0");
    mu.remove_all_and_check();
}

#[test]
fn detached_containers_are_listed_logged_stopped_and_removed() {
    let Some(mu) = instance() else { return };
    let id = mu.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        IMAGE,
        "sh",
        "-c",
        "echo hello; echo oops >&2; exec sleep 60",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "run -d prints the id: {id}");
    let ps = mu.ok(&["ps"]);
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    assert!(
        ps.contains(&id[..12]) && ps.contains("web") && ps.contains("Up "),
        "{ps}"
    );
    assert_eq!(
        mu.ok(&["inspect", "--format", "{{.State.Status}} {{.Name}}", "web"]),
        "running /web\n"
    );
    wait_until(|| mu.ok(&["logs", "web"]).contains("hello"));
    let logs = mu.muelle(&["logs", "web"]);
    assert_eq!(stdout(&logs), "hello\n");
    assert_eq!(stderr(&logs), "oops\n");

    let started = Instant::now();
    assert_eq!(mu.ok(&["stop", "-t", "1", "web"]), "web\n");
    assert!(started.elapsed() < Duration::from_secs(8));
    // sleep as PID 1 ignores SIGTERM: it was killed after the timeout.
    assert_eq!(
        mu.ok(&["inspect", "--format", "{{.State.ExitCode}}", &id[..8]]),
        "137\n"
    );
    let ps = mu.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (137)"), "{ps}");
    assert_eq!(mu.ok(&["ps", "-q"]), "", "ps without -a shows running ones");

    // Started again, it runs with the same layer.
    assert_eq!(mu.ok(&["start", "web"]), "web\n");
    assert_eq!(mu.ok(&["ps", "-q", "--no-trunc"]).trim(), id);
    let out = mu.muelle(&["rm", "web"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("container is running"),
        "{}",
        stderr(&out)
    );
    assert_eq!(mu.ok(&["rm", "-f", "web"]), "web\n");
    assert_eq!(mu.ok(&["ps", "-aq"]), "");
    mu.remove_all_and_check();
}

#[test]
fn docker_exit_codes_for_muelle_failures() {
    let Some(mu) = instance() else { return };
    let out = mu.muelle(&["run", "--rm", "nosuch/image"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("No such image"), "{}", stderr(&out));

    let out = mu.muelle(&["run", "--rm", IMAGE, "no-such-command"]);
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );

    let out = mu.muelle(&["run", "--rm", IMAGE, "/etc/image-file"]);
    assert_eq!(code(&out), 126, "{}", stderr(&out));

    let out = mu.muelle(&["run", "--bogus-flag", IMAGE]);
    assert_eq!(code(&out), 125);
    let out = mu.muelle(&["run", "-d", "--restart", "sometimes", IMAGE, "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("invalid restart policy: unknown policy 'sometimes'"),
        "{}",
        stderr(&out)
    );

    mu.ok(&["create", "--name", "taken", IMAGE]);
    let out = mu.muelle(&["create", "--name", "taken", IMAGE]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("Conflict. The container name \"/taken\" is already in use"),
        "{}",
        stderr(&out)
    );
    let out = mu.muelle(&["create", "--name", "bad/name", IMAGE]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("Invalid container name"),
        "{}",
        stderr(&out)
    );

    let out = mu.muelle(&["stop", "nosuch"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("No such container: nosuch"),
        "{}",
        stderr(&out)
    );
    let out = mu.muelle(&["kill", "taken"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
    mu.remove_all_and_check();
}

#[test]
fn a_named_volume_outlives_its_containers() {
    let Some(mu) = instance() else { return };
    mu.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        IMAGE,
        "sh",
        "-c",
        "echo kept > /data/file",
    ]);
    assert_eq!(mu.ok(&["volume", "ls", "-q"]), "data\n");
    assert_eq!(
        mu.ok(&[
            "run",
            "--rm",
            "-v",
            "data:/data",
            IMAGE,
            "cat",
            "/data/file"
        ]),
        "kept\n"
    );
    // No container uses it now.
    assert_eq!(mu.ok(&["volume", "rm", "data"]), "data\n");
    mu.remove_all_and_check();
}

#[test]
fn a_volume_in_use_cannot_be_removed_and_rm_v_takes_anonymous_ones() {
    let Some(mu) = instance() else { return };
    mu.ok(&[
        "create", "--name", "user", "-v", "named:/a", "-v", "/b", IMAGE,
    ]);
    let volumes = mu.ok(&["volume", "ls", "-q"]);
    assert_eq!(volumes.lines().count(), 2, "{volumes}");
    let out = mu.muelle(&["volume", "rm", "named"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("volume is in use"),
        "{}",
        stderr(&out)
    );
    mu.ok(&["rm", "-v", "user"]);
    assert_eq!(
        mu.ok(&["volume", "ls", "-q"]),
        "named\n",
        "the named one stays"
    );
    mu.ok(&["volume", "rm", "named"]);
    mu.remove_all_and_check();
}

#[test]
fn interactive_stdin_reaches_the_container() {
    let Some(mu) = instance() else { return };
    let out = mu.with_stdin(&["run", "-i", "--rm", IMAGE, "wc", "-c"], b"twelve bytes");
    assert_eq!(stdout(&out).trim(), "12", "{}", stderr(&out));
    assert!(out.status.success());
    mu.remove_all_and_check();
}

/// A privileged container may ptrace its monitor: the monitor forked by
/// `run` hands such a job to the sealed monitor binary.
#[test]
fn privileged_run_goes_through_a_sealed_monitor() {
    let Some(mu) = instance() else { return };
    let out = mu.muelle(&[
        "run",
        "--rm",
        "--privileged",
        IMAGE,
        "sh",
        "-c",
        "echo in; exit 4",
    ]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert_eq!(stdout(&out), "in\n");
    let id = mu.ok(&["run", "-d", "--privileged", IMAGE, "sleep", "60"]);
    // Named so from its second stage on.
    wait_until(|| mu.monitors().len() == 1);
    let monitors = mu.monitors();
    assert_eq!(monitors.len(), 1, "one monitor: {monitors:?}");
    let exe = std::fs::read_link(format!("/proc/{}/exe", monitors[0])).expect("monitor exe");
    assert!(
        exe.to_string_lossy().starts_with("/memfd:"),
        "the monitor runs {}",
        exe.display()
    );
    mu.ok(&["rm", "-f", id.trim()]);
    mu.remove_all_and_check();
}

#[test]
fn a_killed_monitor_shows_the_container_exited_and_rm_cleans_up() {
    let Some(mu) = instance() else { return };
    let id = mu.ok(&["run", "-d", IMAGE, "sleep", "60"]);
    let id = id.trim();
    let monitors = mu.monitors();
    assert_eq!(monitors.len(), 1, "one monitor: {monitors:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitors[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the monitor");
    wait_until(|| mu.monitors().is_empty());
    assert_eq!(
        mu.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            id
        ]),
        "exited 255\n"
    );
    mu.ok(&["rm", id]);
    mu.remove_all_and_check();
}

#[test]
fn twenty_parallel_runs_all_succeed_and_leave_nothing() {
    let Some(mu) = instance() else { return };
    let children: Vec<_> = (0..20)
        .map(|i| {
            mu.command(&["run", "--rm", IMAGE, "echo", &format!("run {i}")])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "run {i}: {}", stderr(&out));
        assert_eq!(stdout(&out), format!("run {i}\n"));
    }
    wait_until(|| mu.ok(&["ps", "-aq"]).is_empty());
    mu.remove_all_and_check();
}

#[test]
fn wait_prints_the_exit_code() {
    let Some(mu) = instance() else { return };
    mu.ok(&[
        "run",
        "-d",
        "--name",
        "short",
        IMAGE,
        "sh",
        "-c",
        "sleep 0.3; exit 7",
    ]);
    assert_eq!(mu.ok(&["wait", "short"]), "7\n");
    let ps = mu.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps, "short exited\n");
    mu.remove_all_and_check();
}

/// Waits (10 s at most) for `child` to exit.
fn exit_of(child: &mut std::process::Child, seen: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "muelle did not leave: {seen:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_it_is_a_terminal_with_size_ctrl_c_and_detach_keys() {
    use std::io::Write;
    let Some(mu) = instance() else { return };
    let (mut child, mut master) =
        mu.spawn_on_pty(&["run", "-it", "--name", "term", IMAGE, "sh"], 33, 99);
    let mut seen = String::new();
    master
        .write_all(b"stty size; tty; echo sum=$((6*7))\n")
        .expect("type");
    read_pty_until(&mut master, &mut seen, "sum=42");
    assert!(seen.contains("33 99"), "the caller's window size: {seen:?}");
    assert!(
        seen.contains("/dev/pts/0"),
        "a terminal of its own: {seen:?}"
    );

    // ctrl-c reaches the container's foreground process, not muelle.
    master.write_all(b"sleep 30\n").expect("type");
    std::thread::sleep(Duration::from_millis(300));
    master.write_all(b"\x03echo after=$?\n").expect("type");
    read_pty_until(&mut master, &mut seen, "after=130");

    // ctrl-p ctrl-q: muelle leaves, the container runs on.
    master.write_all(b"\x10\x11").expect("detach");
    assert!(exit_of(&mut child, &seen).success(), "detaching exits 0");
    assert_eq!(
        mu.ok(&["inspect", "--format", "{{.State.Status}}", "term"]),
        "running\n"
    );

    // `attach` takes the terminal back, at its own size; the container's
    // exit is attach's.
    let (mut child, mut master) = mu.spawn_on_pty(&["attach", "term"], 20, 70);
    let mut seen = String::new();
    master
        .write_all(b"stty size; echo back=$((2+3))\n")
        .expect("type");
    read_pty_until(&mut master, &mut seen, "back=5");
    assert!(seen.contains("20 70"), "the attached window size: {seen:?}");
    master.write_all(b"exit 3\n").expect("type");
    assert_eq!(exit_of(&mut child, &seen).code(), Some(3));
    let out = mu.muelle(&["attach", "term"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("You cannot attach to a stopped container, start it first"),
        "{}",
        stderr(&out)
    );
    mu.ok(&["rm", "term"]);
    mu.remove_all_and_check();
}

#[test]
fn attach_joins_the_output_of_a_running_container() {
    let Some(mu) = instance() else { return };
    let signal = mu.root().join("signal");
    std::fs::create_dir(&signal).expect("mkdir");
    let bind = format!("{}:/signal", signal.display());
    mu.ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "-v",
        &bind,
        IMAGE,
        "sh",
        "-c",
        "while [ ! -e /signal/go ]; do sleep 0.05; done; echo tick; echo tock >&2; exit 6",
    ]);
    let child = mu
        .command(&["attach", "ticker"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn attach");
    // Once attach is in, the container goes on.
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(signal.join("go"), "").expect("touch");
    let out = child.wait_with_output().expect("attach");
    assert_eq!(stdout(&out), "tick\n");
    assert_eq!(stderr(&out), "tock\n");
    assert_eq!(code(&out), 6);
    mu.remove_all_and_check();
}

#[test]
fn ctrl_c_without_sig_proxy_leaves_the_container_running() {
    let Some(mu) = instance() else { return };
    mu.ok(&["run", "-d", "--name", "steady", IMAGE, "sleep", "60"]);
    let mut child = mu
        .command(&["attach", "--sig-proxy=false", "steady"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn attach");
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let status = exit_of(&mut child, "");
    assert!(status.success(), "attach leaves quietly: {status:?}");
    assert_eq!(
        mu.ok(&["inspect", "--format", "{{.State.Status}}", "steady"]),
        "running\n"
    );
    mu.remove_all_and_check();
}

#[test]
fn container_prune_takes_stopped_containers_by_filter_and_counts_their_space() {
    let Some(mu) = instance() else { return };
    mu.ok(&["run", "-d", "--name", "keep", IMAGE, "sleep", "60"]);
    mu.ok(&[
        "run",
        "--name",
        "labelled",
        "--label",
        "tier=scratch",
        IMAGE,
        "sh",
        "-c",
        "head -c 300000 /dev/zero > /big",
    ]);
    mu.ok(&["run", "--name", "plain", IMAGE, "true"]);
    let labelled = mu.ok(&["inspect", "--format", "{{.Id}}", "labelled"]);
    let out = mu.ok(&["container", "prune", "-f", "--filter", "label=tier=scratch"]);
    assert!(
        out.starts_with(&format!("Deleted Containers:\n{labelled}\n")),
        "{out}"
    );
    let total = out
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("Total reclaimed space: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(total.ends_with("kB") || total.ends_with("MB"), "{out}");
    assert_eq!(
        mu.ok(&["ps", "-a", "--format", "{{.Names}}"]),
        "plain\nkeep\n",
        "only the labelled container went"
    );
    mu.ok(&["container", "prune", "-f"]);
    assert_eq!(mu.ok(&["ps", "-a", "--format", "{{.Names}}"]), "keep\n");
    mu.remove_all_and_check();
}
