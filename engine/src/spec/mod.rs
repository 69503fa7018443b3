//! A container's configuration plus its image's configuration → the OCI
//! runtime spec that runtime-core runs, with docker's defaults: the ones
//! of "Defaults that are secure" (docker's capability set and seccomp
//! profile, masked and read-only /proc paths, a private /dev with only the
//! default devices), lifted by `--privileged`.
//!
//! [`build`] reads the host (cgroup layout, limits, CPUs: [`Host`]) and the
//! container's rootfs (/etc/passwd and /etc/group, resolved inside the
//! rootfs so an image symlink never makes us read a host file); it writes
//! nothing. [`build_on`] takes the host facts as an argument, for tests.
//!
//! Choices:
//! - `linux.cgroupsPath` is left empty: runtime-core then places the
//!   container at `/muelle/<id>` in every hierarchy and knows the parent is
//!   shared (it retries a create that races the parent's removal, which an
//!   explicit "/muelle/<id>" would not get).
//! - Rlimits are inherited (docker's default) unless `--ulimit` asks; a
//!   hard limit above the host's is refused here, with the reason, unless
//!   the engine holds CAP_SYS_RESOURCE to raise it.
//! - `--privileged` passes every host device (as docker: runc's HostDevices
//!   skip list), allows all in the device cgroup, and lifts capabilities,
//!   seccomp, masked/read-only paths and the read-only /sys and cgroup
//!   mounts. "All capabilities" means those the kernel knows and the
//!   engine itself holds: a container cloned from the engine cannot get
//!   more, and asking would fail in capset(2).
//! - Capabilities go in bounding, effective and permitted only (docker
//!   23+), so a non-root user's command keeps none across its exec, as
//!   under docker.
//! - The network defaults to `none` until muelle has networks; `bridge`
//!   is refused with a "not available yet" error.
//! - A spec whose capabilities include CAP_SYS_PTRACE (`--privileged`,
//!   `--cap-add SYS_PTRACE`) makes runtime-core's create ask to run from a
//!   sealed copy of the binary (`Error::SealedExeRequired`): the caller
//!   that runs it must handle that (see tests/spec_runs.rs).

mod host;
mod mounts;
pub(crate) mod process;
mod resources;
pub(crate) mod seccomp;
pub(crate) mod security;
mod user;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{
    LinuxBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder,
};

use crate::config::{ContainerConfig, FlagError, NetworkMode};

pub use host::Host;
pub use mounts::{DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS};
pub use process::INIT_PATH;
pub use user::{ExecUser, resolve_user};

/// What the engine prepared on the host before the spec is built.
#[derive(Debug, Clone, Default)]
pub struct ResolvedMounts {
    /// The host folder of each volume mount of the config, by its target
    /// in the container: mounted by the caller, subpath already applied.
    pub volumes: BTreeMap<PathBuf, PathBuf>,
    /// Files the engine provides, such as /etc/hostname, /etc/hosts and
    /// /etc/resolv.conf: bound after the default mounts and before the
    /// user's, unless the user mounts something on the same target.
    pub extra_binds: Vec<ExtraBind>,
    /// The host path of muelle's init (the reaper `--init` puts in front
    /// of the command), bound read-only at [`INIT_PATH`].
    pub init: Option<PathBuf>,
    /// The network namespace the container joins (its sandbox's, or the
    /// one of the container whose network it shares); `None`: a new one
    /// with only loopback, unless the network is the host's.
    pub netns: Option<PathBuf>,
}

/// A host file or folder bound into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraBind {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error("No command specified")]
    NoCommand,
    #[error("the working directory '{0}' is invalid, it needs to be an absolute path")]
    RelativeWorkdir(String),
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UnknownUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    UnknownGroup(String),
    #[error("uids and gids must be in range 0-2147483647")]
    IdRange,
    #[error("reading {path} in the container's root filesystem: {source}")]
    RootfsFile {
        path: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} in the container's root filesystem is not a regular file")]
    NotRegularFile(&'static str),
    #[error("no host folder for the volume at {}: the engine mounts volumes before it builds the spec", .0.display())]
    VolumeNotMounted(PathBuf),
    #[error(
        "--init needs a static init binary on the host: install tini (tini-static) or catatonit, or set MUELLE_INIT to one"
    )]
    InitUnavailable,
    #[error("MUELLE_INIT={}: not a statically linked executable, which --init needs (the container has none of the host's libraries)", .0.display())]
    InitNotStatic(PathBuf),
    #[error(
        "ulimit {name}: hard limit {asked} is above this host's hard limit {host}, and raising it needs CAP_SYS_RESOURCE"
    )]
    UlimitAboveHost {
        name: crate::config::UlimitName,
        asked: String,
        host: String,
    },
    #[error(
        "--cap-add {0}: muelle does not hold this capability itself (this host withholds it from root), so no container can have it"
    )]
    CapabilityNotHeld(&'static str),
    #[error("seccomp profile {}: {reason}", .source_path.display())]
    SeccompProfile {
        source_path: PathBuf,
        reason: String,
    },
    #[error("building the OCI spec: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
}

pub type Result<T, E = SpecError> = std::result::Result<T, E>;

/// The OCI spec for container `id` (64 hex characters, as docker's) of
/// `config`, whose image has `image` as configuration and whose root
/// filesystem is mounted at `rootfs`.
pub fn build(
    config: &ContainerConfig,
    image: &ImageConfiguration,
    rootfs: &Path,
    resolved: &ResolvedMounts,
    id: &str,
) -> Result<Spec> {
    build_on(&Host::detect(), config, image, rootfs, resolved, id)
}

/// [`build`] against given host facts.
pub fn build_on(
    host: &Host,
    config: &ContainerConfig,
    image: &ImageConfiguration,
    rootfs: &Path,
    resolved: &ResolvedMounts,
    id: &str,
) -> Result<Spec> {
    config.resources.validate(host.cpus)?;
    let image_config = image.config().as_ref();
    let hostname = hostname(config, host, id);

    let user_text = config
        .user
        .clone()
        .or_else(|| image_config.and_then(|c| c.user().clone()))
        .unwrap_or_default();
    let exec_user = resolve_user(rootfs, &user_text, &config.group_add)?;

    let mut args = process::args(config, image_config)?;
    if config.init {
        if resolved.init.is_none() {
            return Err(SpecError::InitUnavailable);
        }
        args = process::behind_init(args);
    }
    let env = process::env(config, image_config, &hostname, &exec_user.home);
    let cwd = process::cwd(config, image_config)?;

    let caps = security::capabilities(config, host)?;
    let mut user = UserBuilder::default()
        .uid(exec_user.uid)
        .gid(exec_user.gid)
        .build()?;
    if !exec_user.additional_gids.is_empty() {
        user.set_additional_gids(Some(exec_user.additional_gids.clone()));
    }
    let mut process = ProcessBuilder::default()
        .terminal(config.tty)
        .user(user)
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(security::linux_capabilities(&caps))
        .no_new_privileges(config.security.no_new_privileges)
        .build()?;
    // The builder starts from oci-spec's defaults (an RLIMIT_NOFILE of
    // 1024 among them): inherit unless --ulimit asks.
    process.set_rlimits(resources::rlimits(&config.resources, host)?);
    process.set_console_size(None);
    process.set_oom_score_adj(None);

    let mut namespaces = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ];
    if config.network != NetworkMode::Host {
        namespaces.push(LinuxNamespaceType::Network);
    }
    // Docker's default cgroupns mode: private on cgroup v2, the host's on
    // v1 (where a cgroup namespace shows little and old tools break).
    if host.cgroup_v2 {
        namespaces.push(LinuxNamespaceType::Cgroup);
    }
    let namespaces = namespaces
        .into_iter()
        .map(|typ| {
            let builder = LinuxNamespaceBuilder::default().typ(typ);
            match (&resolved.netns, typ) {
                (Some(path), LinuxNamespaceType::Network) => builder.path(path.clone()).build(),
                _ => builder.build(),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mounts = mounts::all(config, resolved)?;
    let (masked, readonly) = mounts::system_paths(config, host);
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources::linux_resources(config, host)?)
        .masked_paths(masked)
        .readonly_paths(readonly)
        .build()?;
    linux.set_devices(resources::devices(config, host));
    linux.set_seccomp(security::seccomp(config, host, &caps)?);
    linux.set_sysctl((!config.sysctls.is_empty()).then(|| {
        config
            .sysctls
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }));
    linux.set_rootfs_propagation(mounts::rootfs_propagation(config));
    linux.set_cgroups_path(None);

    let root = RootBuilder::default()
        .path(rootfs)
        .readonly(config.read_only)
        .build()?;
    let mut spec = SpecBuilder::default()
        .version(OCI_VERSION)
        .root(root)
        .mounts(mounts)
        .process(process)
        .hostname(hostname)
        .linux(linux)
        .build()?;
    spec.set_annotations(None);
    spec.set_hooks(None);
    Ok(spec)
}

/// The container's host name: `-h`, else (as docker) the host's with the
/// host's network, else the first 12 characters of the id.
pub fn hostname(config: &ContainerConfig, host: &Host, id: &str) -> String {
    match (&config.hostname, &config.network) {
        (Some(name), _) => name.clone(),
        (None, NetworkMode::Host) => host.hostname.clone(),
        (None, _) => id.chars().take(12).collect(),
    }
}

/// The process `config` runs in its image, entrypoint and command merged
/// as docker does (docker's `Path` is the first word, `Args` the rest).
pub fn command(config: &ContainerConfig, image: &ImageConfiguration) -> Result<Vec<String>> {
    process::args(config, image.config().as_ref())
}

/// The runtime-spec version the spec follows.
const OCI_VERSION: &str = "1.2.0";

#[cfg(test)]
mod tests;
