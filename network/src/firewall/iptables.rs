//! The iptables backend: muelle's rules in its own chains, each hung off a
//! built-in chain by one jump inserted first.
//!
//! ```text
//! nat     PREROUTING  -m addrtype --dst-type LOCAL -j MUELLE-DNAT
//!         OUTPUT      -m addrtype --dst-type LOCAL -j MUELLE-DNAT
//!         POSTROUTING -j MUELLE-POSTROUTING
//! filter  FORWARD     -j MUELLE-FORWARD
//!
//! MUELLE-DNAT         published ports: host-address-bound ones first, then
//!                     the ones on every address (a comment holds the bridge)
//! MUELLE-POSTROUTING  per bridge: masquerade 127.0.0.0/8 and hairpin, then
//!                     RETURN; after all bridges: masquerade each subnet
//! MUELLE-FORWARD      -j MUELLE-INTERNAL first, then per bridge: accept
//!                     within, isolate, accept replies and published ports,
//!                     drop the rest coming in, accept going out
//! MUELLE-INTERNAL     per internal bridge: accept within, drop in and out
//! MUELLE-ISOLATION    per bridge: drop what enters it from another bridge,
//!                     unless published (DNATed)
//! ```
//!
//! A change reads the rules once (`iptables-save`), computes the lines to
//! add and delete, and applies each table as one `iptables-restore
//! --noflush`, filter first, then nat. iptables-restore commits a table at
//! a time, so when nat fails, filter's change is undone: the lines added
//! are deleted and the lines deleted appended again. That is exact because
//! in filter a bridge's lines are one block and the order of blocks does not
//! matter (internal bridges have a chain of their own for that); nat, which
//! has an order (bound ports before the rest, each bridge's RETURN before
//! the masquerade of every subnet), is never undone. Chains and jumps a
//! failed change made stay: empty, they change nothing, and another muelle
//! may already use them.
//!
//! Rules are compared as `iptables-save` prints them, which is how they are
//! written here; a network whose rules differ from what muelle would write
//! has them deleted and written again, never duplicated blindly. Which
//! rules belong to a network: those naming its bridge with `-i` or `-o`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::command::Tool;
use super::{Installed, Network, PortRule, Protocol, Result, Subnet, Tools};

const DNAT: &str = "MUELLE-DNAT";
const POSTROUTING: &str = "MUELLE-POSTROUTING";
const FORWARD: &str = "MUELLE-FORWARD";
const ISOLATION: &str = "MUELLE-ISOLATION";
const INTERNAL: &str = "MUELLE-INTERNAL";
/// What every muelle chain's name starts with.
const PREFIX: &str = "MUELLE-";

/// Seconds to wait for the xtables lock.
const WAIT: &str = "10";

/// Whether iptables can read the nat table here.
pub(super) fn probe(tools: &Tools) -> Result<()> {
    tools
        .iptables
        .run(
            &["-w", WAIT, "-t", "nat", "-S", "POSTROUTING"],
            None,
            "checking that iptables works",
        )
        .map(drop)
}

pub(super) fn add_network(tools: &Tools, net: &Network) -> Result<()> {
    let doing = format!("applying muelle's network rules for {}", net.bridge);
    super::retrying(|| {
        let state = read(tools, &doing)?;
        let mut changes = Changes::default();
        changes.ensure_base(&state);
        let wanted = network_rules(net);
        let owned: Vec<&Saved> = state.owned_by(&net.bridge).collect();
        let mut have: Vec<(&str, &str)> = owned.iter().map(|s| (&*s.chain, &*s.spec)).collect();
        let mut want: Vec<(&str, &str)> = wanted.iter().map(|r| (r.chain, &*r.spec)).collect();
        have.sort_unstable();
        want.sort_unstable();
        if have != want {
            // Another subnet or internal flag: its rules go, these come.
            for saved in owned {
                changes.delete(saved);
            }
            for rule in wanted {
                changes.add(rule);
            }
        }
        changes.apply(tools, &state, &doing)
    })
}

pub(super) fn remove_network(tools: &Tools, bridge: &str) -> Result<()> {
    let doing = format!("removing muelle's network rules for {bridge}");
    super::retrying(|| {
        let state = read(tools, &doing)?;
        let mut changes = Changes::default();
        for saved in state.owned_by(bridge) {
            changes.delete(saved);
        }
        changes.apply(tools, &state, &doing)
    })
}

pub(super) fn publish(tools: &Tools, ports: &[PortRule]) -> Result<()> {
    let doing = super::doing_ports("publishing", ports);
    super::retrying(|| {
        let state = read(tools, &doing)?;
        let installed: Vec<PortRule> = state.ports().map(|(p, _)| p).collect();
        if let Some(taken) = super::taken(ports, &installed) {
            return Err(taken);
        }
        let mut changes = Changes::default();
        changes.ensure_base(&state);
        for port in ports {
            if !installed.iter().any(|i| i.same_binding(port)) {
                changes.add(port_rule(port));
            }
        }
        changes.apply(tools, &state, &doing)
    })
}

pub(super) fn unpublish(tools: &Tools, ports: &[PortRule]) -> Result<()> {
    let doing = super::doing_ports("unpublishing", ports);
    super::retrying(|| {
        let state = read(tools, &doing)?;
        let mut changes = Changes::default();
        for (installed, saved) in state.ports() {
            if ports.iter().any(|p| p.same_binding(&installed)) {
                changes.delete(saved);
            }
        }
        changes.apply(tools, &state, &doing)
    })
}

pub(super) fn list(tools: &Tools) -> Result<Installed> {
    let state = read(tools, "listing muelle's rules")?;
    let networks: BTreeSet<String> = state
        .rules
        .iter()
        .filter(|s| s.chain == FORWARD || s.chain == INTERNAL)
        .filter_map(|s| bridge_of(&s.spec))
        .map(str::to_string)
        .collect();
    Ok(Installed {
        networks: networks.into_iter().collect(),
        ports: state.ports().map(|(p, _)| p).collect(),
    })
}

pub(super) fn remove_all(tools: &Tools) -> Result<()> {
    let doing = "removing muelle's iptables chains";
    super::retrying(|| {
        let state = read(tools, doing)?;
        remove_all_changes(&state).apply(tools, &state, doing)
    })
}

/// Deletes muelle's jumps from built-in chains (every copy), then its
/// chains. A foreign rule
/// that jumps into muelle's chains is not muelle's to delete: the chain's
/// deletion then fails, naming it.
fn remove_all_changes(state: &State) -> Changes {
    let mut changes = Changes::default();
    let jumps = jumps();
    let ours = |s: &&Saved| {
        !is_ours(&s.chain)
            && jumps
                .iter()
                .any(|j| j.table == s.table && j.chain == s.chain && j.spec == s.spec)
    };
    for saved in state.rules.iter().filter(ours) {
        changes.delete(saved);
    }
    for (table, chain) in &state.chains {
        changes.table(*table).drop_chains.push(chain.clone());
    }
    changes
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Table {
    Filter,
    Nat,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Filter => "filter",
            Table::Nat => "nat",
        }
    }
}

/// Where a new rule goes in its chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    /// Before every rule there (a block of them keeps its order).
    Top,
    /// After every rule there.
    Bottom,
}

/// A rule muelle writes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    table: Table,
    chain: &'static str,
    spec: String,
    at: At,
}

impl Rule {
    fn new(table: Table, chain: &'static str, at: At, spec: impl Into<String>) -> Rule {
        Rule {
            table,
            chain,
            spec: spec.into(),
            at,
        }
    }
}

/// muelle's chains, by table.
const CHAINS: [(Table, &str); 5] = [
    (Table::Nat, DNAT),
    (Table::Nat, POSTROUTING),
    (Table::Filter, FORWARD),
    (Table::Filter, INTERNAL),
    (Table::Filter, ISOLATION),
];

/// The jumps from built-in chains into muelle's, and the one to
/// MUELLE-INTERNAL.
fn jumps() -> [Rule; 5] {
    let local = format!("-m addrtype --dst-type LOCAL -j {DNAT}");
    [
        Rule::new(Table::Filter, FORWARD, At::Top, format!("-j {INTERNAL}")),
        Rule::new(Table::Nat, "PREROUTING", At::Top, local.clone()),
        Rule::new(Table::Nat, "OUTPUT", At::Top, local),
        Rule::new(
            Table::Nat,
            "POSTROUTING",
            At::Top,
            format!("-j {POSTROUTING}"),
        ),
        Rule::new(Table::Filter, "FORWARD", At::Top, format!("-j {FORWARD}")),
    ]
}

/// A network's rules, in order within each chain, as iptables-save prints
/// them.
fn network_rules(net: &Network) -> Vec<Rule> {
    let (b, s) = (&net.bridge, net.subnet);
    let filter = |chain, at, spec: String| Rule::new(Table::Filter, chain, at, spec);
    let nat = |at, spec: String| Rule::new(Table::Nat, POSTROUTING, at, spec);
    if net.internal {
        return vec![
            filter(INTERNAL, At::Bottom, format!("-i {b} -o {b} -j ACCEPT")),
            filter(INTERNAL, At::Bottom, format!("-i {b} -j DROP")),
            filter(INTERNAL, At::Bottom, format!("-o {b} -j DROP")),
        ];
    }
    vec![
        filter(FORWARD, At::Bottom, format!("-i {b} -o {b} -j ACCEPT")),
        filter(
            FORWARD,
            At::Bottom,
            format!("-i {b} ! -o {b} -j {ISOLATION}"),
        ),
        filter(
            FORWARD,
            At::Bottom,
            format!("-o {b} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT"),
        ),
        filter(FORWARD, At::Bottom, format!("-o {b} -j DROP")),
        filter(FORWARD, At::Bottom, format!("-i {b} -j ACCEPT")),
        filter(
            ISOLATION,
            At::Bottom,
            format!("-o {b} -m conntrack ! --ctstate DNAT -j DROP"),
        ),
        nat(At::Top, format!("-s 127.0.0.0/8 -o {b} -j MASQUERADE")),
        nat(
            At::Top,
            format!("-s {} -o {b} -m conntrack --ctstate DNAT -j MASQUERADE", s),
        ),
        nat(At::Top, format!("-o {b} -j RETURN")),
        nat(At::Bottom, format!("-s {} ! -o {b} -j MASQUERADE", s)),
    ]
}

/// A published port's DNAT rule.
fn port_rule(p: &PortRule) -> Rule {
    let mut spec = String::new();
    if let Some(ip) = p.host_ip {
        write!(spec, "-d {ip}/32 ").unwrap();
    }
    write!(
        spec,
        "-p {proto} -m {proto} --dport {} -m comment --comment {} -j DNAT --to-destination {}:{}",
        p.host_port,
        p.bridge,
        p.container_ip,
        p.container_port,
        proto = p.protocol,
    )
    .unwrap();
    let at = if p.host_ip.is_some() {
        At::Top
    } else {
        At::Bottom
    };
    Rule::new(Table::Nat, DNAT, at, spec)
}

/// A port back from its DNAT rule; `None` for anything else.
fn parse_port(spec: &str) -> Option<PortRule> {
    let tokens = split(spec);
    let value = |flag: &str| {
        let at = tokens.iter().position(|t| t == flag)?;
        tokens.get(at + 1).map(String::as_str)
    };
    if value("-j") != Some("DNAT") {
        return None;
    }
    let host_ip = match value("-d") {
        Some(d) => {
            let subnet = Subnet::parse(d)?;
            (subnet.len == 32).then_some(subnet.addr)?;
            Some(subnet.addr)
        }
        None => None,
    };
    let (ip, port) = value("--to-destination")?.split_once(':')?;
    Some(PortRule {
        protocol: Protocol::parse(value("-p")?)?,
        host_ip,
        host_port: value("--dport")?.parse().ok()?,
        container_ip: ip.parse::<Ipv4Addr>().ok()?,
        container_port: port.parse().ok()?,
        bridge: value("--comment").unwrap_or_default().to_string(),
    })
}

/// The bridge a network rule names with `-i` or `-o`.
fn bridge_of(spec: &str) -> Option<&str> {
    let mut tokens = spec.split_whitespace();
    while let Some(t) = tokens.next() {
        if t == "-i" || t == "-o" {
            return tokens.next();
        }
    }
    None
}

fn is_ours(chain: &str) -> bool {
    chain.starts_with(PREFIX)
}

/// iptables-save's words: split on blanks, "double quotes" kept together.
fn split(spec: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut chars = spec.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => word.extend(chars.next()),
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// A rule as iptables-save printed it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Saved {
    table: Table,
    chain: String,
    spec: String,
}

/// muelle's chains and every rule in them or jumping to them, as read.
#[derive(Debug, Default, PartialEq)]
struct State {
    chains: BTreeSet<(Table, String)>,
    /// In the order iptables-save printed them.
    rules: Vec<Saved>,
}

impl State {
    /// The network rules that name `bridge`, in muelle's chains.
    fn owned_by<'a>(&'a self, bridge: &'a str) -> impl Iterator<Item = &'a Saved> {
        self.rules.iter().filter(move |s| {
            s.chain != DNAT && is_ours(&s.chain) && bridge_of(&s.spec) == Some(bridge)
        })
    }

    /// The published ports and their rules.
    fn ports(&self) -> impl Iterator<Item = (PortRule, &Saved)> {
        self.rules
            .iter()
            .filter(|s| s.chain == DNAT)
            .filter_map(|s| Some((parse_port(&s.spec)?, s)))
    }
}

/// muelle's chains and rules, from one `iptables-save` of every table.
fn read(tools: &Tools, doing: &str) -> Result<State> {
    let saved = tools.iptables_save.run(&[], None, doing)?;
    Ok(parse_save(&saved))
}

/// Reads the filter and nat tables of iptables-save's output.
fn parse_save(saved: &str) -> State {
    let mut state = State::default();
    let mut table = None;
    for line in saved.lines() {
        if let Some(name) = line.strip_prefix('*') {
            table = match name.trim() {
                "filter" => Some(Table::Filter),
                "nat" => Some(Table::Nat),
                _ => None,
            };
            continue;
        }
        let Some(table) = table else {
            continue;
        };
        if let Some(decl) = line.strip_prefix(':') {
            let chain = decl.split_whitespace().next().unwrap_or_default();
            if is_ours(chain) {
                state.chains.insert((table, chain.to_string()));
            }
        } else if let Some(rule) = line.strip_prefix("-A ") {
            let (chain, spec) = rule.split_once(' ').unwrap_or((rule, ""));
            let words: Vec<&str> = spec.split_whitespace().collect();
            let jumps_to_ours = words
                .windows(2)
                .any(|w| matches!(w[0], "-j" | "-g") && is_ours(w[1]));
            if is_ours(chain) || jumps_to_ours {
                state.rules.push(Saved {
                    table,
                    chain: chain.to_string(),
                    spec: spec.to_string(),
                });
            }
        }
    }
    state
}

/// What one change does to one table.
#[derive(Debug, Default)]
struct TableChange {
    new_chains: Vec<&'static str>,
    delete: Vec<Saved>,
    add: Vec<Rule>,
    /// Flushed, then deleted (after the deletes above).
    drop_chains: Vec<String>,
}

#[derive(Debug, Default)]
struct Changes {
    filter: TableChange,
    nat: TableChange,
}

impl Changes {
    fn table(&mut self, table: Table) -> &mut TableChange {
        match table {
            Table::Filter => &mut self.filter,
            Table::Nat => &mut self.nat,
        }
    }

    /// muelle's chains and jumps, where missing.
    fn ensure_base(&mut self, state: &State) {
        for (table, chain) in CHAINS {
            if !state.chains.contains(&(table, chain.to_string())) {
                self.table(table).new_chains.push(chain);
            }
        }
        for jump in jumps() {
            let present = state
                .rules
                .iter()
                .any(|s| s.table == jump.table && s.chain == jump.chain && s.spec == jump.spec);
            if !present {
                self.add(jump);
            }
        }
    }

    fn add(&mut self, rule: Rule) {
        self.table(rule.table).add.push(rule);
    }

    fn delete(&mut self, saved: &Saved) {
        self.table(saved.table).delete.push(saved.clone());
    }

    /// Applies the filter table, then nat; when nat fails, undoes filter's
    /// change (see the module doc).
    fn apply(&self, tools: &Tools, before: &State, doing: &str) -> Result<()> {
        let tables = [(Table::Filter, &self.filter), (Table::Nat, &self.nat)];
        let mut done: Vec<(Table, &TableChange)> = Vec::new();
        for (table, change) in tables {
            let Some(script) = change.script(table) else {
                continue;
            };
            if let Err(e) = restore(&tools.iptables_restore, &script, doing) {
                for (table, applied) in done.iter().rev() {
                    let undo = applied.undo(*table, before);
                    if let Err(undo_error) = restore(&tools.iptables_restore, &undo, doing) {
                        tracing::error!(
                            "cannot undo muelle's {} rules: {undo_error}",
                            table.name()
                        );
                    }
                }
                return Err(e);
            }
            done.push((table, change));
        }
        Ok(())
    }
}

fn restore(restore: &Tool, script: &str, doing: &str) -> Result<()> {
    let wait = format!("--wait={WAIT}");
    restore
        .run(&["--noflush", &wait], Some(script), doing)
        .map(drop)
}

impl TableChange {
    /// The iptables-restore input; `None` when there is nothing to do.
    fn script(&self, table: Table) -> Option<String> {
        if self.new_chains.is_empty()
            && self.delete.is_empty()
            && self.add.is_empty()
            && self.drop_chains.is_empty()
        {
            return None;
        }
        let mut s = format!("*{}\n", table.name());
        for chain in &self.new_chains {
            writeln!(s, "-N {chain}").unwrap();
        }
        for saved in &self.delete {
            writeln!(s, "-D {} {}", saved.chain, saved.spec).unwrap();
        }
        // Inserting a block at 1 backwards leaves it in order, on top.
        for rule in self.add.iter().rev().filter(|r| r.at == At::Top) {
            writeln!(s, "-I {} 1 {}", rule.chain, rule.spec).unwrap();
        }
        for rule in self.add.iter().filter(|r| r.at == At::Bottom) {
            writeln!(s, "-A {} {}", rule.chain, rule.spec).unwrap();
        }
        for chain in &self.drop_chains {
            writeln!(s, "-F {chain}").unwrap();
        }
        for chain in &self.drop_chains {
            writeln!(s, "-X {chain}").unwrap();
        }
        s.push_str("COMMIT\n");
        Some(s)
    }

    /// The iptables-restore input that undoes this change, applied: the
    /// lines it added go, the lines it deleted come back at the end of
    /// their chains (or first, for jumps from built-in chains), and the
    /// chains it dropped come back as `before` had them. The chains it made
    /// stay (see the module doc).
    fn undo(&self, table: Table, before: &State) -> String {
        let mut s = format!("*{}\n", table.name());
        for rule in self.add.iter().rev() {
            writeln!(s, "-D {} {}", rule.chain, rule.spec).unwrap();
        }
        for chain in &self.drop_chains {
            writeln!(s, "-N {chain}").unwrap();
        }
        for chain in &self.drop_chains {
            for saved in before
                .rules
                .iter()
                .filter(|r| r.table == table && &r.chain == chain)
            {
                writeln!(s, "-A {chain} {}", saved.spec).unwrap();
            }
        }
        for saved in self.delete.iter().filter(|r| is_ours(&r.chain)) {
            writeln!(s, "-A {} {}", saved.chain, saved.spec).unwrap();
        }
        for saved in self.delete.iter().filter(|r| !is_ours(&r.chain)) {
            writeln!(s, "-I {} 1 {}", saved.chain, saved.spec).unwrap();
        }
        s.push_str("COMMIT\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::NetworkRules;
    use crate::firewall::tests::port;

    fn net(bridge: &str, internal: bool) -> Network {
        NetworkRules {
            bridge: bridge.into(),
            subnet: [10, 88, 1, 0].into(),
            prefix_len: 24,
            internal,
        }
        .checked()
        .unwrap()
    }

    fn specs(rules: &[Rule]) -> Vec<String> {
        rules
            .iter()
            .map(|r| format!("{} {}", r.chain, r.spec))
            .collect()
    }

    #[test]
    fn network_rules_as_iptables_save_prints_them() {
        assert_eq!(
            specs(&network_rules(&net("muelle0", false))),
            [
                "MUELLE-FORWARD -i muelle0 -o muelle0 -j ACCEPT",
                "MUELLE-FORWARD -i muelle0 ! -o muelle0 -j MUELLE-ISOLATION",
                "MUELLE-FORWARD -o muelle0 -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT",
                "MUELLE-FORWARD -o muelle0 -j DROP",
                "MUELLE-FORWARD -i muelle0 -j ACCEPT",
                "MUELLE-ISOLATION -o muelle0 -m conntrack ! --ctstate DNAT -j DROP",
                "MUELLE-POSTROUTING -s 127.0.0.0/8 -o muelle0 -j MASQUERADE",
                "MUELLE-POSTROUTING -s 10.88.1.0/24 -o muelle0 -m conntrack --ctstate DNAT -j MASQUERADE",
                "MUELLE-POSTROUTING -o muelle0 -j RETURN",
                "MUELLE-POSTROUTING -s 10.88.1.0/24 ! -o muelle0 -j MASQUERADE",
            ]
        );
        assert_eq!(
            specs(&network_rules(&net("mu1", true))),
            [
                "MUELLE-INTERNAL -i mu1 -o mu1 -j ACCEPT",
                "MUELLE-INTERNAL -i mu1 -j DROP",
                "MUELLE-INTERNAL -o mu1 -j DROP",
            ]
        );
        for rule in network_rules(&net("muelle0", false)) {
            assert_eq!(bridge_of(&rule.spec), Some("muelle0"), "{}", rule.spec);
        }
    }

    #[test]
    fn ports_round_trip() {
        let any = port(None, 8080, [10, 88, 1, 2], 80);
        let rule = port_rule(&any);
        assert_eq!(
            rule.spec,
            "-p tcp -m tcp --dport 8080 -m comment --comment muelle0 -j DNAT --to-destination 10.88.1.2:80"
        );
        assert_eq!(rule.at, At::Bottom);
        assert_eq!(parse_port(&rule.spec), Some(any));

        let mut bound = port(Some([127, 0, 0, 1]), 53, [10, 88, 1, 3], 5353);
        bound.protocol = Protocol::Udp;
        let rule = port_rule(&bound);
        assert!(
            rule.spec
                .starts_with("-d 127.0.0.1/32 -p udp -m udp --dport 53 ")
        );
        assert_eq!(rule.at, At::Top);
        assert_eq!(parse_port(&rule.spec), Some(bound));

        assert_eq!(parse_port("-o muelle0 -j RETURN"), None);
        assert_eq!(
            parse_port("-d 10.0.0.0/8 -p tcp -m tcp --dport 1 -j DNAT --to-destination 1.2.3.4:5"),
            None
        );
    }

    const SAVED_FILTER: &str = "\
# Generated by iptables-save v1.8.9 (nf_tables)
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:MUELLE-FORWARD - [0:0]
:MUELLE-INTERNAL - [0:0]
:MUELLE-ISOLATION - [0:0]
-A FORWARD -j MUELLE-FORWARD
-A FORWARD -o docker0 -j DOCKER
-A MUELLE-FORWARD -j MUELLE-INTERNAL
-A MUELLE-FORWARD -i muelle0 -o muelle0 -j ACCEPT
-A MUELLE-INTERNAL -i mu1 -o mu1 -j ACCEPT
-A MUELLE-ISOLATION -o muelle0 -m conntrack ! --ctstate DNAT -j DROP
COMMIT
";
    const SAVED_NAT: &str = "\
*nat
:PREROUTING ACCEPT [0:0]
:MUELLE-DNAT - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j MUELLE-DNAT
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A MUELLE-DNAT -p tcp -m tcp --dport 8080 -m comment --comment muelle0 -j DNAT --to-destination 10.88.1.2:80
COMMIT
";

    /// Another table, with a chain of muelle's name that is not muelle's.
    const SAVED_MANGLE: &str = "\
*mangle
:PREROUTING ACCEPT [0:0]
:MUELLE-MARK - [0:0]
-A PREROUTING -j MUELLE-MARK
COMMIT
";

    fn saved_state() -> State {
        parse_save(&format!("{SAVED_FILTER}{SAVED_MANGLE}{SAVED_NAT}"))
    }

    #[test]
    fn only_muelles_rules_are_read() {
        let state = saved_state();
        assert_eq!(state.chains.len(), 4);
        assert!(!state.chains.iter().any(|(_, c)| c == "DOCKER"));
        let rules: Vec<String> = state
            .rules
            .iter()
            .map(|s| format!("{} {}", s.chain, s.spec))
            .collect();
        assert_eq!(rules.len(), 7, "{rules:#?}");
        assert!(!rules.iter().any(|r| r.contains("DOCKER")));
        assert_eq!(state.owned_by("muelle0").count(), 2);
        assert_eq!(state.ports().count(), 1);
    }

    #[test]
    fn the_base_is_added_where_missing() {
        let mut changes = Changes::default();
        changes.ensure_base(&saved_state());
        assert_eq!(changes.nat.new_chains, [POSTROUTING]);
        assert!(changes.filter.new_chains.is_empty());
        assert_eq!(
            changes.nat.script(Table::Nat).unwrap(),
            "*nat\n-N MUELLE-POSTROUTING\n\
             -I POSTROUTING 1 -j MUELLE-POSTROUTING\n\
             -I OUTPUT 1 -m addrtype --dst-type LOCAL -j MUELLE-DNAT\n\
             COMMIT\n"
        );
        assert_eq!(changes.filter.script(Table::Filter), None);
    }

    #[test]
    fn top_blocks_keep_their_order() {
        let mut changes = Changes::default();
        for rule in network_rules(&net("muelle0", false)) {
            changes.add(rule);
        }
        let nat = changes.nat.script(Table::Nat).unwrap();
        assert_eq!(
            nat.lines().collect::<Vec<_>>(),
            [
                "*nat",
                "-I MUELLE-POSTROUTING 1 -o muelle0 -j RETURN",
                "-I MUELLE-POSTROUTING 1 -s 10.88.1.0/24 -o muelle0 -m conntrack --ctstate DNAT -j MASQUERADE",
                "-I MUELLE-POSTROUTING 1 -s 127.0.0.0/8 -o muelle0 -j MASQUERADE",
                "-A MUELLE-POSTROUTING -s 10.88.1.0/24 ! -o muelle0 -j MASQUERADE",
                "COMMIT",
            ]
        );
    }

    #[test]
    fn remove_all_drops_jumps_then_chains() {
        let state = saved_state();
        let changes = remove_all_changes(&state);
        assert_eq!(
            changes.filter.script(Table::Filter).unwrap(),
            "*filter\n-D FORWARD -j MUELLE-FORWARD\n\
             -F MUELLE-FORWARD\n-F MUELLE-INTERNAL\n-F MUELLE-ISOLATION\n\
             -X MUELLE-FORWARD\n-X MUELLE-INTERNAL\n-X MUELLE-ISOLATION\nCOMMIT\n"
        );
        // Undone, the table is as it was, jumps after the chains they need.
        assert_eq!(
            changes.filter.undo(Table::Filter, &state),
            "*filter\n-N MUELLE-FORWARD\n-N MUELLE-INTERNAL\n-N MUELLE-ISOLATION\n\
             -A MUELLE-FORWARD -j MUELLE-INTERNAL\n\
             -A MUELLE-FORWARD -i muelle0 -o muelle0 -j ACCEPT\n\
             -A MUELLE-INTERNAL -i mu1 -o mu1 -j ACCEPT\n\
             -A MUELLE-ISOLATION -o muelle0 -m conntrack ! --ctstate DNAT -j DROP\n\
             -I FORWARD 1 -j MUELLE-FORWARD\nCOMMIT\n"
        );
    }

    #[test]
    fn undo_deletes_what_was_added_and_appends_what_was_deleted() {
        let state = saved_state();
        let mut changes = Changes::default();
        changes.ensure_base(&State::default());
        for saved in state.owned_by("muelle0") {
            changes.delete(saved);
        }
        for rule in network_rules(&net("muelle0", true)) {
            changes.add(rule);
        }
        assert_eq!(
            changes.filter.undo(Table::Filter, &state),
            "*filter\n\
             -D MUELLE-INTERNAL -o muelle0 -j DROP\n\
             -D MUELLE-INTERNAL -i muelle0 -j DROP\n\
             -D MUELLE-INTERNAL -i muelle0 -o muelle0 -j ACCEPT\n\
             -D FORWARD -j MUELLE-FORWARD\n\
             -D MUELLE-FORWARD -j MUELLE-INTERNAL\n\
             -A MUELLE-FORWARD -i muelle0 -o muelle0 -j ACCEPT\n\
             -A MUELLE-ISOLATION -o muelle0 -m conntrack ! --ctstate DNAT -j DROP\n\
             COMMIT\n"
        );
    }

    #[test]
    fn words_keep_quotes_together() {
        assert_eq!(
            split(r#"-m comment --comment "a b \"c\"" -j X"#),
            ["-m", "comment", "--comment", "a b \"c\"", "-j", "X"]
        );
    }

    /// Runs `body` on a thread in a network namespace of its own, where
    /// iptables may be changed; `None` where that cannot be done here.
    fn in_netns<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let iptables = Tool::find("iptables");
        if !nix::unistd::geteuid().is_root() || iptables.run(&["--version"], None, "").is_err() {
            eprintln!("skipping: needs root and iptables");
            return None;
        }
        let thread = std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            body()
        });
        Some(
            thread
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
        )
    }

    /// iptables-save's filter and nat tables, without its dated comments.
    fn saved(tools: &Tools) -> String {
        let mut all = String::new();
        for table in ["filter", "nat"] {
            let out = tools.iptables_save.run(&["-t", table], None, "").unwrap();
            all.extend(
                out.lines()
                    .filter(|l| !l.starts_with('#'))
                    .map(|l| format!("{l}\n")),
            );
        }
        all
    }

    /// An iptables-restore that fails on the nat table, so that the filter
    /// table, applied first, must be put back.
    #[test]
    fn a_failed_nat_table_puts_filter_back() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("iptables-restore");
        let real = Tool::find("iptables-restore").path().to_path_buf();
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\nscript=$(cat)\ncase \"$script\" in *'*nat'*) \
                 echo 'iptables-restore: line 2 failed' >&2; exit 1;; esac\n\
                 printf '%s\\n' \"$script\" | exec {} \"$@\"\n",
                real.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();

        in_netns(move || {
            let tools = Tools::find();
            let failing = Tools {
                iptables_restore: Tool::at("iptables-restore", fake),
                ..tools.clone()
            };
            // From nothing: no rule of the network stays (the empty chains
            // and their jumps may).
            let err = add_network(&failing, &net("muelle0", false)).unwrap_err();
            assert!(
                err.to_string().contains("line 2 failed: `-N MUELLE-DNAT`"),
                "{err}"
            );
            assert!(!saved(&tools).contains("muelle0"), "{}", saved(&tools));

            // Over another network: filter is as it was.
            add_network(&tools, &net("muelle0", false)).unwrap();
            let before = saved(&tools);
            let mut other = net("muelle1", false);
            other.subnet = Subnet::parse("10.88.2.0/24").unwrap();
            assert!(add_network(&failing, &other).is_err());
            assert_eq!(saved(&tools), before);
            // A change of muelle0 deletes and adds in filter: put back too.
            assert!(add_network(&failing, &net("muelle0", true)).is_err());
            assert_eq!(saved(&tools), before);
            remove_all(&tools).unwrap();
            assert!(!saved(&tools).contains("MUELLE"));
        });
    }

    /// The same rules through iptables-legacy (x_tables, not nf_tables),
    /// whose iptables-save prints them as muelle writes them too: applying
    /// twice changes nothing.
    #[test]
    fn legacy_iptables_reads_back_what_muelle_writes() {
        let legacy = Tool::find("iptables-legacy");
        if legacy.run(&["--version"], None, "").is_err() {
            eprintln!("skipping: no iptables-legacy");
            return;
        }
        in_netns(|| {
            let tools = Tools {
                iptables: legacy,
                iptables_save: Tool::find("iptables-legacy-save"),
                iptables_restore: Tool::find("iptables-legacy-restore"),
                ..Tools::find()
            };
            if probe(&tools).is_err() {
                eprintln!("skipping: iptables-legacy does not work here");
                return;
            }
            let ports = [
                port(None, 8080, [10, 88, 1, 2], 80),
                port(Some([127, 0, 0, 1]), 8081, [10, 88, 1, 2], 80),
            ];
            add_network(&tools, &net("muelle0", false)).unwrap();
            add_network(&tools, &net("mu1", true)).unwrap();
            publish(&tools, &ports).unwrap();
            let once = saved(&tools);
            add_network(&tools, &net("muelle0", false)).unwrap();
            add_network(&tools, &net("mu1", true)).unwrap();
            publish(&tools, &ports).unwrap();
            assert_eq!(saved(&tools), once);
            let installed = list(&tools).unwrap();
            assert_eq!(installed.networks, ["mu1", "muelle0"]);
            assert_eq!(installed.ports.len(), 2);
            unpublish(&tools, &ports).unwrap();
            remove_network(&tools, "muelle0").unwrap();
            remove_network(&tools, "mu1").unwrap();
            assert_eq!(list(&tools).unwrap(), Installed::default());
            remove_all(&tools).unwrap();
            assert!(!saved(&tools).contains("MUELLE"), "{}", saved(&tools));
        });
    }
}
