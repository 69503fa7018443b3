//! The files muelle writes for a container and binds into it:
//! /etc/hostname, /etc/hosts and /etc/resolv.conf (docker's set).

use std::path::Path;

use super::error::io;
use super::{ContainerPaths, Result};
use crate::config::{ContainerConfig, NetworkMode};
use crate::spec::ExtraBind;

/// Writes the files into the container's folder and returns their binds.
/// With `--network host` the container sees the host's own hosts and
/// resolv.conf, as under docker.
pub fn write(
    paths: &ContainerPaths,
    hostname: &str,
    config: &ContainerConfig,
) -> Result<Vec<ExtraBind>> {
    let network = config.network;
    let mut hosts = match network {
        NetworkMode::Host => std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
        _ => "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
              fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
              ff02::2\tip6-allrouters\n"
            .to_owned(),
    };
    for (name, address) in &config.extra_hosts {
        hosts.push_str(&format!("{address}\t{name}\n"));
    }
    let resolv = if config.dns.is_empty() {
        resolv_conf(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            network,
        )
    } else {
        config
            .dns
            .iter()
            .map(|server| format!("nameserver {server}\n"))
            .collect()
    };
    let files = [
        (paths.hostname(), format!("{hostname}\n"), "/etc/hostname"),
        (paths.hosts(), hosts, "/etc/hosts"),
        (paths.resolv_conf(), resolv, "/etc/resolv.conf"),
    ];
    let mut binds = Vec::with_capacity(files.len());
    for (source, content, target) in files {
        write_file(&source, content.as_bytes())?;
        binds.push(ExtraBind {
            source,
            target: target.into(),
            read_only: false,
        });
    }
    Ok(binds)
}

fn write_file(path: &Path, content: &[u8]) -> Result<()> {
    std::fs::write(path, content).map_err(io(format!("writing {}", path.display())))
}

/// The host's resolv.conf for a container: with the host's network as it
/// is; otherwise without loopback nameservers, which would mean the
/// container's own loopback (docker's filter).
fn resolv_conf(host: &str, network: NetworkMode) -> String {
    if network == NetworkMode::Host {
        return host.to_owned();
    }
    host.lines()
        .filter(|line| {
            let mut words = line.split_whitespace();
            !(words.next() == Some("nameserver")
                && words
                    .next()
                    .is_some_and(|a| a.starts_with("127.") || a == "::1"))
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_nameservers_are_dropped_unless_host_network() {
        let host = "search lan\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nnameserver ::1\n";
        assert_eq!(
            resolv_conf(host, NetworkMode::None),
            "search lan\nnameserver 10.0.0.1\n"
        );
        assert_eq!(resolv_conf(host, NetworkMode::Host), host);
    }
}
