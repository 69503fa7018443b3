//! IPv4 routes of the main table: add the default one, list them.

use std::net::Ipv4Addr;

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use nix::errno::Errno;

use super::{Netlink, Result};

/// An IPv4 route of the main table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// `0.0.0.0` with `prefix_len` 0 for the default route.
    pub destination: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    /// The index of the link it goes out of.
    pub oif: Option<u32>,
}

impl Netlink {
    /// Adds the default route via `gateway` to the main table. The gateway
    /// must be reachable on a link that is up (an address of its subnet
    /// there), else the kernel answers `ENETUNREACH`; a default route that
    /// exists already gives `EEXIST`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<()> {
        self.request(
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewRoute(default_route_message(gateway)),
            &|| format!("adding the default route via {gateway}"),
            &mut |_| Ok(()),
        )
    }

    /// The IPv4 routes of the main table (one dump); none when the table
    /// does not exist yet.
    pub fn routes(&mut self) -> Result<Vec<Route>> {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        message.header.table = RouteHeader::RT_TABLE_MAIN;
        let replies = match self.dump(RouteNetlinkMessage::GetRoute(message), &|| {
            "listing routes".to_owned()
        }) {
            Ok(replies) => replies,
            // A namespace without any route yet has no main table.
            Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(replies
            .into_iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewRoute(m) => main_ipv4_route(&m),
                _ => None,
            })
            .collect())
    }
}

/// `RTM_NEWROUTE` for `default via GATEWAY`, as `ip route add` makes it.
pub(super) fn default_route_message(gateway: Ipv4Addr) -> RouteMessage {
    let mut message = RouteMessage::default();
    message.header.address_family = AddressFamily::Inet;
    message.header.destination_prefix_length = 0;
    message.header.table = RouteHeader::RT_TABLE_MAIN;
    message.header.protocol = RouteProtocol::Boot;
    message.header.scope = RouteScope::Universe;
    message.header.kind = RouteType::Unicast;
    message
        .attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
    message
}

fn main_ipv4_route(message: &RouteMessage) -> Option<Route> {
    let header = &message.header;
    if header.address_family != AddressFamily::Inet {
        return None;
    }
    let mut table = u32::from(header.table);
    let mut route = Route {
        destination: Ipv4Addr::UNSPECIFIED,
        prefix_len: header.destination_prefix_length,
        gateway: None,
        oif: None,
    };
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(RouteAddress::Inet(a)) => route.destination = *a,
            RouteAttribute::Gateway(RouteAddress::Inet(a)) => route.gateway = Some(*a),
            RouteAttribute::Oif(index) => route.oif = Some(*index),
            // Tables past 255 are only in RTA_TABLE.
            RouteAttribute::Table(t) => table = *t,
            _ => {}
        }
    }
    (table == u32::from(RouteHeader::RT_TABLE_MAIN)).then_some(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_route_request_is_a_unicast_route_via_the_gateway() {
        let gw = Ipv4Addr::new(10, 88, 0, 1);
        let m = default_route_message(gw);
        assert_eq!(m.header.destination_prefix_length, 0);
        assert_eq!(m.header.kind, RouteType::Unicast);
        assert_eq!(m.header.table, RouteHeader::RT_TABLE_MAIN);
        assert_eq!(
            m.attributes,
            vec![RouteAttribute::Gateway(RouteAddress::Inet(gw))]
        );
        assert_eq!(
            main_ipv4_route(&m),
            Some(Route {
                destination: Ipv4Addr::UNSPECIFIED,
                prefix_len: 0,
                gateway: Some(gw),
                oif: None,
            })
        );
    }

    #[test]
    fn routes_of_other_tables_are_left_out() {
        let mut m = default_route_message(Ipv4Addr::new(10, 0, 0, 1));
        m.header.table = 255; // local
        assert_eq!(main_ipv4_route(&m), None);
        m.header.table = 252;
        m.attributes.push(RouteAttribute::Table(1000));
        assert_eq!(main_ipv4_route(&m), None);
    }
}
