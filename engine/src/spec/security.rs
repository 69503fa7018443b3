//! Capabilities and seccomp: docker's defaults, `--cap-add/--cap-drop`,
//! `--privileged` and `--security-opt seccomp=...`.

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, LinuxSeccomp};
use runtime_core::capabilities;

use super::seccomp::DockerProfile;
use super::{Host, Result, SpecError};
use crate::config::{CapName, ContainerConfig, KERNEL_CAPABILITIES, SeccompProfile};

/// The container's capabilities, as docker's `TweakCapabilities`:
/// privileged → all; `--cap-add ALL` → all but the dropped; `--cap-drop
/// ALL` → only the added; else the default set minus the dropped plus the
/// added.
///
/// "All" is what the running kernel knows and the engine holds: the
/// container's init is cloned from the engine and can only keep what the
/// engine has, so asking for more would fail in capset(2). A default the
/// engine lacks is left out for the same reason; an explicitly added one
/// is refused, with the reason.
pub fn capabilities(config: &ContainerConfig, host: &Host) -> Result<Vec<Capability>> {
    let holdable = |name: &str| {
        KERNEL_CAPABILITIES
            .iter()
            .position(|known| *known == name)
            .is_some_and(|i| i <= usize::from(host.last_cap) && host.holdable_caps & (1 << i) != 0)
    };
    let all = || {
        KERNEL_CAPABILITIES
            .iter()
            .filter(|name| holdable(name))
            .filter_map(|name| capabilities::from_name(name))
    };
    if config.privileged {
        return Ok(all().collect());
    }
    let named = |list: &[CapName]| -> Vec<Capability> {
        list.iter()
            .filter_map(|c| match c {
                CapName::One(cap) => Some(*cap),
                CapName::All => None,
            })
            .collect()
    };
    let (add, drop) = (named(&config.cap_add), named(&config.cap_drop));
    if let Some(missing) = add
        .iter()
        .map(|c| capabilities::name(*c))
        .find(|name| !holdable(name))
    {
        return Err(SpecError::CapabilityNotHeld(missing));
    }
    let caps: Vec<Capability> = if config.cap_add.contains(&CapName::All) {
        all().filter(|c| !drop.contains(c)).collect()
    } else if config.cap_drop.contains(&CapName::All) {
        add
    } else {
        capabilities::docker_default()
            .iter()
            .filter(|name| holdable(name))
            .filter_map(|name| capabilities::from_name(name))
            .filter(|c| !drop.contains(c))
            .chain(add)
            .collect()
    };
    let mut unique = Vec::with_capacity(caps.len());
    for cap in caps {
        if !unique.contains(&cap) {
            unique.push(cap);
        }
    }
    Ok(unique)
}

/// Bounding, effective and permitted hold the set; inheritable and ambient
/// stay empty, as docker 23+ (an inheritable set let execve of a
/// file-capability binary gain capabilities, CVE-2022-24769).
pub fn linux_capabilities(caps: &[Capability]) -> LinuxCapabilities {
    let set: Capabilities = caps.iter().copied().collect();
    let mut linux = LinuxCapabilities::default();
    linux.set_bounding(Some(set.clone()));
    linux.set_effective(Some(set.clone()));
    linux.set_permitted(Some(set));
    linux.set_inheritable(None);
    linux.set_ambient(None);
    linux
}

/// Docker's default profile for the container's capabilities, none when
/// privileged or `seccomp=unconfined`, or the user's profile.
pub fn seccomp(
    config: &ContainerConfig,
    host: &Host,
    caps: &[Capability],
) -> Result<Option<LinuxSeccomp>> {
    // Docker ignores a profile for a privileged container as well.
    if config.privileged {
        return Ok(None);
    }
    let names: Vec<String> = caps
        .iter()
        .map(|c| capabilities::name(*c).to_owned())
        .collect();
    match &config.security.seccomp {
        SeccompProfile::Unconfined => Ok(None),
        SeccompProfile::Default => Ok(Some(runtime_core::seccomp::docker_default_profile(&names))),
        SeccompProfile::Custom { source, json } => {
            let error = |reason: String| SpecError::SeccompProfile {
                source_path: source.clone(),
                reason,
            };
            let profile = DockerProfile::parse(json).map_err(error)?;
            profile
                .to_oci(&names, std::env::consts::ARCH, host.kernel)
                .map(Some)
                .map_err(error)
        }
    }
}
