//! A container's files from the outside, end to end with real containers:
//! `cp` both ways (files, folders, `dir/.`, tar streams, volumes, running
//! and stopped containers), `export` read back by `import`, `diff`, and
//! `port`. The hostile cases are the point: a container's symlinks and a
//! user's tar must never make muelle read or write a host file.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{IMAGE, Instance, code, instance, stderr, stdout};

/// A host folder for a test's files, removed on drop.
fn host_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("muelle-cp-test")
        .tempdir()
        .expect("host folder")
}

fn text(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

/// A name nothing on the host has.
fn unique(what: &str) -> String {
    format!("muelle-cp-{what}-{}", std::process::id())
}

/// Runs a detached container that runs `script`, touches /ready and
/// sleeps; returns once /ready is there.
fn run_ready(mu: &Instance, name: &str, extra: &[&str], script: &str) {
    let script = format!("{script}\ntouch /ready; exec sleep 120");
    let mut args = vec!["run", "-d", "--name", name];
    args.extend(extra);
    args.extend([IMAGE, "sh", "-c", &script]);
    mu.ok(&args);
    let deadline = Instant::now() + Duration::from_secs(10);
    let ready = format!("{name}:/ready");
    while code(&mu.muelle(&["cp", &ready, "-"])) != 0 {
        assert!(Instant::now() < deadline, "{name} never got ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The entries of a tar stream: (name, uid, gid, data).
fn entries(tar: &[u8]) -> Vec<(String, u64, u64, Vec<u8>)> {
    use std::io::Read;
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .expect("a tar")
        .map(|e| {
            let mut e = e.expect("an entry");
            let name = e.path().expect("name").to_string_lossy().into_owned();
            let (uid, gid) = (
                e.header().uid().expect("uid"),
                e.header().gid().expect("gid"),
            );
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("data");
            (name, uid, gid, data)
        })
        .collect()
}

fn names(tar: &[u8]) -> Vec<String> {
    entries(tar).into_iter().map(|(name, ..)| name).collect()
}

/// `cp CONTAINER:PATH -`: the tar of a container path.
fn tar_of(mu: &Instance, source: &str) -> Vec<u8> {
    let out = mu.muelle(&["cp", source, "-"]);
    assert!(out.status.success(), "cp {source} -: {}", stderr(&out));
    out.stdout
}

/// The content of one file in a container, through `cp -`.
fn read_in(mu: &Instance, source: &str) -> String {
    let tar = tar_of(mu, source);
    let all = entries(&tar);
    assert_eq!(all.len(), 1, "{source} is one file: {:?}", names(&tar));
    String::from_utf8_lossy(&all[0].3).into_owned()
}

/// A tar of `(name, type, link, data)`; names go into the header raw, so
/// hostile ones (`../x`) can be written.
fn tar_with(items: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in items {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(if *kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        if *kind == tar::EntryType::Char {
            h.set_device_major(1).expect("major");
            h.set_device_minor(3).expect("minor");
        }
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, *data).expect("append");
    }
    b.into_inner().expect("tar")
}

#[test]
fn cp_copies_files_and_folders_out_as_docker_does() {
    let Some(mu) = instance() else { return };
    run_ready(
        &mu,
        "web",
        &[],
        "mkdir -p /srv/d/e; echo f > /srv/d/e/f; echo one > /srv/one; busybox ln -s /srv/one /srv/link",
    );
    let host = host_dir();
    let h = |p: &str| host.path().join(p);

    // A file to a new name, into a folder, and over a file.
    mu.ok(&["cp", "web:/srv/one", h("copy").to_str().expect("utf-8")]);
    assert_eq!(text(h("copy")), "one\n");
    let meta = std::fs::metadata(h("copy")).expect("copy");
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "the caller's");
    std::fs::create_dir(h("into")).expect("mkdir");
    mu.ok(&["cp", "web:srv/one", h("into").to_str().expect("utf-8")]);
    assert_eq!(text(h("into/one")), "one\n");
    std::fs::write(h("over"), "old").expect("write");
    mu.ok(&["cp", "web:/srv/one", h("over").to_str().expect("utf-8")]);
    assert_eq!(text(h("over")), "one\n");

    // A folder to a new name, into a folder, and only its content.
    mu.ok(&["cp", "web:/srv/d", h("new").to_str().expect("utf-8")]);
    assert_eq!(text(h("new/e/f")), "f\n");
    mu.ok(&["cp", "web:/srv/d", h("into").to_str().expect("utf-8")]);
    assert_eq!(text(h("into/d/e/f")), "f\n");
    std::fs::create_dir(h("content")).expect("mkdir");
    mu.ok(&["cp", "web:/srv/d/.", h("content").to_str().expect("utf-8")]);
    assert_eq!(text(h("content/e/f")), "f\n");

    // A symlink is copied as one; -L copies what it points at.
    mu.ok(&["cp", "web:/srv/link", h("link").to_str().expect("utf-8")]);
    assert_eq!(
        std::fs::read_link(h("link")).expect("a symlink"),
        Path::new("/srv/one")
    );
    mu.ok(&[
        "cp",
        "-L",
        "web:/srv/link",
        h("into").to_str().expect("utf-8"),
    ]);
    assert_eq!(text(h("into/link")), "one\n", "named after the link");

    // docker's refusals.
    let out = mu.muelle(&["cp", "web:/nope", h("x").to_str().expect("utf-8")]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "Error response from daemon: Could not find the file /nope in container web\n"
    );
    let out = mu.muelle(&["cp", "web:/srv/d", h("over").to_str().expect("utf-8")]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("cannot copy directory"),
        "{}",
        stderr(&out)
    );
    let missing = format!("{}/", h("missing").display());
    let out = mu.muelle(&["cp", "web:/srv/one", &missing]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("no such directory"),
        "{}",
        stderr(&out)
    );
    let out = mu.muelle(&["cp", "web:/a", "web:/b"]);
    assert!(
        stderr(&out).contains("copying between containers is not supported"),
        "{}",
        stderr(&out)
    );
    let out = mu.muelle(&["cp", "a", "b"]);
    assert!(
        stderr(&out).contains("must specify at least one container source"),
        "{}",
        stderr(&out)
    );

    // `-` streams a tar named after the source; `container cp` is the same verb.
    let tar = tar_of(&mu, "web:/srv/d");
    assert_eq!(names(&tar), ["d/", "d/e/", "d/e/f"]);
    let out = mu.muelle(&["container", "cp", "web:/srv/d/.", "-"]);
    assert_eq!(names(&out.stdout), ["./", "e/", "e/f"]);
    mu.remove_all_and_check();
}

#[test]
fn cp_copies_into_a_container_owned_by_root_unless_archive_mode() {
    let Some(mu) = instance() else { return };
    run_ready(&mu, "web", &[], "mkdir /srv");
    let host = host_dir();
    let h = |p: &str| host.path().join(p);
    std::fs::write(h("file"), "content\n").expect("write");
    std::os::unix::fs::chown(h("file"), Some(1234), Some(4321)).expect("chown");
    std::fs::create_dir_all(h("dir/sub")).expect("mkdir");
    std::fs::write(h("dir/sub/inner"), "inner\n").expect("write");

    let out = mu.muelle(&["cp", h("file").to_str().expect("utf-8"), "web:/srv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "no progress line without a terminal");
    let tar = tar_of(&mu, "web:/srv/file");
    assert_eq!(entries(&tar)[0].1..=entries(&tar)[0].2, 0..=0, "root's");

    mu.ok(&[
        "cp",
        "-a",
        h("file").to_str().expect("utf-8"),
        "web:/srv/kept",
    ]);
    let kept = entries(&tar_of(&mu, "web:/srv/kept"));
    assert_eq!((kept[0].1, kept[0].2), (1234, 4321), "-a keeps the ids");
    assert_eq!(kept[0].3, b"content\n");

    mu.ok(&["cp", h("dir").to_str().expect("utf-8"), "web:/srv"]);
    assert_eq!(read_in(&mu, "web:/srv/dir/sub/inner"), "inner\n");
    mu.ok(&["cp", h("dir").to_str().expect("utf-8"), "web:/srv/renamed"]);
    assert_eq!(read_in(&mu, "web:/srv/renamed/sub/inner"), "inner\n");
    mu.ok(&["cp", &format!("{}/.", h("dir/sub").display()), "web:/srv"]);
    assert_eq!(read_in(&mu, "web:/srv/inner"), "inner\n");

    let out = mu.muelle(&["cp", h("file").to_str().expect("utf-8"), "web:/nope/x"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "Error response from daemon: Could not find the file /nope in container web\n"
    );
    let out = mu.muelle(&["cp", h("nothing").to_str().expect("utf-8"), "web:/srv"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("no such file or directory"),
        "{}",
        stderr(&out)
    );
    mu.remove_all_and_check();
}

#[test]
fn cp_works_on_stopped_and_never_started_containers() {
    let Some(mu) = instance() else { return };
    let host = host_dir();
    let h = |p: &str| host.path().join(p);
    std::fs::write(h("hello"), "hello from the host\n").expect("write");

    // Never started: the file lands in the container's own layer.
    mu.ok(&["create", "--name", "fresh", IMAGE, "cat", "/hello"]);
    mu.ok(&["cp", h("hello").to_str().expect("utf-8"), "fresh:/"]);
    let out = mu.muelle(&["start", "-a", "fresh"]);
    assert_eq!(stdout(&out), "hello from the host\n", "{}", stderr(&out));

    // Stopped, with a volume: paths under it are the volume's.
    mu.ok(&[
        "run",
        "--name",
        "done",
        "-v",
        "data:/data",
        IMAGE,
        "sh",
        "-c",
        "echo in-volume > /data/v; echo in-layer > /l",
    ]);
    assert_eq!(read_in(&mu, "done:/data/v"), "in-volume\n");
    assert_eq!(read_in(&mu, "done:/l"), "in-layer\n");
    mu.ok(&["cp", "done:/data/v", h("v").to_str().expect("utf-8")]);
    assert_eq!(text(h("v")), "in-volume\n");
    mu.ok(&["cp", h("hello").to_str().expect("utf-8"), "done:/data/put"]);
    assert_eq!(
        text(mu.root().join("volumes/data/_data/put")),
        "hello from the host\n"
    );
    mu.ok(&["cp", h("hello").to_str().expect("utf-8"), "done:/etc/put"]);
    assert!(
        mu.ok(&["diff", "done"]).contains("A /etc/put\n"),
        "in the container's layer"
    );
    // The copies mounted nothing that stayed.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains(&mu.root().display().to_string()),
        "nothing mounted: {mounts}"
    );
    mu.remove_all_and_check();
    mu.ok(&["volume", "rm", "data"]);
}

#[test]
fn cp_reaches_the_volumes_of_a_running_container_and_refuses_read_only_ones() {
    let Some(mu) = instance() else { return };
    let host = host_dir();
    let h = |p: &str| host.path().join(p);
    std::fs::write(h("f"), "f\n").expect("write");
    std::fs::create_dir(h("bound")).expect("mkdir");
    let bind = format!("{}:/bound:ro", h("bound").display());
    run_ready(&mu, "vols", &["-v", "data:/data", "-v", &bind], "true");

    mu.ok(&["cp", h("f").to_str().expect("utf-8"), "vols:/data/x"]);
    assert_eq!(text(mu.root().join("volumes/data/_data/x")), "f\n");
    let out = mu.muelle(&["cp", h("f").to_str().expect("utf-8"), "vols:/bound/x"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "Error response from daemon: mounted volume is marked read-only\n"
    );
    assert!(!h("bound/x").exists());

    mu.ok(&[
        "run",
        "-d",
        "--name",
        "ro",
        "--read-only",
        IMAGE,
        "sleep",
        "120",
    ]);
    let out = mu.muelle(&["cp", h("f").to_str().expect("utf-8"), "ro:/"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("container rootfs is marked read-only"),
        "{}",
        stderr(&out)
    );
    mu.ok(&["stop", "-t", "0", "ro"]);
    let out = mu.muelle(&["cp", h("f").to_str().expect("utf-8"), "ro:/"]);
    assert!(
        stderr(&out).contains("container rootfs is marked read-only"),
        "stopped too: {}",
        stderr(&out)
    );
    mu.remove_all_and_check();
    mu.ok(&["volume", "rm", "data"]);
}

#[test]
fn cp_streams_a_tar_in_and_out() {
    let Some(mu) = instance() else { return };
    run_ready(&mu, "web", &[], "mkdir /srv");
    let tar = tar_with(&[
        ("a/", tar::EntryType::Directory, "", b""),
        ("a/b.txt", tar::EntryType::Regular, "", b"b\n"),
        ("top.txt", tar::EntryType::Regular, "", b"top\n"),
    ]);
    let out = mu.with_stdin(&["cp", "-", "web:/srv"], &tar);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read_in(&mu, "web:/srv/a/b.txt"), "b\n");
    assert_eq!(read_in(&mu, "web:/srv/top.txt"), "top\n");

    let out = mu.with_stdin(&["cp", "-", "web:/srv/top.txt"], &tar);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "Error: destination \"web:/srv/top.txt\" must be a directory\n"
    );
    let out = mu.with_stdin(&["cp", "-", "web:/missing"], &tar);
    assert_eq!(code(&out), 1);

    let back = tar_of(&mu, "web:/srv");
    assert_eq!(
        names(&back),
        ["srv/", "srv/a/", "srv/a/b.txt", "srv/top.txt"]
    );
    mu.remove_all_and_check();
}

/// Every way a container's symlinks could lead `cp` to the host, on one
/// container: what was written must be in the container, not on the host.
fn check_symlinks_stay_inside(mu: &Instance, name: &str, host: &Path) {
    let marker = unique(name);
    let file = host.join("payload");
    std::fs::write(&file, "payload\n").expect("write");
    let file = file.to_str().expect("utf-8");
    let host_etc = PathBuf::from("/etc").join(&marker);

    // Writing through /evil -> /etc and /up -> ../../.. lands in the
    // container's /etc.
    mu.ok(&["cp", file, &format!("{name}:/evil/{marker}")]);
    mu.ok(&["cp", file, &format!("{name}:/up/up/etc/{marker}-2")]);
    // A symlink as the destination itself points at the container's /etc.
    mu.ok(&["cp", file, &format!("{name}:/tmp/dest-link")]);
    assert!(!host_etc.exists(), "the host's /etc was written");
    assert!(!PathBuf::from(format!("/etc/{marker}-2")).exists());
    assert!(!PathBuf::from(format!("/etc/{marker}-3")).exists());
    assert_eq!(read_in(mu, &format!("{name}:/etc/{marker}")), "payload\n");
    assert_eq!(read_in(mu, &format!("{name}:/etc/{marker}-2")), "payload\n");
    assert_eq!(read_in(mu, &format!("{name}:/etc/{marker}-3")), "payload\n");

    // Reading through them reads the container's files.
    assert_eq!(
        read_in(mu, &format!("{name}:/evil/image-file")),
        "from the image\n"
    );
    assert_eq!(
        read_in(mu, &format!("{name}:/up/../up/etc/image-file")),
        "from the image\n"
    );
    let out = host.join(format!("{name}-passwd"));
    mu.ok(&[
        "cp",
        "-L",
        &format!("{name}:/up/etc/passwd"),
        out.to_str().expect("utf-8"),
    ]);
    assert!(text(&out).starts_with("root:x:0:0:root:/root:/bin/sh\n"));
    let out = mu.muelle(&["cp", &format!("{name}:/evil/shadow"), "-"]);
    assert_eq!(
        code(&out),
        1,
        "the host's /etc/shadow is not the container's"
    );

    // Copied out, a symlink stays a symlink: the host's /etc is not copied.
    let out = host.join(format!("{name}-evil"));
    mu.ok(&["cp", &format!("{name}:/evil"), out.to_str().expect("utf-8")]);
    assert_eq!(
        std::fs::read_link(&out).expect("a symlink"),
        Path::new("/etc")
    );
}

/// What a hostile container makes: `/evil -> /etc`, `/up -> ../../..`,
/// and `/tmp/dest-link` to a file of its `/etc` that the host lacks too.
fn hostile_script(name: &str) -> String {
    format!(
        "busybox ln -s /etc /evil; busybox ln -s ../../.. /up; \
         busybox ln -s /etc/{}-3 /tmp/dest-link",
        unique(name)
    )
}

#[test]
fn container_symlinks_never_lead_cp_to_the_host() {
    let Some(mu) = instance() else { return };
    let host = host_dir();
    run_ready(&mu, "hostile", &[], &hostile_script("hostile"));
    check_symlinks_stay_inside(&mu, "hostile", host.path());
    // A stopped container's root is assembled for the copy: the same.
    mu.ok(&[
        "run",
        "--name",
        "stopped",
        IMAGE,
        "sh",
        "-c",
        &hostile_script("stopped"),
    ]);
    check_symlinks_stay_inside(&mu, "stopped", host.path());
    mu.remove_all_and_check();
}

#[test]
fn a_hostile_tar_is_refused_and_writes_nothing() {
    let Some(mu) = instance() else { return };
    run_ready(&mu, "web", &[], "mkdir /srv");
    let marker = unique("escape");
    let escape = format!("../../../../../../../../tmp/{marker}");
    let tar = tar_with(&[
        ("first.txt", tar::EntryType::Regular, "", b"first\n"),
        (&escape, tar::EntryType::Regular, "", b"pwned\n"),
    ]);
    let out = mu.with_stdin(&["cp", "-", "web:/srv"], &tar);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("`..`"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing was copied"),
        "{}",
        stderr(&out)
    );
    assert!(!Path::new("/tmp").join(&marker).exists());
    let out = mu.muelle(&["cp", "web:/srv/first.txt", "-"]);
    assert_eq!(code(&out), 1, "not even the entries before the bad one");

    // A symlink the archive makes, then a write through it.
    let through = format!("link/tmp/{marker}");
    let tar = tar_with(&[
        ("link", tar::EntryType::Symlink, "/", b""),
        (&through, tar::EntryType::Regular, "", b"pwned\n"),
    ]);
    let out = mu.with_stdin(&["cp", "-", "web:/srv"], &tar);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("symlink"), "{}", stderr(&out));
    assert!(!Path::new("/tmp").join(&marker).exists());
    assert_eq!(code(&mu.muelle(&["cp", "web:/srv/link", "-"])), 1);

    // A device node may enter a container (its device cgroup decides),
    // but never comes out onto the host as one.
    let tar = tar_with(&[("null2", tar::EntryType::Char, "", b"")]);
    let out = mu.with_stdin(&["cp", "-", "web:/srv"], &tar);
    assert!(out.status.success(), "{}", stderr(&out));
    let host = host_dir();
    let out = mu.muelle(&["cp", "web:/srv/null2", host.path().to_str().expect("utf-8")]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("device node"), "{}", stderr(&out));
    assert!(!host.path().join("null2").exists());
    mu.remove_all_and_check();
}

#[test]
fn export_is_read_back_by_import_and_leaves_volumes_out() {
    let Some(mu) = instance() else { return };
    run_ready(
        &mu,
        "web",
        &["-v", "data:/data"],
        "mkdir /srv; echo exported > /srv/x; echo vol > /data/v",
    );
    let host = host_dir();
    let file = host.path().join("web.tar");
    mu.ok(&["export", "-o", file.to_str().expect("utf-8"), "web"]);
    let tar = std::fs::read(&file).expect("the export");
    let listed = names(&tar);
    assert!(listed.contains(&"srv/x".to_owned()), "{listed:?}");
    assert!(listed.contains(&"data/".to_owned()), "{listed:?}");
    assert!(!listed.contains(&"data/v".to_owned()), "volumes stay out");
    assert!(
        !listed
            .iter()
            .any(|n| n.starts_with("proc/") && n != "proc/"),
        "no /proc content: {listed:?}"
    );
    let out = mu.muelle(&["container", "export", "web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(names(&out.stdout), listed, "stdout holds the same archive");

    mu.ok(&[
        "import",
        file.to_str().expect("utf-8"),
        "localhost/exported",
    ]);
    let out = mu.ok(&[
        "run",
        "--rm",
        "localhost/exported",
        "cat",
        "/srv/x",
        "/etc/image-file",
    ]);
    assert_eq!(out, "exported\nfrom the image\n");

    // A stopped container exports the same way.
    mu.ok(&["stop", "-t", "0", "web"]);
    let out = mu.muelle(&["export", "web"]);
    assert!(names(&out.stdout).contains(&"srv/x".to_owned()));

    let out = mu.muelle(&["export", "nope"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("No such container: nope"),
        "{}",
        stderr(&out)
    );
    mu.remove_all_and_check();
    mu.ok(&["volume", "rm", "data"]);
}

#[test]
fn export_refuses_a_terminal() {
    let Some(mu) = instance() else { return };
    mu.ok(&["create", "--name", "term", IMAGE]);
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let out = mu
        .command(&["export", "term"])
        .stdin(std::process::Stdio::null())
        .stdout(pty.slave)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("export");
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "Error: cowardly refusing to save to a terminal. Use the -o flag or redirect\n"
    );
    mu.remove_all_and_check();
}

#[test]
fn diff_shows_added_changed_and_deleted_paths_in_docker_order() {
    let Some(mu) = instance() else { return };
    mu.ok(&[
        "run",
        "--name",
        "changed",
        "-v",
        "data:/data",
        IMAGE,
        "sh",
        "-c",
        "echo x > /etc/x; echo >> /etc/passwd; busybox rm /etc/image-file; \
         busybox rm -r /root; mkdir /tmp/new; touch /tmp/new/f; echo v > /data/v",
    ]);
    assert_eq!(
        mu.ok(&["diff", "changed"]),
        "C /etc\nD /etc/image-file\nC /etc/passwd\nA /etc/x\nD /root\nC /tmp\nA /tmp/new\nA /tmp/new/f\n"
    );
    assert_eq!(
        mu.ok(&["container", "diff", "changed"]),
        mu.ok(&["diff", "changed"])
    );
    let out = mu.muelle(&["diff", "nope"]);
    assert_eq!(code(&out), 1);
    mu.remove_all_and_check();
    mu.ok(&["volume", "rm", "data"]);
}

#[test]
fn a_fresh_container_has_an_empty_diff() {
    let Some(mu) = instance() else { return };
    let host = host_dir();
    let bind = format!("{}:/opt/bound", host.path().display());
    mu.ok(&[
        "run",
        "--name",
        "fresh",
        "-v",
        "data:/srv/data",
        "-v",
        &bind,
        "--tmpfs",
        "/scratch",
        IMAGE,
        "true",
    ]);
    assert_eq!(mu.ok(&["diff", "fresh"]), "");
    mu.ok(&["create", "--name", "created", IMAGE]);
    assert_eq!(mu.ok(&["diff", "created"]), "", "never started");
    // Something under a folder muelle made for a mount shows it as added.
    mu.ok(&[
        "run",
        "--name",
        "beside",
        "-v",
        "data:/srv/data",
        IMAGE,
        "touch",
        "/srv/other",
    ]);
    assert_eq!(mu.ok(&["diff", "beside"]), "A /srv\nA /srv/other\n");
    mu.remove_all_and_check();
    mu.ok(&["volume", "rm", "data"]);
}

#[test]
fn port_lists_nothing_and_refuses_an_unpublished_port() {
    let Some(mu) = instance() else { return };
    run_ready(&mu, "web", &[], "true");
    assert_eq!(mu.ok(&["port", "web"]), "");
    assert_eq!(mu.ok(&["container", "port", "web"]), "");
    let out = mu.muelle(&["port", "web", "80"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "Error: No public port '80/tcp' published for web\n"
    );
    let out = mu.muelle(&["port", "web", "53/udp"]);
    assert_eq!(
        stderr(&out),
        "Error: No public port '53/udp' published for web\n"
    );
    let out = mu.muelle(&["port", "nope"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("No such container: nope"),
        "{}",
        stderr(&out)
    );
    mu.remove_all_and_check();
}
