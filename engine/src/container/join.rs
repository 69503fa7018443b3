//! A starting container's network: its sandbox on muelle's networks
//! (`network::sandbox`), or another container's namespace and files
//! (`--network container:NAME`); nothing for `none` and `host`.

use std::os::fd::{IntoRawFd, OwnedFd};
use std::path::PathBuf;

use network::ports::{HostPort, Publish, parse_exposed, parse_publish};
use network::sandbox::Join;
use storage::store::Store;

use super::files::NetworkFacts;
use super::record::{Container, Status};
use super::{Engine, EngineError, Result};
use crate::config::NetworkMode;
use crate::spec::ExtraBind;

/// What the network gives the rest of a start.
#[derive(Default)]
pub(super) struct Joined {
    /// The network namespace to join; `None`: a new one (or the host's).
    pub netns: Option<PathBuf>,
    pub facts: NetworkFacts,
    /// Files of another container's, bound instead of the container's
    /// own (`container:NAME`).
    pub shared_files: Option<Vec<ExtraBind>>,
    /// The host name of the container whose network this one shares.
    pub hostname: Option<String>,
    /// Host ports for the monitor to hold.
    pub held: Vec<OwnedFd>,
    /// A sandbox was set up (and must be taken down on failure).
    pub sandbox: bool,
}

impl Joined {
    /// The held ports' descriptors, now owned by their numbers (the
    /// monitor takes them over; ours close when the job is sent).
    pub fn hold_fds(&mut self) -> Vec<i32> {
        std::mem::take(&mut self.held)
            .into_iter()
            .map(IntoRawFd::into_raw_fd)
            .collect()
    }
}

impl Engine {
    pub(super) fn join_networks(
        &self,
        store: &Store,
        container: &Container,
        exposed: &[String],
    ) -> Result<Joined> {
        let config = &container.config;
        match &config.network {
            NetworkMode::None | NetworkMode::Host => Ok(Joined::default()),
            NetworkMode::Container(other) => self.share_network(store, container, other),
            NetworkMode::Bridge | NetworkMode::Named(_) if config.networks.is_empty() => {
                Ok(Joined::default())
            }
            NetworkMode::Bridge | NetworkMode::Named(_) => {
                let publish = publications(&config.publish, config.publish_all, exposed)?;
                let is_stale = |id: &str| self.no_longer_runs(store, id);
                let sandbox = self.networking.setup(
                    store,
                    &Join {
                        container: &container.id,
                        name: &container.name,
                        endpoints: &config.networks,
                        publish: &publish,
                    },
                    &is_stale,
                )?;
                let first = sandbox.endpoints.first();
                let resolver = self.resolver_of(store, &config.networks);
                Ok(Joined {
                    netns: Some(sandbox.netns),
                    facts: NetworkFacts {
                        address: first.map(|e| e.address),
                        resolver,
                    },
                    shared_files: None,
                    hostname: None,
                    held: sandbox.held,
                    sandbox: true,
                })
            }
        }
    }

    /// `--network container:OTHER`: OTHER's namespace (its sandbox's, or
    /// its init's), host name and files. OTHER must run, as in docker.
    fn share_network(&self, store: &Store, container: &Container, other: &str) -> Result<Joined> {
        let other = self.find(store, other)?;
        if other.id == container.id {
            return Err(EngineError::ShareOwnNetwork);
        }
        if other.state.status != Status::Running && other.state.status != Status::Paused {
            return Err(EngineError::ShareStoppedNetwork(other.name.clone()));
        }
        let sandbox = self.networking.netns_path(&other.id);
        let netns = if sandbox.exists() {
            sandbox
        } else {
            PathBuf::from(format!("/proc/{}/ns/net", other.state.pid))
        };
        let theirs = self.paths(&other.id);
        let files = [
            (theirs.hostname(), "/etc/hostname"),
            (theirs.hosts(), "/etc/hosts"),
            (theirs.resolv_conf(), "/etc/resolv.conf"),
        ]
        .into_iter()
        .map(|(source, target)| ExtraBind {
            source,
            target: target.into(),
            read_only: false,
        })
        .collect();
        let hostname = std::fs::read_to_string(theirs.hostname())
            .ok()
            .map(|h| h.trim().to_owned());
        Ok(Joined {
            netns: Some(netns),
            shared_files: Some(files),
            hostname,
            ..Joined::default()
        })
    }

    /// Whether the container `id` holds nothing on the network any more:
    /// its record is gone, or it neither runs nor has a monitor that
    /// started it (a start whose command was killed is still adopted).
    pub(super) fn no_longer_runs(&self, store: &Store, id: &str) -> bool {
        match super::lookup(store, id) {
            Ok(c) => !c.state.status.is_live() && !self.paths(id).monitor_file().exists(),
            Err(_) => true,
        }
    }
}

/// The container ports to publish: `-p`'s, and with `-P` each port the
/// image exposes on a free host port.
fn publications(specs: &[String], all: bool, exposed: &[String]) -> Result<Vec<Publish>> {
    let mut publish = Vec::new();
    for spec in specs {
        publish.extend(parse_publish(spec).map_err(network::NetworkError::from)?);
    }
    if all {
        for spec in exposed {
            for (port, protocol) in parse_exposed(spec).map_err(network::NetworkError::from)? {
                if !publish
                    .iter()
                    .any(|p| p.container_port == port && p.protocol == protocol)
                {
                    publish.push(Publish {
                        host_ip: None,
                        host_port: HostPort::Any,
                        container_port: port,
                        protocol,
                    });
                }
            }
        }
    }
    Ok(publish)
}
