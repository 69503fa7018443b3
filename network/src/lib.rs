//! muelle's networks. Everything this crate creates on the host carries
//! `muelle` in its name (`mu` for interface names, which are short), and
//! every host object has an owner that removes it.

pub mod dns;
pub mod error;
pub mod hostports;
pub mod ipam;
pub mod networks;
pub mod ports;
pub mod record;
pub mod subnet;

pub use error::NetworkError;
pub use record::{DEFAULT_BRIDGE, DEFAULT_NETWORK, Endpoint, EndpointConfig, Network};
