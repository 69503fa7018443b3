//! A network's record (table `networks`, keyed by name) and the endpoints
//! of the containers that run on it (table `network-addresses`, keyed by
//! network name and address, so that one network's endpoints sort
//! together and in address order).
//!
//! An endpoint is written before anything is made on the host for it, and
//! names everything that is (veth, published ports): whoever finds one
//! whose container no longer runs can take all of it down.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use storage::store::Record;

use crate::ports::Protocol;

/// The default network's name; `--network bridge` means it, as podman's
/// `bridge` means its `podman` network.
pub const DEFAULT_NETWORK: &str = "muelle";
/// The default network's bridge.
pub const DEFAULT_BRIDGE: &str = "muelle0";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// 64 hex characters.
    pub id: String,
    pub name: String,
    /// Always `bridge` for now (docker's driver name).
    pub driver: String,
    /// The bridge interface on the host.
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// `--internal`: no traffic in or out but within the network.
    pub internal: bool,
    /// Containers find each other by name (user-defined networks, as in
    /// docker; never the default network).
    pub dns: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// RFC 3339, UTC.
    pub created: String,
}

impl Record for Network {
    const TABLE: &'static str = "networks";
    fn key(&self) -> String {
        self.name.clone()
    }
}

impl Network {
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }

    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_NETWORK
    }
}

/// A network a container joins, as `run`/`create` (`--network`, `--ip`,
/// `--network-alias`, `--mac-address`) or `network connect` asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointConfig {
    /// The network's name.
    pub network: String,
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `aa:bb:cc:dd:ee:ff`; `None`: derived from the address (docker's
    /// `02:42` and the four bytes of the address).
    #[serde(default)]
    pub mac: Option<String>,
}

/// A running container's place on a network: its address, the names the
/// network's resolver gives it, and what was made on the host for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network: String,
    pub address: Ipv4Addr,
    /// The container's id.
    pub container: String,
    /// The names the network's resolver answers with this address: the
    /// container's name, then its aliases.
    #[serde(default)]
    pub names: Vec<String>,
    /// The veth's end on the host (on the network's bridge).
    #[serde(default)]
    pub host_veth: String,
    /// The network's bridge (the firewall keys published ports by it).
    #[serde(default)]
    pub bridge: String,
    /// The interface inside the container (`eth0`, ...).
    #[serde(default)]
    pub interface: String,
    #[serde(default)]
    pub mac: String,
    /// The host ports published to this address.
    #[serde(default)]
    pub ports: Vec<PortBinding>,
}

/// A host port forwarded to a container port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    pub protocol: Protocol,
    /// `None`: every host address.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
}

impl Endpoint {
    /// The key of `address` in `network`: the address as 8 hex digits,
    /// so that keys sort as addresses do.
    pub fn key_of(network: &str, address: Ipv4Addr) -> String {
        format!("{}{:08x}", Self::prefix_of(network), u32::from(address))
    }

    /// The common prefix of one network's claims.
    pub fn prefix_of(network: &str) -> String {
        format!("{network}/")
    }
}

impl Record for Endpoint {
    const TABLE: &'static str = "network-addresses";
    fn key(&self) -> String {
        Self::key_of(&self.network, self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_keys_sort_as_addresses() {
        let a = Endpoint::key_of("n", Ipv4Addr::new(10, 0, 0, 9));
        let b = Endpoint::key_of("n", Ipv4Addr::new(10, 0, 0, 10));
        assert!(a < b, "{a} < {b}");
        assert_eq!(a, "n/0a000009");
    }
}
