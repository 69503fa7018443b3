//! A container's network sandbox: its network namespace (bound at
//! `RUNROOT/netns/ID`), one veth pair per network it joins (the host end
//! `mu…` on the network's bridge, the other end `ethN` inside), its
//! addresses and default route, its published ports, and its names in
//! each network's resolver.
//!
//! The endpoints are recorded (with everything they name on the host)
//! before any of it is made, so a command killed half-way leaves records
//! that [`Networking::teardown`] (or `system check`) can finish from. A
//! setup that fails undoes what it did before it returns.

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use storage::store::Store;

use crate::error::NetworkError;
use crate::firewall::{self, Firewall, PortRule};
use crate::hostports::{self, Held};
use crate::ipam;
use crate::netlink::{Netlink, Veth};
use crate::ports::{Protocol, Publish};
use crate::record::{Endpoint, EndpointConfig, Network, PortBinding};
use crate::{host, netns, networks, resolver};

/// At most this many networks per container (`eth0` to `ethf`).
pub const MAX_NETWORKS: usize = 16;

/// The network side of a muelle installation: where its namespaces and
/// resolvers live, and its firewall (found on first use).
#[derive(Debug, Clone)]
pub struct Networking {
    run_root: PathBuf,
    firewall: OnceLock<Firewall>,
}

/// A container joining its networks.
pub struct Join<'a> {
    /// The container's id.
    pub container: &'a str,
    /// Its name: the first of its names in each network's resolver.
    pub name: &'a str,
    pub endpoints: &'a [EndpointConfig],
    /// Published on the first network's address.
    pub publish: &'a [Publish],
}

/// A container's network, set up.
#[derive(Debug)]
pub struct Sandbox {
    /// The network namespace to run the container in.
    pub netns: PathBuf,
    pub endpoints: Vec<Endpoint>,
    /// The published host ports' sockets: the container's monitor holds
    /// them until the container exits.
    pub held: Vec<OwnedFd>,
}

impl Networking {
    pub fn new(run_root: &Path) -> Networking {
        Networking {
            run_root: run_root.to_owned(),
            firewall: OnceLock::new(),
        }
    }

    pub fn run_root(&self) -> &Path {
        &self.run_root
    }

    /// Where the container's network namespace is bound.
    pub fn netns_path(&self, container: &str) -> PathBuf {
        self.run_root.join("netns").join(container)
    }

    pub fn firewall(&self) -> Result<&Firewall, NetworkError> {
        if let Some(f) = self.firewall.get() {
            return Ok(f);
        }
        let found = Firewall::detect()?;
        Ok(self.firewall.get_or_init(|| found))
    }

    /// Makes the network's host objects (bridge, rules) now rather than at
    /// its first container, as docker does at `network create`.
    pub fn prepare(&self, network: &Network) -> Result<(), NetworkError> {
        let mut nl = Netlink::open()?;
        host::ensure(&mut nl, || self.firewall(), network).map(drop)
    }

    /// Takes a removed network's host objects down, its resolver too.
    pub fn forget(&self, network: &Network) {
        match (Netlink::open(), self.firewall()) {
            (Ok(mut nl), Ok(firewall)) => host::remove(&mut nl, firewall, network),
            (Err(e), _) => tracing::warn!("network {}: {e}", network.name),
            (_, Err(e)) => tracing::warn!("network {}: {e}", network.name),
        }
        resolver::stop(&self.run_root, network);
    }

    /// Sets the container's network up; see the module doc. `is_stale`
    /// tells whether a container holding an endpoint no longer runs.
    pub fn setup(
        &self,
        store: &Store,
        join: &Join<'_>,
        is_stale: &dyn Fn(&str) -> bool,
    ) -> Result<Sandbox, NetworkError> {
        if join.endpoints.len() > MAX_NETWORKS {
            return Err(NetworkError::TooManyNetworks(MAX_NETWORKS));
        }
        let nets = join
            .endpoints
            .iter()
            .map(|e| networks::find(store, &e.network))
            .collect::<Result<Vec<Network>, _>>()?;
        let held: Vec<Held> = if nets.is_empty() {
            Vec::new()
        } else {
            hostports::reserve(join.publish)?
        };
        let ports: Vec<PortBinding> = held.iter().map(|h| h.binding).collect();
        let (endpoints, replaced) = self.claim(store, join, &nets, &ports, is_stale)?;
        for stale in &replaced {
            self.take_down(stale);
        }
        let mut undo = Undo {
            networking: self,
            store,
            container: join.container,
            armed: true,
        };
        let netns = self.netns_path(join.container);
        self.build(&netns, &nets, &endpoints)?;
        for network in nets.iter().filter(|n| n.dns) {
            resolver::refresh(&self.run_root, store, network)?;
        }
        let names: Vec<&str> = nets.iter().map(|n| n.name.as_str()).collect();
        self.refresh_neighbours(store, &names);
        undo.armed = false;
        Ok(Sandbox {
            netns,
            endpoints,
            held: held.into_iter().map(|h| h.socket).collect(),
        })
    }

    /// Records the container's endpoints, an address claimed in each
    /// network. Returns them and the stale endpoints they replaced.
    fn claim(
        &self,
        store: &Store,
        join: &Join<'_>,
        nets: &[Network],
        ports: &[PortBinding],
        is_stale: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<Endpoint>, Vec<Endpoint>), NetworkError> {
        let stale = stale_holders(store, is_stale)?;
        let is_stale = |c: &str| stale.contains(c);
        store.transact_with(|tx| {
            let mut endpoints = Vec::with_capacity(nets.len());
            let mut replaced = Vec::new();
            for (i, (config, network)) in join.endpoints.iter().zip(nets).enumerate() {
                let ports = if i == 0 { ports } else { &[] };
                let (endpoint, stale) = claim_one(
                    tx,
                    join.container,
                    join.name,
                    i,
                    config,
                    network,
                    ports,
                    &is_stale,
                )?;
                replaced.extend(stale);
                endpoints.push(endpoint);
            }
            Ok((endpoints, replaced))
        })
    }

    /// `network connect` of a running container: one more endpoint in its
    /// sandbox, on the first interface number its others leave free.
    pub fn connect(
        &self,
        store: &Store,
        container: &str,
        name: &str,
        config: &EndpointConfig,
        is_stale: &dyn Fn(&str) -> bool,
    ) -> Result<Endpoint, NetworkError> {
        let taken: Vec<String> = endpoints_of(store, container)?
            .into_iter()
            .map(|e| e.interface)
            .collect();
        let index = (0..MAX_NETWORKS)
            .find(|i| !taken.contains(&format!("eth{i}")))
            .ok_or(NetworkError::TooManyNetworks(MAX_NETWORKS))?;
        let network = networks::find(store, &config.network)?;
        let ns = netns::open(&self.netns_path(container))?;
        let holders = stale_holders(store, is_stale)?;
        let is_stale = |c: &str| holders.contains(c);
        let (endpoint, stale) = store.transact_with(|tx| {
            claim_one(tx, container, name, index, config, &network, &[], &is_stale)
        })?;
        if let Some(stale) = &stale {
            self.take_down(stale);
        }
        let built = (|| -> Result<(), NetworkError> {
            let mut nl = Netlink::open()?;
            let peer = self.plug(&mut nl, ns.as_fd(), &endpoint, &network)?;
            let mut inside = Netlink::open_in(ns.as_fd())?;
            let mut batch = inside.batch();
            batch.set_up(peer);
            batch.add_address(peer, endpoint.address, network.subnet.prefix_len());
            batch.run()?;
            if network.dns {
                resolver::refresh(&self.run_root, store, &network)?;
                // The container's other networks among them: their
                // resolvers now tell it this network's names.
                self.refresh_neighbours(store, &[&network.name]);
            }
            Ok(())
        })();
        if let Err(e) = built {
            self.leave(store, &endpoint);
            return Err(e);
        }
        Ok(endpoint)
    }

    /// `network disconnect` of a running container.
    pub fn disconnect(
        &self,
        store: &Store,
        container: &str,
        network: &Network,
    ) -> Result<(), NetworkError> {
        for endpoint in endpoints_of(store, container)?
            .iter()
            .filter(|e| e.network == network.name)
        {
            self.leave(store, endpoint);
        }
        Ok(())
    }

    /// One endpoint goes: its host objects, its record, its names.
    fn leave(&self, store: &Store, endpoint: &Endpoint) {
        self.take_down(endpoint);
        let released = store.transact(|tx| {
            ipam::release(tx, &endpoint.network, endpoint.address, &endpoint.container)
        });
        if let Err(e) = released {
            tracing::warn!(
                "container {}: releasing {}: {e}",
                endpoint.container,
                endpoint.address
            );
        }
        // The container's remaining networks stop telling it this one's
        // names.
        let mut changed = vec![endpoint.network.clone()];
        match endpoints_of(store, &endpoint.container) {
            Ok(remaining) => changed.extend(remaining.into_iter().map(|e| e.network)),
            Err(e) => tracing::warn!("container {}: {e}", endpoint.container),
        }
        let changed: Vec<&str> = changed.iter().map(String::as_str).collect();
        self.refresh_names(store, &changed);
    }

    /// Writes the names of the resolving networks among `changed` and of
    /// their [`resolver::neighbours`] again (best effort: failures are
    /// logged).
    pub(crate) fn refresh_names(&self, store: &Store, changed: &[&str]) {
        for name in changed {
            match networks::find(store, name) {
                Ok(network) if network.dns => self.refresh_one(store, &network),
                _ => {}
            }
        }
        self.refresh_neighbours(store, changed);
    }

    /// [`Networking::refresh_names`] of the neighbours only.
    fn refresh_neighbours(&self, store: &Store, changed: &[&str]) {
        match resolver::neighbours(store, changed) {
            Ok(neighbours) => {
                for network in &neighbours {
                    self.refresh_one(store, network);
                }
            }
            Err(e) => tracing::warn!("the neighbours of networks {changed:?}: {e}"),
        }
    }

    fn refresh_one(&self, store: &Store, network: &Network) {
        if let Err(e) = resolver::refresh(&self.run_root, store, network) {
            tracing::warn!("network {}: {e}", network.name);
        }
    }

    /// The host side: namespace, veths, addresses, route, published ports.
    /// The endpoint's veth pair: the host end on the network's bridge (made
    /// first if missing), the other end inside `ns`. Returns the inside
    /// end's index.
    fn plug(
        &self,
        nl: &mut Netlink,
        ns: BorrowedFd<'_>,
        endpoint: &Endpoint,
        network: &Network,
    ) -> Result<u32, NetworkError> {
        let bridge = host::ensure(nl, || self.firewall(), network)?;
        let pair = create_veth(
            nl,
            &Veth {
                host_name: &endpoint.host_veth,
                master: Some(bridge),
                peer_name: &endpoint.interface,
                peer_netns: ns,
                peer_mac: parse_mac(&endpoint.mac),
                mtu: None,
            },
        )?;
        Ok(pair.peer)
    }

    fn build(
        &self,
        netns_path: &Path,
        nets: &[Network],
        endpoints: &[Endpoint],
    ) -> Result<(), NetworkError> {
        if let Some(parent) = netns_path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| NetworkError::Host(format!("creating {}: {e}", parent.display())))?;
        }
        let ns: OwnedFd = netns::create(netns_path)?;
        let mut nl = Netlink::open()?;
        let mut peers = Vec::with_capacity(endpoints.len());
        for (endpoint, network) in endpoints.iter().zip(nets) {
            peers.push(self.plug(&mut nl, ns.as_fd(), endpoint, network)?);
        }
        let mut inside = Netlink::open_in(ns.as_fd())?;
        let mut batch = inside.batch();
        batch.set_up(LOOPBACK_INDEX);
        for ((endpoint, network), peer) in endpoints.iter().zip(nets).zip(&peers) {
            batch.set_up(*peer);
            batch.add_address(*peer, endpoint.address, network.subnet.prefix_len());
        }
        if let Some(first) = nets.first().filter(|n| !n.internal) {
            batch.add_default_route(first.gateway);
        }
        batch.run()?;
        if let Some(endpoint) = endpoints.first().filter(|e| !e.ports.is_empty()) {
            self.firewall()?.publish(&endpoint_rules(endpoint))?;
        }
        Ok(())
    }

    /// Takes the container's network down (best effort: each failure is
    /// logged and the rest still done): published ports, veths, the
    /// namespace, its endpoints' records, its names in the resolvers.
    pub fn teardown(&self, store: &Store, container: &str) {
        let endpoints = match endpoints_of(store, container) {
            Ok(endpoints) => endpoints,
            Err(e) => {
                tracing::warn!("container {container}: reading its network endpoints: {e}");
                Vec::new()
            }
        };
        for endpoint in endpoints.iter().filter(|e| !e.ports.is_empty()) {
            self.unpublish(endpoint);
        }
        // The namespace's end takes its veth pairs with it: the kernel
        // unregisters them on its own time (an explicit delete waits out
        // RCU grace periods, 10-25 ms on the exit's way). Only a namespace
        // that was not there any more leaves them to delete here.
        let removed = match netns::remove(&self.netns_path(container)) {
            Ok(removed) => removed,
            Err(e) => {
                tracing::warn!("container {container}: {e}");
                false
            }
        };
        if !removed {
            for endpoint in &endpoints {
                self.delete_veth(endpoint);
            }
        }
        if endpoints.is_empty() {
            return;
        }
        let released = store.transact(|tx| {
            for e in &endpoints {
                ipam::release(tx, &e.network, e.address, container)?;
            }
            Ok(())
        });
        if let Err(e) = released {
            tracing::warn!("container {container}: releasing its addresses: {e}");
        }
        let changed: Vec<&str> = endpoints.iter().map(|e| e.network.as_str()).collect();
        self.refresh_names(store, &changed);
    }

    /// An endpoint's host objects: its published ports and its veth.
    pub fn take_down(&self, endpoint: &Endpoint) {
        if !endpoint.ports.is_empty() {
            self.unpublish(endpoint);
        }
        self.delete_veth(endpoint);
    }

    fn unpublish(&self, endpoint: &Endpoint) {
        let rules = endpoint_rules(endpoint);
        match self.firewall() {
            Ok(firewall) => {
                if let Err(e) = firewall.unpublish(&rules) {
                    tracing::warn!("container {}: unpublishing ports: {e}", endpoint.container);
                }
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }

    fn delete_veth(&self, endpoint: &Endpoint) {
        match Netlink::open().and_then(|mut nl| nl.delete_link(&endpoint.host_veth)) {
            Ok(_) => {}
            Err(e) => tracing::warn!(
                "container {}: deleting {}: {e}",
                endpoint.container,
                endpoint.host_veth
            ),
        }
    }
}

/// A setup that failed half-way: its records and host objects go.
struct Undo<'a> {
    networking: &'a Networking,
    store: &'a Store,
    container: &'a str,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.networking.teardown(self.store, self.container);
        }
    }
}

/// Records the `index`th endpoint of a container, an address claimed for
/// it; returns it and the stale endpoint it replaced, if any.
#[allow(clippy::too_many_arguments)]
fn claim_one(
    tx: &storage::store::Tx<'_>,
    container: &str,
    name: &str,
    index: usize,
    config: &EndpointConfig,
    network: &Network,
    ports: &[PortBinding],
    is_stale: &dyn Fn(&str) -> bool,
) -> Result<(Endpoint, Option<Endpoint>), NetworkError> {
    let mut names = vec![name.to_owned()];
    names.extend(config.aliases.iter().cloned());
    names.push(container[..12.min(container.len())].to_owned());
    let template = Endpoint {
        network: network.name.clone(),
        address: Ipv4Addr::UNSPECIFIED,
        container: container.to_owned(),
        names,
        host_veth: veth_name(container, index),
        bridge: network.bridge.clone(),
        interface: format!("eth{index}"),
        mac: config.mac.clone().unwrap_or_default(),
        ports: ports.to_vec(),
    };
    let request = ipam::Request {
        container,
        wanted: config.ip,
    };
    let claimed = ipam::claim(tx, network, request, &template, is_stale)?;
    let mut endpoint = Endpoint {
        address: claimed.address,
        ..template
    };
    if endpoint.mac.is_empty() {
        endpoint.mac = format_mac(host::mac_of(claimed.address));
        tx.insert(&endpoint)?;
    }
    Ok((endpoint, claimed.replaced))
}

/// Creates the pair, its host end in hairpin mode; a host end of the same
/// name still there (a pair whose namespace the kernel has not finished
/// taking down, after a quick restart) is deleted first.
fn create_veth(
    nl: &mut Netlink,
    veth: &Veth<'_>,
) -> Result<crate::netlink::VethPair, NetworkError> {
    let pair = match nl.create_veth(veth) {
        Err(e) if e.errno() == Some(nix::errno::Errno::EEXIST) => {
            nl.delete_link(veth.host_name)?;
            nl.create_veth(veth)?
        }
        other => other?,
    };
    nl.set_hairpin(pair.host)?;
    Ok(pair)
}

/// The containers holding endpoints that `is_stale` says no longer run.
/// Asked before a transaction: inside one, the caller's lookups in the
/// store would fail (and call every holder stale).
fn stale_holders(
    store: &Store,
    is_stale: &dyn Fn(&str) -> bool,
) -> Result<std::collections::HashSet<String>, NetworkError> {
    let mut holders: Vec<String> = store
        .table::<Endpoint>()?
        .list()?
        .into_iter()
        .map(|e| e.container)
        .collect();
    holders.sort();
    holders.dedup();
    Ok(holders.into_iter().filter(|c| is_stale(c)).collect())
}

/// The endpoints a container holds, on any network.
pub fn endpoints_of(store: &Store, container: &str) -> Result<Vec<Endpoint>, NetworkError> {
    Ok(store
        .table::<Endpoint>()?
        .list()?
        .into_iter()
        .filter(|e| e.container == container)
        .collect())
}

/// The host end of the container's `index`th veth: `mu`, 10 characters of
/// its id and the index (13 bytes; interface names have 15).
pub fn veth_name(container: &str, index: usize) -> String {
    format!("mu{}{index:x}", &container[..10.min(container.len())])
}

const LOOPBACK_INDEX: u32 = 1;

fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    bytes.try_into().ok()
}

/// The firewall's rules for an endpoint's published ports.
fn endpoint_rules(endpoint: &Endpoint) -> Vec<PortRule> {
    endpoint.ports.iter().map(|p| rule(endpoint, p)).collect()
}

fn rule(endpoint: &Endpoint, p: &PortBinding) -> PortRule {
    PortRule {
        protocol: match p.protocol {
            Protocol::Tcp => firewall::Protocol::Tcp,
            Protocol::Udp => firewall::Protocol::Udp,
        },
        host_ip: p.host_ip,
        host_port: p.host_port,
        container_ip: endpoint.address,
        container_port: p.container_port,
        bridge: endpoint.bridge.clone(),
    }
}
