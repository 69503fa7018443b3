//! The nftables backend: muelle's rules in its own table, `table ip muelle`.
//!
//! The chains' rules are fixed; networks and ports are elements of the sets
//! and maps those rules look up, so adding or removing a network or a port
//! adds or deletes elements and no rule handle is ever tracked. Every change
//! is one `nft -f -` script, so one transaction: all of it or nothing.
//!
//! The table, its sets and its chains (the base) are written only where the
//! table is missing or incomplete (`add_network` reads the table first, and
//! writes the base again when a set, a chain or a rule is missing, which
//! repairs a table changed by hand; `publish` adds elements alone and
//! writes the base only when there is no table). Re-declaring a chain that
//! exists costs a transaction some 10 ms in the kernel, even unchanged.
//!
//! ```text
//! table ip muelle
//!   set bridges     ifname                    every muelle bridge
//!   set intra       ifname . ifname           "br" . "br": within a bridge
//!   set internal    ifname                    --internal bridges
//!   set egress      ipv4_addr (interval)      non-internal subnets (masqueraded)
//!   set networks    ifname . ipv4_addr (int.) bridge . subnet, every network
//!   map ports       inet_proto . inet_service : ipv4_addr . inet_service
//!   map addr_ports  ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
//! ```
//!
//! A published port's bridge is the comment of its map element. A lookup
//! that misses a map ends the rule (no DNAT), and the next rule runs.
//!
//! nft 1.0.6 quirks this layout avoids: `masquerade` is a keyword, so the
//! set of masqueraded subnets is `egress`; an `output` nat chain refuses
//! `priority dstnat` (it takes `-100`); `delete element` of an absent
//! element fails the whole script (and `destroy` is newer), so removals
//! read the table first and delete only what is there.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use serde_json::Value;

use super::command::Tool;
use super::{Error, Installed, Network, PortRule, Protocol, Result, Subnet, Tools};

pub(super) const TABLE: &str = "muelle";

/// Whether `nft` can list the kernel's tables here.
pub(super) fn probe(tools: &Tools) -> Result<()> {
    tools
        .nft
        .run(&["list", "tables"], None, "checking that nftables works")
        .map(drop)
}

pub(super) fn add_network(tools: &Tools, net: &Network) -> Result<()> {
    let doing = format!("applying muelle's network rules for {}", net.bridge);
    super::retrying(|| {
        let state = read(&tools.nft, &doing)?.unwrap_or_default();
        apply(&tools.nft, &add_network_script(net, &state), &doing)
    })?;
    warn_forward_drop(&tools.nft);
    Ok(())
}

pub(super) fn remove_network(tools: &Tools, bridge: &str) -> Result<()> {
    let doing = format!("removing muelle's network rules for {bridge}");
    super::retrying(|| match read(&tools.nft, &doing)? {
        Some(state) => apply(&tools.nft, &remove_network_script(bridge, &state), &doing),
        None => Ok(()),
    })
}

pub(super) fn publish(tools: &Tools, ports: &[PortRule]) -> Result<()> {
    let doing = super::doing_ports("publishing", ports);
    let mut result = apply(&tools.nft, &publish_script(ports, false), &doing);
    if let Err(Error::Command { message, .. }) = &result
        && message.contains("No such file or directory")
    {
        // No table (or one without its maps): write the base too.
        result = apply(&tools.nft, &publish_script(ports, true), &doing);
    }
    match result {
        // A host port mapped elsewhere: say where, if that is the reason.
        Err(Error::Command { message, .. }) if message.contains("File exists") => {
            let installed = read(&tools.nft, &doing)?.unwrap_or_default().ports;
            Err(
                super::taken(ports, &installed).unwrap_or_else(|| Error::Command {
                    command: tools.nft.name().to_string(),
                    message,
                    doing,
                }),
            )
        }
        other => other,
    }
}

pub(super) fn unpublish(tools: &Tools, ports: &[PortRule]) -> Result<()> {
    let doing = super::doing_ports("unpublishing", ports);
    super::retrying(|| match read(&tools.nft, &doing)? {
        Some(state) => apply(&tools.nft, &unpublish_script(ports, &state), &doing),
        None => Ok(()),
    })
}

pub(super) fn list(tools: &Tools) -> Result<Installed> {
    let state = read(&tools.nft, "listing muelle's rules")?.unwrap_or_default();
    let mut networks: BTreeSet<String> = state.bridges;
    networks.extend(state.networks.into_iter().map(|(bridge, _)| bridge));
    Ok(Installed {
        networks: networks.into_iter().collect(),
        ports: state.ports,
    })
}

pub(super) fn remove_all(tools: &Tools) -> Result<()> {
    // Adding first makes the delete succeed when there is no table.
    let script = format!("add table ip {TABLE}\ndelete table ip {TABLE}\n");
    apply(&tools.nft, &script, "removing muelle's nftables table")
}

fn apply(nft: &Tool, script: &str, doing: &str) -> Result<()> {
    if script.is_empty() {
        return Ok(());
    }
    nft.run(&["-f", "-"], Some(script), doing).map(drop)
}

/// muelle's sets and maps: name, and what follows `add set ip muelle NAME`.
const SETS: [(&str, &str); 7] = [
    ("bridges", "set {t} bridges { type ifname; }"),
    ("intra", "set {t} intra { type ifname . ifname; }"),
    ("internal", "set {t} internal { type ifname; }"),
    (
        "egress",
        "set {t} egress { type ipv4_addr; flags interval; }",
    ),
    (
        "networks",
        "set {t} networks { type ifname . ipv4_addr; flags interval; }",
    ),
    (
        "ports",
        "map {t} ports { type inet_proto . inet_service : ipv4_addr . inet_service; }",
    ),
    (
        "addr_ports",
        "map {t} addr_ports { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }",
    ),
];

/// muelle's chains: name, hook, rules.
const CHAINS: [(&str, &str, &[&str]); 4] = [
    (
        "prerouting",
        "type nat hook prerouting priority dstnat;",
        &[
            "fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @addr_ports",
            "fib daddr type local dnat ip to meta l4proto . th dport map @ports",
        ],
    ),
    (
        "output",
        // nft 1.0.6 refuses `priority dstnat` here.
        "type nat hook output priority -100;",
        &[
            "fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @addr_ports",
            "fib daddr type local dnat ip to meta l4proto . th dport map @ports",
        ],
    ),
    (
        "postrouting",
        "type nat hook postrouting priority srcnat;",
        &[
            // Hairpin: a published port reached from its own bridge.
            "oifname . ip saddr @networks ct status dnat masquerade",
            // 127.0.0.1:PORT from the host (with route_localnet).
            "oifname @bridges ip saddr 127.0.0.0/8 masquerade",
            "oifname != @bridges ip saddr @egress masquerade",
        ],
    ),
    (
        "forward",
        "type filter hook forward priority filter;",
        &[
            "iifname . oifname @intra accept",
            "iifname @internal drop",
            "oifname @internal drop",
            // Into a bridge only replies and published ports: this
            // isolates bridges from each other and from outside.
            "oifname @bridges ct state established,related accept",
            "oifname @bridges ct status dnat accept",
            "oifname @bridges drop",
            "iifname @bridges accept",
        ],
    ),
];

/// The table, its sets and maps, and its chains with their rules (written
/// again, where they exist).
fn base_script() -> String {
    let t = format!("ip {TABLE}");
    let mut s = format!("add table {t}\n");
    for (_, set) in SETS {
        writeln!(s, "add {}", set.replace("{t}", &t)).unwrap();
    }
    for (name, hook, rules) in CHAINS {
        writeln!(s, "add chain {t} {name} {{ {hook} policy accept; }}").unwrap();
        writeln!(s, "flush chain {t} {name}").unwrap();
        for rule in rules {
            writeln!(s, "add rule {t} {name} {rule}").unwrap();
        }
    }
    s
}

/// The base unless `old` is complete, this network's elements, and the
/// deletion of what the same bridge had before with another subnet or
/// internal flag.
fn add_network_script(net: &Network, old: &State) -> String {
    let (b, subnet) = (&net.bridge, net.subnet);
    let mut s = if old.complete {
        String::new()
    } else {
        base_script()
    };
    for (_, stale) in old
        .networks
        .iter()
        .filter(|(ob, os)| ob == b && *os != subnet)
    {
        element(&mut s, "delete", "networks", &format!("\"{b}\" . {stale}"));
        if old.egress.contains(stale) {
            element(&mut s, "delete", "egress", &stale.to_string());
        }
    }
    if net.internal && old.egress.contains(&subnet) {
        element(&mut s, "delete", "egress", &subnet.to_string());
    }
    if !net.internal && old.internal.contains(b) {
        element(&mut s, "delete", "internal", &format!("\"{b}\""));
    }
    element(&mut s, "add", "bridges", &format!("\"{b}\""));
    element(&mut s, "add", "intra", &format!("\"{b}\" . \"{b}\""));
    element(&mut s, "add", "networks", &format!("\"{b}\" . {subnet}"));
    if net.internal {
        element(&mut s, "add", "internal", &format!("\"{b}\""));
    } else {
        element(&mut s, "add", "egress", &subnet.to_string());
    }
    s
}

/// Deletes what the table holds for `bridge`; empty when it holds nothing.
fn remove_network_script(bridge: &str, state: &State) -> String {
    let mut s = String::new();
    let quoted = format!("\"{bridge}\"");
    if state.bridges.contains(bridge) {
        element(&mut s, "delete", "bridges", &quoted);
    }
    if state
        .intra
        .contains(&(bridge.to_string(), bridge.to_string()))
    {
        element(&mut s, "delete", "intra", &format!("{quoted} . {quoted}"));
    }
    if state.internal.contains(bridge) {
        element(&mut s, "delete", "internal", &quoted);
    }
    for (_, subnet) in state.networks.iter().filter(|(b, _)| b == bridge) {
        element(
            &mut s,
            "delete",
            "networks",
            &format!("{quoted} . {subnet}"),
        );
        if state.egress.contains(subnet) {
            element(&mut s, "delete", "egress", &subnet.to_string());
        }
    }
    s
}

/// The ports' elements, after the base when `with_base`.
fn publish_script(ports: &[PortRule], with_base: bool) -> String {
    let mut s = if with_base {
        base_script()
    } else {
        String::new()
    };
    for p in ports {
        let (map, key) = port_key(p);
        let value = format!(
            "{key} comment \"{}\" : {} . {}",
            p.bridge, p.container_ip, p.container_port
        );
        element(&mut s, "add", map, &value);
    }
    s
}

/// Deletes the ports the table maps to the same destination; empty when
/// none is there.
fn unpublish_script(ports: &[PortRule], state: &State) -> String {
    let mut s = String::new();
    for p in ports {
        if state.ports.iter().any(|i| i.same_binding(p)) {
            let (map, key) = port_key(p);
            element(&mut s, "delete", map, &key);
        }
    }
    s
}

/// The map that holds `port`, and its key there.
fn port_key(p: &PortRule) -> (&'static str, String) {
    match p.host_ip {
        Some(ip) => (
            "addr_ports",
            format!("{ip} . {} . {}", p.protocol, p.host_port),
        ),
        None => ("ports", format!("{} . {}", p.protocol, p.host_port)),
    }
}

fn element(s: &mut String, verb: &str, set: &str, value: &str) {
    writeln!(s, "{verb} element ip {TABLE} {set} {{ {value} }}").unwrap();
}

/// Logs a warning when another table's forward chain drops by default:
/// muelle's accepts cannot override it (see the module doc of `firewall`).
fn warn_forward_drop(nft: &Tool) {
    let Ok(json) = nft.run(&["-j", "list", "chains"], None, "listing chains") else {
        return;
    };
    for chain in forward_drop_chains(&json) {
        tracing::warn!(
            "nftables chain {chain} drops forwarded packets by default, which muelle's \
             accepts cannot override: containers on muelle networks cannot reach out nor be \
             reached there; allow muelle's bridges in that chain or use the iptables backend"
        );
    }
}

/// "ip filter FORWARD" for each base chain of another table on the forward
/// hook whose policy is drop.
fn forward_drop_chains(json: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<Value>(json) else {
        return Vec::new();
    };
    let items = v["nftables"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    items
        .iter()
        .filter_map(|item| item.get("chain"))
        .filter(|c| {
            c["hook"] == "forward"
                && c["policy"] == "drop"
                && matches!(c["family"].as_str(), Some("ip" | "inet"))
                && !(c["family"] == "ip" && c["table"] == TABLE)
        })
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or("?").to_string();
            format!("{} {} {}", s("family"), s("table"), s("name"))
        })
        .collect()
}

/// What muelle's table holds.
#[derive(Debug, Default, PartialEq)]
struct State {
    bridges: BTreeSet<String>,
    intra: BTreeSet<(String, String)>,
    internal: BTreeSet<String>,
    egress: BTreeSet<Subnet>,
    networks: BTreeSet<(String, Subnet)>,
    ports: Vec<PortRule>,
    /// Every set, map and chain is there, each chain with as many rules as
    /// the base gives it.
    complete: bool,
}

/// The table's state, or `None` when there is no table.
fn read(nft: &Tool, doing: &str) -> Result<Option<State>> {
    let json = match nft.run(&["-j", "list", "table", "ip", TABLE], None, doing) {
        Ok(json) => json,
        Err(Error::Command { message, .. }) if message.contains("No such file or directory") => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    parse_state(&json)
        .map(Some)
        .map_err(|reason| Error::Output {
            command: nft.name().to_string(),
            doing: doing.to_string(),
            reason,
        })
}

/// Reads `nft -j list table ip muelle`.
fn parse_state(json: &str) -> Result<State, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let items = v["nftables"].as_array().ok_or("no \"nftables\" list")?;
    let mut state = State::default();
    let mut sets = BTreeSet::new();
    let mut chains = BTreeSet::new();
    let mut rules: Vec<&str> = Vec::new();
    for item in items {
        if let Some(chain) = item.get("chain") {
            chains.insert(chain["name"].as_str().unwrap_or_default());
        }
        if let Some(rule) = item.get("rule") {
            rules.push(rule["chain"].as_str().unwrap_or_default());
        }
        let Some(set) = item.get("set").or_else(|| item.get("map")) else {
            continue;
        };
        sets.insert(set["name"].as_str().unwrap_or_default());
        let name = set["name"].as_str().unwrap_or_default();
        let elems = set["elem"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        for elem in elems {
            let bad = || format!("unexpected element {elem} in {name}");
            match name {
                "bridges" => {
                    state
                        .bridges
                        .insert(text(unwrap_elem(elem).0).ok_or_else(bad)?);
                }
                "internal" => {
                    state
                        .internal
                        .insert(text(unwrap_elem(elem).0).ok_or_else(bad)?);
                }
                "intra" => {
                    let parts = concat(unwrap_elem(elem).0, 2).ok_or_else(bad)?;
                    let pair = (text(&parts[0]), text(&parts[1]));
                    let (Some(a), Some(b)) = pair else {
                        return Err(bad());
                    };
                    state.intra.insert((a, b));
                }
                "egress" => {
                    state
                        .egress
                        .insert(subnet(unwrap_elem(elem).0).ok_or_else(bad)?);
                }
                "networks" => {
                    let parts = concat(unwrap_elem(elem).0, 2).ok_or_else(bad)?;
                    let pair = (text(&parts[0]), subnet(&parts[1]));
                    let (Some(b), Some(s)) = pair else {
                        return Err(bad());
                    };
                    state.networks.insert((b, s));
                }
                "ports" | "addr_ports" => {
                    state
                        .ports
                        .push(port(name == "addr_ports", elem).ok_or_else(bad)?);
                }
                _ => {}
            }
        }
    }
    state.complete = SETS.iter().all(|(name, _)| sets.contains(name))
        && CHAINS.iter().all(|(name, _, base)| {
            chains.contains(name) && rules.iter().filter(|c| *c == name).count() == base.len()
        });
    Ok(state)
}

/// A map element `[key, value]` of `ports` or `addr_ports`.
fn port(with_addr: bool, elem: &Value) -> Option<PortRule> {
    let [key, value] = elem.as_array()?.as_slice() else {
        return None;
    };
    let (key, comment) = unwrap_elem(key);
    let key = concat(key, if with_addr { 3 } else { 2 })?;
    let (host_ip, key) = if with_addr {
        (Some(key[0].as_str()?.parse().ok()?), &key[1..])
    } else {
        (None, key)
    };
    let to = concat(value, 2)?;
    Some(PortRule {
        protocol: protocol(&key[0])?,
        host_ip,
        host_port: service(&key[1])?,
        container_ip: to[0].as_str()?.parse::<Ipv4Addr>().ok()?,
        container_port: service(&to[1])?,
        bridge: comment.unwrap_or_default().to_string(),
    })
}

/// An element's value and comment: `{"elem": {"val": V, "comment": C}}`
/// when it has a comment (or other attributes), plain `V` otherwise.
fn unwrap_elem(v: &Value) -> (&Value, Option<&str>) {
    match v.get("elem") {
        Some(e) => (&e["val"], e["comment"].as_str()),
        None => (v, None),
    }
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn concat(v: &Value, n: usize) -> Option<&[Value]> {
    let parts = v.get("concat")?.as_array()?;
    (parts.len() == n).then_some(parts.as_slice())
}

/// `{"prefix": {"addr": A, "len": N}}`, or a bare address for /32.
fn subnet(v: &Value) -> Option<Subnet> {
    match v.get("prefix") {
        Some(p) => Subnet::parse(&format!("{}/{}", p["addr"].as_str()?, p["len"].as_u64()?)),
        None => Subnet::parse(v.as_str()?),
    }
}

fn protocol(v: &Value) -> Option<Protocol> {
    match v {
        Value::String(s) => Protocol::parse(s),
        Value::Number(n) => Protocol::parse(&n.to_string()),
        _ => None,
    }
}

fn service(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64()?.try_into().ok(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::NetworkRules;

    fn net(bridge: &str, subnet: [u8; 4], len: u8, internal: bool) -> Network {
        NetworkRules {
            bridge: bridge.into(),
            subnet: subnet.into(),
            prefix_len: len,
            internal,
        }
        .checked()
        .unwrap()
    }

    fn after_base(script: &str) -> Vec<&str> {
        let base = base_script();
        script
            .strip_prefix(&base)
            .expect("starts with the base")
            .lines()
            .collect()
    }

    #[test]
    fn base_declares_and_rewrites_the_chains() {
        let base = base_script();
        assert!(base.starts_with("add table ip muelle\n"));
        for chain in ["prerouting", "output", "postrouting", "forward"] {
            assert!(
                base.contains(&format!("flush chain ip muelle {chain}\n")),
                "{chain}"
            );
        }
        assert!(base.contains(
            "add chain ip muelle output { type nat hook output priority -100; policy accept; }"
        ));
        assert!(base.contains(
            "add rule ip muelle prerouting fib daddr type local dnat ip to meta l4proto . th dport map @ports\n"
        ));
        assert!(base.contains(
            "add rule ip muelle postrouting oifname != @bridges ip saddr @egress masquerade\n"
        ));
    }

    #[test]
    fn a_network_is_elements() {
        let script = add_network_script(
            &net("muelle0", [10, 88, 0, 0], 16, false),
            &State::default(),
        );
        assert_eq!(
            after_base(&script),
            [
                "add element ip muelle bridges { \"muelle0\" }",
                "add element ip muelle intra { \"muelle0\" . \"muelle0\" }",
                "add element ip muelle networks { \"muelle0\" . 10.88.0.0/16 }",
                "add element ip muelle egress { 10.88.0.0/16 }",
            ]
        );
        let internal = add_network_script(&net("mu1", [10, 89, 0, 0], 24, true), &State::default());
        assert_eq!(
            after_base(&internal)[3],
            "add element ip muelle internal { \"mu1\" }"
        );
        assert_eq!(after_base(&internal).len(), 4);
    }

    #[test]
    fn a_changed_network_loses_its_old_elements() {
        let old = State {
            bridges: ["muelle0".to_string()].into(),
            internal: BTreeSet::new(),
            egress: [Subnet::parse("10.88.0.0/16").unwrap()].into(),
            networks: [(
                "muelle0".to_string(),
                Subnet::parse("10.88.0.0/16").unwrap(),
            )]
            .into(),
            ..State::default()
        };
        let script = add_network_script(&net("muelle0", [10, 90, 0, 0], 16, true), &old);
        let lines = after_base(&script);
        assert_eq!(
            lines[0],
            "delete element ip muelle networks { \"muelle0\" . 10.88.0.0/16 }"
        );
        assert_eq!(lines[1], "delete element ip muelle egress { 10.88.0.0/16 }");
        assert!(lines.contains(&"add element ip muelle internal { \"muelle0\" }"));
        assert!(!lines.iter().any(|l| l.contains("egress { 10.90")));

        // The same network again changes nothing but re-adds.
        let same = add_network_script(&net("muelle0", [10, 88, 0, 0], 16, false), &old);
        assert!(!same.contains("delete"));
    }

    #[test]
    fn removal_deletes_only_what_is_there() {
        assert_eq!(remove_network_script("muelle0", &State::default()), "");
        let state = State {
            bridges: ["muelle0".to_string(), "muelle1".to_string()].into(),
            intra: [("muelle0".to_string(), "muelle0".to_string())].into(),
            internal: ["muelle0".to_string()].into(),
            networks: [(
                "muelle0".to_string(),
                Subnet::parse("10.88.0.0/16").unwrap(),
            )]
            .into(),
            ..State::default()
        };
        assert_eq!(
            remove_network_script("muelle0", &state)
                .lines()
                .collect::<Vec<_>>(),
            [
                "delete element ip muelle bridges { \"muelle0\" }",
                "delete element ip muelle intra { \"muelle0\" . \"muelle0\" }",
                "delete element ip muelle internal { \"muelle0\" }",
                "delete element ip muelle networks { \"muelle0\" . 10.88.0.0/16 }",
            ]
        );
    }

    #[test]
    fn ports_are_map_elements() {
        let mut udp =
            crate::firewall::tests::port(Some([192, 168, 1, 5]), 53, [10, 88, 0, 3], 5353);
        udp.protocol = Protocol::Udp;
        let tcp = crate::firewall::tests::port(None, 8080, [10, 88, 0, 2], 80);
        assert!(!publish_script(std::slice::from_ref(&tcp), false).contains("table"));
        let script = publish_script(&[tcp.clone(), udp.clone()], true);
        assert_eq!(
            after_base(&script),
            [
                "add element ip muelle ports { tcp . 8080 comment \"muelle0\" : 10.88.0.2 . 80 }",
                "add element ip muelle addr_ports { 192.168.1.5 . udp . 53 comment \"muelle0\" : 10.88.0.3 . 5353 }",
            ]
        );
        let state = State {
            ports: vec![tcp.clone()],
            ..State::default()
        };
        assert_eq!(
            unpublish_script(&[tcp.clone(), udp], &state),
            "delete element ip muelle ports { tcp . 8080 }\n"
        );
        // Someone else's destination on that port stays.
        let mut other = tcp;
        other.container_ip = Ipv4Addr::new(10, 88, 0, 9);
        assert_eq!(unpublish_script(&[other], &state), "");
    }

    /// What nft 1.0.6 prints for a table with one network, one internal
    /// network and two ports.
    const LISTED: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "ip", "name": "muelle", "handle": 1}}, {"set": {"family": "ip", "name": "bridges", "table": "muelle", "type": "ifname", "handle": 5, "elem": ["muelle0", "mu1"]}}, {"set": {"family": "ip", "name": "internal", "table": "muelle", "type": "ifname", "handle": 6, "elem": ["mu1"]}}, {"set": {"family": "ip", "name": "intra", "table": "muelle", "type": ["ifname", "ifname"], "handle": 7, "elem": [{"concat": ["muelle0", "muelle0"]}, {"concat": ["mu1", "mu1"]}]}}, {"set": {"family": "ip", "name": "egress", "table": "muelle", "type": "ipv4_addr", "handle": 8, "flags": ["interval"], "elem": [{"prefix": {"addr": "10.88.0.0", "len": 16}}]}}, {"set": {"family": "ip", "name": "networks", "table": "muelle", "type": ["ifname", "ipv4_addr"], "handle": 9, "flags": ["interval"], "elem": [{"concat": ["muelle0", {"prefix": {"addr": "10.88.0.0", "len": 16}}]}, {"concat": ["mu1", "10.89.0.7"]}]}}, {"map": {"family": "ip", "name": "ports", "table": "muelle", "type": ["inet_proto", "inet_service"], "handle": 10, "map": "ipv4_addr . inet_service", "elem": [[{"elem": {"val": {"concat": ["tcp", 8080]}, "comment": "muelle0"}}, {"concat": ["10.88.0.2", 80]}]]}}, {"map": {"family": "ip", "name": "addr_ports", "table": "muelle", "type": ["ipv4_addr", "inet_proto", "inet_service"], "handle": 11, "map": "ipv4_addr . inet_service", "elem": [[{"concat": ["192.168.1.5", "udp", 53]}, {"concat": ["10.88.0.3", 5353]}]]}}, {"chain": {"family": "ip", "table": "muelle", "name": "forward", "handle": 4, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}]}"#;

    #[test]
    fn the_listing_is_read_back() {
        let state = parse_state(LISTED).unwrap();
        assert_eq!(
            state.bridges,
            ["mu1".to_string(), "muelle0".to_string()].into()
        );
        assert_eq!(state.internal, ["mu1".to_string()].into());
        assert_eq!(state.intra.len(), 2);
        assert_eq!(
            state.egress,
            [Subnet::parse("10.88.0.0/16").unwrap()].into()
        );
        assert!(
            state
                .networks
                .contains(&("mu1".to_string(), Subnet::parse("10.89.0.7").unwrap()))
        );
        let tcp = crate::firewall::tests::port(None, 8080, [10, 88, 0, 2], 80);
        assert_eq!(state.ports[0], tcp);
        assert_eq!(state.ports[1].protocol, Protocol::Udp);
        assert_eq!(state.ports[1].host_ip, Some(Ipv4Addr::new(192, 168, 1, 5)));
        assert_eq!(state.ports[1].bridge, "");
        assert_eq!(
            parse_state(r#"{"nftables": []}"#).unwrap(),
            State::default()
        );
        assert!(parse_state("not json").is_err());
        let odd = LISTED.replace(r#""elem": ["mu1"]"#, r#""elem": [7]"#);
        assert!(parse_state(&odd).unwrap_err().contains("internal"));
    }

    #[test]
    fn a_complete_table_gets_no_base() {
        // A listing with every set and chain, each chain with its rules.
        let mut items = vec![serde_json::json!({"metainfo": {}})];
        for (name, _) in SETS {
            items.push(serde_json::json!({"set": {"name": name, "table": TABLE}}));
        }
        for (name, _, rules) in CHAINS {
            items.push(serde_json::json!({"chain": {"name": name, "table": TABLE}}));
            for _ in rules.iter() {
                items.push(serde_json::json!({"rule": {"chain": name, "expr": []}}));
            }
        }
        let listing = |items: &[Value]| serde_json::json!({ "nftables": items }).to_string();
        let state = parse_state(&listing(&items)).unwrap();
        assert!(state.complete);
        let script = add_network_script(&net("muelle0", [10, 88, 0, 0], 16, false), &state);
        assert!(
            script.starts_with("add element ip muelle bridges"),
            "{script}"
        );

        // A rule short, or a set missing: the base again.
        let short = &items[..items.len() - 1];
        assert!(!parse_state(&listing(short)).unwrap().complete);
        assert!(!parse_state(&listing(&items[2..])).unwrap().complete);
        assert!(!parse_state(LISTED).unwrap().complete);
    }

    #[test]
    fn foreign_forward_drop_is_found() {
        let json = r#"{"nftables": [{"metainfo": {}},
            {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "hook": "forward", "prio": 0, "policy": "drop"}},
            {"chain": {"family": "inet", "table": "fw", "name": "fwd", "hook": "forward", "prio": 0, "policy": "accept"}},
            {"chain": {"family": "ip", "table": "muelle", "name": "forward", "hook": "forward", "prio": 0, "policy": "drop"}},
            {"chain": {"family": "ip", "table": "nat", "name": "DOCKER"}}]}"#;
        assert_eq!(forward_drop_chains(json), ["ip filter FORWARD"]);
        assert!(forward_drop_chains("").is_empty());
    }
}
