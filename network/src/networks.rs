//! The network records: create, find, list and remove, as `muelle
//! network` does them. Only records here; the host's side (bridge,
//! firewall rules, resolver) is [`crate::host`]'s.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use storage::store::{Store, Tx};

use crate::error::NetworkError;
use crate::record::{DEFAULT_BRIDGE, DEFAULT_NETWORK, Endpoint, Network};
use crate::subnet;

/// The names `--network` gives other meanings: they are never records.
const RESERVED: &[&str] = &["bridge", "default", "host", "none"];

/// `muelle network create`'s options.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub name: String,
    /// `-d`: only `bridge`.
    pub driver: Option<String>,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

/// Makes a network's record: its subnet (the one given, or a free one of
/// the pool that no host route overlaps) and its bridge's name.
pub fn create(store: &Store, options: &CreateOptions) -> Result<Network, NetworkError> {
    subnet::check_name(&options.name)?;
    if RESERVED.contains(&options.name.as_str()) || options.name == DEFAULT_NETWORK {
        return Err(NetworkError::Exists(options.name.clone()));
    }
    if let Some(driver) = options.driver.as_deref()
        && driver != "bridge"
    {
        return Err(NetworkError::UnknownDriver(driver.to_owned()));
    }
    let given = options.subnet.as_deref().map(subnet::parse).transpose()?;
    let gateway = options
        .gateway
        .as_deref()
        .map(|g| {
            g.parse::<Ipv4Addr>()
                .map_err(|_| NetworkError::InvalidSubnet {
                    given: g.to_owned(),
                    reason: "the gateway is not an IPv4 address".into(),
                })
        })
        .transpose()?;
    if gateway.is_some() && given.is_none() {
        return Err(NetworkError::GatewayWithoutSubnet);
    }
    let routes = subnet::host_routes();
    store.transact_with(|tx| {
        if tx.get::<Network>(&options.name)?.is_some() {
            return Err(NetworkError::Exists(options.name.clone()));
        }
        let networks = all(tx)?;
        let subnet = match given {
            Some(s) => {
                if let Some(other) = networks.iter().find(|n| subnet::overlaps(s, n.subnet)) {
                    return Err(NetworkError::Overlap {
                        subnet: s.to_string(),
                        other: other.name.clone(),
                        other_subnet: other.subnet.to_string(),
                    });
                }
                s
            }
            None => {
                let mut taken: Vec<Ipv4Net> = networks.iter().map(|n| n.subnet).collect();
                taken.extend(&routes);
                subnet::pick(&taken)?
            }
        };
        let id = storage::random::hex_id();
        let network = Network {
            bridge: format!("muelle-{}", &id[..8]),
            id,
            name: options.name.clone(),
            driver: "bridge".into(),
            subnet,
            gateway: subnet::gateway(subnet, gateway)?,
            internal: options.internal,
            dns: true,
            labels: options.labels.clone(),
            created: storage::time::now_rfc3339(),
        };
        tx.insert(&network)?;
        Ok(network)
    })
}

/// The default network's record, made on first use: 10.77.0.0/16 on
/// `muelle0` (a free /16 of the pool when the host routes that already).
pub fn default_network(store: &Store) -> Result<Network, NetworkError> {
    if let Some(network) = store.table::<Network>()?.get(DEFAULT_NETWORK)? {
        return Ok(network);
    }
    let routes = subnet::host_routes();
    store.transact_with(|tx| {
        if let Some(network) = tx.get::<Network>(DEFAULT_NETWORK)? {
            return Ok(network);
        }
        let mut taken: Vec<Ipv4Net> = all(tx)?.iter().map(|n| n.subnet).collect();
        taken.extend(&routes);
        let subnet = if taken
            .iter()
            .any(|t| subnet::overlaps(*t, subnet::DEFAULT_SUBNET))
        {
            subnet::pick(&taken)?
        } else {
            subnet::DEFAULT_SUBNET
        };
        let network = Network {
            id: storage::random::hex_id(),
            name: DEFAULT_NETWORK.into(),
            driver: "bridge".into(),
            bridge: DEFAULT_BRIDGE.into(),
            subnet,
            gateway: subnet::gateway(subnet, None)?,
            internal: false,
            dns: false,
            labels: BTreeMap::new(),
            created: storage::time::now_rfc3339(),
        };
        tx.insert(&network)?;
        Ok(network)
    })
}

/// A network by name, by `bridge` (the default network), or by a unique
/// prefix of its id.
pub fn find(store: &Store, text: &str) -> Result<Network, NetworkError> {
    if text == "bridge" || text == "default" || text == DEFAULT_NETWORK {
        return default_network(store);
    }
    let table = store.table::<Network>()?;
    if let Some(network) = table.get(text)? {
        return Ok(network);
    }
    let matches: Vec<Network> = table
        .list()?
        .into_iter()
        .filter(|n| !text.is_empty() && n.id.starts_with(text))
        .collect();
    match <[Network; 1]>::try_from(matches) {
        Ok([network]) => Ok(network),
        Err(many) if many.len() > 1 => Err(NetworkError::Ambiguous(text.to_owned())),
        Err(_) => Err(NetworkError::NotFound(text.to_owned())),
    }
}

/// Every network, the default one included, by name.
pub fn list(store: &Store) -> Result<Vec<Network>, NetworkError> {
    default_network(store)?;
    Ok(store.table::<Network>()?.list()?)
}

/// The running containers on `network` (their ids), from its endpoints.
pub fn endpoints(store: &Store, network: &str) -> Result<Vec<Endpoint>, NetworkError> {
    let prefix = Endpoint::prefix_of(network);
    let table = store.table::<Endpoint>()?;
    let mut out = Vec::new();
    for key in table.keys_with_prefix(&prefix)? {
        if let Some(endpoint) = table.get(&key)? {
            out.push(endpoint);
        }
    }
    Ok(out)
}

/// Removes the network's record unless a running container is on it
/// (`is_live` tells whether an endpoint's container still runs; stale
/// endpoints go with the record). Returns the record and the stale
/// endpoints, whose host objects the caller takes down.
pub fn remove(
    store: &Store,
    network: &Network,
    is_live: &dyn Fn(&str) -> bool,
) -> Result<Vec<Endpoint>, NetworkError> {
    if network.is_default() {
        return Err(NetworkError::Predefined(network.name.clone(), "removed"));
    }
    // Asked before the transaction, inside which the caller could not
    // read the store; nothing changes meanwhile (this command holds it).
    let live_now: Vec<String> = endpoints(store, &network.name)?
        .into_iter()
        .filter(|e| is_live(&e.container))
        .map(|e| e.container)
        .collect();
    store.transact_with(|tx| {
        let endpoints: Vec<Endpoint> = tx
            .list::<Endpoint>()?
            .into_iter()
            .filter(|e| e.network == network.name)
            .collect();
        let mut live: Vec<String> = endpoints
            .iter()
            .filter(|e| live_now.contains(&e.container))
            .map(|e| e.container.clone())
            .collect();
        if !live.is_empty() {
            live.dedup();
            return Err(NetworkError::InUse {
                name: network.name.clone(),
                id: network.id.clone(),
                containers: live,
            });
        }
        for endpoint in &endpoints {
            tx.remove::<Endpoint>(&Endpoint::key_of(&endpoint.network, endpoint.address))?;
        }
        tx.remove::<Network>(&network.name)?;
        Ok(endpoints)
    })
}

fn all(tx: &Tx<'_>) -> Result<Vec<Network>, NetworkError> {
    Ok(tx.list::<Network>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(name: &str, subnet: Option<&str>) -> CreateOptions {
        CreateOptions {
            name: name.into(),
            subnet: subnet.map(str::to_owned),
            ..CreateOptions::default()
        }
    }

    #[test]
    fn create_find_list_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let a = create(&store, &options("front", Some("10.200.0.0/24"))).expect("a");
        assert_eq!(a.gateway, Ipv4Addr::new(10, 200, 0, 1));
        assert!(
            a.bridge.starts_with("muelle-") && a.bridge.len() == 15,
            "{}",
            a.bridge
        );
        let b = create(&store, &options("b", None)).expect("b");
        assert_ne!(a.subnet, b.subnet);
        assert!(b.dns && !b.internal);

        assert_eq!(find(&store, "front").expect("by name"), a);
        assert_eq!(find(&store, &a.id[..10]).expect("by id"), a);
        assert!(matches!(find(&store, "zz"), Err(NetworkError::NotFound(_))));
        let default = find(&store, "bridge").expect("default");
        assert_eq!(default.bridge, "muelle0");
        assert!(!default.dns);
        let names: Vec<String> = list(&store)
            .expect("list")
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert_eq!(names, ["b", "front", "muelle"]);

        let err = create(&store, &options("front", None))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "network with name front already exists");
        let err = create(&store, &options("c", Some("10.200.0.128/25"))).unwrap_err();
        assert!(err.to_string().contains("Pool overlaps"), "{err}");
        for reserved in ["host", "none", "bridge", "muelle"] {
            assert!(
                create(&store, &options(reserved, None)).is_err(),
                "{reserved}"
            );
        }
        let err = remove(&store, &default, &|_| false).unwrap_err();
        assert!(err.to_string().contains("pre-defined"), "{err}");

        remove(&store, &a, &|_| false).expect("rm");
        assert!(matches!(
            find(&store, "front"),
            Err(NetworkError::NotFound(_))
        ));
    }

    #[test]
    fn a_network_with_a_running_container_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let net = create(&store, &options("a", Some("10.200.0.0/24"))).expect("a");
        let endpoint = Endpoint {
            network: "a".into(),
            address: Ipv4Addr::new(10, 200, 0, 2),
            container: "c1".into(),
            names: vec![],
            host_veth: String::new(),
            bridge: String::new(),
            interface: "eth0".into(),
            mac: String::new(),
            ports: vec![],
        };
        store
            .table::<Endpoint>()
            .expect("t")
            .insert(&endpoint)
            .expect("insert");
        let err = remove(&store, &net, &|_| true).unwrap_err().to_string();
        assert!(err.contains("has active endpoints (c1)"), "{err}");
        let stale = remove(&store, &net, &|_| false).expect("rm");
        assert_eq!(stale, [endpoint]);
        assert!(endpoints(&store, "a").expect("endpoints").is_empty());
    }
}
