//! `network-session ROOT RUNROOT WARMUP RUNS PAUSE_MS`: a container's
//! network attached and detached through the network crate, timed inside
//! this process. A helper of `cargo xtask bench network` (built with
//! `--features network-session`): the only part of the bench that links
//! the product's network code, which a whole command cannot time apart
//! from the rest of a `run`.
//!
//! It first moves into a network namespace of its own (with `lo` up), so
//! its bridge, veths and firewall table are its own and go with it. In a
//! metadata store at ROOT, on the default network (`muelle`, bridge
//! `muelle0`), each of WARMUP + RUNS rounds attaches one container
//! (`Networking::setup`: its namespace bound under RUNROOT/netns, the veth
//! pair, address and route, the endpoint's record) and detaches it again
//! (`Networking::teardown`), once in each way:
//!
//! - `fresh`: a new `Networking` for each container, as each `muelle`
//!   command has (the firewall backend detected again, by running `nft`);
//! - `reused`: one `Networking` for every container, its firewall known;
//! - `published`: a new `Networking`, and `-p 127.0.0.1::80` (a host port
//!   held, DNAT rules added and removed again).
//!
//! The first round also makes the bridge and the network's rules, which
//! is why warm-up rounds go untimed. After each detach it waits PAUSE_MS,
//! as long as a short container would run, so that the kernel frees the
//! namespace before the next one is made (that work slows down namespaces
//! made meanwhile).
//!
//! Prints one JSON line: `firewall` (the backend), per way the
//! `attach_ms` and `detach_ms` of the timed rounds, and `published_left`:
//! the published ports still in muelle's nftables map at the end (none
//! when every detach removed its container's).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use network::netlink::{LOOPBACK_INDEX, Netlink};
use network::ports::{Publish, parse_publish};
use network::sandbox::{Join, Networking};
use network::{DEFAULT_NETWORK, EndpointConfig};
use storage::store::Store;

/// The ways a container is attached, in the order of each round.
const WAYS: [&str; 3] = ["fresh", "reused", "published"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, run_root, warmup, runs, pause] = args.as_slice() else {
        eprintln!("usage: network-session ROOT RUNROOT WARMUP RUNS PAUSE_MS");
        return ExitCode::from(2);
    };
    let counts = (warmup.parse::<u32>(), runs.parse::<u32>(), pause.parse());
    let (Ok(warmup), Ok(runs), Ok(pause)) = counts else {
        eprintln!("network-session: WARMUP, RUNS and PAUSE_MS are numbers");
        return ExitCode::from(2);
    };
    let pause = Duration::from_millis(pause);
    match session(Path::new(root), Path::new(run_root), warmup, runs, pause) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("network-session: {e}");
            ExitCode::FAILURE
        }
    }
}

fn session(
    root: &Path,
    run_root: &Path,
    warmup: u32,
    runs: u32,
    pause: Duration,
) -> Result<String, String> {
    private_network()?;
    let store = Store::open(root).map_err(|e| format!("opening the store: {e}"))?;
    let reused = Networking::new(run_root);
    let endpoints = [EndpointConfig {
        network: DEFAULT_NETWORK.to_owned(),
        ip: None,
        aliases: Vec::new(),
        mac: None,
    }];
    let published = parse_publish("127.0.0.1::80").map_err(|e| e.to_string())?;
    let mut attach: [Vec<f64>; 3] = Default::default();
    let mut detach: [Vec<f64>; 3] = Default::default();
    for round in 0..warmup + runs {
        for (way, name) in WAYS.iter().enumerate() {
            let fresh;
            let (networking, publish): (&Networking, &[Publish]) = match *name {
                "reused" => (&reused, &[]),
                "published" => {
                    fresh = Networking::new(run_root);
                    (&fresh, &published)
                }
                _ => {
                    fresh = Networking::new(run_root);
                    (&fresh, &[])
                }
            };
            let (on, off) = attach_detach(&store, networking, &endpoints, publish)
                .map_err(|e| format!("{name}, round {}: {e}", round + 1))?;
            if round >= warmup {
                attach[way].push(on);
                detach[way].push(off);
            }
            std::thread::sleep(pause);
        }
    }
    let backend = reused
        .firewall()
        .map(|f| format!("{:?}", f.backend()).to_lowercase())
        .unwrap_or_else(|e| format!("none ({e})"));
    let ways: serde_json::Map<String, serde_json::Value> = WAYS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let value = serde_json::json!({ "attach_ms": attach[i], "detach_ms": detach[i] });
            ((*name).to_owned(), value)
        })
        .collect();
    Ok(serde_json::json!({
        "firewall": backend,
        "ways": ways,
        "published_left": published_left(),
    })
    .to_string())
}

/// How many published ports are still in muelle's nftables map of
/// 127.0.0.1 ports after every container was detached (none, when their
/// teardown removed them); `None` when nft cannot tell.
fn published_left() -> Option<usize> {
    let output = std::process::Command::new("nft")
        .args(["-j", "list", "map", "ip", "muelle", "addr_ports"])
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    value["nftables"]
        .as_array()?
        .iter()
        .find_map(|item| item.get("map"))
        .map(|map| map["elem"].as_array().map_or(0, Vec::len))
}

/// One container attached and detached: the milliseconds of each.
fn attach_detach(
    store: &Store,
    networking: &Networking,
    endpoints: &[EndpointConfig],
    publish: &[Publish],
) -> Result<(f64, f64), String> {
    let id = storage::random::hex_id();
    let join = Join {
        container: &id,
        name: "bench",
        endpoints,
        publish,
    };
    let started = Instant::now();
    let sandbox = networking
        .setup(store, &join, &|_| false)
        .map_err(|e| format!("attaching: {e}"))?;
    let attached = started.elapsed();
    // The monitor would hold these until the container exits.
    drop(sandbox);
    let started = Instant::now();
    networking.teardown(store, &id);
    let detached = started.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok((ms(attached), ms(detached)))
}

/// This process in a network namespace of its own, `lo` up. The process
/// is single-threaded here, so the whole of it moves.
fn private_network() -> Result<(), String> {
    // SAFETY: unshare takes flags and touches no memory of ours.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("creating a network namespace: {e}"));
    }
    let mut nl = Netlink::open().map_err(|e| e.to_string())?;
    let mut batch = nl.batch();
    batch.set_up(LOOPBACK_INDEX);
    batch.run().map_err(|e| format!("setting lo up: {e}"))
}
