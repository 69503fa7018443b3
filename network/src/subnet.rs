//! Subnets of networks: the user's `--subnet` and `--gateway` checked,
//! and free ones picked from muelle's pools.
//!
//! The default network is 10.77.0.0/16; user networks get a /24 each from
//! 10.78.0.0/15 (512 of them). Both stay clear of docker's (172.17.0.0/16
//! and up) and podman's (10.88.0.0/16, 10.89.0.0/16) defaults, so the three
//! engines can run side by side. A picked subnet never overlaps another
//! muelle network or a route the host has already.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::error::NetworkError;

/// The default network's subnet (unless the host routes it already).
pub const DEFAULT_SUBNET: Ipv4Net = match Ipv4Net::new(Ipv4Addr::new(10, 77, 0, 0), 16) {
    Ok(net) => net,
    Err(_) => panic!("a valid prefix"),
};

/// The pool user networks' subnets come from, and their size.
const POOL: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 78, 0, 0), 15);
const POOL_PREFIX: u8 = 24;

/// Parses `--subnet`: an IPv4 network address with its prefix, room for
/// at least a gateway and one container.
pub fn parse(given: &str) -> Result<Ipv4Net, NetworkError> {
    let bad = |reason: String| NetworkError::InvalidSubnet {
        given: given.to_owned(),
        reason,
    };
    let net: Ipv4Net = given.parse().map_err(|_| {
        bad("use an IPv4 network in CIDR notation, like 10.1.0.0/24 (IPv6 is not supported)".into())
    })?;
    if net.prefix_len() > 30 {
        return Err(bad(
            "the prefix leaves no room for a gateway and a container: use /30 or shorter".into(),
        ));
    }
    if net.network() != net.addr() {
        return Err(bad(format!("it should be {}", net.trunc())));
    }
    Ok(net)
}

/// `--gateway`, or the subnet's first host address.
pub fn gateway(subnet: Ipv4Net, given: Option<Ipv4Addr>) -> Result<Ipv4Addr, NetworkError> {
    let Some(gateway) = given else {
        return subnet
            .hosts()
            .next()
            .ok_or_else(|| NetworkError::InvalidSubnet {
                given: subnet.to_string(),
                reason: "it has no host address".into(),
            });
    };
    if !subnet.contains(&gateway) || gateway == subnet.network() || gateway == subnet.broadcast() {
        return Err(NetworkError::InvalidGateway {
            gateway,
            subnet: subnet.to_string(),
        });
    }
    Ok(gateway)
}

pub fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first subnet of the user pool that overlaps none of `taken`.
pub fn pick(taken: &[Ipv4Net]) -> Result<Ipv4Net, NetworkError> {
    let pool = Ipv4Net::new(POOL.0, POOL.1).map_err(|_| NetworkError::NoFreeSubnet)?;
    pool.subnets(POOL_PREFIX)
        .map_err(|_| NetworkError::NoFreeSubnet)?
        .find(|candidate| !taken.iter().any(|t| overlaps(*candidate, *t)))
        .ok_or(NetworkError::NoFreeSubnet)
}

/// The IPv4 routes of the host's main table that are not default routes
/// (from /proc/net/route), which a new subnet must not shadow.
pub fn host_routes() -> Vec<Ipv4Net> {
    let Ok(text) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    text.lines().skip(1).filter_map(parse_route_line).collect()
}

/// One line of /proc/net/route: Iface Destination Gateway Flags RefCnt
/// Use Metric Mask ..., addresses in hex, host byte order (little endian
/// on the machines muelle runs on, as the kernel prints it).
fn parse_route_line(line: &str) -> Option<Ipv4Net> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let destination = u32::from_str_radix(fields.get(1)?, 16).ok()?;
    let mask = u32::from_str_radix(fields.get(7)?, 16).ok()?;
    let prefix = u32::from_be(mask.to_le()).leading_ones() as u8;
    if prefix == 0 {
        return None;
    }
    let address = Ipv4Addr::from(u32::from_be(destination.to_le()));
    Ipv4Net::new(address, prefix).ok().map(|n| n.trunc())
}

/// Checks a network name: docker's rule for names.
pub fn check_name(name: &str) -> Result<(), NetworkError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && name.len() <= 64 {
        Ok(())
    } else {
        Err(NetworkError::InvalidName(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_checked() {
        assert_eq!(parse("10.1.0.0/24").expect("ok").to_string(), "10.1.0.0/24");
        let err = parse("10.1.0.5/24").unwrap_err().to_string();
        assert!(err.contains("it should be 10.1.0.0/24"), "{err}");
        assert!(parse("10.1.0.0/31").is_err());
        assert!(parse("fd00::/64").unwrap_err().to_string().contains("IPv6"));
        assert!(parse("10.1.0.0").is_err());
    }

    #[test]
    fn gateways_default_to_the_first_host() {
        let net = parse("10.1.0.0/24").expect("ok");
        assert_eq!(gateway(net, None).expect("gw"), Ipv4Addr::new(10, 1, 0, 1));
        assert_eq!(
            gateway(net, Some(Ipv4Addr::new(10, 1, 0, 254))).expect("gw"),
            Ipv4Addr::new(10, 1, 0, 254)
        );
        for bad in [[10, 1, 1, 1], [10, 1, 0, 0], [10, 1, 0, 255]] {
            assert!(gateway(net, Some(bad.into())).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn picks_skip_what_is_taken() {
        let first = pick(&[]).expect("pick");
        assert_eq!(first.to_string(), "10.78.0.0/24");
        let second = pick(&[first, parse("10.78.1.0/25").expect("ok")]).expect("pick");
        assert_eq!(second.to_string(), "10.78.2.0/24");
        // A host route covering the whole pool leaves nothing.
        assert!(pick(&[parse("10.0.0.0/8").expect("ok")]).is_err());
        assert!(overlaps(
            parse("10.0.0.0/8").expect("a"),
            parse("10.9.0.0/24").expect("b")
        ));
        assert!(!overlaps(
            parse("10.9.1.0/24").expect("a"),
            parse("10.9.0.0/24").expect("b")
        ));
    }

    #[test]
    fn route_lines_are_read() {
        let line = "eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0";
        assert_eq!(
            parse_route_line(line).expect("route").to_string(),
            "192.168.0.0/24"
        );
        let default = "eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0";
        assert!(parse_route_line(default).is_none());
    }

    #[test]
    fn names() {
        assert!(check_name("front-end_1.x").is_ok());
        for bad in ["", "-x", "a/b", "a b", "..", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
