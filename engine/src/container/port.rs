//! `port`: a running container's published ports, read from its
//! endpoints' records (the network crate writes them when it publishes).

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
        let bindings = self.published(store, &container)?;
        Ok((container, bindings))
    }

    /// Every running container's bindings, by id, read at once (`ps`).
    pub fn all_published(
        &self,
        store: &Store,
    ) -> Result<std::collections::HashMap<String, Vec<PortBinding>>> {
        let mut all: std::collections::HashMap<String, Vec<PortBinding>> = Default::default();
        for endpoint in store.table::<network::Endpoint>()?.list()? {
            all.entry(endpoint.container.clone())
                .or_default()
                .extend(endpoint.ports.iter().map(binding));
        }
        for bindings in all.values_mut() {
            bindings
                .sort_by(|a, b| (a.private_port, &a.protocol).cmp(&(b.private_port, &b.protocol)));
        }
        Ok(all)
    }

    /// The bindings of a running container; none for the others.
    pub fn published(&self, store: &Store, container: &Container) -> Result<Vec<PortBinding>> {
        if !matches!(container.state.status, Status::Running | Status::Paused) {
            return Ok(Vec::new());
        }
        let mut bindings: Vec<PortBinding> = network::sandbox::endpoints_of(store, &container.id)?
            .into_iter()
            .flat_map(|e| e.ports)
            .map(|p| binding(&p))
            .collect();
        bindings.sort_by(|a, b| (a.private_port, &a.protocol).cmp(&(b.private_port, &b.protocol)));
        Ok(bindings)
    }
}

fn binding(p: &network::record::PortBinding) -> PortBinding {
    PortBinding {
        private_port: p.container_port,
        protocol: p.protocol.as_str().to_owned(),
        host_ip: p
            .host_ip
            .map_or_else(|| "0.0.0.0".to_owned(), |ip| ip.to_string()),
        host_port: p.host_port,
    }
}
