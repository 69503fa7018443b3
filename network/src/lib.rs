//! muelle's networks. Everything this crate creates on the host carries
//! `muelle` in its name (`mu` for interface names, which are short), and
//! every host object has an owner that removes it.
//!
//! - [`networks`], [`record`], [`subnet`]: the network records, and the
//!   subnets they get;
//! - [`ipam`]: addresses claimed in the store, never twice;
//! - [`ports`], [`hostports`]: docker's `-p`, and the host ports held for it;
//! - [`netlink`]: a synchronous rtnetlink client (links, veth pairs into
//!   other namespaces, addresses, routes) on one socket;
//! - [`netns`]: network namespaces kept alive by a bind mount of their file;
//! - [`sysctl`]: writes to `/proc/sys`;
//! - [`firewall`]: masquerade, isolation and published ports, in muelle's own
//!   nftables table (iptables chains where nft is missing);
//! - [`dns`]: the per-network resolver (`muelle-dns`) and its names file.

pub mod check;
pub mod dns;
pub mod error;
pub mod firewall;
pub mod host;
pub mod hostports;
pub mod ipam;
pub mod netlink;
pub mod netns;
pub mod networks;
pub mod ports;
pub mod record;
pub mod resolver;
pub mod sandbox;
pub mod subnet;
pub mod sysctl;

pub use error::NetworkError;
pub use record::{DEFAULT_BRIDGE, DEFAULT_NETWORK, Endpoint, EndpointConfig, Network};
