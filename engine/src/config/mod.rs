//! What `muelle run`/`create` asked for, typed, as it is stored in the
//! container's record: [`ContainerConfig`].
//!
//! The CLI fills it from flags with the parsers of this module (each one
//! refuses bad input with docker's words); the image's own configuration is
//! not merged in here but when the spec is built ([`crate::spec`]), so that
//! `inspect` can show what the user gave apart from what the image gave.

mod caps;
mod endpoints;
mod error;
mod flags;
mod security;
mod units;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use storage::mounts::MountSpec;

pub use caps::{CapName, KERNEL_CAPABILITIES, parse_cap};
pub use endpoints::{NetworkFlags, check_aliases, endpoints as network_endpoints, parse_mac};
pub use error::FlagError;
pub use flags::{
    NetworkMode, RestartPolicy, Ulimit, UlimitName, parse_network, parse_restart,
    parse_stop_signal, parse_ulimit,
};
pub use security::{SeccompProfile, SecurityOptions, parse_security_opts};
pub use units::{
    DEFAULT_SHM_SIZE, MemorySwap, NanoCpus, parse_cpus, parse_memory, parse_memory_swap,
    parse_shm_size, parse_size,
};

/// The image a container was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSource {
    /// The image's id (its config digest): what the container really runs,
    /// even after the tag moves.
    pub id: image::Digest,
    /// The reference as the user typed it (`busybox`, `localhost/app:v2`),
    /// shown by `ps` and `inspect` as docker does.
    pub reference: String,
}

/// Everything `run`/`create` flags set about a container.
///
/// `Option` fields are `None` when the flag was not given, so the image's
/// value (or docker's default) applies; fields added later must be
/// `#[serde(default)]` so older records still load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub image: ImageSource,
    /// The arguments after the image name; `None` when there were none.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// `--entrypoint`: `Some(vec![])` for `--entrypoint ""`, which clears
    /// the image's entrypoint. Any `--entrypoint` also drops the image's
    /// Cmd (docker's rule).
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// `-e` and `--env-file` entries in the order given: `KEY=VALUE`, or a
    /// bare `KEY` that unsets KEY (the CLI has already filled in bare keys
    /// that are set in its own environment, as docker's does).
    #[serde(default)]
    pub env: Vec<String>,
    /// `-w`: must be absolute (checked when the spec is built).
    #[serde(default)]
    pub workdir: Option<String>,
    /// `-u`: `user[:group]`, names or numbers; names are looked up in the
    /// image's /etc/passwd and /etc/group when the spec is built.
    #[serde(default)]
    pub user: Option<String>,
    /// `--group-add`: names or numbers.
    #[serde(default)]
    pub group_add: Vec<String>,
    /// `-h`; `None`: the first 12 characters of the id (the host's name
    /// with `--network host`).
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub tty: bool,
    /// `-i`: the monitor keeps the container's stdin open. No spec effect.
    #[serde(default)]
    pub open_stdin: bool,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub cap_add: Vec<CapName>,
    #[serde(default)]
    pub cap_drop: Vec<CapName>,
    /// `--security-opt`.
    #[serde(default)]
    pub security: SecurityOptions,
    #[serde(default)]
    pub resources: Resources,
    /// `--sysctl`; which namespace each belongs to is checked by the
    /// runtime.
    #[serde(default)]
    pub sysctls: BTreeMap<String, String>,
    /// `--init`: a reaper runs as PID 1 in front of the command.
    #[serde(default)]
    pub init: bool,
    /// `--stop-signal`, normalized (`SIGTERM`); `None`: the image's, else
    /// SIGTERM.
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// `--stop-timeout` in seconds; `None`: 10, as docker.
    #[serde(default)]
    pub stop_timeout: Option<i32>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `-v`, `--mount` and `--tmpfs`, already parsed (storage::mounts).
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
    /// `--volumes-from CONTAINER[:ro|:rw]`, as given; `create` copies
    /// that container's volume and bind mounts into the new one's.
    #[serde(default)]
    pub volumes_from: Vec<String>,
    #[serde(default)]
    pub network: NetworkMode,
    /// The networks the container joins, in order (eth0, eth1, ...):
    /// with a bridge network mode, the one `--network` named (with
    /// `--ip`, `--network-alias`, `--mac-address`), then those `network
    /// connect` added. Empty for the other modes.
    #[serde(default)]
    pub networks: Vec<network::EndpointConfig>,
    #[serde(default)]
    pub restart: RestartPolicy,
    /// `--rm`: the container (and its anonymous volumes) is removed when
    /// it exits.
    #[serde(default)]
    pub auto_remove: bool,
    /// `--add-host NAME:IP`, appended to the container's /etc/hosts.
    #[serde(default)]
    pub extra_hosts: Vec<(String, String)>,
    /// `--dns`: the nameservers of the container's resolv.conf instead of
    /// the host's.
    #[serde(default)]
    pub dns: Vec<String>,
    /// `-p`, as given (published by the network issue's bridge).
    #[serde(default)]
    pub publish: Vec<String>,
    /// `-P`.
    #[serde(default)]
    pub publish_all: bool,
}

impl ContainerConfig {
    /// A container of `image` with every flag at its default.
    pub fn new(image: ImageSource) -> ContainerConfig {
        ContainerConfig {
            image,
            cmd: None,
            entrypoint: None,
            env: Vec::new(),
            workdir: None,
            user: None,
            group_add: Vec::new(),
            hostname: None,
            tty: false,
            open_stdin: false,
            read_only: false,
            privileged: false,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            security: SecurityOptions::default(),
            resources: Resources::default(),
            sysctls: BTreeMap::new(),
            init: false,
            stop_signal: None,
            stop_timeout: None,
            labels: BTreeMap::new(),
            mounts: Vec::new(),
            volumes_from: Vec::new(),
            network: NetworkMode::default(),
            networks: Vec::new(),
            restart: RestartPolicy::default(),
            auto_remove: false,
            extra_hosts: Vec::new(),
            dns: Vec::new(),
            publish: Vec::new(),
            publish_all: false,
        }
    }
}

/// Resource limits (`--memory`, `--cpus`, ...). `None`: no limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// `-m`, bytes.
    #[serde(default)]
    pub memory: Option<u64>,
    /// `--memory-swap`: memory plus swap. `None` with a memory limit means
    /// twice the memory, as docker.
    #[serde(default)]
    pub memory_swap: Option<MemorySwap>,
    #[serde(default)]
    pub cpus: Option<NanoCpus>,
    #[serde(default)]
    pub cpu_shares: Option<u64>,
    /// `--pids-limit`; 0 or negative: unlimited, as docker.
    #[serde(default)]
    pub pids_limit: Option<i64>,
    /// `--ulimit`, one per name (a later flag replaces an earlier one).
    #[serde(default)]
    pub ulimits: Vec<Ulimit>,
    /// `--shm-size`, bytes: the size of /dev/shm.
    #[serde(default = "default_shm_size")]
    pub shm_size: u64,
}

fn default_shm_size() -> u64 {
    DEFAULT_SHM_SIZE
}

impl Default for Resources {
    fn default() -> Resources {
        Resources {
            memory: None,
            memory_swap: None,
            cpus: None,
            cpu_shares: None,
            pids_limit: None,
            ulimits: Vec::new(),
            shm_size: DEFAULT_SHM_SIZE,
        }
    }
}

impl Resources {
    /// Adds a `--ulimit`, replacing an earlier one of the same name (docker
    /// keeps them in a map by name).
    pub fn set_ulimit(&mut self, ulimit: Ulimit) {
        self.ulimits.retain(|u| u.name != ulimit.name);
        self.ulimits.push(ulimit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageSource {
        ImageSource {
            id: image::Digest::of_bytes(b"config"),
            reference: "busybox".into(),
        }
    }

    #[test]
    fn round_trips_through_json() {
        let mut config = ContainerConfig::new(image());
        config.entrypoint = Some(vec![]);
        config.cap_add = vec![parse_cap("net_admin").unwrap(), CapName::All];
        config.resources.memory = Some(parse_memory("512m").unwrap());
        config.resources.memory_swap = Some(parse_memory_swap("-1").unwrap());
        config.resources.cpus = Some(parse_cpus("1.5").unwrap());
        config
            .resources
            .set_ulimit(parse_ulimit("nofile=1024:2048").unwrap());
        config.restart = parse_restart("on-failure:3").unwrap();
        config.network = parse_network("host").unwrap();
        let text = serde_json::to_string(&config).unwrap();
        let back: ContainerConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, config);
        assert!(text.contains("\"CAP_NET_ADMIN\""), "{text}");
    }

    #[test]
    fn a_minimal_record_loads_with_defaults() {
        let text = format!(
            r#"{{"image": {{"id": "{}", "reference": "busybox"}}}}"#,
            image().id
        );
        let config: ContainerConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(config, ContainerConfig::new(image()));
        assert_eq!(config.resources.shm_size, 64 << 20);
        assert_eq!(config.network, NetworkMode::Bridge);
    }

    #[test]
    fn a_later_ulimit_replaces_an_earlier_one() {
        let mut resources = Resources::default();
        resources.set_ulimit(parse_ulimit("nofile=10").unwrap());
        resources.set_ulimit(parse_ulimit("nproc=5").unwrap());
        resources.set_ulimit(parse_ulimit("nofile=20:30").unwrap());
        assert_eq!(resources.ulimits.len(), 2);
        assert_eq!(resources.ulimits[1].soft, 20);
    }
}
