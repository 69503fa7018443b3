//! IPv4 addresses of a link: add one, list them.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{Error, Netlink, Result};

impl Netlink {
    /// Adds `addr/prefix_len` to link `index`, with its subnet's broadcast
    /// address (as `ip address add ... brd +` and docker do) when the prefix
    /// leaves room for one. The kernel adds the subnet's route when the link
    /// is up. Fails with `EEXIST` when the link has that address already.
    pub fn add_address(&mut self, index: u32, addr: Ipv4Addr, prefix_len: u8) -> Result<()> {
        let what = || format!("adding address {addr}/{prefix_len} to link {index}");
        let message = new_address_message(index, addr, prefix_len).map_err(|reason| {
            Error::InvalidArgument {
                what: what(),
                reason,
            }
        })?;
        self.request(
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewAddress(message),
            &what,
            &mut |_| Ok(()),
        )
    }

    /// The IPv4 addresses of link `index` with their prefix lengths, in the
    /// kernel's order (one dump).
    pub fn addresses(&mut self, index: u32) -> Result<Vec<(Ipv4Addr, u8)>> {
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet;
        // With strict checking the kernel filters by index; older kernels
        // send every address, filtered below.
        message.header.index = index;
        let what = || format!("listing the addresses of link {index}");
        let replies = self.dump(RouteNetlinkMessage::GetAddress(message), &what)?;
        Ok(replies
            .into_iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewAddress(m) => ipv4_of(&m, index),
                _ => None,
            })
            .collect())
    }
}

/// `RTM_NEWADDR` for `addr/prefix_len` on link `index`.
pub(super) fn new_address_message(
    index: u32,
    addr: Ipv4Addr,
    prefix_len: u8,
) -> std::result::Result<AddressMessage, &'static str> {
    if prefix_len > 32 {
        return Err("an IPv4 prefix length is at most 32");
    }
    let mut message = AddressMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.prefix_len = prefix_len;
    message.header.scope = AddressScope::Universe;
    message.header.index = index;
    message
        .attributes
        .push(AddressAttribute::Local(IpAddr::V4(addr)));
    message
        .attributes
        .push(AddressAttribute::Address(IpAddr::V4(addr)));
    if let Some(broadcast) = broadcast(addr, prefix_len) {
        message
            .attributes
            .push(AddressAttribute::Broadcast(broadcast));
    }
    Ok(message)
}

/// The broadcast address of `addr/prefix_len`; none for /31 and /32, which
/// have no room for one (RFC 3021).
fn broadcast(addr: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Addr> {
    if prefix_len >= 31 {
        return None;
    }
    let host_bits = u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
    Some(Ipv4Addr::from(u32::from(addr) | host_bits))
}

/// The IPv4 address and prefix length of `message` when it is on `index`.
fn ipv4_of(message: &AddressMessage, index: u32) -> Option<(Ipv4Addr, u8)> {
    if message.header.index != index || message.header.family != AddressFamily::Inet {
        return None;
    }
    // IFA_LOCAL is the address itself; IFA_ADDRESS is the peer's on
    // point-to-point links and the same otherwise.
    let mut local = None;
    let mut address = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(IpAddr::V4(a)) => local = Some(*a),
            AddressAttribute::Address(IpAddr::V4(a)) => address = Some(*a),
            _ => {}
        }
    }
    local
        .or(address)
        .map(|addr| (addr, message.header.prefix_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broadcast_address_fills_the_host_bits() {
        let a = Ipv4Addr::new(10, 88, 0, 5);
        assert_eq!(broadcast(a, 16), Some(Ipv4Addr::new(10, 88, 255, 255)));
        assert_eq!(broadcast(a, 24), Some(Ipv4Addr::new(10, 88, 0, 255)));
        assert_eq!(broadcast(a, 30), Some(Ipv4Addr::new(10, 88, 0, 7)));
        assert_eq!(broadcast(a, 0), Some(Ipv4Addr::BROADCAST));
        assert_eq!(broadcast(a, 31), None);
        assert_eq!(broadcast(a, 32), None);
    }

    #[test]
    fn an_address_request_names_local_address_and_broadcast() {
        let a = Ipv4Addr::new(10, 88, 0, 5);
        let m = new_address_message(3, a, 16).unwrap();
        assert_eq!(m.header.index, 3);
        assert_eq!(m.header.prefix_len, 16);
        assert_eq!(m.header.family, AddressFamily::Inet);
        assert_eq!(
            m.attributes,
            vec![
                AddressAttribute::Local(a.into()),
                AddressAttribute::Address(a.into()),
                AddressAttribute::Broadcast(Ipv4Addr::new(10, 88, 255, 255)),
            ]
        );
        assert!(new_address_message(3, a, 33).is_err());
    }

    #[test]
    fn listed_addresses_are_those_of_the_link() {
        let mut m = new_address_message(3, Ipv4Addr::new(10, 0, 0, 2), 24).unwrap();
        assert_eq!(ipv4_of(&m, 3), Some((Ipv4Addr::new(10, 0, 0, 2), 24)));
        assert_eq!(ipv4_of(&m, 4), None);
        // A point-to-point address: IFA_LOCAL is ours.
        m.attributes = vec![
            AddressAttribute::Address(Ipv4Addr::new(10, 0, 0, 1).into()),
            AddressAttribute::Local(Ipv4Addr::new(10, 0, 0, 2).into()),
        ];
        assert_eq!(ipv4_of(&m, 3), Some((Ipv4Addr::new(10, 0, 0, 2), 24)));
    }
}
