//! exec, top, pause/unpause and stats on real containers of the host's
//! busybox: what a docker user types and sees, and that nothing is left
//! on the host afterwards.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::{IMAGE, Instance, code, instance, read_pty_until, stderr, stdout, wait_until};

/// A detached `sleep` container named `name`, with `flags` before the
/// image; its full id.
fn sleeper(mu: &Instance, name: &str, flags: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend(flags);
    args.extend([IMAGE, "sleep", "300"]);
    mu.ok(&args).trim().to_owned()
}

#[test]
fn exec_passes_output_and_the_exit_status_on() {
    let Some(mu) = instance() else { return };
    sleeper(&mu, "ct", &[]);
    let out = mu.muelle(&["exec", "ct", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");
    assert_eq!(code(&out), 3);
    // `container exec` is the same verb; the process is in the
    // container's pid namespace (a small pid) and has its host name.
    let out = mu.ok(&["container", "exec", "ct", "sh", "-c", "echo $$; hostname"]);
    let (pid, hostname) = out.trim().split_once('\n').expect("two lines");
    let pid: u32 = pid.parse().expect("a pid");
    assert!((2..100).contains(&pid), "{out}");
    assert_eq!(hostname, mu.ok(&["ps", "-q"]).trim());
    mu.remove_all_and_check();
}

#[test]
fn exec_inherits_the_containers_env_user_and_workdir_and_overrides_them() {
    let Some(mu) = instance() else { return };
    let id = sleeper(
        &mu,
        "ct",
        &[
            "-e",
            "FOO=container",
            "-e",
            "MUELLE_TEST_KEEP=1",
            "-w",
            "/tmp",
            "-u",
            "nobody",
        ],
    );
    let out = mu.ok(&["exec", "ct", "sh", "-c", "env; id -u; pwd"]);
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        "FOO=container",
        "MUELLE_TEST_KEEP=1",
        "HOME=/",
        &format!("HOSTNAME={}", &id[..12]),
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ] {
        assert!(lines.contains(&want), "{want} in {out}");
    }
    assert!(!out.contains("TERM="), "no terminal, no TERM: {out}");
    assert_eq!(lines[lines.len() - 2..], ["65534", "/tmp"], "{out}");

    let env_file = mu.root().join("exec.env");
    std::fs::write(&env_file, "# a comment\nFROM_FILE=yes\n").expect("env file");
    let out = mu.ok(&[
        "exec",
        "-e",
        "FOO=exec",
        "-e",
        "MUELLE_TEST_KEEP",
        "--env-file",
        env_file.to_str().expect("utf-8"),
        "-u",
        "root",
        "-w",
        "/etc",
        "ct",
        "sh",
        "-c",
        "env; id -u; pwd",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"FOO=exec"), "{out}");
    assert!(lines.contains(&"FROM_FILE=yes"), "{out}");
    assert!(lines.contains(&"HOME=/root"), "root's home: {out}");
    assert!(
        !out.contains("MUELLE_TEST_KEEP="),
        "a bare KEY unsets it: {out}"
    );
    assert_eq!(lines[lines.len() - 2..], ["0", "/etc"], "{out}");
    mu.remove_all_and_check();
}

#[test]
fn exec_failures_have_dockers_codes_and_words() {
    let Some(mu) = instance() else { return };
    let id = sleeper(&mu, "ct", &[]);
    let out = mu.muelle(&["exec", "ct", "nope"]);
    assert_eq!(code(&out), 127);
    assert_eq!(
        stderr(&out),
        "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nope\": executable file not found in $PATH: unknown\n"
    );
    let out = mu.muelle(&["exec", "ct", "/etc/image-file"]);
    assert_eq!(code(&out), 126, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("permission denied"),
        "{}",
        stderr(&out)
    );
    let out = mu.muelle(&["exec", "-u", "postgres", "ct", "true"]);
    assert_eq!(code(&out), 126, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unable to find user postgres"),
        "{}",
        stderr(&out)
    );
    let out = mu.muelle(&["exec", "nosuch", "true"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "Error response from daemon: No such container: nosuch\n"
    );

    mu.ok(&["stop", "-t", "0", "ct"]);
    let out = mu.muelle(&["exec", "ct", "true"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        format!("Error response from daemon: container {id} is not running\n")
    );
    mu.ok(&["create", "--name", "fresh", IMAGE]);
    let out = mu.muelle(&["exec", "fresh", "true"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
    mu.remove_all_and_check();
}

#[test]
fn exec_i_forwards_stdin_and_without_it_the_process_reads_nothing() {
    let Some(mu) = instance() else { return };
    sleeper(&mu, "ct", &[]);
    let out = mu.with_stdin(&["exec", "-i", "ct", "wc", "-c"], b"twelve bytes");
    assert_eq!(stdout(&out).trim(), "12", "{}", stderr(&out));
    assert!(out.status.success());
    let out = mu.with_stdin(&["exec", "ct", "wc", "-c"], b"not for the container");
    assert_eq!(stdout(&out).trim(), "0", "{}", stderr(&out));
    mu.remove_all_and_check();
}

#[test]
fn exec_d_returns_at_once_and_top_shows_the_process() {
    let Some(mu) = instance() else { return };
    sleeper(&mu, "ct", &[]);
    let started = Instant::now();
    // The output is not the caller's: muelle returns without waiting.
    let out = mu.muelle(&["exec", "-d", "ct", "sh", "-c", "echo lost; exec sleep 123"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert!(started.elapsed() < Duration::from_secs(5));

    wait_until(|| mu.ok(&["top", "ct"]).contains("sleep 123"));
    let top = mu.ok(&["top", "ct"]);
    let lines: Vec<&str> = top.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "{top}"
    );
    assert!(
        lines[0].starts_with(&format!("UID{}PID", " ".repeat(17))),
        "{top}"
    );
    assert_eq!(lines.len(), 3, "init and the exec'd process only: {top}");
    assert!(lines[1].ends_with("sleep 300"), "{top}");

    let top = mu.ok(&["top", "ct", "-o", "pid,comm"]);
    let rows: Vec<Vec<&str>> = top
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["PID", "COMMAND"], "{top}");
    assert_eq!(rows.len(), 3, "{top}");
    assert!(rows[1..].iter().all(|r| r[1] == "sleep"), "{top}");

    let out = mu.muelle(&["top", "ct", "-o", "user=PID"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "Error response from daemon: specifying \"user=PID\" is not allowed\n"
    );
    mu.ok(&["stop", "-t", "0", "ct"]);
    let out = mu.muelle(&["top", "ct"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
    mu.remove_all_and_check();
}

#[test]
fn exec_it_is_a_terminal_of_the_callers_size() {
    let Some(mu) = instance() else { return };
    sleeper(&mu, "ct", &[]);
    let (mut child, mut master) = mu.spawn_on_pty(&["exec", "-it", "ct", "sh"], 33, 99);
    let mut seen = String::new();
    master
        .write_all(b"tty; stty size; echo term=$TERM sum=$((6*7))\n")
        .expect("type");
    read_pty_until(&mut master, &mut seen, "sum=42");
    assert!(
        seen.contains("/dev/pts/"),
        "a terminal of its own: {seen:?}"
    );
    assert!(seen.contains("33 99"), "the caller's window size: {seen:?}");
    assert!(seen.contains("term=xterm"), "{seen:?}");
    master.write_all(b"exit 3\n").expect("type");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "exec -it did not end: {seen:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(3));
    mu.remove_all_and_check();
}

/// The counter a paused container's loop keeps, read through its init's
/// root (an exec cannot run in a paused container).
fn counter(mu: &Instance, name: &str) -> u64 {
    let pid = mu.ok(&["inspect", "--format", "{{.State.Pid}}", name]);
    let path = format!("/proc/{}/root/tmp/count", pid.trim());
    std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn pause_freezes_the_container_until_unpause() {
    let Some(mu) = instance() else { return };
    mu.ok(&[
        "run",
        "-d",
        "--name",
        "counter",
        IMAGE,
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done",
    ]);
    wait_until(|| counter(&mu, "counter") > 0);
    let id = mu.ok(&["inspect", "--format", "{{.Id}}", "counter"]);
    let id = id.trim();
    assert_eq!(mu.ok(&["pause", "counter"]), "counter\n");
    let ps = mu.ok(&["ps", "--format", "{{.Names}} {{.Status}} {{.State}}"]);
    assert!(
        ps.starts_with("counter Up ") && ps.ends_with(" (Paused) paused\n"),
        "{ps}"
    );
    assert_eq!(
        mu.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.Paused}}",
            "counter"
        ]),
        "paused true\n"
    );
    let frozen_at = counter(&mu, "counter");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        counter(&mu, "counter"),
        frozen_at,
        "a paused loop does not count"
    );

    let out = mu.muelle(&["exec", "counter", "true"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "Error response from daemon: Container counter is paused, unpause the container before exec\n"
    );
    let out = mu.muelle(&["pause", "counter"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        format!("Error response from daemon: Container {id} is already paused\n")
    );
    // top works on a paused container, as docker's.
    let top = mu.ok(&["top", "counter"]);
    assert!(top.contains("while true"), "{top}");

    assert_eq!(mu.ok(&["unpause", "counter"]), "counter\n");
    wait_until(|| counter(&mu, "counter") > frozen_at);
    assert_eq!(
        mu.ok(&["inspect", "--format", "{{.State.Status}}", "counter"]),
        "running\n"
    );
    let out = mu.muelle(&["unpause", "counter"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        format!("Error response from daemon: Container {id} is not paused\n")
    );
    assert_eq!(mu.ok(&["exec", "counter", "true"]), "");
    mu.remove_all_and_check();
}

#[test]
fn a_paused_container_can_be_stopped_killed_and_removed() {
    let Some(mu) = instance() else { return };
    // A shell as PID 1 that exits on TERM.
    mu.ok(&[
        "run",
        "-d",
        "--name",
        "polite",
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    sleeper(&mu, "killed", &[]);
    sleeper(&mu, "removed", &[]);
    for name in ["polite", "killed", "removed"] {
        mu.ok(&["pause", name]);
    }
    let started = Instant::now();
    assert_eq!(mu.ok(&["stop", "-t", "20", "polite"]), "polite\n");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "TERM landed once thawed, no need for the timeout"
    );
    assert_eq!(
        mu.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            "polite"
        ]),
        "exited 0\n"
    );
    mu.ok(&["kill", "killed"]);
    wait_until(|| mu.ok(&["inspect", "--format", "{{.State.Status}}", "killed"]) == "exited\n");
    assert_eq!(
        mu.ok(&["inspect", "--format", "{{.State.ExitCode}}", "killed"]),
        "137\n"
    );
    assert_eq!(mu.ok(&["rm", "-f", "removed"]), "removed\n");
    let out = mu.muelle(&["pause", "polite"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
    mu.remove_all_and_check();
}

#[test]
fn stats_no_stream_shows_a_row_per_container_and_json() {
    let Some(mu) = instance() else { return };
    let id = sleeper(&mu, "ct", &["--memory", "64m", "--network", "none"]);
    mu.ok(&["create", "--name", "idle", IMAGE]);
    let out = mu.ok(&["stats", "--no-stream"]);
    let lines: Vec<&str> = out.lines().collect();
    let header: Vec<&str> = lines[0]
        .split("  ")
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS"
        ],
        "{out}"
    );
    assert_eq!(lines.len(), 2, "running containers only: {out}");
    assert!(
        lines[1].starts_with(&format!("{}   ct ", &id[..12])),
        "{out}"
    );
    assert!(lines[1].contains(" / 64MiB "), "the memory limit: {out}");
    assert!(lines[1].trim_end().ends_with(" 1"), "one process: {out}");

    let out = mu.ok(&["stats", "--no-stream", "--format", "json", "ct", "idle"]);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object a line"))
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    let ct = &rows[0];
    assert_eq!(ct["Container"], "ct");
    assert_eq!(ct["ID"], &id[..12]);
    assert_eq!(ct["Name"], "ct");
    assert_eq!(ct["PIDs"], "1");
    assert_eq!(ct["NetIO"], "0B / 0B", "network none: loopback only");
    let cpu = ct["CPUPerc"].as_str().expect("string");
    assert!(
        cpu.ends_with('%') && cpu[..cpu.len() - 1].parse::<f64>().is_ok(),
        "{cpu}"
    );
    let mem = ct["MemUsage"].as_str().expect("string");
    assert!(mem.ends_with(" / 64MiB") && !mem.starts_with("0B"), "{mem}");
    assert_eq!(
        rows[1],
        serde_json::json!({
            "BlockIO": "0B / 0B",
            "CPUPerc": "0.00%",
            "Container": "idle",
            "ID": rows[1]["ID"],
            "MemPerc": "0.00%",
            "MemUsage": "0B / 0B",
            "Name": "idle",
            "NetIO": "0B / 0B",
            "PIDs": "0",
        }),
        "a container that does not run shows zeros"
    );

    let out = mu.ok(&[
        "stats",
        "--no-stream",
        "-a",
        "--format",
        "{{.Name}}:{{.PIDs}}",
    ]);
    let mut names: Vec<&str> = out.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["ct:1", "idle:0"]);
    let out = mu.muelle(&["stats", "--no-stream", "nosuch"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "Error response from daemon: No such container: nosuch\n"
    );
    mu.remove_all_and_check();
}

#[test]
fn stats_counts_a_busy_process_as_cpu() {
    let Some(mu) = instance() else { return };
    sleeper(&mu, "busy", &[]);
    mu.ok(&["exec", "-d", "busy", "sh", "-c", "while :; do :; done"]);
    let out = mu.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.CPUPerc}} {{.PIDs}}",
        "busy",
    ]);
    let (cpu, pids) = out.trim().split_once(' ').expect("two fields");
    let cpu: f64 = cpu.trim_end_matches('%').parse().expect("a percentage");
    // One CPU kept busy on a shared machine: well above nothing.
    assert!(cpu > 20.0, "{out}");
    assert_eq!(pids, "2");
    mu.remove_all_and_check();
}
