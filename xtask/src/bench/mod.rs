//! `cargo xtask bench <what>`: performance measurements of muelle against
//! its rivals. One module per thing measured: `runtime`, `storage`,
//! `image`, `engine`, `network`; `common`, `exec` and `stats` are shared
//! (and `network` reuses `engine`'s instances, folders and guard).

mod common;
mod engine;
mod exec;
mod image;
mod network;
mod runtime;
mod stats;
mod storage;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum Bench {
    /// Lifecycle (create+start+wait+delete) of /bin/true: muelle-runtime vs runc and crun
    Runtime(runtime::Args),
    /// Whole `volume create|ls|inspect|rm` commands: muelle vs podman
    Storage(storage::Args),
    /// Image load (muelle vs podman vs skopeo+umoci), layer unpack vs tar -x, rootfs setup/teardown
    Image(image::Args),
    /// run --rm, run -d/stop/rm, exec, ps -a with 1000 containers and the monitor's memory: muelle vs podman, crun, runc, docker
    Engine(engine::Args),
    /// run --rm on the default network vs --network none, network attach/detach, requests/s through a published port vs the container's address: muelle vs podman
    Network(network::Args),
}

pub fn run(what: Bench) -> Result<()> {
    match what {
        Bench::Runtime(args) => runtime::run(&args),
        Bench::Storage(args) => storage::run(&args),
        Bench::Image(args) => image::run(&args),
        Bench::Engine(args) => engine::run(&args),
        Bench::Network(args) => network::run(&args),
    }
}

/// The hidden `bench-child` command: one measuring job, JSON in and out.
pub fn run_child() -> Result<()> {
    runtime::job::run_child()
}
