//! The files muelle writes for a container and binds into it:
//! /etc/hostname, /etc/hosts and /etc/resolv.conf (docker's set).

use std::net::Ipv4Addr;
use std::path::Path;

use super::error::io;
use super::{ContainerPaths, Result};
use crate::config::{ContainerConfig, NetworkMode};
use crate::spec::ExtraBind;

/// What the container's network adds to its files.
#[derive(Debug, Default, Clone, Copy)]
pub struct NetworkFacts {
    /// The address on its first network: /etc/hosts maps the host name
    /// to it.
    pub address: Option<Ipv4Addr>,
    /// The resolver of its first network that resolves container names:
    /// the only nameserver, with its search domain.
    pub resolver: Option<Ipv4Addr>,
}

/// Writes the files into the container's folder and returns their binds.
/// With `--network host` the container sees the host's own hosts and
/// resolv.conf, as under docker.
pub fn write(
    paths: &ContainerPaths,
    hostname: &str,
    config: &ContainerConfig,
    facts: NetworkFacts,
) -> Result<Vec<ExtraBind>> {
    let host_network = config.network == NetworkMode::Host;
    let mut hosts = if host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n"
            .to_owned()
    };
    for (name, address) in &config.extra_hosts {
        hosts.push_str(&format!("{address}\t{name}\n"));
    }
    if let Some(address) = facts.address {
        hosts.push_str(&format!("{address}\t{hostname}\n"));
    }
    let resolv = resolv_text(config, facts.resolver);
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

/// Points a running container's resolv.conf at another resolver (`None`:
/// the host's servers), when its networks changed which one comes first.
/// Rewritten in place, the same inode: the file is bound into the
/// container (and into those sharing its network), and a rename would
/// not show there. Nothing changes with `--dns`.
pub fn rewrite_resolv_conf(
    paths: &ContainerPaths,
    config: &ContainerConfig,
    resolver: Option<Ipv4Addr>,
) -> Result<()> {
    if !config.dns.is_empty() {
        return Ok(());
    }
    let path = paths.resolv_conf();
    let text = resolv_text(config, resolver);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(io(format!("opening {}", path.display())))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .map_err(io(format!("writing {}", path.display())))
}

/// The container's resolv.conf: `--dns` servers, else its network's
/// resolver, else the host's servers.
fn resolv_text(config: &ContainerConfig, resolver: Option<Ipv4Addr>) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if !config.dns.is_empty() {
        given_servers_conf(&host, &config.dns)
    } else if let Some(resolver) = resolver {
        resolver_conf(&host, resolver)
    } else {
        resolv_conf(&host, config.network == NetworkMode::Host)
    }
}

fn write_file(path: &Path, content: &[u8]) -> Result<()> {
    std::fs::write(path, content).map_err(io(format!("writing {}", path.display())))
}

/// The host's resolv.conf for a container: with the host's network as it
/// is; otherwise without loopback nameservers, which would mean the
/// container's own loopback (docker's filter).
fn resolv_conf(host: &str, host_network: bool) -> String {
    if host_network {
        return host.to_owned();
    }
    host.lines()
        .filter(|line| !is_loopback_nameserver(line))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// `--dns`: its servers instead of the host's, with the host's search
/// domains and options (docker's rule).
fn given_servers_conf(host: &str, servers: &[String]) -> String {
    let mut text: String = servers
        .iter()
        .map(|server| format!("nameserver {server}\n"))
        .collect();
    for line in host.lines() {
        if matches!(
            line.split_whitespace().next(),
            Some("search" | "domain" | "options")
        ) {
            text.push_str(line.trim());
            text.push('\n');
        }
    }
    text
}

/// A network with name resolution: its resolver is the one nameserver
/// (it forwards what it does not know to the host's), and its domain is
/// searched first so that a bare container name resolves at once; the
/// host's search domains and options follow.
fn resolver_conf(host: &str, resolver: Ipv4Addr) -> String {
    let mut search = vec![network::dns::SEARCH_DOMAIN.to_owned()];
    let mut options = Vec::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("search") | Some("domain") => search.extend(words.map(str::to_owned)),
            Some("options") => options.extend(words.map(str::to_owned)),
            _ => {}
        }
    }
    search.dedup();
    let mut text = format!("search {}\nnameserver {resolver}\n", search.join(" "));
    if !options.is_empty() {
        text.push_str(&format!("options {}\n", options.join(" ")));
    }
    text
}

fn is_loopback_nameserver(line: &str) -> bool {
    let mut words = line.split_whitespace();
    words.next() == Some("nameserver")
        && words
            .next()
            .is_some_and(|a| a.starts_with("127.") || a == "::1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_nameservers_are_dropped_unless_host_network() {
        let host = "search lan\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nnameserver ::1\n";
        assert_eq!(
            resolv_conf(host, false),
            "search lan\nnameserver 10.0.0.1\n"
        );
        assert_eq!(resolv_conf(host, true), host);
    }

    #[test]
    fn given_servers_replace_the_hosts_and_keep_its_search_and_options() {
        let host = "search lan\nnameserver 10.0.0.1\noptions edns0\n";
        assert_eq!(
            given_servers_conf(host, &["192.0.2.53".into(), "192.0.2.54".into()]),
            "nameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch lan\noptions edns0\n"
        );
        assert_eq!(
            given_servers_conf("", &["192.0.2.53".into()]),
            "nameserver 192.0.2.53\n"
        );
    }

    #[test]
    fn a_resolving_network_puts_its_resolver_first_and_keeps_the_hosts_search() {
        let host = "search lan\nnameserver 10.0.0.1\noptions edns0 trust-ad\n";
        assert_eq!(
            resolver_conf(host, Ipv4Addr::new(10, 78, 0, 1)),
            "search dns.muelle lan\nnameserver 10.78.0.1\noptions edns0 trust-ad\n"
        );
    }

    #[test]
    fn a_rewrite_keeps_the_inode_and_leaves_given_servers_alone() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let paths = ContainerPaths::new(dir.path(), dir.path(), "c");
        std::fs::create_dir_all(paths.resolv_conf().parent().unwrap()).unwrap();
        std::fs::write(paths.resolv_conf(), "nameserver 192.0.2.1\n".repeat(20)).unwrap();
        let inode = std::fs::metadata(paths.resolv_conf()).unwrap().ino();
        let mut config = crate::config::ContainerConfig::new(crate::config::ImageSource {
            id: image::Digest::of_bytes(b"config"),
            reference: "busybox".into(),
        });
        let resolver = Ipv4Addr::new(10, 78, 0, 1);
        rewrite_resolv_conf(&paths, &config, Some(resolver)).unwrap();
        let text = std::fs::read_to_string(paths.resolv_conf()).unwrap();
        assert!(text.starts_with("search dns.muelle"), "{text}");
        assert!(text.contains("nameserver 10.78.0.1\n"), "{text}");
        assert!(!text.contains("192.0.2.1"), "{text}");
        assert_eq!(std::fs::metadata(paths.resolv_conf()).unwrap().ino(), inode);

        config.dns = vec!["192.0.2.53".into()];
        rewrite_resolv_conf(&paths, &config, None).unwrap();
        assert_eq!(std::fs::read_to_string(paths.resolv_conf()).unwrap(), text);
    }
}
