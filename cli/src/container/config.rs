//! `run`/`create` flags → the engine's `ContainerConfig`, each flag with
//! the engine's parser (docker's words on bad input).

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use engine::config::{
    self, ContainerConfig, ImageSource, NetworkMode, parse_cap, parse_cpus, parse_memory,
    parse_memory_swap, parse_network, parse_restart, parse_security_opts, parse_shm_size,
    parse_stop_signal, parse_ulimit,
};
use storage::mounts::{parse_mount_flag, parse_tmpfs_flag, parse_volume_flag};

use super::args::CreateFlags;

pub fn container_config(
    flags: &CreateFlags,
    image: ImageSource,
) -> anyhow::Result<ContainerConfig> {
    let mut c = ContainerConfig::new(image);
    c.cmd = (!flags.command.is_empty()).then(|| flags.command.clone());
    c.entrypoint = flags.entrypoint.as_ref().map(|e| {
        if e.is_empty() {
            Vec::new()
        } else {
            vec![e.clone()]
        }
    });
    for file in &flags.env_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("open {}: no such file or directory", file.display()))?;
        c.env.extend(env_file(&text).map(expand_env));
    }
    c.env.extend(
        flags
            .env
            .iter()
            .map(|e| expand_env(e.as_str()))
            .collect::<Vec<_>>(),
    );
    c.workdir = flags.workdir.clone();
    c.user = flags.user.clone();
    c.group_add = flags.group_add.clone();
    c.hostname = flags.hostname.clone();
    c.tty = flags.tty;
    c.open_stdin = flags.interactive;
    c.read_only = flags.read_only;
    c.privileged = flags.privileged;
    c.cap_add = flags
        .cap_add
        .iter()
        .map(|s| parse_cap(s))
        .collect::<Result<_, _>>()?;
    c.cap_drop = flags
        .cap_drop
        .iter()
        .map(|s| parse_cap(s))
        .collect::<Result<_, _>>()?;
    c.security = parse_security_opts(&flags.security_opt)?;
    let r = &mut c.resources;
    r.memory = flags.memory.as_deref().map(parse_memory).transpose()?;
    r.memory_swap = flags
        .memory_swap
        .as_deref()
        .map(parse_memory_swap)
        .transpose()?;
    r.cpus = flags.cpus.as_deref().map(parse_cpus).transpose()?;
    r.cpu_shares = flags.cpu_shares;
    r.pids_limit = flags.pids_limit;
    for u in &flags.ulimit {
        r.set_ulimit(parse_ulimit(u)?);
    }
    if let Some(size) = &flags.shm_size {
        r.shm_size = parse_shm_size(size)?;
    }
    c.sysctls = crate::volume::key_values(&flags.sysctl, "--sysctl")?;
    c.init = flags.init;
    c.stop_signal = flags
        .stop_signal
        .as_deref()
        .map(parse_stop_signal)
        .transpose()?;
    c.stop_timeout = flags.stop_timeout;
    c.labels = labels(&flags.label);
    for v in &flags.volume {
        c.mounts.push(parse_volume_flag(v)?);
    }
    for m in &flags.mount {
        c.mounts.push(parse_mount_flag(m)?);
    }
    for t in &flags.tmpfs {
        c.mounts.push(parse_tmpfs_flag(t)?);
    }
    if let Some(network) = &flags.network {
        c.network = parse_network(network)?;
    }
    if let Some(restart) = &flags.restart {
        c.restart = parse_restart(restart)?;
    }
    if flags.rm && c.restart != config::RestartPolicy::No {
        bail!("Conflicting options: --restart and --rm");
    }
    c.volumes_from = flags.volumes_from.clone();
    c.auto_remove = flags.rm;
    for entry in &flags.add_host {
        let Some((name, address)) = entry.split_once(':') else {
            bail!(
                "invalid argument \"{entry}\" for \"--add-host\" flag: bad format for add-host: \"{entry}\""
            );
        };
        if address.parse::<std::net::IpAddr>().is_err() && address != "host-gateway" {
            bail!(
                "invalid argument \"{entry}\" for \"--add-host\" flag: invalid IP address in add-host: \"{address}\""
            );
        }
        c.extra_hosts.push((name.to_owned(), address.to_owned()));
    }
    for server in &flags.dns {
        if server.parse::<std::net::IpAddr>().is_err() {
            bail!(
                "invalid argument \"{server}\" for \"--dns\" flag: {server} is not an ip address"
            );
        }
    }
    c.dns = flags.dns.clone();
    c.networks = config::network_endpoints(
        &c.network,
        &config::NetworkFlags {
            ip: flags.ip.as_deref(),
            aliases: &flags.network_alias,
            mac: flags.mac_address.as_deref(),
            publish: &flags.publish,
            publish_all: flags.publish_all,
        },
    )?;
    if c.network == NetworkMode::Host && (!flags.publish.is_empty() || flags.publish_all) {
        eprintln!("WARNING: Published ports are discarded when using host network mode");
    } else {
        c.publish = flags.publish.clone();
        c.publish_all = flags.publish_all;
    }
    Ok(c)
}

/// `--env-file` lines: `KEY=VALUE` or a bare `KEY`; blank lines and
/// `#` comments skipped.
pub(super) fn env_file(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|l| l.trim_start())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// A bare `KEY` takes the CLI's own value when it has one (docker's rule);
/// otherwise it stays bare, which unsets KEY in the container.
pub(super) fn expand_env(entry: &str) -> String {
    if entry.contains('=') {
        return entry.to_owned();
    }
    match std::env::var(entry) {
        Ok(value) => format!("{entry}={value}"),
        Err(_) => entry.to_owned(),
    }
}

/// `--label KEY=VALUE` or `KEY` (empty value).
fn labels(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (l.clone(), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_skip_comments_and_blank_lines() {
        let lines: Vec<&str> = env_file("# c\n\nA=1\n  B\n").collect();
        assert_eq!(lines, ["A=1", "B"]);
    }

    #[test]
    fn labels_without_value_are_empty() {
        let l = labels(&["a=b".into(), "c".into()]);
        assert_eq!(l["a"], "b");
        assert_eq!(l["c"], "");
    }
}
