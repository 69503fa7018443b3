//! Address management: which address of a network each running container
//! holds, kept in the store (`network-addresses`) so that every command
//! sees every claim. A claim is made inside the caller's transaction, and
//! commands hold the store one at a time, so no address is handed out
//! twice, also to containers started in parallel.
//!
//! Addresses go back to the pool when their container's run is taken
//! down. A claim whose container no longer runs (a command killed between
//! claim and record) is stale: it is taken over when the pool has nothing
//! else, and `system check` removes it.

use std::net::Ipv4Addr;

use storage::store::{StoreError, Tx};

use crate::error::NetworkError;
use crate::record::{Endpoint, Network};

/// What a container asks of a network's address pool.
pub struct Request<'a> {
    pub container: &'a str,
    /// `--ip`: this address or an error.
    pub wanted: Option<Ipv4Addr>,
}

/// An address claimed, and the stale endpoint it was taken from (whose
/// host objects the caller takes down).
#[derive(Debug)]
pub struct Claimed {
    pub address: Ipv4Addr,
    pub replaced: Option<Endpoint>,
}

/// Claims an address of `network` for the request's container and
/// records `endpoint` (its network, address and container filled in
/// here) under it. `is_stale` says whether a container id holding an
/// endpoint no longer runs; it is called inside `tx`, so it must not read
/// the store (ask before the transaction).
pub fn claim(
    tx: &Tx<'_>,
    network: &Network,
    request: Request<'_>,
    endpoint: &Endpoint,
    is_stale: &dyn Fn(&str) -> bool,
) -> Result<Claimed, NetworkError> {
    let claims = claims(tx, &network.name)?;
    let address = match request.wanted {
        Some(wanted) => {
            check_wanted(network, wanted)?;
            match claims.iter().find(|c| c.address == wanted) {
                Some(c) if c.container != request.container && !is_stale(&c.container) => {
                    return Err(NetworkError::AddressInUse {
                        address: wanted,
                        network: network.name.clone(),
                    });
                }
                _ => wanted,
            }
        }
        None => lowest_free(network, &claims, |_| false)
            .or_else(|| lowest_free(network, &claims, is_stale))
            .ok_or_else(|| NetworkError::PoolExhausted(network.name.clone()))?,
    };
    let replaced = claims
        .into_iter()
        .find(|c| c.address == address && c.container != request.container);
    tx.insert(&Endpoint {
        network: network.name.clone(),
        address,
        container: request.container.to_owned(),
        ..endpoint.clone()
    })?;
    Ok(Claimed { address, replaced })
}

/// Gives the container's address back; a claim that another container
/// holds meanwhile is left alone. True when a claim went.
pub fn release(
    tx: &Tx<'_>,
    network: &str,
    address: Ipv4Addr,
    container: &str,
) -> Result<bool, StoreError> {
    let key = Endpoint::key_of(network, address);
    match tx.get::<Endpoint>(&key)? {
        Some(claim) if claim.container == container => {
            tx.remove::<Endpoint>(&key)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// The network's claims, in address order.
pub fn claims(tx: &Tx<'_>, network: &str) -> Result<Vec<Endpoint>, StoreError> {
    let mut claims: Vec<Endpoint> = tx
        .list::<Endpoint>()?
        .into_iter()
        .filter(|c| c.network == network)
        .collect();
    claims.sort_by_key(|c| c.address);
    Ok(claims)
}

/// `--ip` must be a host address of the subnet other than the gateway.
fn check_wanted(network: &Network, wanted: Ipv4Addr) -> Result<(), NetworkError> {
    let subnet = network.subnet;
    let usable = subnet.contains(&wanted)
        && wanted != subnet.network()
        && (subnet.prefix_len() >= 31 || wanted != subnet.broadcast())
        && wanted != network.gateway;
    if usable {
        Ok(())
    } else {
        Err(NetworkError::AddressOutside {
            address: wanted,
            network: network.name.clone(),
            subnet: subnet.to_string(),
        })
    }
}

/// The lowest host address that no claim holds, counting the claims of
/// `reclaimable` containers as free.
fn lowest_free(
    network: &Network,
    claims: &[Endpoint],
    reclaimable: impl Fn(&str) -> bool,
) -> Option<Ipv4Addr> {
    let mut taken = claims
        .iter()
        .filter(|c| !reclaimable(&c.container))
        .map(|c| c.address)
        .peekable();
    for candidate in network.subnet.hosts() {
        if candidate == network.gateway {
            continue;
        }
        while taken.peek().is_some_and(|t| *t < candidate) {
            taken.next();
        }
        if taken.peek() != Some(&candidate) {
            return Some(candidate);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::store::Store;

    fn network(subnet: &str, gateway: [u8; 4]) -> Network {
        Network {
            id: "0".repeat(64),
            name: "n".into(),
            driver: "bridge".into(),
            bridge: "muelle-00000000".into(),
            subnet: subnet.parse().expect("subnet"),
            gateway: gateway.into(),
            internal: false,
            dns: true,
            labels: Default::default(),
            created: String::new(),
        }
    }

    fn request(container: &str, wanted: Option<[u8; 4]>) -> Request<'_> {
        Request {
            container,
            wanted: wanted.map(Ipv4Addr::from),
        }
    }

    fn claim_in(
        store: &Store,
        net: &Network,
        req: Request<'_>,
        stale: &dyn Fn(&str) -> bool,
    ) -> Result<Ipv4Addr, NetworkError> {
        let endpoint = Endpoint {
            network: String::new(),
            address: Ipv4Addr::UNSPECIFIED,
            container: String::new(),
            names: vec![req.container.to_owned()],
            host_veth: String::new(),
            bridge: String::new(),
            interface: "eth0".into(),
            mac: String::new(),
            ports: Vec::new(),
        };
        let req = &req;
        store
            .transact_with(|tx| {
                let r = Request {
                    container: req.container,
                    wanted: req.wanted,
                };
                claim(tx, net, r, &endpoint, stale)
            })
            .map(|c| c.address)
    }

    #[test]
    fn addresses_are_handed_out_lowest_first_and_never_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let net = network("10.9.0.0/29", [10, 9, 0, 1]);
        let never = |_: &str| false;
        let got: Vec<Ipv4Addr> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|c| claim_in(&store, &net, request(c, None), &never).expect("claim"))
            .collect();
        let want: Vec<Ipv4Addr> = (2..=6).map(|i| Ipv4Addr::new(10, 9, 0, i)).collect();
        assert_eq!(got, want);
        let full = claim_in(&store, &net, request("f", None), &never).unwrap_err();
        assert!(
            full.to_string().contains("no available IPv4 addresses"),
            "{full}"
        );

        // Released addresses come back, lowest first.
        store
            .transact(|tx| release(tx, "n", Ipv4Addr::new(10, 9, 0, 3), "b"))
            .expect("release");
        let again = claim_in(&store, &net, request("g", None), &never).expect("claim");
        assert_eq!(again, Ipv4Addr::new(10, 9, 0, 3));
    }

    #[test]
    fn a_release_by_another_container_leaves_the_claim() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let net = network("10.9.0.0/24", [10, 9, 0, 1]);
        let ip = claim_in(&store, &net, request("a", None), &|_| false).expect("claim");
        let released = store
            .transact(|tx| release(tx, "n", ip, "b"))
            .expect("release");
        assert!(!released);
        assert_eq!(
            store.transact(|tx| claims(tx, "n")).expect("claims").len(),
            1
        );
    }

    #[test]
    fn a_wanted_address_is_checked_and_stale_claims_are_taken_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let net = network("10.9.0.0/24", [10, 9, 0, 1]);
        let never = |_: &str| false;
        let ip = claim_in(&store, &net, request("a", Some([10, 9, 0, 7])), &never).expect("claim");
        assert_eq!(ip, Ipv4Addr::new(10, 9, 0, 7));
        let taken = claim_in(&store, &net, request("b", Some([10, 9, 0, 7])), &never).unwrap_err();
        assert!(taken.to_string().contains("already in use"), "{taken}");
        for outside in [[10, 9, 1, 7], [10, 9, 0, 1], [10, 9, 0, 0], [10, 9, 0, 255]] {
            let err = claim_in(&store, &net, request("b", Some(outside)), &never).unwrap_err();
            assert!(err.to_string().contains("10.9.0.0/24"), "{err}");
        }
        // "a" no longer runs: its claim is stale.
        let stale = |c: &str| c == "a";
        let ip = claim_in(&store, &net, request("b", Some([10, 9, 0, 7])), &stale).expect("claim");
        assert_eq!(ip, Ipv4Addr::new(10, 9, 0, 7));
        let owner = store
            .transact(|tx| claims(tx, "n"))
            .expect("claims")
            .into_iter()
            .map(|c| c.container)
            .collect::<Vec<_>>();
        assert_eq!(owner, ["b"]);
    }

    #[test]
    fn stale_claims_are_reused_only_when_nothing_else_is_free() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let net = network("10.9.0.0/30", [10, 9, 0, 1]);
        let never = |_: &str| false;
        claim_in(&store, &net, request("a", None), &never).expect("claim");
        let stale = |c: &str| c == "a";
        // A /30 has two hosts; the gateway is one: only "a"'s is left.
        let ip = claim_in(&store, &net, request("b", None), &stale).expect("claim");
        assert_eq!(ip, Ipv4Addr::new(10, 9, 0, 2));
    }
}
