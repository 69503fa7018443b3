//! What can go wrong with networks, in words a user can act on (docker's
//! where docker has them).

use std::net::Ipv4Addr;

use storage::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network with name {0} already exists")]
    Exists(String),
    #[error(
        "invalid network name {0:?}: names are [a-zA-Z0-9][a-zA-Z0-9_.-]* and at most 64 characters"
    )]
    InvalidName(String),
    #[error("{0} is a pre-defined network and cannot be {1}")]
    Predefined(String, &'static str),
    #[error("invalid subnet {given}: {reason}")]
    InvalidSubnet { given: String, reason: String },
    #[error("invalid gateway {gateway}: it is not a host address of subnet {subnet}")]
    InvalidGateway { gateway: Ipv4Addr, subnet: String },
    #[error(
        "Pool overlaps with other one on this address space: {subnet} overlaps network {other} ({other_subnet})"
    )]
    Overlap {
        subnet: String,
        other: String,
        other_subnet: String,
    },
    #[error(
        "no free subnet left in muelle's pools for a new network: remove unused networks (muelle network prune) or give --subnet"
    )]
    NoFreeSubnet,
    #[error("no available IPv4 addresses on this network's address pools: {0}")]
    PoolExhausted(String),
    #[error("Address already in use: {address} on network {network}")]
    AddressInUse { address: Ipv4Addr, network: String },
    #[error(
        "invalid IP address {address}: no configured subnet of network {network} contains it, or it is the gateway ({subnet})"
    )]
    AddressOutside {
        address: Ipv4Addr,
        network: String,
        subnet: String,
    },
    #[error("error while removing network: network {name} id {id} has active endpoints ({})", containers.join(", "))]
    InUse {
        name: String,
        id: String,
        containers: Vec<String>,
    },
    #[error("network name {0} is ambiguous: give more of its id, or its name")]
    Ambiguous(String),
    #[error("plugin \"{0}\" not found: muelle's networks use the bridge driver")]
    UnknownDriver(String),
    #[error("invalid gateway: --gateway needs --subnet")]
    GatewayWithoutSubnet,
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Port(#[from] crate::ports::PortError),
    #[error(transparent)]
    HostPort(#[from] crate::hostports::HostPortError),
    #[error(transparent)]
    Netlink(#[from] crate::netlink::Error),
    #[error(transparent)]
    Netns(#[from] crate::netns::Error),
    #[error(transparent)]
    Firewall(#[from] crate::firewall::Error),
    #[error("{0}")]
    Host(String),
    #[error("a container can be on at most {0} networks")]
    TooManyNetworks(usize),
}
