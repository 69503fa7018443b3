//! `muelle network ...`: the network records (network crate) with what
//! only the engine knows: which containers run on a network, and the
//! running containers' sandboxes that `connect` and `disconnect` change.

use std::net::Ipv4Addr;

use network::networks::{self, CreateOptions};
use network::{Endpoint, EndpointConfig, Network, NetworkError};
use storage::store::Store;

use super::files;
use super::record::Container;
use super::{Engine, EngineError, Result};

impl Engine {
    /// Creates the network's record and its host objects (bridge,
    /// firewall rules), as docker does at `network create`.
    pub fn network_create(&self, store: &Store, options: &CreateOptions) -> Result<Network> {
        let network = networks::create(store, options)?;
        if let Err(e) = self.networking.prepare(&network) {
            let _ = networks::remove(store, &network, &|_| false);
            self.networking.forget(&network);
            return Err(e.into());
        }
        Ok(network)
    }

    pub fn network_find(&self, store: &Store, text: &str) -> Result<Network> {
        Ok(networks::find(store, text)?)
    }

    /// Every network, the default one included.
    pub fn network_list(&self, store: &Store) -> Result<Vec<Network>> {
        Ok(networks::list(store)?)
    }

    /// The running containers on `network`, with their endpoints.
    pub fn network_containers(
        &self,
        store: &Store,
        network: &Network,
    ) -> Result<Vec<(Container, Endpoint)>> {
        let mut out = Vec::new();
        for endpoint in networks::endpoints(store, &network.name)? {
            if let Ok(container) = super::lookup(store, &endpoint.container)
                && container.state.status.is_live()
            {
                out.push((container, endpoint));
            }
        }
        Ok(out)
    }

    /// `system check` for networks: what no running container or network
    /// owns, taken down with `repair`.
    pub fn network_check(
        &self,
        store: &Store,
        repair: bool,
    ) -> Result<Vec<network::check::Finding>> {
        // Live means a monitor still looks after it: a record that says
        // running with its monitor gone is what a crash leaves.
        let is_live = |id: &str| {
            super::lookup(store, id).is_ok_and(|c| {
                c.state.status.is_live() && c.state.monitor.is_some_and(|m| m.is_alive())
            })
        };
        Ok(self.networking.check(store, &is_live, repair)?)
    }

    /// The endpoints of a container, on every network it is on now.
    pub fn container_endpoints(
        &self,
        store: &Store,
        container: &Container,
    ) -> Result<Vec<Endpoint>> {
        Ok(network::sandbox::endpoints_of(store, &container.id)?)
    }

    /// Removes a network no running container is on: its record, its
    /// host objects and its resolver.
    pub fn network_remove(&self, store: &Store, text: &str) -> Result<Network> {
        let network = networks::find(store, text)?;
        let stale = networks::remove(store, &network, &|id| !self.no_longer_runs(store, id))?;
        for endpoint in &stale {
            self.networking.take_down(endpoint);
        }
        self.networking.forget(&network);
        Ok(network)
    }

    /// Removes every user-defined network no running container is on;
    /// returns their names.
    pub fn network_prune(&self, store: &Store) -> Result<Vec<String>> {
        self.network_prune_matching(store, &|_| true)
    }

    /// [`Engine::network_prune`] of the networks `selects` picks.
    pub fn network_prune_matching(
        &self,
        store: &Store,
        selects: &dyn Fn(&Network) -> bool,
    ) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for network in networks::list(store)? {
            if network.is_default() || !selects(&network) {
                continue;
            }
            match self.network_remove(store, &network.name) {
                Ok(n) => removed.push(n.name),
                Err(EngineError::Network(NetworkError::InUse { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// `network connect`: the container joins the network from its next
    /// start, and at once if it runs.
    pub fn network_connect(
        &self,
        store: &Store,
        network: &str,
        text: &str,
        endpoint: EndpointConfig,
    ) -> Result<()> {
        crate::config::check_aliases(&endpoint.aliases)?;
        let network = networks::find(store, network)?;
        let mut container = self.find(store, text)?;
        if !container.config.network.is_bridge() {
            return Err(EngineError::NetworkModeFixed(
                container.config.network.to_string(),
            ));
        }
        if container
            .config
            .networks
            .iter()
            .any(|e| e.network == network.name)
        {
            return Err(EngineError::AlreadyConnected {
                container: container.name.clone(),
                network: network.name.clone(),
            });
        }
        if network.is_default() && (endpoint.ip.is_some() || !endpoint.aliases.is_empty()) {
            return Err(crate::config::FlagError::IpOnDefaultNetwork.into());
        }
        let endpoint = EndpointConfig {
            network: network.name.clone(),
            ..endpoint
        };
        let live = container.state.status.is_live();
        if live && !self.networking.netns_path(&container.id).exists() {
            return Err(EngineError::NoSandbox {
                container: container.name.clone(),
                network: network.name.clone(),
            });
        }
        if live {
            let is_stale = |id: &str| self.no_longer_runs(store, id);
            self.networking
                .connect(store, &container.id, &container.name, &endpoint, &is_stale)?;
        }
        let resolver = self.resolver_of(store, &container.config.networks);
        container.config.networks.push(endpoint);
        store.table::<Container>()?.insert(&container)?;
        if live {
            self.follow_resolver(store, &container, resolver);
        }
        Ok(())
    }

    /// `network disconnect`: the container leaves the network, at once if
    /// it runs.
    pub fn network_disconnect(&self, store: &Store, network: &str, text: &str) -> Result<()> {
        let network = networks::find(store, network)?;
        let mut container = self.find(store, text)?;
        let Some(position) = container
            .config
            .networks
            .iter()
            .position(|e| e.network == network.name)
        else {
            return Err(EngineError::NotConnected {
                container: container.name.clone(),
                network: network.name.clone(),
            });
        };
        let live = container.state.status.is_live();
        if live {
            self.networking.disconnect(store, &container.id, &network)?;
        }
        let resolver = self.resolver_of(store, &container.config.networks);
        container.config.networks.remove(position);
        store.table::<Container>()?.insert(&container)?;
        if live {
            self.follow_resolver(store, &container, resolver);
        }
        Ok(())
    }

    /// The nameserver of a container on these networks: the resolver of
    /// the first that resolves names (networks gone since are skipped).
    pub(super) fn resolver_of(
        &self,
        store: &Store,
        endpoints: &[EndpointConfig],
    ) -> Option<Ipv4Addr> {
        endpoints
            .iter()
            .filter_map(|e| networks::find(store, &e.network).ok())
            .find(|n| n.dns)
            .map(|n| n.gateway)
    }

    /// After a running container's networks changed: its resolv.conf
    /// follows when the first resolving network is another than `before`
    /// (best effort: the network change stands, a failure is logged).
    fn follow_resolver(&self, store: &Store, container: &Container, before: Option<Ipv4Addr>) {
        let after = self.resolver_of(store, &container.config.networks);
        if after == before {
            return;
        }
        let paths = self.paths(&container.id);
        if let Err(e) = files::rewrite_resolv_conf(&paths, &container.config, after) {
            tracing::warn!("container {}: {e}", container.name);
        }
    }
}
