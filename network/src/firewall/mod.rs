//! muelle's firewall rules for bridge networks: egress masquerade,
//! isolation between networks, `--internal` networks and published ports
//! (DNAT), as docker's bridge driver lays them out with its userland proxy
//! off.
//!
//! Two backends hold the same rules: nftables, in muelle's own table
//! (`table ip muelle`, laid out in `nftables.rs`), and iptables, in
//! muelle's own chains (`MUELLE-*`) with one jump into them from each
//! built-in chain they hang off (laid out in `iptables.rs`).
//! [`Firewall::detect`] picks nftables when `nft` works here.
//!
//! Guarantees, for both backends:
//! - muelle touches nothing it did not create: it adds, changes and removes
//!   only its table, or its chains and their jumps.
//! - Every operation is idempotent: applying twice is applying once, and
//!   removing what is absent succeeds.
//! - A change is all or nothing: nftables applies it as one transaction (one
//!   `nft -f -` script); iptables applies filter then nat, each as one
//!   `iptables-restore --noflush`, and undoes filter's part when nat fails
//!   (empty chains and jumps it made may stay).
//! - No change is lost to another muelle changing the rules at the same
//!   time (muelle has no daemon to serialize them): changes are additions
//!   and deletions, never a rewrite of what was read, and one whose write
//!   fails because the rules changed since its read is done again.
//! - Everything is removable: [`Firewall::remove_all`] leaves no trace.
//!
//! What the rules do:
//! 1. Masquerade: packets from a non-internal network's subnet leaving
//!    through an interface that is not a muelle bridge are masqueraded.
//! 2. Isolation: forwarded packets between two muelle bridges are dropped
//!    (unless they belong to a published port, below); within one bridge
//!    they pass. Packets from elsewhere into a bridge pass only as replies
//!    (established, related) or published ports: a container's address is
//!    not reachable from outside without publishing.
//! 3. Internal networks: nothing is forwarded into or out of the bridge
//!    except within it, published ports included, and nothing is
//!    masqueraded.
//! 4. Published ports: a packet to a local address with the rule's protocol
//!    and host port (and host address, when given) is DNATed to the
//!    container, in prerouting (other hosts, other namespaces, containers)
//!    and in output (the host itself, 127.0.0.1 included). Packets from
//!    127.0.0.0/8 leaving through a bridge are masqueraded, which makes
//!    127.0.0.1 work once the caller sets `route_localnet=1` on the bridge
//!    (this module sets no sysctl). DNATed packets leaving through a
//!    bridge towards one of the bridge's own subnet addresses are
//!    masqueraded too (hairpin: a container reaching a neighbour, or
//!    itself, through a published port; for itself, where br_netfilter
//!    passes bridged packets to netfilter, its bridge port needs
//!    `hairpin_mode`, which the caller sets). A host port can be
//!    published once per (protocol, host address); publishing it again to
//!    another destination fails with [`Error::PortTaken`].
//!
//! A host whose own filter FORWARD policy is DROP (docker installs do
//! that), decided: with iptables, muelle's `MUELLE-FORWARD` jump is
//! inserted first in `FORWARD`, so its accepts decide before that policy
//! (rules others insert before it later do not change that unless they
//! drop muelle's packets). With nftables, an accept is final only within
//! its own chain: every other table's forward chain still sees the packet,
//! and a drop policy there (iptables-nft's `table ip filter`, firewalld,
//! docker) drops muelle's traffic, as do iptables-legacy's tables. muelle
//! does not edit other tables: [`Firewall::add_network`] logs a warning
//! naming each nftables chain on the forward hook whose policy is drop, and
//! the operator either accepts muelle's bridges there or uses the iptables
//! backend. Drops in muelle's own rules (isolation, internal networks) hold
//! whatever other tables do.
//!
//! Conntrack: rules apply to new connections. A connection that exists
//! keeps its NAT after [`Firewall::unpublish`] until conntrack forgets it
//! (for UDP flows that keep sending, that is as long as they send).

mod command;
mod iptables;
mod nftables;

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use command::Tool;

/// Which tool holds muelle's rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// muelle's own nftables table, `table ip muelle`.
    Nftables,
    /// muelle's own iptables chains (`MUELLE-*`) and their jumps.
    Iptables,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Nftables => "nftables",
            Backend::Iptables => "iptables",
        })
    }
}

/// A bridge network's rules.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetworkRules {
    /// The bridge's interface name (at most 15 bytes of `A-Za-z0-9_.-`).
    pub bridge: String,
    /// The subnet's address; host bits are ignored.
    pub subnet: Ipv4Addr,
    pub prefix_len: u8,
    /// `--internal`: no traffic in or out of the bridge, no masquerade.
    pub internal: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    fn parse(s: &str) -> Option<Protocol> {
        match s {
            "tcp" | "6" => Some(Protocol::Tcp),
            "udp" | "17" => Some(Protocol::Udp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A published port: host (address,) port → container address, port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortRule {
    pub protocol: Protocol,
    /// `None` (or 0.0.0.0, taken the same way) = every host address.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
    /// The container's bridge. The rules do not depend on it (forwarding
    /// accepts any DNATed connection into a muelle bridge); it is recorded
    /// with the port so that [`Firewall::list`] gives it back.
    pub bridge: String,
}

impl PortRule {
    /// What the host side listens on: a port is published once per key.
    fn key(&self) -> (Protocol, Option<Ipv4Addr>, u16) {
        (self.protocol, self.host_ip, self.host_port)
    }

    /// Whether `self` and `other` send the same host port to the same place.
    fn same_binding(&self, other: &PortRule) -> bool {
        self.key() == other.key()
            && self.container_ip == other.container_ip
            && self.container_port == other.container_port
    }
}

impl fmt::Display for PortRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}:{} -> {}:{}",
            self.protocol,
            self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            self.host_port,
            self.container_ip,
            self.container_port
        )
    }
}

/// What muelle's rules hold now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Installed {
    /// The bridges that have network rules, sorted.
    pub networks: Vec<String>,
    /// The published ports, sorted by protocol, host address and port.
    pub ports: Vec<PortRule>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command failed; `message` is its stderr on one line.
    #[error("{command}: {message} ({doing})")]
    Command {
        command: String,
        message: String,
        doing: String,
    },
    #[error("cannot run {command} ({doing}): {source}")]
    Spawn {
        command: String,
        doing: String,
        source: std::io::Error,
    },
    #[error("{command} printed what muelle cannot read ({doing}): {reason}")]
    Output {
        command: String,
        doing: String,
        reason: String,
    },
    #[error(
        "no firewall tool works here (nft: {nft}; iptables: {iptables}): install nftables (the `nft` command) or iptables"
    )]
    Unavailable { nft: String, iptables: String },
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("host port {port} is already published to {to}")]
    PortTaken { port: String, to: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// muelle's firewall rules, through one backend.
#[derive(Clone, Debug)]
pub struct Firewall {
    backend: Backend,
    tools: Tools,
}

/// The commands a backend runs, found once.
#[derive(Clone, Debug)]
struct Tools {
    nft: Tool,
    iptables: Tool,
    iptables_save: Tool,
    iptables_restore: Tool,
}

impl Tools {
    fn find() -> Tools {
        Tools {
            nft: Tool::find("nft"),
            iptables: Tool::find("iptables"),
            iptables_save: Tool::find("iptables-save"),
            iptables_restore: Tool::find("iptables-restore"),
        }
    }
}

impl Firewall {
    /// nftables when `nft` works here, iptables otherwise; an error naming
    /// what to install when neither does. "Works" means it lists the
    /// kernel's tables: the binary exists and the kernel has the support.
    pub fn detect() -> Result<Firewall> {
        let tools = Tools::find();
        let nft = match nftables::probe(&tools) {
            Ok(()) => return Ok(Firewall::with_tools(Backend::Nftables, tools)),
            Err(e) => e,
        };
        let iptables = match iptables::probe(&tools) {
            Ok(()) => return Ok(Firewall::with_tools(Backend::Iptables, tools)),
            Err(e) => e,
        };
        Err(Error::Unavailable {
            nft: nft.to_string(),
            iptables: iptables.to_string(),
        })
    }

    /// This backend, without checking that its tools work.
    pub fn with_backend(backend: Backend) -> Firewall {
        Firewall::with_tools(backend, Tools::find())
    }

    fn with_tools(backend: Backend, tools: Tools) -> Firewall {
        Firewall { backend, tools }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Ensures muelle's base table/chains, then this network's rules. A
    /// bridge that has rules with another subnet or internal flag gets
    /// this network's instead.
    pub fn add_network(&self, net: &NetworkRules) -> Result<()> {
        let net = net.checked()?;
        match self.backend {
            Backend::Nftables => nftables::add_network(&self.tools, &net),
            Backend::Iptables => iptables::add_network(&self.tools, &net),
        }
    }

    /// Removes the bridge's network rules; its published ports stay until
    /// unpublished (they belong to containers).
    pub fn remove_network(&self, bridge: &str) -> Result<()> {
        check_ifname(bridge)?;
        match self.backend {
            Backend::Nftables => nftables::remove_network(&self.tools, bridge),
            Backend::Iptables => iptables::remove_network(&self.tools, bridge),
        }
    }

    /// Publishes every port or none (ensuring the base first). A port that
    /// is already published to the same destination stays as it is; one
    /// published to another destination fails the whole call with
    /// [`Error::PortTaken`].
    pub fn publish(&self, ports: &[PortRule]) -> Result<()> {
        let ports = checked_ports(ports, Bridge::Required)?;
        if ports.is_empty() {
            return Ok(());
        }
        match self.backend {
            Backend::Nftables => nftables::publish(&self.tools, &ports),
            Backend::Iptables => iptables::publish(&self.tools, &ports),
        }
    }

    /// Unpublishes these ports, all or none. A port that is not published,
    /// or is published to another destination (someone else's), is left
    /// alone without error. Their bridge may be left empty: a port is
    /// found by its binding alone (the caller may no longer know the
    /// bridge, its network removed).
    pub fn unpublish(&self, ports: &[PortRule]) -> Result<()> {
        let ports = checked_ports(ports, Bridge::Optional)?;
        if ports.is_empty() {
            return Ok(());
        }
        match self.backend {
            Backend::Nftables => nftables::unpublish(&self.tools, &ports),
            Backend::Iptables => iptables::unpublish(&self.tools, &ports),
        }
    }

    /// What muelle's rules hold now (for `muelle system check`, which
    /// removes what no record owns).
    pub fn list(&self) -> Result<Installed> {
        let mut installed = match self.backend {
            Backend::Nftables => nftables::list(&self.tools)?,
            Backend::Iptables => iptables::list(&self.tools)?,
        };
        installed.networks.sort();
        installed.networks.dedup();
        installed.ports.sort_by_key(|p| (p.key(), p.container_ip));
        Ok(installed)
    }

    /// Drops muelle's table, or its chains and their jumps, entirely.
    pub fn remove_all(&self) -> Result<()> {
        match self.backend {
            Backend::Nftables => nftables::remove_all(&self.tools),
            Backend::Iptables => iptables::remove_all(&self.tools),
        }
    }
}

/// Runs a read-then-write change `f` again while a command fails, a few
/// times: muelle has no daemon, and another muelle may change the rules
/// between this one's read and its write (the write then fails whole).
fn retrying(f: impl Fn() -> Result<()>) -> Result<()> {
    const ATTEMPTS: u64 = 4;
    let mut attempt = 1;
    loop {
        match f() {
            Err(Error::Command { .. }) if attempt < ATTEMPTS => {
                std::thread::sleep(std::time::Duration::from_millis(5 * attempt));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// An IPv4 subnet, its host bits zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Subnet {
    addr: Ipv4Addr,
    len: u8,
}

impl Subnet {
    fn new(addr: Ipv4Addr, len: u8) -> Subnet {
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            len,
        }
    }

    /// `a.b.c.d/len`, or a bare address for /32 (as both tools print it).
    fn parse(s: &str) -> Option<Subnet> {
        let (addr, len) = match s.split_once('/') {
            Some((addr, len)) => (addr, len.parse().ok()?),
            None => (s, 32),
        };
        if len > 32 {
            return None;
        }
        let subnet = Subnet::new(addr.parse().ok()?, len);
        (subnet.addr.to_string() == addr).then_some(subnet)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// A network as the backends take it: checked, its subnet masked.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Network {
    bridge: String,
    subnet: Subnet,
    internal: bool,
}

impl NetworkRules {
    fn checked(&self) -> Result<Network> {
        check_ifname(&self.bridge)?;
        if !(1..=32).contains(&self.prefix_len) {
            return Err(Error::Invalid {
                what: "prefix length",
                value: self.prefix_len.to_string(),
                reason: "must be 1 to 32",
            });
        }
        Ok(Network {
            bridge: self.bridge.clone(),
            subnet: Subnet::new(self.subnet, self.prefix_len),
            internal: self.internal,
        })
    }
}

/// Whether a port must name its bridge.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bridge {
    Required,
    /// Empty is allowed; a name given is still checked.
    Optional,
}

/// Checks the ports, takes 0.0.0.0 as "every address" and drops repeats.
fn checked_ports(ports: &[PortRule], bridge: Bridge) -> Result<Vec<PortRule>> {
    let mut out: Vec<PortRule> = Vec::with_capacity(ports.len());
    let mut seen: HashMap<(Protocol, Option<Ipv4Addr>, u16), usize> = HashMap::new();
    for port in ports {
        if !(bridge == Bridge::Optional && port.bridge.is_empty()) {
            check_ifname(&port.bridge)?;
        }
        if port.host_port == 0 || port.container_port == 0 {
            return Err(Error::Invalid {
                what: "port",
                value: port.to_string(),
                reason: "port 0 cannot be published",
            });
        }
        if port.container_ip.is_unspecified() {
            return Err(Error::Invalid {
                what: "port",
                value: port.to_string(),
                reason: "the container address is unspecified",
            });
        }
        let mut port = port.clone();
        port.host_ip = port.host_ip.filter(|ip| !ip.is_unspecified());
        match seen.get(&port.key()) {
            Some(&i) if out[i].same_binding(&port) => {}
            Some(&i) => {
                return Err(Error::PortTaken {
                    port: host_side(&port),
                    to: container_side(&out[i]),
                });
            }
            None => {
                seen.insert(port.key(), out.len());
                out.push(port);
            }
        }
    }
    Ok(out)
}

/// "publishing tcp 0.0.0.0:8080 -> 10.88.0.2:80, ..."
fn doing_ports(verb: &str, ports: &[PortRule]) -> String {
    let list: Vec<String> = ports.iter().map(ToString::to_string).collect();
    format!("{verb} {}", list.join(", "))
}

/// `tcp 0.0.0.0:8080`.
fn host_side(port: &PortRule) -> String {
    format!(
        "{} {}:{}",
        port.protocol,
        port.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
        port.host_port
    )
}

/// `10.88.0.2:80`.
fn container_side(port: &PortRule) -> String {
    format!("{}:{}", port.container_ip, port.container_port)
}

/// The first port of `wanted` that `installed` publishes elsewhere.
fn taken(wanted: &[PortRule], installed: &[PortRule]) -> Option<Error> {
    wanted.iter().find_map(|w| {
        let other = installed
            .iter()
            .find(|i| i.key() == w.key() && !i.same_binding(w))?;
        Some(Error::PortTaken {
            port: host_side(w),
            to: container_side(other),
        })
    })
}

/// Interface names go into nft scripts and iptables-restore lines: allow
/// only what needs no quoting and is no iptables wildcard (`+`).
fn check_ifname(name: &str) -> Result<()> {
    let invalid = |reason| {
        Err(Error::Invalid {
            what: "bridge name",
            value: name.to_string(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 15 {
        return invalid("must be 1 to 15 bytes long");
    }
    if name == "." || name == ".." {
        return invalid("is not an interface name");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return invalid("may hold only A-Z, a-z, 0-9, '_', '.' and '-'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn port(
        host_ip: Option<[u8; 4]>,
        host_port: u16,
        to: [u8; 4],
        to_port: u16,
    ) -> PortRule {
        PortRule {
            protocol: Protocol::Tcp,
            host_ip: host_ip.map(Ipv4Addr::from),
            host_port,
            container_ip: Ipv4Addr::from(to),
            container_port: to_port,
            bridge: "muelle0".into(),
        }
    }

    #[test]
    fn subnets_are_masked_and_parsed() {
        let s = Subnet::new(Ipv4Addr::new(10, 88, 1, 7), 24);
        assert_eq!(s.to_string(), "10.88.1.0/24");
        assert_eq!(Subnet::parse("10.88.1.0/24"), Some(s));
        assert_eq!(Subnet::parse("10.88.1.5/24"), None);
        assert_eq!(
            Subnet::parse("1.2.3.4"),
            Some(Subnet::new(Ipv4Addr::new(1, 2, 3, 4), 32))
        );
        assert_eq!(Subnet::parse("1.2.3.4/33"), None);
        assert_eq!(
            Subnet::new(Ipv4Addr::new(1, 2, 3, 4), 32).to_string(),
            "1.2.3.4/32"
        );
    }

    #[test]
    fn bridge_names_are_checked() {
        assert!(check_ifname("muelle0").is_ok());
        assert!(check_ifname("br-1.a_b").is_ok());
        for bad in [
            "",
            ".",
            "..",
            "a b",
            "a\"b",
            "mu+",
            "0123456789abcdef",
            "a/b",
            "é",
        ] {
            assert!(check_ifname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn networks_are_checked() {
        let net = NetworkRules {
            bridge: "muelle0".into(),
            subnet: Ipv4Addr::new(10, 88, 0, 1),
            prefix_len: 16,
            internal: false,
        };
        assert_eq!(net.checked().unwrap().subnet.to_string(), "10.88.0.0/16");
        let zero = NetworkRules {
            prefix_len: 0,
            ..net.clone()
        };
        assert!(zero.checked().is_err());
        let long = NetworkRules {
            prefix_len: 33,
            ..net
        };
        assert!(long.checked().is_err());
    }

    #[test]
    fn ports_are_checked_and_repeats_dropped() {
        let a = port(Some([0, 0, 0, 0]), 8080, [10, 88, 0, 2], 80);
        let checked = checked_ports(&[a.clone(), a.clone()], Bridge::Required).unwrap();
        assert_eq!(checked.len(), 1);
        assert_eq!(checked[0].host_ip, None);

        let other = port(None, 8080, [10, 88, 0, 3], 80);
        let err = checked_ports(&[a.clone(), other], Bridge::Required).unwrap_err();
        assert_eq!(
            err.to_string(),
            "host port tcp 0.0.0.0:8080 is already published to 10.88.0.2:80"
        );

        // Another host address is another key.
        let bound = port(Some([127, 0, 0, 1]), 8080, [10, 88, 0, 3], 80);
        assert_eq!(
            checked_ports(&[a.clone(), bound], Bridge::Required)
                .unwrap()
                .len(),
            2
        );

        assert!(checked_ports(&[port(None, 0, [10, 88, 0, 2], 80)], Bridge::Required).is_err());
        assert!(checked_ports(&[port(None, 1, [10, 88, 0, 2], 0)], Bridge::Required).is_err());
        assert!(checked_ports(&[port(None, 1, [0, 0, 0, 0], 1)], Bridge::Required).is_err());
        let mut bad_bridge = a.clone();
        bad_bridge.bridge = "x y".into();
        assert!(checked_ports(&[bad_bridge.clone()], Bridge::Required).is_err());
        assert!(checked_ports(&[bad_bridge], Bridge::Optional).is_err());
        // Unpublishing finds a port by its binding: no bridge needed.
        let mut unknown = a;
        unknown.bridge.clear();
        assert!(checked_ports(&[unknown.clone()], Bridge::Required).is_err());
        assert_eq!(
            checked_ports(&[unknown], Bridge::Optional).unwrap().len(),
            1
        );
    }

    #[test]
    fn taken_names_the_holder() {
        let installed = [port(None, 8080, [10, 88, 0, 2], 80)];
        assert!(taken(&[port(None, 8080, [10, 88, 0, 2], 80)], &installed).is_none());
        assert!(taken(&[port(None, 8081, [10, 88, 0, 3], 80)], &installed).is_none());
        let err = taken(&[port(None, 8080, [10, 88, 0, 3], 80)], &installed).unwrap();
        assert!(
            err.to_string().ends_with("published to 10.88.0.2:80"),
            "{err}"
        );
    }
}
