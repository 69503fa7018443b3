//! `muelle system check` for networks: what a crash (a command or a
//! monitor killed half-way, a host reboot) left without an owner, found
//! and, with `repair`, taken down. Every host object muelle makes is
//! named so that it can be traced to its owner: veth `mu` + a container
//! id's start, bridge `muelle-` + a network id's start, namespace file
//! `RUNROOT/netns/ID`, resolver folder `RUNROOT/networks/NAME`, firewall
//! elements keyed by bridge and address.

use std::collections::HashSet;
use std::fmt;

use storage::store::Store;

use crate::error::NetworkError;
use crate::netlink::Netlink;
use crate::record::{Endpoint, Network};
use crate::sandbox::Networking;
use crate::{ipam, netns, resolver};

/// One thing left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// An endpoint whose container no longer runs (its address is held).
    StaleEndpoint(Endpoint),
    /// A network namespace file whose container no longer runs.
    Namespace(String),
    /// A veth of muelle's that no endpoint names.
    Veth(String),
    /// A bridge of muelle's that no network has.
    Bridge(String),
    /// Firewall rules for a bridge that no network has.
    Rules(String),
    /// A published port that no endpoint holds.
    Port(crate::firewall::PortRule),
    /// A resolver (folder, maybe process) of a network that is gone.
    Resolver(String),
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::StaleEndpoint(e) => write!(
                f,
                "network {}: address {} is held by container {}, which no longer runs",
                e.network,
                e.address,
                &e.container[..12.min(e.container.len())]
            ),
            Finding::Namespace(id) => write!(
                f,
                "network namespace of container {} left behind",
                &id[..12.min(id.len())]
            ),
            Finding::Veth(name) => write!(f, "veth {name} belongs to no running container"),
            Finding::Bridge(name) => write!(f, "bridge {name} belongs to no network"),
            Finding::Rules(bridge) => write!(
                f,
                "firewall rules for {bridge}, which belongs to no network"
            ),
            Finding::Port(rule) => {
                write!(f, "published port {rule} belongs to no running container")
            }
            Finding::Resolver(name) => write!(f, "resolver of network {name}, which is gone"),
        }
    }
}

impl Networking {
    /// Finds what no record owns (`is_live`: whether a container still
    /// runs); with `repair`, takes each down.
    pub fn check(
        &self,
        store: &Store,
        is_live: &dyn Fn(&str) -> bool,
        repair: bool,
    ) -> Result<Vec<Finding>, NetworkError> {
        let networks: Vec<Network> = store.table::<Network>()?.list()?;
        let endpoints: Vec<Endpoint> = store.table::<Endpoint>()?.list()?;
        let (live, stale): (Vec<Endpoint>, Vec<Endpoint>) =
            endpoints.into_iter().partition(|e| is_live(&e.container));
        let mut findings: Vec<Finding> =
            stale.iter().cloned().map(Finding::StaleEndpoint).collect();

        let live_ids: HashSet<&str> = live.iter().map(|e| e.container.as_str()).collect();
        if let Ok(dir) = std::fs::read_dir(self.run_root().join("netns")) {
            for entry in dir.flatten() {
                let id = entry.file_name().to_string_lossy().into_owned();
                if !live_ids.contains(id.as_str()) && !is_live(&id) {
                    findings.push(Finding::Namespace(id));
                }
            }
        }

        let veths: HashSet<&str> = live.iter().map(|e| e.host_veth.as_str()).collect();
        let bridges: HashSet<&str> = networks.iter().map(|n| n.bridge.as_str()).collect();
        let mut nl = Netlink::open()?;
        for link in nl.links()? {
            let kind = link.kind.as_deref();
            if kind == Some("veth")
                && is_veth_name(&link.name)
                && !veths.contains(link.name.as_str())
            {
                findings.push(Finding::Veth(link.name));
            } else if kind == Some("bridge")
                && link.name.starts_with("muelle-")
                && !bridges.contains(link.name.as_str())
            {
                findings.push(Finding::Bridge(link.name));
            }
        }

        if let Ok(firewall) = self.firewall()
            && let Ok(installed) = firewall.list()
        {
            for bridge in installed.networks {
                if !bridges.contains(bridge.as_str()) {
                    findings.push(Finding::Rules(bridge));
                }
            }
            for rule in installed.ports {
                let held = live.iter().any(|e| {
                    e.address == rule.container_ip
                        && e.ports.iter().any(|p| {
                            p.host_port == rule.host_port && p.container_port == rule.container_port
                        })
                });
                if !held {
                    findings.push(Finding::Port(rule));
                }
            }
        }

        if let Ok(dir) = std::fs::read_dir(self.run_root().join("networks")) {
            for entry in dir.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !networks.iter().any(|n| n.name == name) {
                    findings.push(Finding::Resolver(name));
                }
            }
        }

        if repair {
            self.repair(store, &findings, &mut nl)?;
        }
        Ok(findings)
    }

    fn repair(
        &self,
        store: &Store,
        findings: &[Finding],
        nl: &mut Netlink,
    ) -> Result<(), NetworkError> {
        let mut released = Vec::new();
        for finding in findings {
            match finding {
                Finding::StaleEndpoint(e) => {
                    self.take_down(e);
                    released.push(e.clone());
                }
                Finding::Namespace(id) => {
                    netns::remove(&self.netns_path(id))?;
                }
                Finding::Veth(name) | Finding::Bridge(name) => {
                    nl.delete_link(name)?;
                }
                Finding::Rules(bridge) => self.firewall()?.remove_network(bridge)?,
                Finding::Port(rule) => self.firewall()?.unpublish(std::slice::from_ref(rule))?,
                Finding::Resolver(name) => resolver::stop_named(self.run_root(), name),
            }
        }
        if !released.is_empty() {
            store.transact(|tx| {
                for e in &released {
                    ipam::release(tx, &e.network, e.address, &e.container)?;
                }
                Ok(())
            })?;
            let mut names: Vec<&str> = released.iter().map(|e| e.network.as_str()).collect();
            names.dedup();
            self.refresh_names(store, &names);
        }
        Ok(())
    }
}

/// `mu` and 11 hex characters: the host end of a container's veth
/// ([`crate::sandbox::veth_name`]).
fn is_veth_name(name: &str) -> bool {
    name.len() == 13 && name.starts_with("mu") && name[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_are_told_from_others() {
        assert!(is_veth_name(&crate::sandbox::veth_name(
            &"ab12".repeat(16),
            3
        )));
        assert!(!is_veth_name("muelle0"));
        assert!(!is_veth_name("muelle-1234abcd"));
        assert!(!is_veth_name("mu12345678zz0"));
    }
}
