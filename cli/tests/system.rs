//! The system verbs end to end with real containers: `version`, `info`,
//! `system df`, `system prune`, `rmi` of an image containers use, the
//! top-level `inspect` across kinds, `completion`, and progress bars that
//! only a terminal sees.

mod support;

use std::io::Read as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{IMAGE, Instance, code, instance, stderr, stdout};

/// The image's full id (`sha256:...`).
fn image_id(mu: &Instance) -> String {
    mu.ok(&["inspect", "--type", "image", "--format", "{{.Id}}", IMAGE])
        .trim()
        .to_owned()
}

/// A running container, one that exited after writing 100 kB to its own
/// layer, and one only created.
fn three_containers(mu: &Instance) {
    mu.ok(&["run", "-d", "--name", "up", IMAGE, "sleep", "300"]);
    mu.ok(&[
        "run",
        "--name",
        "wrote",
        IMAGE,
        "sh",
        "-c",
        "head -c 100000 /dev/zero > /blob",
    ]);
    mu.ok(&["create", "--name", "fresh", IMAGE, "true"]);
}

#[test]
fn version_prints_dockers_layout_json_and_templates() {
    let mu = Instance::new();
    let version = env!("CARGO_PKG_VERSION");
    let text = mu.ok(&["version"]);
    assert!(text.starts_with("Client: muelle\n"), "{text}");
    assert!(
        text.contains(&format!(" Version:           {version}\n")),
        "{text}"
    );
    assert!(text.contains(" Rust version:      1."), "{text}");
    assert!(
        text.contains("\nServer: none: muelle has no daemon"),
        "{text}"
    );
    assert!(text.contains(" Engine:\n"), "{text}");
    assert!(text.contains(" runtime-core:\n"), "{text}");

    let json: serde_json::Value =
        serde_json::from_str(&mu.ok(&["version", "--format", "json"])).expect("json");
    assert_eq!(json["Client"]["Version"], version);
    assert_eq!(json["Server"]["Version"], version);
    assert_eq!(json["Server"]["Components"][0]["Name"], "Engine");
    assert_eq!(
        mu.ok(&["version", "--format", "{{.Server.Version}}"]),
        format!("{version}\n")
    );
    // docker's exit code for a template that does not parse.
    let out = mu.muelle(&["version", "--format", "{{.Client"]);
    assert_eq!(code(&out), 64, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("template parsing error"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn info_counts_containers_by_state() {
    let Some(mu) = instance() else { return };
    three_containers(&mu);
    let text = mu.ok(&["info"]);
    assert!(
        text.contains(" Containers: 3\n  Running: 1\n  Paused: 0\n  Stopped: 2\n Images: 1\n"),
        "{text}"
    );
    for line in [
        " Cgroup Driver: cgroupfs\n",
        " Kernel Version: ",
        " Operating System: ",
        " CPUs: ",
        " Total Memory: ",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    assert!(
        text.contains(&format!(" Docker Root Dir: {}\n", mu.root().display())),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&mu.ok(&["info", "--format", "json"])).expect("json");
    assert_eq!(json["Containers"], 3);
    assert_eq!(json["ContainersRunning"], 1);
    assert_eq!(json["ContainersStopped"], 2);
    assert!(json["MemTotal"].as_u64().is_some_and(|m| m > 0), "{json}");
    assert_eq!(
        mu.ok(&["system", "info", "--format", "{{.Containers}}/{{.Images}}"]),
        "3/1\n"
    );
    mu.remove_all_and_check();
}

#[test]
fn system_df_shows_images_containers_volumes_and_build_cache() {
    let Some(mu) = instance() else { return };
    three_containers(&mu);
    mu.ok(&["volume", "create", "spare"]);
    let text = mu.ok(&["system", "df"]);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| {
            l.split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        lines[0],
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        "{text}"
    );
    assert_eq!(&lines[1][..3], ["Images", "1", "1"], "{text}");
    // Every layer is used by a container: nothing to reclaim.
    assert_eq!(lines[1][4], "0B (0%)", "{text}");
    assert_eq!(&lines[2][..3], ["Containers", "3", "1"], "{text}");
    // Only the stopped container wrote: its 100 kB are all reclaimable.
    assert!(lines[2][3].starts_with("10"), "{text}");
    assert!(lines[2][4].ends_with("(100%)"), "{text}");
    assert_eq!(&lines[3][..3], ["Local Volumes", "1", "0"], "{text}");
    assert_eq!(lines[4], ["Build Cache", "0", "0", "0B", "0B"], "{text}");

    let json = mu.ok(&["system", "df", "--format", "json"]);
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(rows.len(), 4, "{json}");
    assert_eq!(rows[1]["Type"], "Containers");
    assert_eq!(rows[1]["TotalCount"], "3");
    assert_eq!(
        mu.ok(&["system", "df", "--format", "{{.Type}}={{.Active}}"]),
        "Images=1\nContainers=1\nLocal Volumes=0\nBuild Cache=0\n"
    );

    let verbose = mu.ok(&["system", "df", "-v"]);
    for section in [
        "Images space usage:",
        "Containers space usage:",
        "Local Volumes space usage:",
        "Build cache usage: 0B",
    ] {
        assert!(verbose.contains(section), "{section} in {verbose}");
    }
    let wrote = verbose
        .lines()
        .find(|l| l.ends_with("wrote"))
        .expect("the container's row");
    assert!(wrote.contains("100kB"), "{verbose}");
    assert!(
        verbose.lines().any(|l| l.starts_with("spare ")),
        "{verbose}"
    );
    mu.remove_all_and_check();
}

#[test]
fn system_prune_removes_stopped_containers_and_dangling_images_only() {
    let Some(mu) = instance() else { return };
    three_containers(&mu);
    // A dangling image, and an anonymous volume whose container exits.
    let tar = support::busybox_rootfs_tar().expect("busybox");
    let dangling = stdout(&mu.with_stdin(&["import", "-"], &tar));
    let dangling = dangling.trim();
    mu.ok(&["run", "--name", "anon", "-v", "/scratch", IMAGE, "true"]);
    let anonymous = mu.ok(&["volume", "ls", "-q"]);
    assert_eq!(anonymous.lines().count(), 1, "{anonymous}");
    mu.ok(&["volume", "create", "named"]);

    // Declined: nothing goes.
    let out = mu.with_stdin(&["system", "prune"], b"n\n");
    assert!(out.status.success());
    assert!(
        stderr(&out).starts_with(
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n  - unused build cache\n\nAre you sure you want to continue? [y/N] "
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(mu.ok(&["ps", "-aq"]).lines().count(), 4);

    let out = mu.with_stdin(&["system", "prune"], b"y\n");
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.starts_with("Deleted Containers:\n"), "{text}");
    assert!(
        text.contains(&format!("Deleted Images:\ndeleted: {dangling}\n")),
        "{text}"
    );
    assert!(text.contains("\nTotal reclaimed space: "), "{text}");
    assert!(!text.contains("Deleted Volumes"), "{text}");
    // The running container stays, and so does its image.
    assert_eq!(
        mu.ok(&["ps", "-a", "--format", "{{.Names}}"]),
        "up\n",
        "{text}"
    );
    assert_eq!(mu.ok(&["images", "-q"]).lines().count(), 1);
    // Volumes only with --volumes, and then only the anonymous one.
    assert_eq!(mu.ok(&["volume", "ls", "-q"]).lines().count(), 2);
    let text = mu.ok(&["system", "prune", "-f", "--volumes"]);
    assert!(
        text.starts_with(&format!("Deleted Volumes:\n{anonymous}\n")),
        "{text}"
    );
    assert_eq!(mu.ok(&["volume", "ls", "-q"]), "named\n");

    // -a keeps the image the running container uses.
    let text = mu.ok(&["system", "prune", "-a", "-f"]);
    assert_eq!(text, "Total reclaimed space: 0B\n");
    assert_eq!(mu.ok(&["images", "-q"]).lines().count(), 1);
    let out = mu.muelle(&["system", "prune", "-f", "--volumes", "--filter", "until=1h"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains(r#"The "until" filter is not supported with "--volumes""#),
        "{}",
        stderr(&out)
    );
    mu.ok(&["volume", "rm", "named"]);
    mu.remove_all_and_check();
}

#[test]
fn rmi_refuses_an_image_a_container_uses() {
    let Some(mu) = instance() else { return };
    let id = image_id(&mu);
    let short = &id["sha256:".len().."sha256:".len() + 12];
    let container = mu.ok(&["run", "-d", IMAGE, "sleep", "300"]);
    let container = &container.trim()[..12];

    let out = mu.muelle(&["rmi", IMAGE]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        format!(
            "Error: conflict: unable to remove repository reference \"{IMAGE}\" (must force) - container {container} is using its referenced image {short}\n"
        )
    );
    // Even forced, not while it runs.
    let out = mu.muelle(&["rmi", "-f", short]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        format!(
            "Error: conflict: unable to delete {short} (cannot be forced) - image is being used by running container {container}\n"
        )
    );
    mu.ok(&["stop", "-t", "0", container]);
    let out = mu.muelle(&["rmi", short]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        format!(
            "Error: conflict: unable to delete {short} (must be forced) - image is being used by stopped container {container}\n"
        )
    );
    // image prune -a keeps what a container uses.
    let text = mu.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(text, "Total reclaimed space: 0B\n");
    assert_eq!(image_id(&mu), id);
    mu.remove_all_and_check();
    // Once the container is gone, the image goes.
    let text = mu.ok(&["rmi", IMAGE]);
    assert_eq!(text, format!("Untagged: {IMAGE}:latest\nDeleted: {id}\n"));
}

#[test]
fn inspect_looks_in_containers_then_images_then_volumes() {
    let Some(mu) = instance() else { return };
    mu.ok(&["create", "--name", "box", IMAGE]);
    mu.ok(&["volume", "create", "vol"]);
    assert_eq!(
        mu.ok(&["inspect", "--format", "{{.Name}}", "box"]),
        "/box\n"
    );
    assert_eq!(
        mu.ok(&["inspect", "--format", "{{index .RepoTags 0}}", IMAGE]),
        format!("{IMAGE}:latest\n")
    );
    assert_eq!(
        mu.ok(&["inspect", "--format", "{{.Name}} {{.Driver}}", "vol"]),
        "vol local\n"
    );
    // All three kinds in one JSON array, in the order asked.
    let json: serde_json::Value =
        serde_json::from_str(&mu.ok(&["inspect", "vol", "box", IMAGE])).expect("json");
    assert_eq!(json[0]["Name"], "vol");
    assert_eq!(json[1]["Name"], "/box");
    assert!(json[2]["RepoTags"].is_array(), "{json}");

    // --size adds the container's own bytes and its whole filesystem's.
    let sizes = mu.ok(&[
        "inspect",
        "-s",
        "--format",
        "{{.SizeRw}} {{.SizeRootFs}}",
        "box",
    ]);
    let sizes: Vec<u64> = sizes
        .split_whitespace()
        .map(|n| n.parse().expect("a number"))
        .collect();
    assert!(sizes[1] > sizes[0], "{sizes:?}");

    let out = mu.muelle(&["inspect", "nothing"]);
    assert_eq!(code(&out), 1);
    assert_eq!(stdout(&out), "[]\n");
    assert_eq!(stderr(&out), "Error: No such object: nothing\n");
    // What is found is printed even when another name is not.
    let out = mu.muelle(&["inspect", "--format", "{{.Name}}", "box", "nothing"]);
    assert_eq!(code(&out), 1);
    assert_eq!(stdout(&out), "/box\n");

    let out = mu.muelle(&["inspect", "--type", "image", "box"]);
    assert_eq!(code(&out), 1);
    assert_eq!(stderr(&out), "Error: No such image: box\n");
    let out = mu.muelle(&["inspect", "--type", "network", "box"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("unknown type: \"network\""),
        "{}",
        stderr(&out)
    );
    mu.ok(&["volume", "rm", "vol"]);
    mu.remove_all_and_check();
}

#[test]
fn completion_prints_a_script_for_each_shell() {
    let mu = Instance::new();
    let bash = mu.ok(&["completion", "bash"]);
    assert!(bash.contains("_muelle()"), "{bash}");
    assert!(bash.contains("complete -F _muelle"), "{bash}");
    assert!(mu.ok(&["completion", "zsh"]).starts_with("#compdef muelle"));
    assert!(
        mu.ok(&["completion", "fish"])
            .contains("complete -c muelle")
    );
    let out = mu.muelle(&["completion", "tcsh"]);
    assert_eq!(code(&out), 125);
}

#[test]
fn man_pages_are_written_for_every_visible_command() {
    let mu = Instance::new();
    let dir = mu.root().join("man");
    mu.ok(&["__man", dir.to_str().expect("utf-8")]);
    for page in [
        "muelle.1",
        "muelle-run.1",
        "muelle-container-run.1",
        "muelle-system-prune.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).expect(page);
        assert!(text.starts_with(".ie \\n(.g .ds Aq"), "{page}: {text}");
    }
    assert!(!dir.join("muelle-container-cleanup.1").exists());
    assert!(!dir.join("muelle-__man.1").exists());
}

#[test]
fn load_shows_progress_only_on_a_terminal() {
    let Some(mu) = instance() else { return };
    let archive = mu.root().join("busybox-save.tar");
    let archive = archive.to_str().expect("utf-8");
    mu.ok(&["save", "-o", archive, IMAGE]);

    // Piped: the Loaded line and nothing else.
    let other = Instance::new();
    let out = other.muelle(&["load", "-i", archive]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("Loaded image: {IMAGE}:latest\n"));
    assert_eq!(stderr(&out), "", "no progress on a pipe");

    // On a terminal the bar is drawn on stderr, and cleared.
    let third = Instance::new();
    let seen = on_terminal_stderr(&third, &["load", "-i", archive]);
    assert!(seen.contains("Loading"), "{seen:?}");
    let quiet = Instance::new();
    let seen = on_terminal_stderr(&quiet, &["load", "-q", "-i", archive]);
    assert!(!seen.contains("Loading"), "{seen:?}");
}

/// Runs muelle with its stderr on a new pty (stdout piped), and returns
/// what the terminal received.
fn on_terminal_stderr(mu: &Instance, args: &[&str]) -> String {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let mut child = mu
        .command(args)
        // As a terminal emulator sets it (a dumb terminal gets no bar).
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(pty.slave)
        .spawn()
        .expect("spawn muelle");
    let mut master = std::fs::File::from(pty.master);
    // The child holds the only slave: reading ends (EIO) once it exits.
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "muelle {args:?} hangs");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "muelle {args:?}: {status}");
    reader.join().expect("reader")
}

#[test]
fn system_check_finds_and_removes_what_a_crash_left_on_the_network() {
    let Some(mu) = support::instance() else {
        return;
    };
    mu.ok(&["network", "create", "crashy"]);
    let id = mu.ok(&[
        "run",
        "-d",
        "--network",
        "crashy",
        support::IMAGE,
        "sleep",
        "60",
    ]);
    let id = id.trim();
    // The monitor and the container die at once, and no command saw it.
    let init: i32 = mu
        .ok(&["inspect", "--format", "{{.State.Pid}}", id])
        .trim()
        .parse()
        .expect("pid");
    for pid in mu.monitors().into_iter().chain([init]) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    support::wait_until(|| mu.monitors().is_empty());
    // And leftovers no record names at all.
    let made = mu
        .host_command("ip")
        .args([
            "link",
            "add",
            "mu0123456789a",
            "type",
            "veth",
            "peer",
            "name",
            "mutmp",
        ])
        .status()
        .expect("ip");
    assert!(made.success());

    let out = mu.command(&["system", "check"]).output().expect("check");
    let found = support::stdout(&out);
    assert_eq!(support::code(&out), 1, "{found}{}", support::stderr(&out));
    assert!(found.contains("network crashy: address 10."), "{found}");
    assert!(found.contains("which no longer runs"), "{found}");
    assert!(
        found.contains("veth mu0123456789a belongs to no running container"),
        "{found}"
    );
    assert!(found.contains(&format!("veth mu{}", &id[..10])), "{found}");

    let repaired = mu.ok(&["system", "check", "--repair"]);
    assert!(repaired.contains(": repaired"), "{repaired}");
    assert_eq!(mu.ok(&["system", "check"]), "no problems found\n");
    let links = mu
        .host_command("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip");
    let links = support::stdout(&links);
    assert!(
        !links.contains("mu0123456789a") && !links.contains(&id[..10]),
        "{links}"
    );
    mu.remove_all_and_check();
    mu.ok(&["network", "rm", "crashy"]);
}

#[test]
fn system_prune_removes_networks_no_running_container_is_on() {
    let Some(mu) = support::instance() else {
        return;
    };
    mu.ok(&["network", "create", "unused"]);
    mu.ok(&["network", "create", "used"]);
    mu.ok(&[
        "run",
        "-d",
        "--network",
        "used",
        support::IMAGE,
        "sleep",
        "60",
    ]);
    let out = mu.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted Networks:\nunused\n"), "{out}");
    let names = mu.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(names, "muelle\nused\n");
    mu.remove_all_and_check();
    mu.ok(&["network", "rm", "used"]);
}
