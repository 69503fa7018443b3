//! `cargo xtask bench network`: what muelle's bridge networks cost, beside
//! podman's, on the busybox test image (`cargo xtask test-image`):
//!
//! - **run --rm**: `run --rm IMAGE true` on the default network (muelle's
//!   `muelle0` bridge, podman's `podman0`) and with `--network none`, for
//!   muelle (a release build, a private instance) and podman (a private
//!   instance, runc). The difference of the two medians is the network's
//!   share of a whole command.
//! - **attach / detach**: `Networking::setup` and `Networking::teardown`
//!   of one container on the default network, timed inside the
//!   `network-session` helper (session_main.rs, the only part that links
//!   the network crate): with a new `Networking` per container as each
//!   muelle command has it, with one whose firewall is known, and with a
//!   published port. Target: attach under 5 ms.
//! - **requests per second**: busybox `httpd` serving a 512-byte file in a
//!   container (`-p 127.0.0.1:PORT:80 -p PORT2:80`), loaded by a small
//!   HTTP/1.0 client (load.rs) through the published port on 127.0.0.1,
//!   through the published port on a non-loopback address of the bench's
//!   namespace, and on the container's own address directly. Target: the
//!   published port at no less than 90% of the direct address.
//!
//! The whole bench runs in a network and mount namespace of its own
//! (namespace.rs), entered once the builds are done and before anything
//! is started: the bridges, veths, nftables and iptables rules of both
//! engines never touch the host's network, and go with the bench.
//!
//! Every contender runs once untimed first (a probe that checks the
//! container ran and, on a bridge, got an address), and one that fails
//! there is reported and not run again; podman's bridge failing is
//! reported as skipped with its reason. The timed runs go in rounds, each
//! contender in turn (the order turning with the round), so that the load
//! of the shared machine weighs on all alike.
//!
//! Folders, instances and their clean-up are `bench engine`'s (workdir.rs,
//! cli.rs, guard.rs, cgroups.rs there); before the folders go, the bench
//! checks that no container's veth, namespace file or published-port rule
//! was left (namespace.rs).

mod load;
mod namespace;
mod report;
mod rows;
mod session;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use clap::ValueEnum;

use self::load::Bounds;
use self::rows::{Key, Slots};
use self::session::{Helper, WAYS, Way};
use super::common::Unavailable;
use super::engine::cgroups;
use super::engine::cli::{Cli, Net};
use super::engine::guard;
use super::engine::workdir::{self, Dirs, Workdir};
use crate::{test_image, util};

#[derive(clap::Args)]
pub struct Args {
    /// Timed `run --rm` of each contender, and timed attaches and detaches
    /// of each way
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Load runs on each address (requests per second)
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    load_runs: u32,
    /// Requests of one load run, at most
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    requests: u64,
    /// Seconds of one load run, at most
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Client threads of a load run, each one request at a time
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    threads: u32,
    /// Tools to measure, comma-separated
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "muelle,podman"
    )]
    tools: Vec<Tool>,
    /// Measure this muelle (with muelle-monitor beside it) instead of
    /// building it with `cargo build --release -p cli -p engine -p network
    /// --bins`
    #[arg(long, value_name = "PATH")]
    muelle: Option<PathBuf>,
    /// Print the results as JSON on stdout instead of tables
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Tool {
    Muelle,
    Podman,
}

/// The bench's name in its folders' names.
const KIND: &str = "network";

/// Timed runs of each contender in one round.
const ROUND_RUNS: u32 = 5;

/// The server each engine runs: a 512-byte file (load::BODY_LEN) served
/// by busybox httpd in the foreground.
const SERVE: &str =
    "mkdir -p /www && printf '%0512d' 0 > /www/index.html && exec httpd -f -p 80 -h /www";
/// How long a server gets to answer after `run -d`.
const SERVER_START: Duration = Duration::from_secs(10);
/// The quiet before each helper run: the monitors of the last `run --rm`
/// finish and the kernel frees their namespaces.
const SETTLE: Duration = Duration::from_millis(300);
/// Requests of the untimed load run on each address.
const WARM_REQUESTS: u64 = 100;

/// What is timed in milliseconds, in the order of the table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    RunRm(Net),
    Attach(Way),
    Detach(Way),
}

impl Key for Op {
    fn label(self) -> String {
        match self {
            Self::RunRm(Net::Default) => "run --rm true, default network".to_owned(),
            Self::RunRm(Net::None) => "run --rm true, --network none".to_owned(),
            Self::Attach(way) => format!("attach (setup), {}", way.label()),
            Self::Detach(way) => format!("detach (teardown), {}", way.label()),
        }
    }

    fn slot(self) -> usize {
        match self {
            Self::RunRm(Net::Default) => 0,
            Self::RunRm(Net::None) => 1,
            Self::Attach(way) => 2 + 2 * way_slot(way),
            Self::Detach(way) => 3 + 2 * way_slot(way),
        }
    }
}

fn way_slot(way: Way) -> usize {
    WAYS.iter().position(|&w| w == way).unwrap_or(WAYS.len())
}

/// Where the load client sends its requests.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Target {
    /// The published port on 127.0.0.1.
    Loopback,
    /// The published port on the namespace's own non-loopback address.
    HostAddress,
    /// The container's address and port 80.
    Direct,
}

const TARGETS: [Target; 3] = [Target::Loopback, Target::HostAddress, Target::Direct];

impl Key for Target {
    fn label(self) -> String {
        match self {
            Self::Loopback => "published, 127.0.0.1",
            Self::HostAddress => "published, host address",
            Self::Direct => "container address",
        }
        .to_owned()
    }

    fn slot(self) -> usize {
        TARGETS
            .iter()
            .position(|&t| t == self)
            .unwrap_or(TARGETS.len())
    }
}

/// A server container and where it answers.
struct Server {
    /// Its engine's place in `Bench::clis`.
    cli: usize,
    id: String,
    addresses: Vec<(Target, SocketAddr)>,
}

/// The contenders and what came of them so far.
struct Bench {
    clis: Vec<Cli>,
    helper: Option<Helper>,
    times: Slots<Op>,
    rates: Slots<Target>,
    servers: Vec<Server>,
    /// The namespace's non-loopback address, or why there is none.
    host_address: Result<Ipv4Addr, String>,
    firewall: Option<String>,
    /// Published ports the helper's detaches left in nftables, and of how
    /// many attached.
    published_left: (u64, u64),
    notes: Vec<String>,
}

pub fn run(args: &Args) -> Result<()> {
    if !util::is_root() {
        bail!("bench network runs real containers and makes network namespaces: run it as root");
    }
    guard::install();
    let bench_dir = util::target_dir()?.join(format!("bench-{KIND}"));
    let archive = test_image::build(None)?;
    // A killed bench's muelle containers need a muelle to go, measured
    // or not.
    let stale = workdir::stale(&bench_dir, KIND);
    let wanted = args.tools.contains(&Tool::Muelle);
    let muelle = if wanted || !stale.is_empty() {
        super::engine::locate_muelle(args.muelle.as_deref())
    } else {
        Err(Unavailable::Skipped("not among --tools".to_owned()))
    };
    let helper = match &muelle {
        Ok(_) if wanted => session::build()
            .and_then(Helper::new)
            .map_err(|e| Unavailable::Failed(format!("network-session: {e:#}"))),
        Ok(_) => Err(Unavailable::Skipped("not among --tools".to_owned())),
        Err(why) => Err(why.clone()),
    };

    // From here on, everything happens in the bench's own namespaces.
    namespace::enter()?;
    super::engine::clean_stale(stale, muelle.as_ref().ok());
    let workdir = Workdir::new(&bench_dir, KIND)?;
    let cgroups = cgroups::Watch::start();

    let mut bench = Bench::prepare(args, &workdir.dirs, &archive, muelle, helper);
    let measured = bench.measure(args, &workdir.dirs);

    eprintln!("cleaning up");
    let mut problems = bench.remove_servers();
    let mut ids = Vec::new();
    for cli in &mut bench.clis {
        problems.extend(cli.clean_up());
        ids.append(&mut cli.ids);
    }
    let netns_dirs = ["muelle", "session"].map(|d| workdir.dirs.run.join(d).join("netns"));
    problems.extend(namespace::leftovers(&netns_dirs));
    problems.extend(
        cgroups
            .finish(&ids)
            .into_iter()
            .map(|leaf| format!("a container's cgroup was left: {leaf}")),
    );
    problems.extend(workdir.dirs.clear());
    measured?;

    let (left, of) = bench.published_left;
    if left > 0 {
        bench.notes.push(format!(
            "detach -p: {left} of {of} published ports were still in the helper's nftables after \
             their container's teardown: muelle's unpublish failed, so that row lacks removing them"
        ));
    }
    let context = report::Context {
        runs: args.runs,
        load_runs: args.load_runs,
        bounds: bounds(args),
        firewall: bench.firewall.take(),
        notes: std::mem::take(&mut bench.notes),
        problems,
    };
    let times = std::mem::replace(&mut bench.times, Slots::new()).into_rows();
    let rates = std::mem::replace(&mut bench.rates, Slots::new()).into_rows();
    if args.json {
        println!("{:#}", report::json(&context, &times, &rates));
    } else {
        print!("{}", report::text(&context, &times, &rates));
    }
    Ok(())
}

fn bounds(args: &Args) -> Bounds {
    Bounds {
        threads: args.threads,
        requests: args.requests,
        time: Duration::from_secs(args.seconds.max(1)),
    }
}

impl Bench {
    /// Every selected tool found, its instance made and its image loaded,
    /// or the reason why not in its rows.
    fn prepare(
        args: &Args,
        dirs: &Dirs,
        archive: &Path,
        muelle: Result<PathBuf, Unavailable>,
        helper: Result<Helper, Unavailable>,
    ) -> Bench {
        let host_address = namespace::add_host_address().map_err(|e| format!("{e:#}"));
        if let Err(e) = &host_address {
            eprintln!("no host address in the bench's namespace: {e}");
        }
        let mut bench = Bench {
            clis: Vec::new(),
            helper: None,
            times: Slots::new(),
            rates: Slots::new(),
            servers: Vec::new(),
            host_address,
            firewall: None,
            published_left: (0, 0),
            notes: Vec::new(),
        };
        let load = |cli: Result<Cli, String>| {
            let mut cli = cli.map_err(Unavailable::Failed)?;
            eprintln!("{}: loading {}", cli.name(), test_image::IMAGE_NAME);
            cli.load(archive)
                .map_err(|e| Unavailable::Failed(format!("load: {e}")))?;
            Ok::<Cli, Unavailable>(cli)
        };
        for tool in [Tool::Muelle, Tool::Podman] {
            if !args.tools.contains(&tool) {
                continue;
            }
            let (name, cli) = match tool {
                Tool::Muelle => (
                    "muelle",
                    muelle
                        .as_ref()
                        .map_err(Clone::clone)
                        .and_then(|p| load(Cli::muelle(p, dirs))),
                ),
                Tool::Podman => (
                    "podman",
                    util::find_program("podman")
                        .ok_or_else(|| {
                            Unavailable::Skipped(
                                "not installed (apt-get install podman)".to_owned(),
                            )
                        })
                        .and_then(|p| load(Cli::podman(&p, dirs))),
                ),
            };
            let state = cli.map(|cli| bench.clis.push(cli));
            if let Err(why) = &state {
                eprintln!("{name}: {why}");
            }
            for net in [Net::Default, Net::None] {
                bench.times.add(Op::RunRm(net), name, state.clone());
            }
            let target_state = |target| match (&state, target, &bench.host_address) {
                (Ok(()), Target::HostAddress, Err(e)) => Err(Unavailable::Skipped(format!(
                    "the bench's namespace has no host address: {e}"
                ))),
                _ => state.clone(),
            };
            let states: Vec<_> = TARGETS.iter().map(|&t| (t, target_state(t))).collect();
            for (target, state) in states {
                bench.rates.add(target, name, state);
            }
            if tool == Tool::Muelle {
                let helper_state = match (&state, &helper) {
                    (Err(why), _) | (_, Err(why)) => Err(why.clone()),
                    _ => Ok(()),
                };
                for way in WAYS {
                    bench.times.add(Op::Attach(way), name, helper_state.clone());
                    bench.times.add(Op::Detach(way), name, helper_state.clone());
                }
            }
        }
        bench.helper = helper.ok();
        bench
    }

    fn measure(&mut self, args: &Args, dirs: &Dirs) -> Result<()> {
        self.warm_up()?;
        let rounds = args.runs.div_ceil(ROUND_RUNS);
        for round in 0..rounds {
            let runs = ROUND_RUNS.min(args.runs - round * ROUND_RUNS);
            eprintln!("round {}/{rounds}: {runs} timed runs of each", round + 1);
            self.run_rm_round(round, runs)?;
            self.session_round(dirs, runs)?;
        }
        self.start_servers()?;
        let bounds = bounds(args);
        self.warm_up_load(bounds)?;
        for round in 0..args.load_runs {
            eprintln!("load run {}/{}", round + 1, args.load_runs);
            self.load_round(round, bounds)?;
        }
        Ok(())
    }

    /// The probes: one untimed `run --rm` of every contender.
    fn warm_up(&mut self) -> Result<()> {
        for cli in &mut self.clis {
            for net in [Net::Default, Net::None] {
                guard::check()?;
                let tool = cli.name();
                if !self.times.live(Op::RunRm(net), tool) {
                    continue;
                }
                if let Err(reason) = cli.probe_on(net) {
                    let why = match (cli.flavor.name(), net) {
                        // The issue allows it: podman's bridge may not work
                        // in a namespace it was not set up in.
                        ("podman", Net::Default) => Unavailable::Skipped(format!(
                            "podman's bridge network does not work in the bench's network \
                             namespace: {reason}"
                        )),
                        _ => Unavailable::Failed(reason),
                    };
                    if net == Net::Default {
                        for target in TARGETS {
                            self.rates.stop(target, tool, why.clone());
                        }
                    }
                    self.times.stop(Op::RunRm(net), tool, why);
                }
            }
        }
        Ok(())
    }

    /// `runs` timed `run --rm` of every contender, the order turning with
    /// the round.
    fn run_rm_round(&mut self, round: u32, runs: u32) -> Result<()> {
        let contenders: Vec<(usize, Net)> = (0..self.clis.len())
            .flat_map(|i| [(i, Net::Default), (i, Net::None)])
            .collect();
        let count = contenders.len();
        for k in 0..count {
            let (i, net) = contenders[(k + round as usize) % count];
            let cli = &mut self.clis[i];
            let tool = cli.name();
            for _ in 0..runs {
                guard::check()?;
                if !self.times.live(Op::RunRm(net), tool) {
                    break;
                }
                let args = cli.run_args_on(net, &["--rm"], &["true"]);
                let outcome = cli.timed(&args);
                self.times.record(Op::RunRm(net), tool, outcome);
            }
        }
        Ok(())
    }

    /// One helper run: `runs` timed attaches and detaches of each way,
    /// after an untimed one that makes the bridge.
    fn session_round(&mut self, dirs: &Dirs, runs: u32) -> Result<()> {
        guard::check()?;
        let Some(helper) = &mut self.helper else {
            return Ok(());
        };
        if !self.times.live(Op::Attach(Way::Fresh), "muelle") {
            return Ok(());
        }
        let root = dirs.data.join("session");
        let run_root = dirs.run.join("session");
        std::thread::sleep(SETTLE);
        match helper.round(&root, &run_root, 1, runs) {
            Ok(round) => {
                self.firewall.get_or_insert(round.firewall);
                // Every round attaches one warm-up and `runs` timed
                // containers with a published port.
                self.published_left.0 += round.published_left.unwrap_or(0);
                self.published_left.1 += u64::from(runs) + 1;
                for (way, attach, detach) in round.ways {
                    for ms in attach {
                        self.times.record(Op::Attach(way), "muelle", Ok(ms));
                    }
                    for ms in detach {
                        self.times.record(Op::Detach(way), "muelle", Ok(ms));
                    }
                }
            }
            Err(reason) => {
                for way in WAYS {
                    for op in [Op::Attach(way), Op::Detach(way)] {
                        self.times
                            .stop(op, "muelle", Unavailable::Failed(reason.clone()));
                    }
                }
            }
        }
        Ok(())
    }

    /// One server per engine whose bridge works, answering on each of
    /// its targets; a target that does not answer is reported.
    fn start_servers(&mut self) -> Result<()> {
        for (i, cli) in self.clis.iter_mut().enumerate() {
            guard::check()?;
            let tool = cli.name();
            if !TARGETS.iter().any(|&t| self.rates.live(t, tool)) {
                continue;
            }
            // muelle 8080 and 8081, podman 8090 and 8091: all in the
            // bench's namespace, where nothing else listens.
            let base: u16 = 8080 + 10 * u16::try_from(i).unwrap_or(0);
            let loopback = format!("127.0.0.1:{base}:80");
            let any = format!("{}:80", base + 1);
            let args = cli.run_args_on(
                Net::Default,
                &["-d", "-p", &loopback, "-p", &any],
                &["sh", "-c", SERVE],
            );
            let started = cli.output(&args).and_then(|_| cli.last_id()).map(|id| {
                let address = container_address(cli, &id);
                (id, address)
            });
            let (id, address) = match started {
                Ok(started) => started,
                Err(reason) => {
                    for target in TARGETS {
                        self.rates.stop(
                            target,
                            tool,
                            Unavailable::Failed(format!("run -d httpd: {reason}")),
                        );
                    }
                    continue;
                }
            };
            let mut server = Server {
                cli: i,
                id,
                addresses: Vec::new(),
            };
            let direct = match address {
                Ok(address) => SocketAddr::V4(SocketAddrV4::new(address, 80)),
                Err(reason) => {
                    for target in TARGETS {
                        self.rates
                            .stop(target, tool, Unavailable::Failed(reason.clone()));
                    }
                    self.servers.push(server);
                    continue;
                }
            };
            if let Err(reason) = wait_for(direct, SERVER_START) {
                for target in TARGETS {
                    self.rates.stop(
                        target,
                        tool,
                        Unavailable::Failed(format!("httpd never answered on {direct}: {reason}")),
                    );
                }
                self.servers.push(server);
                continue;
            }
            server.addresses.push((Target::Direct, direct));
            server.addresses.push((
                Target::Loopback,
                SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, base)),
            ));
            if let Ok(host) = self.host_address {
                server.addresses.push((
                    Target::HostAddress,
                    SocketAddr::V4(SocketAddrV4::new(host, base + 1)),
                ));
            }
            self.servers.push(server);
        }
        Ok(())
    }

    /// One untimed load run on every live address: a target that fails
    /// here is reported and not loaded again.
    fn warm_up_load(&mut self, bounds: Bounds) -> Result<()> {
        let warm = Bounds {
            requests: WARM_REQUESTS,
            ..bounds
        };
        for server in &self.servers {
            let tool = self.clis[server.cli].name();
            for &(target, addr) in &server.addresses {
                guard::check()?;
                if !self.rates.live(target, tool) {
                    continue;
                }
                if let Err(reason) = load::run(addr, warm).rate() {
                    self.rates.stop(
                        target,
                        tool,
                        Unavailable::Failed(format!("{addr}: {reason}")),
                    );
                }
            }
        }
        Ok(())
    }

    /// One timed load run on every live address, the order turning with
    /// the round.
    fn load_round(&mut self, round: u32, bounds: Bounds) -> Result<()> {
        let order: Vec<(&'static str, Target, SocketAddr)> = self
            .servers
            .iter()
            .flat_map(|s| {
                let tool = self.clis[s.cli].name();
                s.addresses.iter().map(move |&(t, a)| (tool, t, a))
            })
            .collect();
        let count = order.len();
        for k in 0..count {
            guard::check()?;
            let (tool, target, addr) = order[(k + round as usize) % count];
            if !self.rates.live(target, tool) {
                continue;
            }
            let outcome = load::run(addr, bounds).rate();
            self.rates.record(target, tool, outcome);
        }
        Ok(())
    }

    /// The servers go; the problems met on the way.
    fn remove_servers(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for server in std::mem::take(&mut self.servers) {
            let cli = &mut self.clis[server.cli];
            if let Err(e) = cli.output(&["rm", "-f", &server.id]) {
                problems.push(format!("{}: cannot remove {}: {e}", cli.name(), server.id));
            }
        }
        problems
    }
}

/// The container's address on its (first) network, from `inspect`.
fn container_address(cli: &mut Cli, id: &str) -> Result<Ipv4Addr, String> {
    let text = cli.output(&["inspect", "--format", "{{.NetworkSettings.IPAddress}}", id])?;
    text.trim()
        .parse()
        .map_err(|_| format!("inspect gave no IPv4 address for {id}: {:?}", text.trim()))
}

/// Asks `addr` until it answers as the server should, for up to `limit`.
fn wait_for(addr: SocketAddr, limit: Duration) -> Result<(), String> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        match load::probe(addr) {
            Ok(()) => return Ok(()),
            Err(e) if std::time::Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
