//! A network's objects on the host: its bridge (up, with the gateway's
//! address, and `route_localnet` so that ports published on 127.0.0.1
//! reach it), IPv4 forwarding, and its firewall rules. Made when the
//! network is created, and again when a container joins and the bridge is
//! missing (after a reboot, or a clean-up); removed with the network.

use std::net::Ipv4Addr;

use crate::error::NetworkError;
use crate::firewall::{Firewall, NetworkRules};
use crate::netlink::Netlink;
use crate::record::Network;
use crate::sysctl;

/// The bridge's index, making the network's host objects first if the
/// bridge is missing (only then is `firewall` asked for: finding it runs
/// a command). On failure nothing new is left.
pub fn ensure<'f>(
    nl: &mut Netlink,
    firewall: impl FnOnce() -> Result<&'f Firewall, NetworkError>,
    network: &Network,
) -> Result<u32, NetworkError> {
    if let Some(link) = nl.link(&network.bridge)? {
        return Ok(link.index);
    }
    let index = match nl.create_bridge(&network.bridge) {
        Ok(index) => index,
        // Made meanwhile by a command that did not hold the store (system
        // check): it is ours all the same.
        Err(e) if e.errno() == Some(nix::errno::Errno::EEXIST) => {
            return nl
                .link(&network.bridge)?
                .map(|l| l.index)
                .ok_or_else(|| NetworkError::Host(format!("bridge {} vanished", network.bridge)));
        }
        Err(e) => return Err(e.into()),
    };
    let made = (|| -> Result<(), NetworkError> {
        nl.add_address(index, network.gateway, network.subnet.prefix_len())?;
        sysctl::set("net.ipv4.ip_forward", "1")
            .map_err(|e| NetworkError::Host(format!("enabling IPv4 forwarding: {e}")))?;
        sysctl::set_interface(&network.bridge, "route_localnet", "1").map_err(|e| {
            NetworkError::Host(format!("setting route_localnet on {}: {e}", network.bridge))
        })?;
        firewall()?.add_network(&rules(network))?;
        Ok(())
    })();
    if let Err(e) = made {
        let _ = nl.delete_link(&network.bridge);
        return Err(e);
    }
    Ok(index)
}

/// Takes the network's host objects down: firewall rules, then the
/// bridge. Best effort: each failure is logged, the rest still done.
pub fn remove(nl: &mut Netlink, firewall: &Firewall, network: &Network) {
    if let Err(e) = firewall.remove_network(&network.bridge) {
        tracing::warn!("network {}: removing its firewall rules: {e}", network.name);
    }
    if let Err(e) = nl.delete_link(&network.bridge) {
        tracing::warn!(
            "network {}: deleting bridge {}: {e}",
            network.name,
            network.bridge
        );
    }
}

pub fn rules(network: &Network) -> NetworkRules {
    NetworkRules {
        bridge: network.bridge.clone(),
        subnet: network.subnet.network(),
        prefix_len: network.subnet.prefix_len(),
        internal: network.internal,
    }
}

/// docker's MAC for an address: 02:42 and the address's four bytes.
pub fn mac_of(address: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = address.octets();
    [0x02, 0x42, a, b, c, d]
}
