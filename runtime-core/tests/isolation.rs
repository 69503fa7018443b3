//! What a user relies on the OCI spec for, checked where the user would
//! see it: inside the container (exit codes, output, /proc) and on the
//! host (files, mounts, sysctls). Capabilities, user and umask,
//! no_new_privs, rlimits, seccomp, read-only and masked paths, devices,
//! sysctls, terminals, exec, the non-dumpable init and a hostile image.
//! Every test ends with nothing of its containers left behind.

mod support;

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use serde_json::{Value, json};
use support::{Bundle, Runtime, assert_gone, stderr, stdout};

// ---------------------------------------------------------------------------
// capabilities

#[test]
fn the_process_holds_exactly_the_spec_capabilities() {
    require_root!();
    let rt = Runtime::new();
    let docker = runtime_core::capabilities::docker_default();
    let mut bundle = Bundle::new(&["cat", "/proc/self/status"]);
    bundle.edit(|s| set_caps(s, &docker, &[]));
    let (out, id) = rt.run_bundle(&bundle, "caps");
    assert!(out.status.success(), "{}", stderr(&out));
    let status = stdout(&out);
    let want = cap_mask(&docker);
    assert_eq!(want.count_ones(), 14, "docker's default set has 14");
    for field in ["CapEff", "CapPrm", "CapBnd"] {
        let got = status_hex(&status, field);
        assert_eq!(got, want, "{field} {got:#x}, spec {want:#x}");
    }
    assert_eq!(status_hex(&status, "CapInh"), 0);
    assert_eq!(status_hex(&status, "CapAmb"), 0);
    assert_gone(&rt, &id);
}

#[test]
fn a_non_root_user_keeps_its_ambient_capabilities_only() {
    require_root!();
    let rt = Runtime::new();
    let docker = runtime_core::capabilities::docker_default();
    let ambient = ["CAP_NET_BIND_SERVICE".to_owned(), "CAP_KILL".to_owned()];
    let mut bundle = Bundle::new(&["cat", "/proc/self/status"]);
    bundle.edit(|s| {
        set_caps(s, &docker, &ambient);
        s["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    });
    let (out, id) = rt.run_bundle(&bundle, "ambient");
    assert!(out.status.success(), "{}", stderr(&out));
    let status = stdout(&out);
    // After exec a non-root process keeps what is ambient, nothing else.
    let want = cap_mask(&ambient);
    for field in ["CapEff", "CapPrm", "CapAmb", "CapInh"] {
        let got = status_hex(&status, field);
        assert_eq!(got, want, "{field} {got:#x}, ambient {want:#x}");
    }
    assert_eq!(status_hex(&status, "CapBnd"), cap_mask(&docker));
    assert_gone(&rt, &id);
}

#[test]
fn a_spec_without_capabilities_grants_none() {
    require_root!();
    let rt = Runtime::new();
    // runc empties every set, the bounding set included, when the spec
    // has none: a root process must not get the runtime's capabilities
    // back at exec (without no_new_privs, nothing else would stop it).
    for nnp in [true, false] {
        let mut bundle = Bundle::new(&["cat", "/proc/self/status"]);
        bundle.edit(|s| {
            s["process"]["noNewPrivileges"] = json!(nnp);
            s["process"].as_object_mut().unwrap().remove("capabilities");
        });
        let (out, id) = rt.run_bundle(&bundle, "nocaps");
        assert!(out.status.success(), "{}", stderr(&out));
        let status = stdout(&out);
        for field in ["CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"] {
            let got = status_hex(&status, field);
            assert_eq!(
                got, 0,
                "{field} is {got:#x} without process.capabilities (noNewPrivileges {nnp})"
            );
        }
        assert_gone(&rt, &id);
    }
}

#[test]
fn chown_needs_cap_chown() {
    require_root!();
    let rt = Runtime::new();
    let docker = runtime_core::capabilities::docker_default();
    let without: Vec<String> = docker
        .iter()
        .filter(|c| *c != "CAP_CHOWN")
        .cloned()
        .collect();
    for (set, allowed) in [(&docker, true), (&without, false)] {
        let mut bundle = Bundle::new(&["sh", "-c", "touch /tmp/x && chown 1 /tmp/x"]);
        bundle.edit(|s| set_caps(s, set, &[]));
        let (out, id) = rt.run_bundle(&bundle, "chown");
        let owner = std::os::unix::fs::MetadataExt::uid(
            &std::fs::metadata(bundle.rootfs().join("tmp/x")).expect("touch ran"),
        );
        if allowed {
            assert!(out.status.success(), "with CAP_CHOWN: {}", stderr(&out));
            assert_eq!(owner, 1);
        } else {
            assert_eq!(out.status.code(), Some(1), "without CAP_CHOWN");
            assert!(
                stderr(&out).contains("Operation not permitted"),
                "{}",
                stderr(&out)
            );
            assert_eq!(owner, 0, "the file changed owner without CAP_CHOWN");
        }
        assert_gone(&rt, &id);
    }
}

// ---------------------------------------------------------------------------
// user, umask, no_new_privs, rlimits

#[test]
fn the_process_runs_as_the_spec_user_and_groups() {
    require_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&[
        "sh",
        "-c",
        "id; grep -E '^(Uid|Gid|Groups):' /proc/self/status",
    ]);
    bundle.edit(|s| {
        s["process"]["user"] = json!({ "uid": 65534, "gid": 65534, "additionalGids": [5, 100] });
    });
    let (out, id) = rt.run_bundle(&bundle, "user");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("uid=65534(nobody) gid=65534(nogroup) groups="),
        "{text}"
    );
    let groups = lines[0].split("groups=").nth(1).unwrap_or_default();
    for gid in ["5", "100"] {
        assert!(
            groups.split(',').any(|g| g.split('(').next() == Some(gid)),
            "group {gid} missing: {text}"
        );
    }
    let fields = |name: &str| -> Vec<String> {
        let line = lines
            .iter()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing: {text}"));
        line.split_whitespace().skip(1).map(str::to_owned).collect()
    };
    assert_eq!(fields("Uid:"), ["65534"; 4]);
    assert_eq!(fields("Gid:"), ["65534"; 4]);
    assert_eq!(fields("Groups:"), ["5", "100"]);
    assert_gone(&rt, &id);
}

#[test]
fn the_spec_umask_shapes_new_files() {
    require_root!();
    let rt = Runtime::new();
    for (umask, file, dir) in [(0o027, "640", "750"), (0o000, "666", "777")] {
        let mut bundle = Bundle::new(&[
            "sh",
            "-c",
            "touch /tmp/f && mkdir /tmp/d && stat -c %a /tmp/f /tmp/d",
        ]);
        bundle.edit(|s| s["process"]["user"]["umask"] = json!(umask));
        let (out, id) = rt.run_bundle(&bundle, "umask");
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), format!("{file}\n{dir}\n"), "umask {umask:o}");
        assert_gone(&rt, &id);
    }
}

#[test]
fn no_new_privileges_is_set_only_when_asked() {
    require_root!();
    let rt = Runtime::new();
    for (nnp, want) in [(true, "1"), (false, "0")] {
        let mut bundle = Bundle::new(&["grep", "^NoNewPrivs:", "/proc/self/status"]);
        bundle.edit(|s| s["process"]["noNewPrivileges"] = json!(nnp));
        let (out, id) = rt.run_bundle(&bundle, "nnp");
        assert!(out.status.success(), "{}", stderr(&out));
        let value = stdout(&out);
        assert_eq!(
            value.split_whitespace().nth(1),
            Some(want),
            "noNewPrivileges {nnp}: {value}"
        );
        assert_gone(&rt, &id);
    }
}

#[test]
fn rlimit_nofile_is_what_the_spec_says() {
    require_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&[
        "sh",
        "-c",
        "ulimit -Sn; ulimit -Hn; grep 'Max open files' /proc/self/limits",
    ]);
    bundle.edit(|s| {
        s["process"]["rlimits"] = json!([{ "type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000 }]);
    });
    let (out, id) = rt.run_bundle(&bundle, "rlimit");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..2], ["1000", "2000"], "{text}");
    let limits: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(limits, ["Max", "open", "files", "1000", "2000", "files"]);
    assert_gone(&rt, &id);
}

#[test]
fn an_rlimit_above_the_hosts_hard_limit_fails_create_cleanly() {
    require_root!();
    let rt = Runtime::new();
    let (_, host_hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    // Without CAP_SYS_RESOURCE the hard limit cannot go up at all; with
    // it, not past fs.nr_open.
    let can_raise = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(true);
    let hard = if can_raise {
        let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open").unwrap();
        nr_open.trim().parse::<u64>().unwrap() + 1
    } else {
        host_hard + 1
    };
    let mut bundle = Bundle::new(&["true"]);
    bundle.edit(|s| {
        s["process"]["rlimits"] = json!([{ "type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard }]);
    });
    let id = rt.id("rlimit-high");
    let out = rt.run(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    // Named as config.json names it, so the user finds the entry.
    assert!(err.contains("RLIMIT_NOFILE"), "{err}");
    assert!(err.contains(&hard.to_string()), "{err}");
    assert_gone(&rt, &id);
}

// ---------------------------------------------------------------------------
// seccomp

#[test]
fn dockers_seccomp_profile_denies_namespaces_but_not_normal_work() {
    require_root!();
    let rt = Runtime::new();
    let docker = runtime_core::capabilities::docker_default();
    let profile =
        serde_json::to_value(runtime_core::seccomp::docker_default_profile(&docker)).unwrap();
    let script = "echo hello; ls / > /dev/null && echo listed; unshare -U true && echo unshared";
    // Without the profile the same capabilities can make a user
    // namespace: the profile is what stops it. With no_new_privs off the
    // filter is loaded before the user switch, so both orders are seen.
    for (seccomp, nnp) in [(false, true), (true, true), (true, false)] {
        let mut bundle = Bundle::new(&["sh", "-c", script]);
        bundle.edit(|s| {
            set_caps(s, &docker, &[]);
            s["process"]["noNewPrivileges"] = json!(nnp);
            if seccomp {
                s["linux"]["seccomp"] = profile.clone();
            }
        });
        let (out, id) = rt.run_bundle(&bundle, "seccomp");
        let case = format!("seccomp {seccomp}, noNewPrivileges {nnp}");
        if seccomp {
            assert_eq!(out.status.code(), Some(1), "{case}: {}", stderr(&out));
            assert_eq!(stdout(&out), "hello\nlisted\n", "{case}");
            assert!(
                stderr(&out).contains("Operation not permitted"),
                "{case}: {}",
                stderr(&out)
            );
        } else {
            assert!(out.status.success(), "{case}: {}", stderr(&out));
            assert_eq!(stdout(&out), "hello\nlisted\nunshared\n", "{case}");
        }
        assert_gone(&rt, &id);
    }
}

#[test]
fn a_custom_seccomp_profile_returns_the_errno_it_names() {
    require_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&[
        "sh",
        "-c",
        "mkdir /tmp/d; echo mkdir=$?; ln -s x /tmp/l; echo ln=$?; touch /tmp/f && echo touched",
    ]);
    bundle.edit(|s| {
        s["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 },
                { "names": ["symlink", "symlinkat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28 }
            ]
        });
    });
    let (out, id) = rt.run_bundle(&bundle, "seccomp-custom");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "mkdir=1\nln=1\ntouched\n");
    let err = stderr(&out);
    assert!(err.contains("Operation not permitted"), "EPERM: {err}");
    assert!(
        err.contains("No space left on device"),
        "errnoRet 28: {err}"
    );
    let tmp = bundle.rootfs().join("tmp");
    assert!(!tmp.join("d").exists() && !tmp.join("l").exists());
    assert!(tmp.join("f").exists());
    assert_gone(&rt, &id);
}

// ---------------------------------------------------------------------------
// read-only root, read-only and masked paths

#[test]
fn a_read_only_root_keeps_its_tmpfs_writable() {
    require_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&[
        "sh",
        "-c",
        "touch /x; echo root=$?; touch /tmp/y && echo tmp-ok; \
         echo x > /proc/sys/kernel/domainname; echo procsys=$?",
    ]);
    bundle.edit(|s| {
        s["root"]["readonly"] = json!(true);
        push_mount(
            s,
            json!({ "destination": "/tmp", "type": "tmpfs", "source": "tmpfs" }),
        );
    });
    let (out, id) = rt.run_bundle(&bundle, "readonly");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "root=1\ntmp-ok\nprocsys=1\n");
    let err = stderr(&out);
    assert!(err.contains("/x: Read-only file system"), "{err}");
    // Without readonlyPaths this would be EPERM (no CAP_SYS_ADMIN), so the
    // message shows the read-only mount.
    assert!(
        err.contains("/proc/sys/kernel/domainname: Read-only file system"),
        "{err}"
    );
    assert!(!bundle.rootfs().join("x").exists());
    assert_gone(&rt, &id);
}

#[test]
fn the_cgroup_mount_is_read_only_all_the_way_down() {
    require_root!();
    let rt = Runtime::new();
    // Every mount at or under /sys/fs/cgroup (on cgroup v1 a tmpfs with a
    // bind per hierarchy) is ro, nosuid, nodev, noexec; nothing can be made
    // there, not even in the container's own cgroup.
    let script = r#"awk '$5 ~ "^/sys/fs/cgroup" { n++; if ($6 !~ /(^|,)ro(,|$)/ || $6 !~ /nosuid/ || $6 !~ /nodev/ || $6 !~ /noexec/) bad++ } END { print (n > 0), bad + 0 }' /proc/self/mountinfo
        mkdir /sys/fs/cgroup/x 2>/dev/null; echo top=$?
        for d in /sys/fs/cgroup/*/; do mkdir ${d}y 2>/dev/null && echo made ${d}y; done; echo done"#;
    let bundle = Bundle::new(&["sh", "-c", script]);
    let (out, id) = rt.run_bundle(&bundle, "cgroup-ro");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1 0\ntop=1\ndone\n", "{}", stderr(&out));
    assert_gone(&rt, &id);
}

#[test]
fn masked_paths_show_nothing() {
    require_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&[]);
    std::fs::write(bundle.rootfs().join("etc/secret"), "password").unwrap();
    std::fs::create_dir(bundle.rootfs().join("vault")).unwrap();
    std::fs::write(bundle.rootfs().join("vault/key"), "key").unwrap();
    // A masked file of runc's list that this kernel has (kcore is not
    // everywhere), and a folder with something in it on the host.
    let proc_file = ["/proc/kcore", "/proc/timer_list", "/proc/keys"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("a masked /proc file");
    let script = format!(
        "for f in {proc_file} /etc/secret; do wc -c < $f; done; \
         for d in /sys/firmware /vault; do ls -A $d | wc -l; done; \
         touch /vault/new"
    );
    bundle.edit(|s| {
        s["process"]["args"] = json!(["sh", "-c", script]);
        for p in ["/etc/secret", "/vault"] {
            s["linux"]["maskedPaths"]
                .as_array_mut()
                .unwrap()
                .push(json!(p));
        }
    });
    let (out, id) = rt.run_bundle(&bundle, "masked");
    assert_eq!(
        out.status.code(),
        Some(1),
        "touch in a masked folder must fail"
    );
    assert_eq!(stdout(&out), "0\n0\n0\n0\n", "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    // Masking hides, it does not delete.
    assert!(bundle.rootfs().join("vault/key").exists());
    assert_eq!(
        std::fs::read_to_string(bundle.rootfs().join("etc/secret")).unwrap(),
        "password"
    );
    assert_gone(&rt, &id);
}

// ---------------------------------------------------------------------------
// devices

#[test]
fn deny_all_devices_leaves_the_defaults_usable_and_nothing_else() {
    require_root!();
    let rt = Runtime::new();
    let docker = runtime_core::capabilities::docker_default();
    let script = "echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c; \
                  mknod /tmp/sda b 8 0 && echo mknod-ok; head -c1 /tmp/sda; echo sda=$?; \
                  mknod /tmp/fuse c 10 229 && true < /tmp/fuse; echo fuse=$?";
    let mut bundle = Bundle::new(&["sh", "-c", script]);
    bundle.edit(|s| {
        // CAP_MKNOD: only the device cgroup may be what stops the reads.
        set_caps(s, &docker, &[]);
        push_mount(
            s,
            json!({ "destination": "/tmp", "type": "tmpfs", "source": "tmpfs" }),
        );
        assert_eq!(
            s["linux"]["resources"]["devices"],
            json!([{ "allow": false, "access": "rwm" }])
        );
    });
    let (out, id) = rt.run_bundle(&bundle, "devices");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "null-ok\n4\nmknod-ok\nsda=1\nfuse=1\n",
        "{}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("/tmp/sda: Operation not permitted"), "{err}");
    assert!(err.contains("/tmp/fuse: Operation not permitted"), "{err}");
    assert_gone(&rt, &id);
}

#[test]
fn a_spec_device_is_created_and_usable() {
    require_root!();
    if !Path::new("/dev/fuse").exists() {
        eprintln!("skipped: the host has no /dev/fuse");
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&[
        "sh",
        "-c",
        "stat -c '%F %t:%T %a %u:%g' /dev/fuse && true < /dev/fuse && echo opened",
    ]);
    bundle.edit(|s| {
        s["linux"]["devices"] = json!([{
            "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
            "fileMode": 0o640, "uid": 0, "gid": 5
        }]);
    });
    let (out, id) = rt.run_bundle(&bundle, "fuse");
    assert!(out.status.success(), "{}", stderr(&out));
    // Major and minor print in hex.
    assert_eq!(
        stdout(&out),
        "character special file a:e5 640 0:5\nopened\n"
    );
    assert_gone(&rt, &id);
}

#[test]
fn spec_devices_get_their_exact_mode_and_owner_in_any_folder() {
    require_root!();
    let rt = Runtime::new();
    // Modes the umask would cut, an owner that is not root, a folder of
    // their own: each device comes out as the spec says.
    let mut bundle = Bundle::new(&[
        "sh",
        "-c",
        "stat -c '%n %F %t:%T %a %u:%g' /dev/null /dev/net/null2 /dev/zero2 && echo x > /dev/net/null2 && echo written",
    ]);
    bundle.edit(|s| {
        s["linux"]["devices"] = json!([
            { "path": "/dev/net/null2", "type": "c", "major": 1, "minor": 3,
              "fileMode": 0o666, "uid": 1000, "gid": 1000 },
            { "path": "/dev/zero2", "type": "c", "major": 1, "minor": 5,
              "fileMode": 0o600, "uid": 0, "gid": 0 }
        ]);
    });
    let (out, id) = rt.run_bundle(&bundle, "devmode");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "/dev/null character special file 1:3 666 0:0\n\
         /dev/net/null2 character special file 1:3 666 1000:1000\n\
         /dev/zero2 character special file 1:5 600 0:0\n\
         written\n"
    );
    assert_gone(&rt, &id);
}

// ---------------------------------------------------------------------------
// sysctl

#[test]
fn sysctls_apply_inside_the_network_namespace_only() {
    require_root!();
    let rt = Runtime::new();
    let forward = "/proc/sys/net/ipv4/ip_forward";
    let ports = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
    let host = HostSysctls::read(&[forward, ports]);
    // A new network namespace copies ip_forward from the host's, so only
    // the opposite value shows that the spec's was written.
    let want_forward = if host.value(forward) == "1" { "0" } else { "1" };
    let want_ports = if host.value(ports) == "333" {
        "334"
    } else {
        "333"
    };
    let mut bundle = Bundle::new(&["cat", forward, ports]);
    bundle.edit(|s| {
        s["linux"]["sysctl"] = json!({
            "net.ipv4.ip_forward": want_forward,
            "net.ipv4.ip_unprivileged_port_start": want_ports,
        });
    });
    let (out, id) = rt.run_bundle(&bundle, "sysctl");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{want_forward}\n{want_ports}\n"));
    host.assert_unchanged();
    assert_gone(&rt, &id);
}

#[test]
fn a_bad_sysctl_name_fails_create_cleanly() {
    require_root!();
    let rt = Runtime::new();
    for key in ["../../etc", "net/../../../etc/hostname", ""] {
        let mut bundle = Bundle::new(&["true"]);
        bundle.edit(|s| s["linux"]["sysctl"] = json!({ key: "1" }));
        let id = rt.id("sysctl-bad");
        let out = rt.run(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{key:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains("sysctl"), "{key:?}: {err}");
        assert_gone(&rt, &id);
    }
}

#[test]
fn a_sysctl_the_container_does_not_own_is_refused() {
    require_root!();
    let rt = Runtime::new();
    let ports = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
    let swappiness = "/proc/sys/vm/swappiness";
    let host = HostSysctls::read(&[ports, swappiness]);
    let other = |path: &str| {
        let v: u32 = host.value(path).parse().unwrap();
        (if v == 50 { 51 } else { 50 }).to_string()
    };
    // vm.* belongs to no namespace: writing it would change the host.
    // net.* without a network namespace of its own is the host's too.
    let cases = [
        ("vm.swappiness", other(swappiness), true),
        ("net.ipv4.ip_unprivileged_port_start", other(ports), false),
    ];
    for (key, value, with_netns) in cases {
        let mut bundle = Bundle::new(&["true"]);
        bundle.edit(|s| {
            s["linux"]["sysctl"] = json!({ key: value });
            if !with_netns {
                s["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|ns| ns["type"] != "network");
            }
        });
        let id = rt.id("sysctl-host");
        let out = rt.run(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
        host.assert_unchanged();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{key} was accepted: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(key), "{err}");
        assert_gone(&rt, &id);
    }
}

// ---------------------------------------------------------------------------
// terminals and exec

#[test]
fn a_terminal_goes_to_the_console_socket() {
    require_root!();
    let rt = Runtime::new();
    let console = ConsoleSocket::new();
    let mut bundle = Bundle::new(&["sh", "-c", "tty; echo ok"]);
    bundle.edit(|s| s["process"]["terminal"] = json!(true));
    let id = rt.id("tty");
    let out = rt.run(&[
        "create",
        "--console-socket",
        console.path.to_str().unwrap(),
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    let master = console.receive_pty();
    let out = rt.run(&["start", &id]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    let text = read_pty(&master);
    assert!(
        text.contains("/dev/pts/0") || text.contains("/dev/console"),
        "{text:?}"
    );
    assert!(text.contains("ok"), "{text:?}");
    wait_for_status(&rt, &id, "stopped");
    let out = rt.run(&["delete", &id]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert_gone(&rt, &id);
}

#[test]
fn a_terminal_without_a_console_socket_is_refused() {
    require_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["true"]);
    bundle.edit(|s| s["process"]["terminal"] = json!(true));
    let id = rt.id("tty-nosock");
    let out = rt.run(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("--console-socket"), "{err}");
    assert_gone(&rt, &id);
}

#[test]
fn exec_runs_a_process_file_and_a_terminal() {
    require_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let id = rt.id("exec-process");
    let out = rt.run(&[
        "run",
        "-d",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let process = bundle.path().join("process.json");
    let spec = json!({
        "terminal": false,
        "user": { "uid": 65534, "gid": 65534 },
        "args": ["sh", "-c", "pwd; echo $GREETING; id -u; exit 7"],
        "env": ["PATH=/bin", "GREETING=hello from process.json"],
        "cwd": "/tmp",
        "capabilities": { "bounding": [], "effective": [], "permitted": [] }
    });
    std::fs::write(&process, spec.to_string()).unwrap();
    let out = rt.run(&["exec", "--process", process.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out), "/tmp\nhello from process.json\n65534\n");

    let console = ConsoleSocket::new();
    let pid_file = bundle.path().join("exec.pid");
    let out = rt.run(&[
        "exec",
        "--tty",
        "--detach",
        "--console-socket",
        console.path.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sh",
        "-c",
        "tty; echo ok",
    ]);
    assert!(out.status.success(), "exec --tty: {}", stderr(&out));
    let master = console.receive_pty();
    let text = read_pty(&master);
    assert!(text.contains("/dev/pts/"), "{text:?}");
    assert!(text.contains("ok"), "{text:?}");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("exec pid file")
        .parse()
        .unwrap();
    assert!(pid > 0);

    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert_gone(&rt, &id);
}

#[test]
fn exec_without_capabilities_gets_no_more_than_the_container() {
    require_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let id = rt.id("exec-nocaps");
    let out = rt.run(&[
        "run",
        "-d",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let container_caps: Vec<String> =
        serde_json::from_value(bundle.spec["process"]["capabilities"]["bounding"].clone()).unwrap();
    // A process.json as an engine may write it: no capabilities at all.
    let process = bundle.path().join("process.json");
    let spec = json!({
        "user": { "uid": 0, "gid": 0 },
        "args": ["grep", "^Cap", "/proc/self/status"],
        "env": ["PATH=/bin"],
        "cwd": "/"
    });
    std::fs::write(&process, spec.to_string()).unwrap();
    let out = rt.run(&["exec", "--process", process.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status = stdout(&out);
    let allowed = cap_mask(&container_caps);
    for field in ["CapEff", "CapPrm", "CapBnd"] {
        let got = status_hex(&status, field);
        assert_eq!(
            got & !allowed,
            0,
            "{field} {got:#x} beyond the container's {allowed:#x}"
        );
    }
    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert_gone(&rt, &id);
}

// ---------------------------------------------------------------------------
// the runtime binary behind /proc/1/exe (CVE-2019-5736)

#[test]
fn the_waiting_init_cannot_be_reached_through_proc_exe() {
    require_root!();
    let rt = Runtime::new();
    let docker = runtime_core::capabilities::docker_default();
    let mut bundle = Bundle::new(&["sleep", "60"]);
    // Root in the container, without CAP_SYS_PTRACE.
    bundle.edit(|s| set_caps(s, &docker, &[]));
    let id = rt.id("exe");
    let out = rt.run(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The premise: until start, the container's PID 1 is the runtime.
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.ends_with("muelle-runtime"), "{}", exe.display());

    let probe = "readlink /proc/1/exe; echo readlink=$?; cat /proc/1/exe > /dev/null; echo open=$?";
    let out = rt.run(&["exec", &id, "sh", "-c", probe]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "readlink=1\nopen=1\n", "{}", stderr(&out));
    assert!(
        stderr(&out).contains("'/proc/1/exe': Permission denied"),
        "{}",
        stderr(&out)
    );

    // Once started, PID 1 is the user's program and may be looked at:
    // the same probe can succeed.
    assert!(rt.run(&["start", &id]).status.success());
    let out = rt.run(&["exec", &id, "readlink", "/proc/1/exe"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "/bin/busybox\n");

    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert_gone(&rt, &id);
}

/// Reported, not fixed here (the fork path is not this file's to change):
/// non-dumpable only holds without CAP_SYS_PTRACE. A container that has it
/// (docker --cap-add SYS_PTRACE, --privileged) opens the waiting init's
/// /proc/1/exe, keeps the descriptor, and after `start`, when no process
/// runs the binary any more, reopens it for writing: the host's runtime
/// binary is overwritten. runc closes this with a copy of itself (memfd,
/// or a read-only bind) as the exe. Runs against a copy of the binary.
#[test]
fn even_with_cap_sys_ptrace_the_runtime_binary_cannot_be_overwritten() {
    require_root!();
    let rt = Runtime::new();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("muelle-runtime");
    std::fs::copy(support::RUNTIME, &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let with_copy = |args: &[&str]| {
        std::process::Command::new(&copy)
            .arg("--root")
            .arg(rt.root.path())
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
    };
    let mut caps = runtime_core::capabilities::docker_default();
    caps.push("CAP_SYS_PTRACE".into());
    let mut bundle = Bundle::new(&["sleep", "60"]);
    bundle.edit(|s| set_caps(s, &caps, &[]));
    let id = rt.id("exe-ptrace");
    assert!(with_copy(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]).success());
    let attack = "exec 3< /proc/1/exe; \
                  until [ \"$(readlink /proc/1/exe)\" = /bin/busybox ]; do sleep 0.05; done; \
                  echo '#!/bin/sh' > /proc/self/fd/3; touch /tmp/attempted";
    assert!(with_copy(&["exec", "--detach", &id, "sh", "-c", attack]).success());
    assert!(with_copy(&["start", &id]).success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !bundle.rootfs().join("tmp/attempted").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let overwritten = std::fs::read(&copy).unwrap() != before;
    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert_gone(&rt, &id);
    assert!(!overwritten, "the container overwrote the runtime binary");
}

// ---------------------------------------------------------------------------
// a hostile image

#[test]
fn an_image_dev_symlink_cannot_lead_mounts_out_of_the_rootfs() {
    require_root!();
    let rt = Runtime::new();
    let marker = tempfile::Builder::new()
        .prefix("muelle-test-host-dir")
        .tempdir()
        .unwrap();
    let name = marker.path().file_name().unwrap().to_str().unwrap();
    let parent = marker.path().parent().unwrap().to_str().unwrap();
    // Each names a folder that does not exist on the host, so a runtime
    // that followed the link on the host would mkdir it there. As the
    // host would read them from the rootfs: absolute, through climbing
    // `..`, and relative to the rootfs.
    let targets = [
        format!("{}/dev", marker.path().display()),
        format!("{parent}/../../{parent}/{name}/dev"),
        format!("../../../../../../../../{parent}/{name}/dev"),
    ];
    for (n, target) in targets.iter().enumerate() {
        let mut bundle = Bundle::new(&["sh", "-c", "echo x > /dev/null && test -c /dev/zero"]);
        let dev = bundle.rootfs().join("dev");
        std::fs::remove_dir(&dev).unwrap();
        std::os::unix::fs::symlink(target, &dev).unwrap();
        if n == 0 {
            // Inside the rootfs the same path exists: /dev lands there.
            std::fs::create_dir_all(bundle.rootfs().join(&target[1..])).unwrap();
        }
        bundle.edit(|_| {});
        let (out, id) = rt.run_bundle(&bundle, "hostile-dev");
        assert_untouched(marker.path());
        if n == 0 {
            assert!(out.status.success(), "{target}: {}", stderr(&out));
        } else if !out.status.success() {
            assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
        }
        assert_gone(&rt, &id);
    }
}

#[test]
fn an_image_proc_or_sys_symlink_is_refused() {
    require_root!();
    let rt = Runtime::new();
    // procfs over the image's root or its /bin would hide the image
    // itself; runc refuses these, and so must we, with a line that says
    // why.
    let cases = [
        ("proc", "/"),
        ("proc", "../../../.."),
        ("proc", "/bin"),
        ("sys", "/etc"),
    ];
    for (dir, target) in cases {
        let mut bundle = Bundle::new(&["true"]);
        let link = bundle.rootfs().join(dir);
        std::fs::remove_dir(&link).unwrap();
        std::os::unix::fs::symlink(target, &link).unwrap();
        bundle.edit(|_| {});
        let (out, id) = rt.run_bundle(&bundle, "hostile-proc");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "/{dir} -> {target}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(&format!("/{dir} in the image")), "{err}");
        // The image itself was not changed.
        assert!(bundle.rootfs().join("bin/busybox").is_file());
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(target));
        assert_gone(&rt, &id);
    }
}

// ---------------------------------------------------------------------------
// helpers

fn set_caps(spec: &mut Value, caps: &[String], ambient: &[String]) {
    spec["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps,
        "inheritable": ambient, "ambient": ambient,
    });
}

fn push_mount(spec: &mut Value, mount: Value) {
    spec["mounts"].as_array_mut().unwrap().push(mount);
}

/// The kernel's bitmask of capability names, numbered by the `caps`
/// crate, not by the runtime under test.
fn cap_mask(names: &[String]) -> u64 {
    names
        .iter()
        .map(|n| caps::Capability::from_str(n).unwrap_or_else(|_| panic!("{n}")))
        .fold(0, |mask, cap| mask | cap.bitmask())
}

/// A hex field of /proc/PID/status ("CapEff:\t00000000a80425fb").
fn status_hex(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

fn wait_for_status(rt: &Runtime, id: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while rt.status(id) != want {
        assert!(Instant::now() < deadline, "{id} not {want} within 10s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Nothing was created in, or mounted on, a folder of the host.
fn assert_untouched(dir: &Path) {
    let entries: Vec<_> = std::fs::read_dir(dir)
        .expect("host folder still there")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(entries.is_empty(), "{} got {entries:?}", dir.display());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(dir.to_str().unwrap()),
        "{} is a mount point",
        dir.display()
    );
}

/// Host sysctls read before a test, put back (and reported) if the test
/// changed them.
struct HostSysctls {
    values: Vec<(String, String)>,
}

impl HostSysctls {
    fn read(paths: &[&str]) -> HostSysctls {
        HostSysctls {
            values: paths
                .iter()
                .map(|p| (p.to_string(), read_trimmed(p)))
                .collect(),
        }
    }

    fn value(&self, path: &str) -> &str {
        &self.values.iter().find(|(p, _)| p == path).unwrap().1
    }

    fn changed(&self) -> Vec<String> {
        self.values
            .iter()
            .filter(|(p, v)| read_trimmed(p) != *v)
            .map(|(p, v)| format!("{p}: {v} -> {}", read_trimmed(p)))
            .collect()
    }

    fn assert_unchanged(&self) {
        let changed = self.changed();
        assert!(changed.is_empty(), "host sysctls changed: {changed:?}");
    }
}

impl Drop for HostSysctls {
    fn drop(&mut self) {
        for (path, value) in &self.values {
            if read_trimmed(path) != *value {
                let _ = std::fs::write(path, value);
            }
        }
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// A console socket as an engine makes one: a listener the runtime
/// connects to and sends the pty master over.
struct ConsoleSocket {
    _dir: tempfile::TempDir,
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    fn new() -> ConsoleSocket {
        let dir = tempfile::Builder::new()
            .prefix("muelle-test-console")
            .tempdir()
            .unwrap();
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        ConsoleSocket {
            _dir: dir,
            path,
            listener,
        }
    }

    /// The pty master the runtime sent (SCM_RIGHTS).
    fn receive_pty(&self) -> OwnedFd {
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match self.listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "nobody connected within 10s");
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accepting on the console socket: {e}"),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 256];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .expect("recvmsg on the console socket");
        for cmsg in msg.cmsgs().expect("control messages") {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                // SAFETY: the kernel just installed this descriptor for us.
                return unsafe { OwnedFd::from_raw_fd(fds[0]) };
            }
        }
        panic!("no descriptor came with the console message");
    }
}

/// What the pty's other side wrote until it closed (read fails with EIO
/// once the last descriptor of the slave is gone).
fn read_pty(master: &OwnedFd) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        assert!(
            Instant::now() < deadline,
            "the pty stayed open 10s; read so far: {:?}",
            String::from_utf8_lossy(&out)
        );
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => panic!("poll on the pty: {e}"),
        }
        match nix::unistd::read(master, &mut buf) {
            Ok(0) | Err(Errno::EIO) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(e) => panic!("reading the pty: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------
// bind mounts and the process's OOM score

/// Unmounts on drop, also when the test fails.
struct MountGuard(std::path::PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn bind_mounts_honour_ro_and_recursion() {
    require_root!();
    let rt = Runtime::new();
    let host = tempfile::Builder::new()
        .prefix("muelle-test-bind")
        .tempdir()
        .unwrap();
    std::fs::write(host.path().join("motd"), "hello from the host\n").unwrap();
    // A submount: only a recursive bind carries it into the container.
    let sub = host.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &sub,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    let _guard = MountGuard(sub.clone());
    std::fs::write(sub.join("inner"), "x").unwrap();

    let script = "echo written > /data/out; \
                  touch /ro/x 2>&1 | grep -q 'Read-only' && echo ro-refused; \
                  cat /etc/motd; \
                  test -e /data/sub/inner && echo plain-sees-submount; \
                  test -e /rdata/sub/inner && echo rbind-sees-submount; \
                  cat /proc/self/oom_score_adj";
    let mut bundle = Bundle::new(&["sh", "-c", script]);
    let dir = host.path().to_str().unwrap().to_owned();
    bundle.edit(|s| {
        push_mount(s, json!({ "destination": "/data", "type": "bind", "source": dir, "options": ["bind", "rw"] }));
        push_mount(s, json!({ "destination": "/rdata", "type": "bind", "source": dir, "options": ["rbind", "rprivate"] }));
        push_mount(s, json!({ "destination": "/ro", "type": "bind", "source": dir, "options": ["rbind", "ro"] }));
        push_mount(s, json!({ "destination": "/etc/motd", "type": "bind", "source": format!("{dir}/motd"), "options": ["bind", "ro"] }));
        s["process"]["oomScoreAdj"] = json!(500);
    });
    let id = rt.id("bind");
    let out = rt.run(&["run", "--bundle", bundle.path().to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "ro-refused\nhello from the host\nrbind-sees-submount\n500\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.path().join("out")).unwrap(),
        "written\n",
        "a rw bind writes through to the host"
    );
    assert!(!host.path().join("x").exists());
    assert_gone(&rt, &id);
}
