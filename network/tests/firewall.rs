//! muelle's firewall rules against the kernel, for both backends.
//!
//! Each test runs on a thread of its own that first unshares its network
//! namespace: the commands it runs (nft, iptables, ip, busybox) inherit
//! it, so the host's tables are never touched. "Containers" and the
//! "outside" host are `sleep` processes in network namespaces of their
//! own, joined by the commands run in them; every process the tests start
//! dies with its test (killed on drop, and by PR_SET_PDEATHSIG when the
//! thread ends), and the namespaces, links and rules go with the processes
//! and the thread. Nothing is named in /run/netns.
//!
//! Topology (`Lab`):
//! ```text
//! outside 192.168.77.2 ── mu-out 192.168.77.1 (host) ─┬─ muelle-t1 10.88.1.1/24 ─ c1 .2, c3 .3
//!                                                     ├─ muelle-t2 10.88.2.1/24 ─ c2 .2
//!                                                     └─ muelle-t3 10.88.3.1/24 (internal) ─ c4 .2, c5 .3
//! ```
//! Servers are `busybox nc -ll -e busybox netstat -tn`: the reply names the
//! server's address and the peer it saw, which shows NAT at work.

use std::cell::Cell;
use std::fs::File;
use std::io::Read;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use network::firewall::{Backend, Error, Firewall, Installed, NetworkRules, PortRule, Protocol};

const BUSYBOX: &str = "/bin/busybox";

// --- running a test in its own network namespace -------------------------

/// Why this machine cannot run the backend's tests, if it cannot.
fn skip_reason(backend: Backend) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("the firewall tests need root".into());
    }
    if !Path::new(BUSYBOX).exists() {
        return Some(format!("{BUSYBOX} is missing"));
    }
    let tool = match backend {
        Backend::Nftables => "nft",
        Backend::Iptables => "iptables",
    };
    for program in [tool, "ip"] {
        let works = Command::new(program)
            .arg(if program == "ip" { "-V" } else { "--version" })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !works {
            return Some(format!("`{program}` is not installed"));
        }
    }
    None
}

/// Runs `body` with a fresh `Lab` and `backend`, in a network namespace of
/// its own; skips (saying why) where the backend cannot run.
fn run(backend: Backend, body: fn(&Lab, &Firewall)) {
    if let Some(reason) = skip_reason(backend) {
        eprintln!("skipping the {backend} test: {reason}");
        return;
    }
    in_netns(move || {
        let lab = Lab::new();
        body(&lab, &Firewall::with_backend(backend));
    });
}

fn in_netns<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    let thread = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        let ns = |path| std::fs::read_link(path).expect("reading a namespace link");
        assert_ne!(
            ns("/proc/thread-self/ns/net"),
            ns("/proc/self/ns/net"),
            "the test thread must not run in the host's network namespace"
        );
        body()
    });
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Has the kernel kill the command's process when the thread that started
/// it ends (PR_SET_PDEATHSIG), should a test's drops not run.
fn die_with_thread(command: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `command` to its end (at most `limit`); its stdout when it
/// succeeds.
fn output_within(command: &mut Command, limit: Duration) -> Result<String, String> {
    let mut child = Process(
        die_with_thread(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{command:?}: {e}"))?,
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.0.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            return Err(format!("{command:?} took over {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    if status.success() {
        Ok(out)
    } else {
        Err(format!("{command:?}: {status}: {err}"))
    }
}

/// Runs a command in the test's namespace; panics when it fails.
fn sh(args: &[&str]) -> String {
    output_within(
        Command::new(args[0]).args(&args[1..]),
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

// --- the lab -------------------------------------------------------------

/// A network namespace held by a `sleep`.
struct Netns {
    ns: File,
    holder: Process,
}

impl Netns {
    fn new() -> Netns {
        let mut sleep = Command::new("sleep");
        sleep.arg("3600").stdin(Stdio::null());
        // SAFETY: unshare is async-signal-safe.
        unsafe {
            sleep.pre_exec(|| {
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // spawn returns after the exec, so after the unshare.
        let holder = Process(die_with_thread(&mut sleep).spawn().expect("spawning sleep"));
        let ns = File::open(format!("/proc/{}/ns/net", holder.0.id())).expect("opening the netns");
        Netns { ns, holder }
    }

    fn pid(&self) -> u32 {
        self.holder.0.id()
    }

    /// `program` to run in this namespace.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        let fd = self.ns.as_raw_fd();
        // SAFETY: setns is async-signal-safe; the descriptor outlives the
        // spawn.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command
    }

    fn sh(&self, args: &[&str]) -> String {
        output_within(
            self.command(args[0]).args(&args[1..]),
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A server on TCP `port` whose every answer is `netstat -tn` as the
    /// server sees it; ready when this returns.
    fn serve(&self, port: u16) -> Process {
        let port = port.to_string();
        let mut server = self.command(BUSYBOX);
        server
            .args(["nc", "-ll", "-p", &port, "-e", BUSYBOX, "netstat", "-tn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let server = Process(die_with_thread(&mut server).spawn().expect("spawning nc"));
        let deadline = Instant::now() + Duration::from_secs(5);
        while fetch_with(self.command(BUSYBOX), "127.0.0.1", &port).is_none() {
            assert!(
                Instant::now() < deadline,
                "the server on {port} never answered"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// What a server at `addr:port` answers, from this namespace.
    fn fetch(&self, addr: &str, port: u16) -> Option<String> {
        fetch_with(self.command(BUSYBOX), addr, &port.to_string())
    }

    /// TCP segments this namespace has received (`/proc/net/snmp`).
    fn tcp_segments_in(&self) -> u64 {
        let snmp = self.sh(&[BUSYBOX, "cat", "/proc/net/snmp"]);
        let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
        let (names, values) = (tcp.next().unwrap(), tcp.next().unwrap());
        let at = names
            .split_whitespace()
            .position(|n| n == "InSegs")
            .unwrap();
        values.split_whitespace().nth(at).unwrap().parse().unwrap()
    }

    /// Whether a connection from here to `addr:port` fails without a
    /// single segment reaching `target` (so no one-way leak either).
    fn blocked(&self, target: &Netns, addr: &str, port: u16) -> bool {
        let before = target.tcp_segments_in();
        self.fetch(addr, port).is_none() && target.tcp_segments_in() == before
    }
}

/// What a server answers, or `None` when it cannot be reached (in 1 s).
fn fetch_with(mut busybox: Command, addr: &str, port: &str) -> Option<String> {
    busybox.args(["nc", "-w", "1", addr, port]);
    output_within(&mut busybox, Duration::from_secs(5))
        .ok()
        .filter(|out| !out.is_empty())
}

/// What a server answers to the test's own namespace (the host).
fn host_fetch(addr: &str, port: u16) -> Option<String> {
    fetch_with(Command::new(BUSYBOX), addr, &port.to_string())
}

/// The peer addresses a server saw connect to its `local` address
/// (`10.88.1.2:80`), from its netstat answer.
fn peers(answer: &str, local: &str) -> Vec<Ipv4Addr> {
    answer
        .lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (own, peer, state) = (cols.get(3)?, cols.get(4)?, cols.get(5)?);
            let own = own.trim_start_matches("::ffff:");
            (own == local && *state != "LISTEN" && *state != "TIME_WAIT").then_some(())?;
            let peer = peer.trim_start_matches("::ffff:");
            peer.rsplit_once(':')?.0.parse().ok()
        })
        .collect()
}

/// The host side of the test: bridges, containers, the outside host.
struct Lab {
    veths: Cell<u32>,
}

const OUTSIDE_HOST: &str = "192.168.77.1";
const OUTSIDE: &str = "192.168.77.2";

impl Lab {
    fn new() -> Lab {
        sh(&["ip", "link", "set", "lo", "up"]);
        // Per network namespace: this is the test's.
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").expect("ip_forward");
        let lab = Lab {
            veths: Cell::new(0),
        };
        // A plain host: bridged packets skip iptables (see `br_netfilter`).
        lab.br_netfilter(false);
        lab
    }

    /// Turns br_netfilter's bridge-nf-call-iptables (per namespace) on or
    /// off: on, as docker hosts have it, packets within a bridge traverse
    /// the forward hook and conntrack too. False where the kernel has no
    /// br_netfilter.
    fn br_netfilter(&self, on: bool) -> bool {
        let knob = "/proc/sys/net/bridge/bridge-nf-call-iptables";
        Path::new(knob).exists() && std::fs::write(knob, if on { "1" } else { "0" }).is_ok()
    }

    /// Runs `check` with br_netfilter off, then on where the kernel has
    /// it; leaves it off.
    fn each_br_netfilter(&self, mut check: impl FnMut(bool)) {
        self.br_netfilter(false);
        check(false);
        if self.br_netfilter(true) {
            check(true);
            self.br_netfilter(false);
        }
    }

    /// A bridge with `gateway/24`, route_localnet on (as the caller of the
    /// firewall sets it).
    fn bridge(&self, name: &str, gateway: &str) {
        sh(&["ip", "link", "add", name, "type", "bridge"]);
        sh(&["ip", "addr", "add", &format!("{gateway}/24"), "dev", name]);
        sh(&["ip", "link", "set", name, "up"]);
        std::fs::write(
            format!("/proc/sys/net/ipv4/conf/{name}/route_localnet"),
            "1",
        )
        .expect("route_localnet");
    }

    /// A namespace behind a veth pair: `host_if` here, eth0 there with
    /// `addr/24`, and a default route through `gateway`.
    fn attach(&self, host_if: &str, addr: &str, gateway: Option<&str>) -> Netns {
        let ns = Netns::new();
        let pid = ns.pid().to_string();
        sh(&[
            "ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", &pid,
        ]);
        ns.sh(&["ip", "link", "set", "lo", "up"]);
        ns.sh(&["ip", "addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
        ns.sh(&["ip", "link", "set", "eth0", "up"]);
        if let Some(gateway) = gateway {
            ns.sh(&["ip", "route", "add", "default", "via", gateway]);
        }
        ns
    }

    /// A container on `bridge` (gateway `x.y.z.1`) at `addr`.
    fn container(&self, bridge: &str, addr: &str) -> Netns {
        let n = self.veths.get();
        self.veths.set(n + 1);
        let host_if = format!("mu-v{n}");
        let gateway = format!("{}.1", addr.rsplit_once('.').unwrap().0);
        let ns = self.attach(&host_if, addr, Some(&gateway));
        sh(&["ip", "link", "set", &host_if, "master", bridge, "up"]);
        // As the caller does (and docker, without its userland proxy): a
        // container reaching itself through a published port needs it
        // where br_netfilter is on.
        sh(&[
            "ip",
            "link",
            "set",
            &host_if,
            "type",
            "bridge_slave",
            "hairpin",
            "on",
        ]);
        ns
    }

    /// Another host on a link of its own: it reaches the host's
    /// 192.168.77.1 and routes 10.88.0.0/16 through it (so that it could
    /// reach containers directly, were it let through).
    fn outside(&self) -> Netns {
        let ns = self.attach("mu-out", OUTSIDE, None);
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{OUTSIDE_HOST}/24"),
            "dev",
            "mu-out",
        ]);
        sh(&["ip", "link", "set", "mu-out", "up"]);
        ns.sh(&["ip", "route", "add", "10.88.0.0/16", "via", OUTSIDE_HOST]);
        ns
    }
}

fn network(bridge: &str, third: u8, internal: bool) -> NetworkRules {
    NetworkRules {
        bridge: bridge.into(),
        subnet: Ipv4Addr::new(10, 88, third, 0),
        prefix_len: 24,
        internal,
    }
}

fn ip(addr: &str) -> Ipv4Addr {
    addr.parse().unwrap()
}

fn port(host_ip: Option<&str>, host_port: u16, to: &str, to_port: u16, bridge: &str) -> PortRule {
    PortRule {
        protocol: Protocol::Tcp,
        host_ip: host_ip.map(|ip| ip.parse().unwrap()),
        host_port,
        container_ip: to.parse().unwrap(),
        container_port: to_port,
        bridge: bridge.into(),
    }
}

/// Everything of muelle's that either tool shows in this namespace.
fn muelle_traces() -> Vec<String> {
    let mut traces = Vec::new();
    if let Ok(ruleset) = output_within(
        Command::new("nft").args(["list", "ruleset"]),
        Duration::from_secs(10),
    ) {
        traces.extend(
            ruleset
                .lines()
                .filter(|l| l.to_ascii_lowercase().contains("muelle"))
                .map(|l| format!("nft: {l}")),
        );
    }
    if let Ok(saved) = output_within(&mut Command::new("iptables-save"), Duration::from_secs(10)) {
        traces.extend(
            saved
                .lines()
                .filter(|l| l.contains("MUELLE"))
                .map(|l| format!("iptables: {l}")),
        );
    }
    traces
}

/// What the backend's tool shows of muelle's rules, for comparisons.
fn snapshot(backend: Backend) -> String {
    match backend {
        Backend::Nftables => sh(&["nft", "list", "ruleset"]),
        Backend::Iptables => sh(&["iptables-save"])
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn nftables() {
                super::run(network::firewall::Backend::Nftables, super::$name)
            }
            #[test]
            fn iptables() {
                super::run(network::firewall::Backend::Iptables, super::$name)
            }
        }
    )*};
}

both_backends!(
    published_ports,
    bridges_are_isolated,
    internal_networks_stay_inside,
    egress_is_masqueraded,
    removal_leaves_nothing,
    everything_is_idempotent,
    publish_is_all_or_nothing,
    a_changed_network_replaces_its_rules,
    a_forward_drop_policy,
    concurrent_changes,
);

// --- the tests -----------------------------------------------------------

/// (a) from another host, (b) from the host itself, bound ports, hairpin,
/// other bridges, and no way in without publishing.
fn published_ports(lab: &Lab, fw: &Firewall) {
    lab.bridge("muelle-t1", "10.88.1.1");
    lab.bridge("muelle-t2", "10.88.2.1");
    let c1 = lab.container("muelle-t1", "10.88.1.2");
    let c3 = lab.container("muelle-t1", "10.88.1.3");
    let c2 = lab.container("muelle-t2", "10.88.2.2");
    let outside = lab.outside();
    let _server = c1.serve(80);
    fw.add_network(&network("muelle-t1", 1, false)).unwrap();
    fw.add_network(&network("muelle-t2", 2, false)).unwrap();

    assert!(
        outside.fetch(OUTSIDE_HOST, 8080).is_none(),
        "nothing published yet"
    );
    fw.publish(&[
        port(None, 8080, "10.88.1.2", 80, "muelle-t1"),
        port(Some(OUTSIDE_HOST), 8081, "10.88.1.2", 80, "muelle-t1"),
    ])
    .unwrap();

    // (a) From another host: DNATed, and the container sees the client.
    let answer = outside
        .fetch(OUTSIDE_HOST, 8080)
        .expect("outside -> host:8080");
    assert_eq!(peers(&answer, "10.88.1.2:80"), [ip(OUTSIDE)]);
    // (b) From the host itself, on 127.0.0.1 and on its own address.
    assert!(host_fetch("127.0.0.1", 8080).is_some(), "127.0.0.1:8080");
    assert!(
        host_fetch(OUTSIDE_HOST, 8080).is_some(),
        "host address:8080"
    );

    // A port bound to one address answers there only.
    assert!(
        outside.fetch(OUTSIDE_HOST, 8081).is_some(),
        "bound port, its address"
    );
    assert!(
        host_fetch("127.0.0.1", 8081).is_none(),
        "bound port, another address"
    );

    // Hairpin: a neighbour on the same bridge, through the host's address,
    // comes from the bridge's gateway (else c1 would answer c3 directly),
    // with and without br_netfilter; so does the container itself.
    lab.each_br_netfilter(|br_netfilter| {
        for (client, name) in [(&c3, "neighbour"), (&c1, "itself")] {
            let answer = client
                .fetch(OUTSIDE_HOST, 8080)
                .expect("same bridge, published port");
            let seen = peers(&answer, "10.88.1.2:80");
            assert_eq!(
                seen,
                [ip("10.88.1.1")],
                "{name}, br_netfilter {br_netfilter}"
            );
        }
    });
    // Another network reaches a published port too (it is public), and is
    // not masqueraded on its way into a muelle bridge.
    let answer = c2
        .fetch("10.88.2.1", 8080)
        .expect("other bridge, published port");
    assert_eq!(peers(&answer, "10.88.1.2:80"), [ip("10.88.2.2")]);

    // Without publishing, the container's address is closed from outside.
    assert!(
        outside.blocked(&c1, "10.88.1.2", 80),
        "outside -> container directly"
    );

    fw.unpublish(&[port(None, 8080, "10.88.1.2", 80, "muelle-t1")])
        .unwrap();
    assert!(outside.fetch(OUTSIDE_HOST, 8080).is_none(), "unpublished");
    assert!(
        outside.fetch(OUTSIDE_HOST, 8081).is_some(),
        "the other port stays"
    );
}

/// (c) Two bridges cannot reach each other; one bridge can.
fn bridges_are_isolated(lab: &Lab, fw: &Firewall) {
    lab.bridge("muelle-t1", "10.88.1.1");
    lab.bridge("muelle-t2", "10.88.2.1");
    let c1 = lab.container("muelle-t1", "10.88.1.2");
    let c3 = lab.container("muelle-t1", "10.88.1.3");
    let c2 = lab.container("muelle-t2", "10.88.2.2");
    let _s1 = c1.serve(80);
    let _s2 = c2.serve(80);
    // Without rules, the host routes between its bridges.
    assert!(
        c2.fetch("10.88.1.2", 80).is_some(),
        "routed before any rule"
    );

    fw.add_network(&network("muelle-t1", 1, false)).unwrap();
    fw.add_network(&network("muelle-t2", 2, false)).unwrap();
    lab.each_br_netfilter(|br_netfilter| {
        let mode = format!("br_netfilter {br_netfilter}");
        assert!(c3.fetch("10.88.1.2", 80).is_some(), "same bridge, {mode}");
        assert!(c2.blocked(&c1, "10.88.1.2", 80), "t2 -> t1, {mode}");
        assert!(c1.blocked(&c2, "10.88.2.2", 80), "t1 -> t2, {mode}");
        assert!(
            c3.blocked(&c2, "10.88.2.2", 80),
            "t1 -> t2 (another), {mode}"
        );
    });
}

/// (d) An internal network: nothing in or out, within it all.
fn internal_networks_stay_inside(lab: &Lab, fw: &Firewall) {
    lab.bridge("muelle-t1", "10.88.1.1");
    lab.bridge("muelle-t3", "10.88.3.1");
    let c1 = lab.container("muelle-t1", "10.88.1.2");
    let c4 = lab.container("muelle-t3", "10.88.3.2");
    let c5 = lab.container("muelle-t3", "10.88.3.3");
    let outside = lab.outside();
    let _s1 = c1.serve(80);
    let _s4 = c4.serve(80);
    let _so = outside.serve(81);
    fw.add_network(&network("muelle-t1", 1, false)).unwrap();
    fw.add_network(&network("muelle-t3", 3, true)).unwrap();
    fw.publish(&[port(None, 8083, "10.88.3.2", 80, "muelle-t3")])
        .unwrap();

    lab.each_br_netfilter(|br_netfilter| {
        let mode = format!("br_netfilter {br_netfilter}");
        assert!(c5.fetch("10.88.3.2", 80).is_some(), "within, {mode}");
        assert!(
            c4.blocked(&outside, OUTSIDE, 81),
            "internal -> outside, {mode}"
        );
        assert!(
            outside.blocked(&c4, "10.88.3.2", 80),
            "outside -> internal, {mode}"
        );
        assert!(
            c4.blocked(&c1, "10.88.1.2", 80),
            "internal -> other bridge, {mode}"
        );
        assert!(
            c1.blocked(&c4, "10.88.3.2", 80),
            "other bridge -> internal, {mode}"
        );
        assert!(
            outside.blocked(&c4, OUTSIDE_HOST, 8083),
            "published, {mode}"
        );
    });
    // The non-internal network next to it still goes out.
    assert!(c1.fetch(OUTSIDE, 81).is_some(), "t1 -> outside");
}

/// (1) Egress leaves with the host's address.
fn egress_is_masqueraded(lab: &Lab, fw: &Firewall) {
    lab.bridge("muelle-t1", "10.88.1.1");
    let c1 = lab.container("muelle-t1", "10.88.1.2");
    let outside = lab.outside();
    let _server = outside.serve(81);
    fw.add_network(&network("muelle-t1", 1, false)).unwrap();
    let answer = c1.fetch(OUTSIDE, 81).expect("container -> outside");
    assert_eq!(
        peers(&answer, &format!("{OUTSIDE}:81")),
        [ip(OUTSIDE_HOST)],
        "{answer}"
    );
}

/// (e) unpublish, remove_network and remove_all leave nothing of muelle's.
fn removal_leaves_nothing(lab: &Lab, fw: &Firewall) {
    lab.bridge("muelle-t1", "10.88.1.1");
    let c1 = lab.container("muelle-t1", "10.88.1.2");
    let _server = c1.serve(80);
    let ports = [
        port(None, 8080, "10.88.1.2", 80, "muelle-t1"),
        port(Some("127.0.0.1"), 8081, "10.88.1.2", 80, "muelle-t1"),
    ];
    assert_eq!(fw.list().unwrap(), Installed::default(), "nothing at first");

    fw.add_network(&network("muelle-t1", 1, false)).unwrap();
    fw.add_network(&network("muelle-t2", 2, true)).unwrap();
    fw.publish(&ports).unwrap();
    let installed = fw.list().unwrap();
    assert_eq!(installed.networks, ["muelle-t1", "muelle-t2"]);
    let mut expected = ports.to_vec();
    expected.sort_by_key(|p| p.host_ip);
    assert_eq!(installed.ports, expected);
    assert!(host_fetch("127.0.0.1", 8081).is_some());

    // Without their bridge, as a container's teardown knows them.
    let unnamed = ports.clone().map(|p| PortRule {
        bridge: String::new(),
        ..p
    });
    fw.unpublish(&unnamed).unwrap();
    fw.remove_network("muelle-t1").unwrap();
    fw.remove_network("muelle-t2").unwrap();
    assert_eq!(fw.list().unwrap(), Installed::default());
    assert!(host_fetch("127.0.0.1", 8081).is_none());

    // The base alone is left; remove_all takes it.
    assert!(!muelle_traces().is_empty());
    fw.remove_all().unwrap();
    assert_eq!(muelle_traces(), Vec::<String>::new());

    // remove_all with rules in place takes them all at once.
    fw.add_network(&network("muelle-t1", 1, false)).unwrap();
    fw.publish(&ports).unwrap();
    fw.remove_all().unwrap();
    assert_eq!(muelle_traces(), Vec::<String>::new());
    assert_eq!(fw.list().unwrap(), Installed::default());
}

/// Applying twice is applying once; removing what is absent succeeds.
fn everything_is_idempotent(_lab: &Lab, fw: &Firewall) {
    let backend = fw.backend();
    // Removing from nothing.
    fw.remove_all().unwrap();
    fw.remove_network("muelle-t1").unwrap();
    fw.unpublish(&[port(None, 8080, "10.88.1.2", 80, "muelle-t1")])
        .unwrap();
    assert_eq!(muelle_traces(), Vec::<String>::new());

    let net = network("muelle-t1", 1, false);
    let ports = [
        port(None, 8080, "10.88.1.2", 80, "muelle-t1"),
        port(Some("127.0.0.1"), 8081, "10.88.1.2", 80, "muelle-t1"),
    ];
    fw.add_network(&net).unwrap();
    fw.publish(&ports).unwrap();
    let once = snapshot(backend);
    fw.add_network(&net).unwrap();
    fw.publish(&ports).unwrap();
    fw.publish(&ports[..1]).unwrap();
    assert_eq!(snapshot(backend), once);

    fw.unpublish(&ports).unwrap();
    let unpublished = snapshot(backend);
    fw.unpublish(&ports).unwrap();
    assert_eq!(snapshot(backend), unpublished);
    fw.remove_network("muelle-t1").unwrap();
    fw.remove_network("muelle-t1").unwrap();
    fw.remove_all().unwrap();
    fw.remove_all().unwrap();
    assert_eq!(muelle_traces(), Vec::<String>::new());
}

/// A publish that cannot be done in full changes nothing.
fn publish_is_all_or_nothing(_lab: &Lab, fw: &Firewall) {
    let backend = fw.backend();
    fw.add_network(&network("muelle-t1", 1, false)).unwrap();
    fw.publish(&[port(None, 8080, "10.88.1.2", 80, "muelle-t1")])
        .unwrap();
    let before = snapshot(backend);

    let err = fw
        .publish(&[
            port(None, 9090, "10.88.1.3", 80, "muelle-t1"),
            port(None, 8080, "10.88.1.3", 80, "muelle-t1"),
        ])
        .unwrap_err();
    assert!(matches!(err, Error::PortTaken { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "host port tcp 0.0.0.0:8080 is already published to 10.88.1.2:80"
    );
    assert_eq!(snapshot(backend), before);

    // Unpublishing someone else's destination leaves it alone.
    fw.unpublish(&[port(None, 8080, "10.88.1.3", 80, "muelle-t1")])
        .unwrap();
    assert_eq!(snapshot(backend), before);
    fw.remove_all().unwrap();
}

/// The same bridge again with another subnet or flag: the old rules go.
fn a_changed_network_replaces_its_rules(lab: &Lab, fw: &Firewall) {
    lab.bridge("muelle-t1", "10.88.1.1");
    let c1 = lab.container("muelle-t1", "10.88.1.2");
    let outside = lab.outside();
    let _server = outside.serve(81);
    fw.add_network(&network("muelle-t1", 9, false)).unwrap();
    fw.add_network(&network("muelle-t1", 1, true)).unwrap();
    assert!(c1.fetch(OUTSIDE, 81).is_none(), "now internal");
    let rules = snapshot(fw.backend());
    assert!(!rules.contains("10.88.9."), "{rules}");
    fw.add_network(&network("muelle-t1", 1, false)).unwrap();
    assert!(c1.fetch(OUTSIDE, 81).is_some(), "no longer internal");
    assert_eq!(fw.list().unwrap().networks, ["muelle-t1"]);
    // Another network may now take the subnet the bridge had first.
    fw.add_network(&network("muelle-t2", 9, false)).unwrap();
    fw.remove_all().unwrap();
}

/// A host whose filter FORWARD policy is DROP (as docker sets it): with
/// iptables, muelle's jump comes first and its accepts decide; with
/// nftables, the other table's policy wins (see the module doc).
fn a_forward_drop_policy(lab: &Lab, fw: &Firewall) {
    if skip_reason(Backend::Iptables).is_some() {
        eprintln!("skipping: setting a FORWARD policy needs iptables");
        return;
    }
    sh(&["iptables", "-w", "-P", "FORWARD", "DROP"]);
    lab.bridge("muelle-t1", "10.88.1.1");
    let c1 = lab.container("muelle-t1", "10.88.1.2");
    let outside = lab.outside();
    let _s1 = c1.serve(80);
    let _so = outside.serve(81);
    fw.add_network(&network("muelle-t1", 1, false)).unwrap();
    fw.publish(&[port(None, 8080, "10.88.1.2", 80, "muelle-t1")])
        .unwrap();
    let works = fw.backend() == Backend::Iptables;
    assert_eq!(
        outside.fetch(OUTSIDE_HOST, 8080).is_some(),
        works,
        "published port"
    );
    assert_eq!(c1.fetch(OUTSIDE, 81).is_some(), works, "egress");
    // The host itself is not forwarded: 127.0.0.1 works either way.
    assert!(host_fetch("127.0.0.1", 8080).is_some());
    fw.remove_all().unwrap();
    assert!(snapshot(Backend::Iptables).contains(":FORWARD DROP"));
}

/// Several muelle commands at once (there is no daemon to serialize them):
/// every change lands, and removals too.
fn concurrent_changes(_lab: &Lab, fw: &Firewall) {
    const N: u8 = 6;
    let netns = File::open("/proc/thread-self/ns/net").unwrap();
    let in_each = |work: &(dyn Fn(u8) + Sync)| {
        std::thread::scope(|scope| {
            for i in 0..N {
                let netns = &netns;
                scope.spawn(move || {
                    nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                    work(i)
                });
            }
        })
    };
    let bridge = |i: u8| format!("muelle-c{i}");
    let port_of = |i: u8| {
        let to = format!("10.88.{}.2", 10 + i);
        port(None, 8000 + u16::from(i), &to, 80, &bridge(i))
    };
    in_each(&|i| {
        fw.add_network(&network(&bridge(i), 10 + i, i % 2 == 0))
            .unwrap();
        fw.publish(&[port_of(i)]).unwrap();
    });
    let installed = fw.list().unwrap();
    assert_eq!(installed.networks, (0..N).map(bridge).collect::<Vec<_>>());
    assert_eq!(installed.ports, (0..N).map(port_of).collect::<Vec<_>>());

    in_each(&|i| {
        fw.unpublish(&[port_of(i)]).unwrap();
        fw.remove_network(&bridge(i)).unwrap();
    });
    assert_eq!(fw.list().unwrap(), Installed::default());
    fw.remove_all().unwrap();
    assert_eq!(muelle_traces(), Vec::<String>::new());
}

// --- once per machine ----------------------------------------------------

#[test]
fn detect_prefers_nftables() {
    if skip_reason(Backend::Nftables).is_some() {
        eprintln!("skipping: nft is not installed");
        return;
    }
    in_netns(|| {
        let fw = Firewall::detect().unwrap();
        assert_eq!(fw.backend(), Backend::Nftables);
    });
}

#[test]
fn a_failed_transaction_keeps_the_previous_rules() {
    if let Some(reason) = skip_reason(Backend::Nftables) {
        eprintln!("skipping: {reason}");
        return;
    }
    in_netns(|| {
        let fw = Firewall::with_backend(Backend::Nftables);
        fw.add_network(&network("muelle-t1", 1, false)).unwrap();
        let before = snapshot(Backend::Nftables);
        // 10.88.0.0/16 overlaps muelle-t1's subnet in the egress set.
        let overlapping = NetworkRules {
            bridge: "muelle-t2".into(),
            subnet: Ipv4Addr::new(10, 88, 0, 0),
            prefix_len: 16,
            internal: false,
        };
        let err = fw.add_network(&overlapping).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "nft: Error: interval overlaps with an existing one: add element ip muelle egress"
            ),
            "{err}"
        );
        assert!(
            err.ends_with("(applying muelle's network rules for muelle-t2)"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
        assert_eq!(snapshot(Backend::Nftables), before);
        fw.remove_all().unwrap();
    });
}

/// Times add_network on a fresh table and on one with a network, publish
/// and unpublish of one port (medians of 20), for each backend. Run by hand:
/// `cargo test -p network --test firewall -- --ignored --nocapture timings`
#[test]
#[ignore]
fn timings() {
    for backend in [Backend::Nftables, Backend::Iptables] {
        if let Some(reason) = skip_reason(backend) {
            eprintln!("skipping {backend}: {reason}");
            continue;
        }
        let medians = in_netns(move || {
            let fw = Firewall::with_backend(backend);
            let mut times: [Vec<Duration>; 4] = Default::default();
            let mut timed = |i: usize, f: &dyn Fn()| {
                let t = Instant::now();
                f();
                times[i].push(t.elapsed());
            };
            for i in 0..20 {
                let port = port(None, 10000 + i, "10.88.1.2", 80, "muelle-t1");
                fw.remove_all().unwrap();
                timed(0, &|| {
                    fw.add_network(&network("muelle-t1", 1, false)).unwrap()
                });
                timed(1, &|| {
                    fw.add_network(&network("muelle-t2", 2, false)).unwrap()
                });
                timed(2, &|| fw.publish(std::slice::from_ref(&port)).unwrap());
                timed(3, &|| fw.unpublish(std::slice::from_ref(&port)).unwrap());
            }
            fw.remove_all().unwrap();
            times.map(|mut v| {
                v.sort();
                v[v.len() / 2]
            })
        });
        let [fresh, second, publish, unpublish] = medians;
        println!(
            "{backend}: add_network {fresh:?} on a fresh table, {second:?} on one with a \
             network; publish {publish:?}, unpublish {unpublish:?} (one port)"
        );
    }
}
