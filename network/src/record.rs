//! A network's record (table `networks`, keyed by name) and the address
//! claims of its containers (table `network-addresses`, keyed by network
//! name and address, so that one network's claims sort together and in
//! address order).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use storage::store::Record;

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

/// One address of a network, taken by a container while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressClaim {
    pub network: String,
    pub address: Ipv4Addr,
    /// The container's id.
    pub container: String,
    /// The names the network's resolver answers with this address: the
    /// container's name, then its aliases.
    #[serde(default)]
    pub names: Vec<String>,
}

impl AddressClaim {
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

impl Record for AddressClaim {
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
        let a = AddressClaim::key_of("n", Ipv4Addr::new(10, 0, 0, 9));
        let b = AddressClaim::key_of("n", Ipv4Addr::new(10, 0, 0, 10));
        assert!(a < b, "{a} < {b}");
        assert_eq!(a, "n/0a000009");
    }
}
