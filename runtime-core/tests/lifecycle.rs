//! The container lifecycle through the muelle-runtime binary, on real
//! namespaces and cgroups: exit codes, signals, states, limits, exec.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{Bundle, Runtime, assert_gone, stderr, stdout};

#[test]
fn run_returns_the_container_exit_status() {
    require_root!();
    let rt = Runtime::new();
    for (script, code) in [("exit 0", 0), ("exit 3", 3)] {
        let bundle = Bundle::new(&["sh", "-c", script]);
        let (out, id) = rt.run_bundle(&bundle, "exit");
        assert_eq!(out.status.code(), Some(code), "{script}: {}", stderr(&out));
        assert_gone(&rt, &id);
    }
}

#[test]
fn a_container_killed_by_a_signal_exits_128_plus_n() {
    require_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let id = rt.id("signal");
    let mut run = rt
        .command()
        .args(["run", "--bundle", bundle.path().to_str().unwrap(), &id])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("spawn run");
    wait_for(|| rt.run(&["state", &id]).status.success() && rt.status(&id) == "running");
    // PID 1 ignores signals it has no handler for, from inside; SIGKILL
    // from the runtime's side still ends it.
    let out = rt.run(&["kill", &id, "KILL"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status = run.wait().expect("run exits");
    assert_eq!(status.code(), Some(137));
    assert_gone(&rt, &id);
}

#[test]
fn the_process_is_pid_1_with_the_spec_hostname_and_own_stdio() {
    require_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&[
        "sh",
        "-c",
        "echo pid=$$; hostname; ls /proc/self/fd | wc -l",
    ]);
    bundle.edit(|s| s["hostname"] = json!("dock-7"));
    let (out, id) = rt.run_bundle(&bundle, "pid1");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "pid=1");
    assert_eq!(lines[1], "dock-7");
    // 0, 1, 2 and the descriptor ls uses to read the folder: nothing of
    // the runtime's leaks in (CVE-2024-21626).
    assert_eq!(lines[2].trim(), "4", "unexpected inherited descriptors");
    assert_gone(&rt, &id);
}

#[test]
fn create_start_kill_delete_walks_the_oci_states() {
    require_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let id = rt.id("states");
    let pid_file = bundle.path().join("pid");
    let out = rt.run(&[
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    let state = rt.state(&id);
    assert_eq!(state["status"], "created");
    let pid = state["pid"].as_i64().expect("pid");
    assert_eq!(
        std::fs::read_to_string(&pid_file).expect("pid file"),
        pid.to_string()
    );
    assert_eq!(
        state["bundle"],
        bundle.path().canonicalize().unwrap().to_str().unwrap()
    );

    let out = rt.run(&["start", &id]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    assert_eq!(rt.status(&id), "running");
    let again = rt.run(&["start", &id]);
    assert!(!again.status.success(), "a second start must fail");

    let busy = rt.run(&["delete", &id]);
    assert!(
        !busy.status.success(),
        "delete of a running container needs --force"
    );
    assert!(stderr(&busy).contains("running"), "{}", stderr(&busy));

    let out = rt.run(&["kill", &id, "KILL"]);
    assert!(out.status.success(), "kill: {}", stderr(&out));
    wait_for(|| rt.status(&id) == "stopped");
    let state = rt.state(&id);
    assert_eq!(state["pid"], 0);

    let out = rt.run(&["delete", &id]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert_gone(&rt, &id);
    let missing = rt.run(&["state", &id]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("does not exist"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn pause_and_resume_freeze_the_container() {
    require_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let id = rt.id("pause");
    let out = rt.run(&[
        "run",
        "-d",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(rt.run(&["pause", &id]).status.success());
    assert_eq!(rt.status(&id), "paused");
    assert!(rt.run(&["resume", &id]).status.success());
    assert_eq!(rt.status(&id), "running");
    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert_gone(&rt, &id);
}

#[test]
fn exec_runs_inside_the_container() {
    require_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["sleep", "60"]);
    bundle.edit(|s| s["hostname"] = json!("inside"));
    let id = rt.id("exec");
    let out = rt.run(&[
        "run",
        "-d",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = rt.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "hostname; cat /proc/1/cmdline | tr '\\0' ' '; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_eq!(stdout(&out), "inside\nsleep 60 ");

    let missing = rt.run(&["exec", &id, "no-such-command"]);
    assert_ne!(missing.status.code(), Some(0));
    assert!(
        stderr(&missing).contains("executable file not found"),
        "{}",
        stderr(&missing)
    );

    let ps = rt.run(&["ps", "--format", "json", &id]);
    let pids: Vec<i64> = serde_json::from_slice(&ps.stdout).expect("ps json");
    assert_eq!(pids.len(), 1, "only init is left after exec: {pids:?}");
    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert_gone(&rt, &id);
}

#[test]
fn memory_limit_kills_an_over_limit_allocation() {
    require_root!();
    let rt = Runtime::new();
    // tail keeps the whole "line" of an endless stream of zeros in memory.
    let mut bundle = Bundle::new(&["sh", "-c", "tail /dev/zero"]);
    bundle.edit(|s| {
        s["linux"]["resources"]["memory"] =
            json!({ "limit": 32 * 1024 * 1024, "swap": 32 * 1024 * 1024 });
    });
    let id = rt.id("oom");
    let started = Instant::now();
    let out = rt.run(&["run", "--bundle", bundle.path().to_str().unwrap(), &id]);
    // sh waits for tail; tail is OOM-killed; sh exits 128+9.
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_gone(&rt, &id);
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    require_root!();
    let rt = Runtime::new();
    // The inner shell forks until the limit stops it (and exits on the
    // failed fork); the outer one reads the count with a builtin, no fork.
    let script = "sh -c 'i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done'; \
                  read n < /sys/fs/cgroup/pids/pids.current; echo current=$n";
    let mut bundle = Bundle::new(&["sh", "-c", script]);
    bundle.edit(|s| s["linux"]["resources"]["pids"] = json!({ "limit": 10 }));
    let (out, id) = rt.run_bundle(&bundle, "pids");
    assert!(
        stderr(&out).contains("fork"),
        "forks beyond the limit must fail: {}",
        stderr(&out)
    );
    let current: u32 = stdout(&out)
        .trim()
        .strip_prefix("current=")
        .and_then(|n| n.parse().ok())
        .expect("pids.current");
    assert!(current <= 10, "pids.current {current} above the limit");
    assert_gone(&rt, &id);
}

#[test]
fn a_missing_command_fails_create_and_leaves_nothing() {
    require_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["no-such-binary"]);
    let id = rt.id("enoent");
    let out = rt.run(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("exec: \"no-such-binary\": executable file not found in $PATH"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert_gone(&rt, &id);
}

#[test]
fn a_cgroup_value_the_kernel_refuses_fails_create_and_leaves_nothing() {
    require_root!();
    let rt = Runtime::new();
    // A value the kernel refuses, after the state folder and the cgroup
    // were made: everything comes down again.
    let mut bundle = Bundle::new(&["true"]);
    bundle.edit(|s| s["linux"]["resources"]["cpu"] = serde_json::json!({ "cpus": "4095" }));
    let id = rt.id("badcpus");
    let out = rt.run(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("4095"), "{err}");
    assert_gone(&rt, &id);
    // Nor a process: init, forked from the runtime, has its command line.
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        assert!(
            !cmdline.contains(&id),
            "process {:?} of {id} left behind",
            entry.file_name()
        );
    }
}

#[test]
fn bad_input_gets_one_clear_line() {
    require_root!();
    let rt = Runtime::new();
    let out = rt.run(&["create", "--bundle", "/nonexistent-bundle", "ok-id"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent-bundle"),
        "{}",
        stderr(&out)
    );

    let bundle = Bundle::new(&["true"]);
    let out = rt.run(&[
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        "../escape",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid container id"),
        "{}",
        stderr(&out)
    );
    assert!(!rt.root.path().parent().unwrap().join("escape").exists());

    std::fs::write(bundle.path().join("config.json"), "{ not json").unwrap();
    let out = rt.run(&["create", "--bundle", bundle.path().to_str().unwrap(), "x1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("config.json"), "{}", stderr(&out));
    assert!(!rt.root.path().join("x1").exists());
}

#[test]
fn a_mount_through_an_image_symlink_stays_in_the_rootfs() {
    require_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["sh", "-c", "test -d /etc/muelle-evil && echo inside"]);
    // The image's /etc is a symlink to the host's /etc.
    let etc = bundle.rootfs().join("etc");
    std::fs::remove_dir_all(&etc).unwrap();
    std::os::unix::fs::symlink("/etc", &etc).unwrap();
    std::fs::create_dir_all(bundle.rootfs().join("real-etc")).unwrap();
    bundle.edit(|s| {
        s["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/etc/muelle-evil", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]
        }));
    });
    let (out, id) = rt.run_bundle(&bundle, "symlink");
    assert!(
        !std::path::Path::new("/etc/muelle-evil").exists(),
        "a folder landed on the host's /etc"
    );
    // Either refused, or mounted inside the rootfs: never on the host.
    if out.status.success() {
        assert_eq!(stdout(&out), "inside\n");
    }
    assert_gone(&rt, &id);
}

#[test]
fn hooks_run_at_their_points_with_the_state() {
    require_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["true"]);
    let log = bundle.path().join("hooks.log");
    let hook_to = |name: &str, log: &str| json!({ "path": "/bin/sh", "args": ["sh", "-c", format!("echo {name} $(cat) >> {log}")] });
    let hook = |name: &str| hook_to(name, log.to_str().unwrap());
    bundle.edit(|s| {
        s["hooks"] = json!({
            "createRuntime": [hook("createRuntime")],
            "createContainer": [hook("createContainer")],
            // Runs inside the container, after pivot_root: its paths are
            // the container's.
            "startContainer": [hook_to("startContainer", "/hooks.log")],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")],
        });
        // The hooks that run inside the container need /bin/sh there.
        s["root"]["readonly"] = json!(false);
    });
    let (out, id) = rt.run_bundle(&bundle, "hooks");
    assert!(out.status.success(), "{}", stderr(&out));
    let host_side = std::fs::read_to_string(&log).expect("hooks ran");
    let inside =
        std::fs::read_to_string(bundle.rootfs().join("hooks.log")).expect("startContainer ran");
    // In the order they ran: startContainer comes after createContainer.
    let mut lines: Vec<&str> = host_side.lines().collect();
    lines.insert(2, inside.trim_end());
    let text = lines.join("\n");
    let order: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        order,
        [
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
    // Every hook but poststop sees init's pid (poststop: 0, it is gone).
    let pids: Vec<i64> = text
        .lines()
        .map(|l| {
            let state: serde_json::Value =
                serde_json::from_str(l.split_once(' ').unwrap().1).unwrap();
            state["pid"].as_i64().unwrap()
        })
        .collect();
    assert!(pids[0] > 0, "{text}");
    assert!(pids[..4].iter().all(|p| *p == pids[0]), "{pids:?}");
    assert!(text.contains(&format!("\"id\":\"{id}\"")), "{text}");
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("\"status\":\"creating\""),
        "{text}"
    );
}

#[test]
fn user_namespace_maps_root_to_an_unprivileged_host_id() {
    require_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["sh", "-c", "id -u; cat /proc/self/uid_map"]);
    bundle.edit(|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "type": "user" }));
        s["linux"]["uidMappings"] = json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
        s["linux"]["gidMappings"] = json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    });
    // The rootfs must be usable by the mapped root.
    let rootfs = bundle.rootfs();
    let chown = std::process::Command::new("chown")
        .args(["-R", "200000:200000"])
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(chown.success());
    let (out, id) = rt.run_bundle(&bundle, "userns");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("0"));
    let map: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(map, ["0", "200000", "65536"]);
    assert_gone(&rt, &id);
}

#[test]
fn joining_another_containers_network_namespace_by_path() {
    require_root!();
    let rt = Runtime::new();
    let first = Bundle::new(&["sleep", "60"]);
    let a = rt.id("netns-a");
    let out = rt.run(&["run", "-d", "--bundle", first.path().to_str().unwrap(), &a]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = rt.state(&a)["pid"].as_i64().unwrap();
    let their_ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();

    let mut second = Bundle::new(&["readlink", "/proc/self/ns/net"]);
    second.edit(|s| {
        for ns in s["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = json!(format!("/proc/{pid}/ns/net"));
            }
        }
    });
    let b = rt.id("netns-b");
    let out = rt.run(&["run", "--bundle", second.path().to_str().unwrap(), &b]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), their_ns.to_str().unwrap());
    assert!(rt.run(&["delete", "--force", &a]).status.success());
    assert_gone(&rt, &a);
    assert_gone(&rt, &b);
}

fn wait_for(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not met within 10s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn run_in_the_foreground_gives_the_container_a_terminal() {
    require_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["sh", "-c", "tty; stty size; exit 4"]);
    bundle.edit(|s| s["process"]["terminal"] = json!(true));
    let id = rt.id("tty");
    // script(1) gives the runtime a terminal of its own, as a user's shell.
    let line = format!(
        "stty rows 33 cols 77; {} --root {} run --bundle {} {id}",
        support::RUNTIME,
        rt.root.path().display(),
        bundle.path().display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(
        text.contains("/dev/pts/0"),
        "no pty in the container: {text}"
    );
    assert!(
        text.contains("33 77"),
        "the pty has the caller's size: {text}"
    );
    assert_gone(&rt, &id);
}
