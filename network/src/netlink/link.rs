//! Links: read one or all, create a bridge or a veth pair, set one up,
//! delete one. Names are checked here as the kernel would, before anything
//! is sent.

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute,
    LinkExtentMask, LinkFlags, LinkInfo, LinkMessage,
};
use nix::errno::Errno;

use super::{Error, Netlink, Result};

/// The kernel's room for an interface name, with its NUL: names have at
/// most 15 bytes.
pub const IFNAMSIZ: usize = 16;

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `"bridge"`, `"veth"`, ...; `None` for devices without a kind (`lo`,
    /// physical ones).
    pub kind: Option<String>,
    /// The index of the bridge (or bond) it is enslaved to.
    pub master: Option<u32>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// The hardware address, when it is an Ethernet one.
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
}

/// A veth pair to create: the host end here, the peer straight inside
/// another network namespace.
#[derive(Debug, Clone, Copy)]
pub struct Veth<'a> {
    /// The host end's name, e.g. `mu1a2b3c4d5e6f` (at most 15 bytes).
    pub host_name: &'a str,
    /// The bridge to enslave the host end to.
    pub master: Option<u32>,
    /// The peer's name inside `peer_netns`, e.g. `eth0`.
    pub peer_name: &'a str,
    pub peer_netns: BorrowedFd<'a>,
    /// The peer's hardware address; the kernel picks a random one if `None`.
    pub peer_mac: Option<[u8; 6]>,
    /// MTU of both ends; the kernel's default (1500) if `None`.
    pub mtu: Option<u32>,
}

/// The indexes of a new veth pair, each in its own namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VethPair {
    /// The host end, in the socket's namespace.
    pub host: u32,
    /// The peer, in the peer's namespace.
    pub peer: u32,
}

/// Checks `name` as the kernel's `dev_valid_name` does: 1 to 15 bytes, not
/// `.` or `..`, no `/`, `:`, NUL or white space. Also keeps it out of paths
/// built from it (`/proc/sys/net/ipv4/conf/NAME`).
pub fn check_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() >= IFNAMSIZ {
        "longer than 15 bytes"
    } else if name == "." || name == ".." {
        "reserved"
    } else if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace() || b == 0x0b)
    {
        "contains '/', ':', a NUL or white space"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

impl Netlink {
    /// The link named `name`, or `None` when there is none.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>> {
        check_name(name)?;
        let mut found = None;
        let asked = self.request(
            NLM_F_ACK,
            RouteNetlinkMessage::GetLink(get_link_message(name)),
            &|| format!("reading link {name}"),
            &mut |reply| {
                if let RouteNetlinkMessage::NewLink(message) = reply {
                    found = Some(parse_link(message).map_err(|reason| Error::Decode {
                        what: format!("reading link {name}"),
                        reason,
                    })?);
                }
                Ok(())
            },
        );
        match asked {
            Err(e) if e.errno() == Some(Errno::ENODEV) => Ok(None),
            Err(e) => Err(e),
            Ok(()) => Ok(found),
        }
    }

    /// Every link of the namespace (one dump).
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let what = || "listing links".to_owned();
        let mut links = Vec::new();
        for reply in self.dump(RouteNetlinkMessage::GetLink(message), &what)? {
            if let RouteNetlinkMessage::NewLink(message) = reply {
                links.push(parse_link(message).map_err(|reason| Error::Decode {
                    what: what(),
                    reason,
                })?);
            }
        }
        Ok(links)
    }

    /// Creates the bridge `name` and sets it up; returns its index. Fails
    /// with `EEXIST` ([`Error::errno`]) when a link of that name exists,
    /// which is left as it was.
    pub fn create_bridge(&mut self, name: &str) -> Result<u32> {
        check_name(name)?;
        let what = || format!("creating bridge {name}");
        let mut index = None;
        self.request(
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
            RouteNetlinkMessage::NewLink(bridge_message(name)),
            &what,
            &mut |reply| {
                if let Some((i, _)) = echoed(&reply, name) {
                    index = Some(i);
                }
                Ok(())
            },
        )?;
        match index {
            Some(index) => Ok(index),
            // A kernel before 6.3 does not echo a new link.
            None => self.created(name, &what).map(|(index, _)| index),
        }
    }

    /// Creates a veth pair in one request: the host end here, named, up,
    /// enslaved to `master`; the peer named inside `peer_netns`, with its
    /// MAC and the MTU, left down (configure it from a [`Netlink`] opened in
    /// that namespace). Returns both indexes. Fails with `EEXIST` when the
    /// host name (or the peer name in its namespace) is taken; on any
    /// failure the kernel has created neither end.
    pub fn create_veth(&mut self, veth: &Veth<'_>) -> Result<VethPair> {
        check_name(veth.host_name)?;
        check_name(veth.peer_name)?;
        let what = || format!("creating veth {} (peer {})", veth.host_name, veth.peer_name);
        let mut pair = None;
        self.request(
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
            RouteNetlinkMessage::NewLink(veth_message(veth)),
            &what,
            &mut |reply| {
                if let Some((host, Some(peer))) = echoed(&reply, veth.host_name) {
                    pair = Some(VethPair { host, peer });
                }
                Ok(())
            },
        )?;
        if let Some(pair) = pair {
            return Ok(pair);
        }
        match self.created(veth.host_name, &what)? {
            (host, Some(peer)) => Ok(VethPair { host, peer }),
            (_, None) => Err(Error::Decode {
                what: what(),
                reason: format!("{} has no peer index (IFLA_LINK)", veth.host_name),
            }),
        }
    }

    /// Sets link `index` up. Setting a link that is up again is no error.
    /// Turns hairpin mode on for a bridge port: the bridge may send a frame
    /// back out of the port it came in by, so a container reaches its own
    /// published port through the host's address (DNAT sends its packets
    /// back to it; with br_netfilter that happens inside the bridge).
    pub fn set_hairpin(&mut self, index: u32) -> Result<()> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
                true,
            )])),
        ]));
        // RTM_NEWLINK on an existing link (no NLM_F_CREATE): RTM_SETLINK
        // ignores IFLA_LINKINFO, and with it a port's settings.
        self.request(
            NLM_F_ACK,
            RouteNetlinkMessage::NewLink(message),
            &|| format!("setting hairpin mode on link {index}"),
            &mut |_| Ok(()),
        )
    }

    pub fn set_up(&mut self, index: u32) -> Result<()> {
        self.request(
            NLM_F_ACK,
            RouteNetlinkMessage::SetLink(set_up_message(index)),
            &|| format!("setting link {index} up"),
            &mut |_| Ok(()),
        )
    }

    /// Deletes the link `name` (a veth takes its peer along). Returns
    /// `false` when there was none.
    pub fn delete_link(&mut self, name: &str) -> Result<bool> {
        check_name(name)?;
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_owned()));
        let deleted = self.request(
            NLM_F_ACK,
            RouteNetlinkMessage::DelLink(message),
            &|| format!("deleting link {name}"),
            &mut |_| Ok(()),
        );
        match deleted {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Some(Errno::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The index and `IFLA_LINK` of a link this call just created, read
    /// back when the kernel did not echo it.
    fn created(&mut self, name: &str, what: &dyn Fn() -> String) -> Result<(u32, Option<u32>)> {
        let mut found = None;
        self.request(
            NLM_F_ACK,
            RouteNetlinkMessage::GetLink(get_link_message(name)),
            what,
            &mut |reply| {
                if let Some(f) = echoed(&reply, name) {
                    found = Some(f);
                }
                Ok(())
            },
        )?;
        found.ok_or_else(|| Error::Decode {
            what: what(),
            reason: format!("the kernel acknowledged {name} but does not report it"),
        })
    }
}

/// `RTM_GETLINK` for one name, without statistics.
fn get_link_message(name: &str) -> LinkMessage {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_owned()));
    message
        .attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    message
}

/// `RTM_NEWLINK` for a bridge that comes up.
fn bridge_message(name: &str) -> LinkMessage {
    let mut message = LinkMessage::default();
    message.header.flags = LinkFlags::Up;
    message.header.change_mask = LinkFlags::Up;
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_owned()));
    message
        .attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Bridge,
        )]));
    message
}

/// `RTM_NEWLINK` for a veth pair: the host end's header and attributes, the
/// peer's inside `IFLA_LINKINFO`/`IFLA_INFO_DATA`/`VETH_INFO_PEER`.
fn veth_message(veth: &Veth<'_>) -> LinkMessage {
    let mut peer = LinkMessage::default();
    peer.attributes
        .push(LinkAttribute::IfName(veth.peer_name.to_owned()));
    peer.attributes
        .push(LinkAttribute::NetNsFd(veth.peer_netns.as_raw_fd()));
    if let Some(mac) = veth.peer_mac {
        peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
    }
    if let Some(mtu) = veth.mtu {
        peer.attributes.push(LinkAttribute::Mtu(mtu));
    }

    let mut message = LinkMessage::default();
    message.header.flags = LinkFlags::Up;
    message.header.change_mask = LinkFlags::Up;
    message
        .attributes
        .push(LinkAttribute::IfName(veth.host_name.to_owned()));
    if let Some(mtu) = veth.mtu {
        message.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(master) = veth.master {
        message.attributes.push(LinkAttribute::Controller(master));
    }
    message.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    message
}

/// `RTM_SETLINK` that sets `IFF_UP` and touches no other flag.
fn set_up_message(index: u32) -> LinkMessage {
    let mut message = LinkMessage::default();
    message.header.index = index;
    message.header.flags = LinkFlags::Up;
    message.header.change_mask = LinkFlags::Up;
    message
}

pub(super) fn set_up_request(index: u32) -> RouteNetlinkMessage {
    RouteNetlinkMessage::SetLink(set_up_message(index))
}

/// The index and `IFLA_LINK` of `reply` when it describes the link `name`.
fn echoed(reply: &RouteNetlinkMessage, name: &str) -> Option<(u32, Option<u32>)> {
    let RouteNetlinkMessage::NewLink(message) = reply else {
        return None;
    };
    let mut named = false;
    let mut link = None;
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(n) => named = n == name,
            LinkAttribute::Link(l) => link = Some(*l),
            _ => {}
        }
    }
    named.then_some((message.header.index, link))
}

fn parse_link(message: LinkMessage) -> std::result::Result<Link, String> {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        kind: None,
        master: None,
        up: message.header.flags.contains(LinkFlags::Up),
        mac: None,
        mtu: None,
    };
    for attribute in message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name,
            LinkAttribute::Controller(master) => link.master = Some(master),
            LinkAttribute::Mtu(mtu) => link.mtu = Some(mtu),
            LinkAttribute::Address(address) => link.mac = address.as_slice().try_into().ok(),
            LinkAttribute::LinkInfo(infos) => {
                link.kind = infos.into_iter().find_map(|info| match info {
                    LinkInfo::Kind(kind) => Some(kind.to_string()),
                    _ => None,
                });
            }
            _ => {}
        }
    }
    if link.name.is_empty() {
        return Err(format!("link {} has no name", link.index));
    }
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, Parseable};

    #[test]
    fn names_are_checked_as_the_kernel_does() {
        for good in ["eth0", "mu1a2b3c4d5e6f", "a", "fifteen-bytes-x", "br-1.2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for (bad, reason) in [
            ("", "empty"),
            ("sixteen-bytes-xx", "longer than 15 bytes"),
            (".", "reserved"),
            ("..", "reserved"),
            ("a/b", "contains"),
            ("a:b", "contains"),
            ("a b", "contains"),
            ("a\tb", "contains"),
            ("a\0b", "contains"),
        ] {
            let e = check_name(bad).unwrap_err();
            assert!(e.to_string().contains(reason), "{bad:?}: {e}");
            assert_eq!(e.errno(), None);
        }
        assert_eq!(
            check_name("sixteen-bytes-xx").unwrap_err().to_string(),
            "invalid interface name \"sixteen-bytes-xx\": longer than 15 bytes"
        );
    }

    /// Emits `message` and parses it back, as the kernel would read it.
    fn round_trip(message: &LinkMessage) -> LinkMessage {
        let mut bytes = vec![0; message.buffer_len()];
        message.emit(&mut bytes);
        LinkMessage::parse(&bytes[..]).unwrap()
    }

    #[test]
    fn a_bridge_request_asks_for_a_bridge_that_is_up() {
        let message = round_trip(&bridge_message("muelle0"));
        assert_eq!(message.header.flags, LinkFlags::Up);
        assert_eq!(message.header.change_mask, LinkFlags::Up);
        assert!(
            message
                .attributes
                .contains(&LinkAttribute::IfName("muelle0".into()))
        );
        assert!(
            message
                .attributes
                .contains(&LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                    InfoKind::Bridge
                )]))
        );
    }

    #[test]
    fn a_veth_request_carries_the_peer_and_its_namespace() {
        let netns = std::fs::File::open("/dev/null").unwrap();
        use std::os::fd::AsFd;
        let veth = Veth {
            host_name: "mu0123456789ab",
            master: Some(7),
            peer_name: "eth0",
            peer_netns: netns.as_fd(),
            peer_mac: Some([0x02, 0, 0, 0, 0, 1]),
            mtu: Some(1400),
        };
        let message = round_trip(&veth_message(&veth));
        assert_eq!(message.header.flags, LinkFlags::Up);
        let a = &message.attributes;
        assert!(a.contains(&LinkAttribute::IfName("mu0123456789ab".into())));
        assert!(a.contains(&LinkAttribute::Controller(7)));
        assert!(a.contains(&LinkAttribute::Mtu(1400)));
        let Some(LinkAttribute::LinkInfo(infos)) =
            a.iter().find(|a| matches!(a, LinkAttribute::LinkInfo(_)))
        else {
            panic!("no IFLA_LINKINFO in {a:?}");
        };
        assert_eq!(infos[0], LinkInfo::Kind(InfoKind::Veth));
        let LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))) = &infos[1] else {
            panic!("no peer in {infos:?}");
        };
        assert_eq!(peer.header.flags, LinkFlags::empty(), "the peer stays down");
        let p = &peer.attributes;
        assert!(p.contains(&LinkAttribute::IfName("eth0".into())));
        assert!(p.contains(&LinkAttribute::NetNsFd(netns.as_raw_fd())));
        assert!(p.contains(&LinkAttribute::Address(vec![0x02, 0, 0, 0, 0, 1])));
        assert!(p.contains(&LinkAttribute::Mtu(1400)));
        assert!(!p.iter().any(|a| matches!(a, LinkAttribute::Controller(_))));
    }

    #[test]
    fn set_up_changes_only_the_up_flag() {
        let message = round_trip(&set_up_message(3));
        assert_eq!(message.header.index, 3);
        assert_eq!(message.header.change_mask, LinkFlags::Up);
        assert!(message.attributes.is_empty());
    }

    #[test]
    fn a_reported_link_is_read_into_a_link() {
        let mut message = LinkMessage::default();
        message.header.index = 4;
        message.header.flags = LinkFlags::Up | LinkFlags::Running;
        message.attributes = vec![
            LinkAttribute::IfName("mu1".into()),
            LinkAttribute::Controller(2),
            LinkAttribute::Mtu(1500),
            LinkAttribute::Address(vec![2, 1, 2, 3, 4, 5]),
            LinkAttribute::Link(9),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
        ];
        let reply = RouteNetlinkMessage::NewLink(message.clone());
        assert_eq!(echoed(&reply, "mu1"), Some((4, Some(9))));
        assert_eq!(echoed(&reply, "mu2"), None);
        assert_eq!(
            parse_link(message),
            Ok(Link {
                index: 4,
                name: "mu1".into(),
                kind: Some("veth".into()),
                master: Some(2),
                up: true,
                mac: Some([2, 1, 2, 3, 4, 5]),
                mtu: Some(1500),
            })
        );
    }

    #[test]
    fn a_link_without_a_name_is_malformed() {
        let mut message = LinkMessage::default();
        message.header.index = 4;
        assert!(parse_link(message).is_err());
    }
}
