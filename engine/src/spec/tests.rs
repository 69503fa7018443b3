use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{Capability, LinuxNamespaceType, Spec};
use serde_json::{Value, json};
use storage::mounts::{BindMount, MountSpec, Propagation, TmpfsMount, VolumeMount};

use super::*;
use crate::config::{
    ContainerConfig, ImageSource, MemorySwap, SeccompProfile, UlimitName, parse_cap, parse_cpus,
    parse_ulimit,
};

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn host() -> Host {
    Host {
        cgroup_v2: false,
        swap_limit: true,
        cpus: 2,
        hostname: "the-host".into(),
        last_cap: 40,
        holdable_caps: (1 << 41) - 1,
        can_raise_rlimits: false,
        hard_limits: UlimitName::ALL
            .into_iter()
            .map(|n| {
                let limit = if n == UlimitName::Nofile {
                    20000
                } else {
                    libc::RLIM_INFINITY
                };
                (n, limit)
            })
            .collect(),
        kernel: (6, 1),
        thermal_throttle: Vec::new(),
        dev: PathBuf::from("/dev"),
    }
}

fn config() -> ContainerConfig {
    ContainerConfig::new(ImageSource {
        id: image::Digest::of_bytes(b"config"),
        reference: "busybox".into(),
    })
}

/// An image config from the `config` object of its JSON.
fn image(config: Value) -> ImageConfiguration {
    serde_json::from_value(json!({
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": []}
    }))
    .unwrap()
}

struct Rootfs(tempfile::TempDir);

impl Rootfs {
    fn new() -> Rootfs {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
        Rootfs(dir)
    }
}

fn spec_with(host: &Host, config: &ContainerConfig, image_config: Value) -> Result<Spec> {
    let rootfs = Rootfs::new();
    build_on(
        host,
        config,
        &image(image_config),
        rootfs.0.path(),
        &ResolvedMounts::default(),
        ID,
    )
}

fn spec(config: &ContainerConfig) -> Spec {
    spec_with(&host(), config, json!({"Cmd": ["sh"]})).unwrap()
}

fn args(
    entrypoint: Option<&[&str]>,
    cmd: Option<&[&str]>,
    image_config: Value,
) -> Result<Vec<String>> {
    let mut c = config();
    c.entrypoint = entrypoint.map(|e| e.iter().map(|s| (*s).to_owned()).collect());
    c.cmd = cmd.map(|e| e.iter().map(|s| (*s).to_owned()).collect());
    let spec = spec_with(&host(), &c, image_config)?;
    Ok(spec.process().as_ref().unwrap().args().clone().unwrap())
}

#[test]
fn entrypoint_and_cmd_merge_as_docker() {
    let both = json!({"Entrypoint": ["/entry", "-x"], "Cmd": ["default", "arg"]});
    let cmd_only = json!({"Cmd": ["/bin/sh", "-c", "echo hi"]});
    let entry_only = json!({"Entrypoint": ["/entry"]});
    // Nothing given: the image's entrypoint and cmd.
    assert_eq!(
        args(None, None, both.clone()).unwrap(),
        ["/entry", "-x", "default", "arg"]
    );
    assert_eq!(
        args(None, None, cmd_only.clone()).unwrap(),
        ["/bin/sh", "-c", "echo hi"]
    );
    assert_eq!(args(None, None, entry_only.clone()).unwrap(), ["/entry"]);
    // Args replace the image's cmd, after its entrypoint.
    assert_eq!(
        args(None, Some(&["ls"]), both.clone()).unwrap(),
        ["/entry", "-x", "ls"]
    );
    assert_eq!(args(None, Some(&["ls"]), cmd_only.clone()).unwrap(), ["ls"]);
    // --entrypoint drops the image's cmd as well.
    assert_eq!(
        args(Some(&["/other"]), None, both.clone()).unwrap(),
        ["/other"]
    );
    assert_eq!(
        args(Some(&["/other"]), Some(&["a", "b"]), both.clone()).unwrap(),
        ["/other", "a", "b"]
    );
    // --entrypoint "": no entrypoint at all.
    assert_eq!(
        args(Some(&[]), Some(&["ls", "-l"]), both.clone()).unwrap(),
        ["ls", "-l"]
    );
    assert!(matches!(
        args(Some(&[]), None, both),
        Err(SpecError::NoCommand)
    ));
    assert_eq!(
        args(None, None, json!({})).unwrap_err().to_string(),
        "No command specified"
    );
    // An empty argument list counts as none.
    assert_eq!(
        args(None, Some(&[]), cmd_only).unwrap(),
        ["/bin/sh", "-c", "echo hi"]
    );
}

fn env_of(config: &ContainerConfig, image_env: Value) -> Vec<String> {
    let spec = spec_with(&host(), config, json!({"Cmd": ["sh"], "Env": image_env})).unwrap();
    spec.process().as_ref().unwrap().env().clone().unwrap()
}

#[test]
fn environment_merges_key_wise() {
    let mut c = config();
    c.env = vec![
        "B=from-user".into(),
        "C=1".into(),
        "C=2".into(),
        "D".into(),
        "E=x=y".into(),
    ];
    let env = env_of(&c, json!(["PATH=/image/bin", "A=a", "B=b", "D=gone"]));
    assert_eq!(
        env,
        [
            "PATH=/image/bin",
            "HOSTNAME=0123456789ab",
            "A=a",
            "B=from-user",
            "C=2",
            "E=x=y",
            "HOME=/root",
        ]
    );
}

#[test]
fn environment_defaults() {
    let mut c = config();
    c.tty = true;
    c.user = Some("app".into());
    let env = env_of(&c, json!([]));
    assert_eq!(
        env,
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOSTNAME=0123456789ab",
            "TERM=xterm",
            "HOME=/home/app",
        ]
    );
    c.env = vec!["HOME=/elsewhere".into(), "TERM=vt100".into()];
    let env = env_of(&c, json!([]));
    assert!(env.contains(&"HOME=/elsewhere".to_owned()));
    assert!(env.contains(&"TERM=vt100".to_owned()));
    assert!(!env.contains(&"TERM=xterm".to_owned()));
}

#[test]
fn working_directory() {
    let cwd = |c: &ContainerConfig, image_config: Value| {
        spec_with(&host(), c, image_config).map(|s| s.process().as_ref().unwrap().cwd().clone())
    };
    let mut c = config();
    assert_eq!(cwd(&c, json!({"Cmd": ["sh"]})).unwrap(), PathBuf::from("/"));
    assert_eq!(
        cwd(&c, json!({"Cmd": ["sh"], "WorkingDir": "/srv"})).unwrap(),
        PathBuf::from("/srv")
    );
    c.workdir = Some("/data".into());
    assert_eq!(
        cwd(&c, json!({"Cmd": ["sh"], "WorkingDir": "/srv"})).unwrap(),
        PathBuf::from("/data")
    );
    c.workdir = Some("data".into());
    assert_eq!(
        cwd(&c, json!({"Cmd": ["sh"]})).unwrap_err().to_string(),
        "the working directory 'data' is invalid, it needs to be an absolute path"
    );
}

#[test]
fn user_comes_from_the_flag_or_the_image() {
    let user = |c: &ContainerConfig, image_config: Value| {
        spec_with(&host(), c, image_config).map(|s| {
            let u = s.process().as_ref().unwrap().user().clone();
            (u.uid(), u.gid(), u.additional_gids().clone())
        })
    };
    let mut c = config();
    assert_eq!(user(&c, json!({"Cmd": ["sh"]})).unwrap(), (0, 0, None));
    assert_eq!(
        user(&c, json!({"Cmd": ["sh"], "User": "app"})).unwrap(),
        (1000, 1000, None)
    );
    c.user = Some("1234:5".into());
    c.group_add = vec!["app".into()];
    assert_eq!(
        user(&c, json!({"Cmd": ["sh"], "User": "app"})).unwrap(),
        (1234, 5, Some(vec![1000]))
    );
    c.user = Some("nobody".into());
    assert_eq!(
        user(&c, json!({"Cmd": ["sh"]})).unwrap_err().to_string(),
        "unable to find user nobody: no matching entries in passwd file"
    );
}

fn caps_of(spec: &Spec) -> Vec<Capability> {
    let caps = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .clone()
        .unwrap();
    let mut effective: Vec<Capability> = caps.effective().clone().unwrap().into_iter().collect();
    effective.sort_by_key(|c| runtime_core::capabilities::name(*c));
    assert_eq!(caps.bounding(), caps.effective());
    assert_eq!(caps.permitted(), caps.effective());
    assert_eq!(caps.inheritable(), &None);
    assert_eq!(caps.ambient(), &None);
    effective
}

fn names(caps: &[Capability]) -> Vec<&'static str> {
    caps.iter()
        .map(|c| runtime_core::capabilities::name(*c))
        .collect()
}

#[test]
fn docker_default_capabilities() {
    let caps = caps_of(&spec(&config()));
    assert_eq!(
        names(&caps),
        [
            "CAP_AUDIT_WRITE",
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FOWNER",
            "CAP_FSETID",
            "CAP_KILL",
            "CAP_MKNOD",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_RAW",
            "CAP_SETFCAP",
            "CAP_SETGID",
            "CAP_SETPCAP",
            "CAP_SETUID",
            "CAP_SYS_CHROOT",
        ]
    );
}

#[test]
fn capabilities_add_drop_and_all() {
    let with = |add: &[&str], drop: &[&str]| {
        let mut c = config();
        c.cap_add = add.iter().map(|s| parse_cap(s).unwrap()).collect();
        c.cap_drop = drop.iter().map(|s| parse_cap(s).unwrap()).collect();
        caps_of(&spec(&c))
    };
    let added = with(&["net_admin", "CAP_SYS_PTRACE"], &["chown", "MKNOD"]);
    assert!(added.contains(&Capability::NetAdmin));
    assert!(added.contains(&Capability::SysPtrace));
    assert!(!added.contains(&Capability::Chown));
    assert!(!added.contains(&Capability::Mknod));
    assert_eq!(added.len(), 14);

    assert_eq!(
        names(&with(&["NET_BIND_SERVICE"], &["ALL"])),
        ["CAP_NET_BIND_SERVICE"]
    );
    assert!(with(&[], &["ALL"]).is_empty());

    let all = with(&["ALL"], &["SYS_ADMIN"]);
    assert_eq!(all.len(), 40);
    assert!(!all.contains(&Capability::SysAdmin));
    // Adding one twice, or adding a default one, lists it once.
    assert_eq!(with(&["KILL", "kill"], &[]).len(), 14);
}

#[test]
fn all_means_what_the_kernel_knows() {
    let mut old = host();
    old.last_cap = 37; // CAP_AUDIT_READ: before perfmon, bpf, checkpoint_restore
    let mut c = config();
    c.cap_add = vec![parse_cap("ALL").unwrap()];
    let caps = caps_of(&spec_with(&old, &c, json!({"Cmd": ["sh"]})).unwrap());
    assert_eq!(caps.len(), 38);
    assert!(!caps.contains(&Capability::Bpf));
}

#[test]
fn only_what_the_engine_holds() {
    // A root without CAP_SYS_RESOURCE (24) nor CAP_AUDIT_WRITE (29).
    let mut restricted = host();
    restricted.holdable_caps &= !((1 << 24) | (1 << 29));
    let mut c = config();
    c.privileged = true;
    let caps = caps_of(&spec_with(&restricted, &c, json!({"Cmd": ["sh"]})).unwrap());
    assert_eq!(caps.len(), 39);
    assert!(!caps.contains(&Capability::SysResource));
    let defaults = caps_of(&spec_with(&restricted, &config(), json!({"Cmd": ["sh"]})).unwrap());
    assert_eq!(defaults.len(), 13);
    assert!(!defaults.contains(&Capability::AuditWrite));
    let mut c = config();
    c.cap_add = vec![parse_cap("SYS_RESOURCE").unwrap()];
    assert_eq!(
        spec_with(&restricted, &c, json!({"Cmd": ["sh"]}))
            .unwrap_err()
            .to_string(),
        "--cap-add CAP_SYS_RESOURCE: muelle does not hold this capability itself (this host withholds it from root), so no container can have it"
    );
}

fn linux(spec: &Spec) -> &oci_spec::runtime::Linux {
    spec.linux().as_ref().unwrap()
}

#[test]
fn masked_and_readonly_paths_unless_privileged() {
    let normal = spec(&config());
    let masked = linux(&normal).masked_paths().clone().unwrap();
    assert_eq!(masked, DEFAULT_MASKED_PATHS.map(str::to_owned));
    for path in ["/proc/kcore", "/proc/keys", "/sys/firmware", "/proc/scsi"] {
        assert!(masked.contains(&path.to_owned()), "{path}");
    }
    assert_eq!(
        linux(&normal).readonly_paths().clone().unwrap(),
        [
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ]
    );

    let mut with_thermal = host();
    with_thermal.thermal_throttle = vec!["/sys/devices/system/cpu/cpu0/thermal_throttle".into()];
    let spec_thermal = spec_with(&with_thermal, &config(), json!({"Cmd": ["sh"]})).unwrap();
    assert_eq!(
        linux(&spec_thermal).masked_paths().as_ref().unwrap().len(),
        13
    );

    let mut c = config();
    c.privileged = true;
    let privileged = spec(&c);
    assert_eq!(
        linux(&privileged)
            .masked_paths()
            .clone()
            .unwrap_or_default(),
        Vec::<String>::new()
    );
    assert_eq!(
        linux(&privileged)
            .readonly_paths()
            .clone()
            .unwrap_or_default(),
        Vec::<String>::new()
    );

    let mut c = config();
    c.security.unmask_system_paths = true;
    assert!(linux(&spec(&c)).masked_paths().as_ref().unwrap().is_empty());
}

#[test]
fn privileged_lifts_the_rest() {
    let mut c = config();
    c.privileged = true;
    let s = spec(&c);
    assert_eq!(caps_of(&s).len(), 41);
    assert!(linux(&s).seccomp().is_none());
    let value = serde_json::to_value(&s).unwrap();
    let sys = mount_json(&value, "/sys");
    assert!(sys["options"].as_array().unwrap().contains(&json!("rw")));
    let cgroup = mount_json(&value, "/sys/fs/cgroup");
    assert!(cgroup["options"].as_array().unwrap().contains(&json!("rw")));
    assert_eq!(
        value["linux"]["resources"]["devices"],
        json!([{"allow": true, "access": "rwm"}])
    );
    let devices = linux(&s).devices().clone().unwrap();
    let null = devices
        .iter()
        .find(|d| d.path() == &PathBuf::from("/dev/null"))
        .expect("the host's /dev/null is passed");
    assert_eq!((null.major(), null.minor()), (1, 3));
    assert!(!devices.iter().any(|d| d.path().starts_with("/dev/pts")));
    assert!(
        !devices
            .iter()
            .any(|d| d.path() == &PathBuf::from("/dev/ptmx"))
    );
}

#[test]
fn seccomp_default_unconfined_and_custom() {
    let s = spec(&config());
    let seccomp = linux(&s).seccomp().clone().expect("docker's profile");
    // The default profile denies by default and allows by name.
    assert!(seccomp.syscalls().as_ref().is_some_and(|s| s.len() > 10));

    let mut c = config();
    c.security.seccomp = SeccompProfile::Unconfined;
    assert!(linux(&spec(&c)).seccomp().is_none());

    c.security.seccomp = SeccompProfile::Custom {
        source: "/p.json".into(),
        json: r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ERRNO","includes":{"caps":["CAP_SYS_ADMIN"]}},{"names":["ptrace"],"action":"SCMP_ACT_ERRNO"}]}"#.into(),
    };
    let custom = linux(&spec(&c)).seccomp().clone().unwrap();
    let syscalls = custom.syscalls().clone().unwrap();
    assert_eq!(syscalls.len(), 1, "the CAP_SYS_ADMIN rule does not apply");
    assert_eq!(syscalls[0].names(), &["ptrace".to_owned()]);
}

#[test]
fn no_new_privileges_only_when_asked() {
    let process = |c: &ContainerConfig| spec(c).process().clone().unwrap();
    assert_eq!(process(&config()).no_new_privileges(), Some(false));
    let mut c = config();
    c.security.no_new_privileges = true;
    assert_eq!(process(&c).no_new_privileges(), Some(true));
}

fn mount_json<'a>(spec: &'a Value, destination: &str) -> &'a Value {
    spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == destination)
        .unwrap_or_else(|| panic!("no mount at {destination}"))
}

#[test]
fn the_spec_has_dockers_shape() {
    let mut c = config();
    c.resources.shm_size = 128 << 20;
    let value = serde_json::to_value(spec(&c)).unwrap();
    let destinations: Vec<&str> = value["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    assert_eq!(
        destinations,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup"
        ]
    );
    assert_eq!(
        mount_json(&value, "/dev")["options"],
        json!(["nosuid", "strictatime", "mode=755", "size=65536k"])
    );
    assert_eq!(
        mount_json(&value, "/dev/pts")["options"],
        json!([
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5"
        ])
    );
    assert_eq!(
        mount_json(&value, "/dev/shm")["options"],
        json!(["nosuid", "noexec", "nodev", "mode=1777", "size=134217728"])
    );
    assert_eq!(
        mount_json(&value, "/sys")["options"],
        json!(["nosuid", "noexec", "nodev", "ro"])
    );
    assert_eq!(value["hostname"], "0123456789ab");
    assert_eq!(value["root"]["readonly"], false);
    let process = &value["process"];
    assert_eq!(process["terminal"], false);
    assert!(process.get("rlimits").is_none(), "inherited: {process}");
    assert!(process.get("oomScoreAdj").is_none());
    assert!(process["capabilities"].get("ambient").is_none());
    assert!(process["capabilities"].get("inheritable").is_none());
    assert!(value.get("annotations").is_none());
    let linux = &value["linux"];
    assert!(
        linux.get("cgroupsPath").is_none(),
        "runtime-core's /muelle/<id>"
    );
    assert!(linux.get("sysctl").is_none());
    assert!(linux.get("devices").is_none());
    let namespaces: Vec<&str> = linux["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, ["pid", "ipc", "uts", "mount", "network"]);
    let rules = linux["resources"]["devices"].as_array().unwrap();
    assert_eq!(rules[0], json!({"allow": false, "access": "rwm"}));
    assert!(
        rules.contains(
            &json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"})
        )
    );
    assert!(rules.contains(&json!({"allow": true, "type": "c", "major": 136, "access": "rwm"})));
    assert!(rules.contains(&json!({"allow": true, "type": "b", "access": "m"})));
    assert!(!rules.iter().any(|r| r["type"] == "b" && r["access"] != "m"));
    assert!(linux["resources"].get("memory").is_none());
}

#[test]
fn namespaces_follow_network_and_cgroup_version() {
    let types = |h: &Host, c: &ContainerConfig| -> Vec<LinuxNamespaceType> {
        linux(&spec_with(h, c, json!({"Cmd": ["sh"]})).unwrap())
            .namespaces()
            .clone()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect()
    };
    let mut v2 = host();
    v2.cgroup_v2 = true;
    assert!(types(&v2, &config()).contains(&LinuxNamespaceType::Cgroup));
    assert!(!types(&host(), &config()).contains(&LinuxNamespaceType::Cgroup));

    let mut c = config();
    c.network = crate::config::NetworkMode::Host;
    assert!(!types(&host(), &c).contains(&LinuxNamespaceType::Network));
    let s = spec(&c);
    assert_eq!(s.hostname().as_deref(), Some("the-host"));
    c.hostname = Some("web".into());
    assert_eq!(spec(&c).hostname().as_deref(), Some("web"));

    c.network = crate::config::NetworkMode::Bridge;
    assert!(types(&host(), &c).contains(&LinuxNamespaceType::Network));
}

#[test]
fn resources_as_docker_sets_them() {
    let mut c = config();
    c.resources.memory = Some(512 << 20);
    c.resources.cpus = Some(parse_cpus("1.5").unwrap());
    c.resources.cpu_shares = Some(512);
    c.resources.pids_limit = Some(100);
    let value = serde_json::to_value(spec(&c)).unwrap();
    let r = &value["linux"]["resources"];
    assert_eq!(r["memory"], json!({"limit": 536870912, "swap": 1073741824}));
    assert_eq!(
        r["cpu"],
        json!({"shares": 512, "quota": 150000, "period": 100000})
    );
    assert_eq!(r["pids"], json!({"limit": 100}));

    c.resources.memory_swap = Some(MemorySwap::Unlimited);
    let value = serde_json::to_value(spec(&c)).unwrap();
    assert_eq!(value["linux"]["resources"]["memory"]["swap"], -1);

    let mut no_swap = host();
    no_swap.swap_limit = false;
    let s = spec_with(&no_swap, &c, json!({"Cmd": ["sh"]})).unwrap();
    let value = serde_json::to_value(s).unwrap();
    assert_eq!(
        value["linux"]["resources"]["memory"],
        json!({"limit": 536870912})
    );

    c.resources.cpus = Some(parse_cpus("4").unwrap());
    assert_eq!(
        spec_with(&host(), &c, json!({"Cmd": ["sh"]}))
            .unwrap_err()
            .to_string(),
        "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
    );
}

#[test]
fn ulimits_apply_within_the_hosts_hard_limits() {
    let mut c = config();
    c.resources
        .set_ulimit(parse_ulimit("nofile=1024:2048").unwrap());
    c.resources.set_ulimit(parse_ulimit("core=-1").unwrap());
    let value = serde_json::to_value(spec(&c)).unwrap();
    assert_eq!(
        value["process"]["rlimits"],
        json!([
            {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048},
            {"type": "RLIMIT_CORE", "soft": u64::MAX, "hard": u64::MAX}
        ])
    );
    c.resources
        .set_ulimit(parse_ulimit("nofile=1024:30000").unwrap());
    assert_eq!(
        spec_with(&host(), &c, json!({"Cmd": ["sh"]}))
            .unwrap_err()
            .to_string(),
        "ulimit nofile: hard limit 30000 is above this host's hard limit 20000, and raising it needs CAP_SYS_RESOURCE"
    );
    let mut root = host();
    root.can_raise_rlimits = true;
    spec_with(&root, &c, json!({"Cmd": ["sh"]})).unwrap();
}

#[test]
fn user_mounts_after_the_defaults() {
    let mut c = config();
    c.read_only = true;
    c.mounts = vec![
        MountSpec::Tmpfs(TmpfsMount {
            target: "/data/cache".into(),
            size: Some(1 << 20),
            mode: Some(0o1777),
            read_only: false,
        }),
        MountSpec::Bind(BindMount {
            source: "/srv/host".into(),
            target: "/data".into(),
            read_only: true,
            propagation: Propagation::RSlave,
            selinux_relabel: None,
        }),
        MountSpec::Volume(VolumeMount {
            name: Some("db".into()),
            target: "/var/lib/db".into(),
            read_only: false,
            nocopy: false,
            driver_opts: Vec::new(),
            subpath: None,
        }),
        MountSpec::Tmpfs(TmpfsMount {
            target: "/dev/shm".into(),
            size: None,
            mode: None,
            read_only: false,
        }),
    ];
    let rootfs = Rootfs::new();
    let mut resolved = ResolvedMounts {
        extra_binds: vec![ExtraBind {
            source: "/run/muelle/ct/hosts".into(),
            target: "/etc/hosts".into(),
            read_only: false,
        }],
        ..ResolvedMounts::default()
    };
    let build = |resolved: &ResolvedMounts| {
        build_on(
            &host(),
            &c,
            &image(json!({"Cmd": ["sh"]})),
            rootfs.0.path(),
            resolved,
            ID,
        )
    };
    assert_eq!(
        build(&resolved).unwrap_err().to_string(),
        "no host folder for the volume at /var/lib/db: the engine mounts volumes before it builds the spec"
    );
    resolved.volumes.insert(
        "/var/lib/db".into(),
        "/var/lib/muelle/volumes/db/_data".into(),
    );
    let value = serde_json::to_value(build(&resolved).unwrap()).unwrap();
    assert_eq!(value["root"]["readonly"], true);
    let mounts: Vec<(&str, &str)> = value["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["destination"].as_str().unwrap(),
                m["type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        mounts,
        [
            ("/proc", "proc"),
            ("/dev", "tmpfs"),
            ("/dev/pts", "devpts"),
            ("/dev/mqueue", "mqueue"),
            ("/sys", "sysfs"),
            ("/sys/fs/cgroup", "cgroup"),
            ("/etc/hosts", "bind"),
            ("/data", "bind"),
            ("/data/cache", "tmpfs"),
            ("/dev/shm", "tmpfs"),
            ("/var/lib/db", "bind"),
        ]
    );
    assert_eq!(
        mount_json(&value, "/data")["options"],
        json!(["rbind", "rslave", "ro"])
    );
    assert_eq!(mount_json(&value, "/data")["source"], "/srv/host");
    assert_eq!(
        mount_json(&value, "/data/cache")["options"],
        json!(["noexec", "nosuid", "nodev", "size=1048576", "mode=1777"])
    );
    assert_eq!(
        mount_json(&value, "/var/lib/db")["source"],
        "/var/lib/muelle/volumes/db/_data"
    );
    assert_eq!(
        mount_json(&value, "/var/lib/db")["options"],
        json!(["rbind", "rprivate"])
    );
    assert_eq!(mount_json(&value, "/dev/shm")["source"], "tmpfs");
    assert_eq!(value["linux"]["rootfsPropagation"], "rslave");
}

#[test]
fn init_goes_in_front() {
    let mut c = config();
    c.init = true;
    assert!(matches!(
        spec_with(&host(), &c, json!({"Cmd": ["sh"]})),
        Err(SpecError::InitUnavailable)
    ));
    let rootfs = Rootfs::new();
    let resolved = ResolvedMounts {
        init: Some("/usr/libexec/muelle/init".into()),
        ..ResolvedMounts::default()
    };
    let s = build_on(
        &host(),
        &c,
        &image(json!({"Cmd": ["sh"]})),
        rootfs.0.path(),
        &resolved,
        ID,
    )
    .unwrap();
    assert_eq!(
        s.process().as_ref().unwrap().args().clone().unwrap(),
        [INIT_PATH, "--", "sh"]
    );
    let value = serde_json::to_value(&s).unwrap();
    let init = mount_json(&value, INIT_PATH);
    assert_eq!(init["source"], "/usr/libexec/muelle/init");
    assert_eq!(init["options"], json!(["rbind", "rprivate", "ro"]));
}

#[test]
fn sysctls_and_tty() {
    let mut c = config();
    c.tty = true;
    c.sysctls = BTreeMap::from([("net.ipv4.ip_forward".to_owned(), "1".to_owned())]);
    let value = serde_json::to_value(spec(&c)).unwrap();
    assert_eq!(value["process"]["terminal"], true);
    assert_eq!(
        value["linux"]["sysctl"],
        json!({"net.ipv4.ip_forward": "1"})
    );
}
