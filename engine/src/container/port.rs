//! `port`: a container's published ports, read from its record.
//!
//! muelle publishes no port yet: a container's network is `none` or
//! `host` (where docker ignores `-p` too), and `-p` is refused at create
//! until bridge networks come. So every container has no binding today.
//! NETWORK SEAM: when bridges land, the network code records a running
//! container's bindings (host address and port for each private port and
//! protocol) and [`published`] returns them from the record; the CLI's
//! `port` already prints and filters them as docker does.

use storage::store::Store;

use super::record::{Container, Status};
use super::{Engine, Result};

/// One published port: docker's `PRIVATE/PROTO -> HOST_IP:HOST_PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBinding {
    pub private_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    pub host_ip: String,
    pub host_port: u16,
}

impl Engine {
    /// The container and its published ports (none unless it runs).
    pub fn ports(&self, store: &Store, text: &str) -> Result<(Container, Vec<PortBinding>)> {
        let container = self.find(store, text)?;
        let bindings = published(&container);
        Ok((container, bindings))
    }
}

/// The bindings of a running container, from its record.
fn published(container: &Container) -> Vec<PortBinding> {
    if container.state.status != Status::Running {
        return Vec::new();
    }
    // `none` and `host` networks publish nothing (see the module doc).
    Vec::new()
}
