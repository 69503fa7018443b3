//! The resolvers of user-defined networks: one `muelle-dns` process per
//! network, on the gateway's address, port 53, answering the names in
//! `RUNROOT/networks/NAME/names` (written here from the network's
//! endpoints whenever a container joins or leaves). It starts with the
//! network's first container and stops when the network is removed (or
//! its names file goes).
//!
//! A container on several resolving networks asks one of them (the first,
//! in its resolv.conf) for the names of all: each network's names file
//! also holds, scoped to such a container's address on that network, the
//! names of its other resolving networks. So a change of a network's
//! endpoints changes the files of the networks sharing a container with
//! it ([`neighbours`]).

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use storage::store::Store;

use crate::dns;
use crate::error::NetworkError;
use crate::networks;
use crate::record::{Endpoint, Network};

/// The resolver's binary, unless `MUELLE_DNS_BINARY` names another.
pub const BINARY: &str = "muelle-dns";
pub const BINARY_ENV: &str = "MUELLE_DNS_BINARY";

fn dir(run_root: &Path, network: &Network) -> PathBuf {
    run_root.join("networks").join(&network.name)
}

/// Writes the network's names from its endpoints, and starts its resolver
/// unless it runs.
pub fn refresh(run_root: &Path, store: &Store, network: &Network) -> Result<(), NetworkError> {
    let dir = dir(run_root, network);
    let fail = |what: &str, e: std::io::Error| {
        NetworkError::Host(format!("network {}: {what}: {e}", network.name))
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail("creating its run folder", e))?;
    let all = store.table::<Endpoint>()?.list()?;
    let resolving = resolving(store)?;
    let own: Vec<&Endpoint> = all.iter().filter(|e| e.network == network.name).collect();
    let entries: Vec<(std::net::Ipv4Addr, Vec<String>)> =
        own.iter().map(|e| (e.address, e.names.clone())).collect();
    // For each container here, the names of its other resolving networks,
    // told to its address here.
    let mut scoped = Vec::new();
    for asker in &own {
        let elsewhere = all.iter().filter(|e| {
            e.container == asker.container
                && e.network != network.name
                && resolving.contains(&e.network)
        });
        for other in elsewhere {
            scoped.extend(
                all.iter()
                    .filter(|e| e.network == other.network)
                    .map(|e| dns::Scoped {
                        asker: asker.address,
                        address: e.address,
                        names: e.names.clone(),
                    }),
            );
        }
    }
    dns::write_names(&dir.join("names"), &entries, &scoped)
        .map_err(|e| fail("writing its names", e))?;
    if running(&dir).is_none() {
        start(&binary(), &dir, network)?;
    }
    Ok(())
}

/// The resolving networks, not among `networks`, that share a container
/// with one of them: their names files tell that container the names of
/// `networks`, so they change with them.
pub fn neighbours(store: &Store, networks: &[&str]) -> Result<Vec<Network>, NetworkError> {
    let all = store.table::<Endpoint>()?.list()?;
    let containers: BTreeSet<&str> = all
        .iter()
        .filter(|e| networks.contains(&e.network.as_str()))
        .map(|e| e.container.as_str())
        .collect();
    let names: BTreeSet<&str> = all
        .iter()
        .filter(|e| containers.contains(e.container.as_str()))
        .map(|e| e.network.as_str())
        .filter(|n| !networks.contains(n))
        .collect();
    Ok(networks::list(store)?
        .into_iter()
        .filter(|n| n.dns && names.contains(n.name.as_str()))
        .collect())
}

/// The names of the networks that resolve names.
fn resolving(store: &Store) -> Result<BTreeSet<String>, NetworkError> {
    Ok(networks::list(store)?
        .into_iter()
        .filter(|n| n.dns)
        .map(|n| n.name)
        .collect())
}

/// Stops the network's resolver and removes its run folder.
pub fn stop(run_root: &Path, network: &Network) {
    stop_named(run_root, &network.name);
}

/// [`stop`] by the network's name (its record may be gone).
pub fn stop_named(run_root: &Path, name: &str) {
    let dir = run_root.join("networks").join(name);
    if let Some(pid) = running(&dir) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!("removing {}: {e}", dir.display());
        }
        _ => {}
    }
}

/// The resolver's pid, when the process its pid file names still runs.
fn running(dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(dir.join("resolver.pid")).ok()?;
    let (pid, start) = text.trim().split_once(' ')?;
    let (pid, start) = (pid.parse::<i32>().ok()?, start.parse::<u64>().ok()?);
    (start_time(pid) == Some(start)).then_some(pid)
}

/// A process's start time (field 22 of /proc/PID/stat).
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    after_name.split(' ').nth(19)?.parse().ok()
}

fn start(binary: &Path, dir: &Path, network: &Network) -> Result<(), NetworkError> {
    let fail = |e: String| {
        NetworkError::Host(format!(
            "starting the resolver of network {}: {e}",
            network.name
        ))
    };
    let (mut ready_r, ready_w) = std::io::pipe().map_err(|e| fail(e.to_string()))?;
    let log = std::fs::File::create(dir.join("resolver.log")).map_err(|e| fail(e.to_string()))?;
    let ready_fd = std::os::fd::AsRawFd::as_raw_fd(&ready_w);
    let mut command = Command::new(binary);
    command
        .arg("--listen")
        .arg(format!("{}:53", network.gateway))
        .arg("--names")
        .arg(dir.join("names"))
        .arg("--allow")
        .arg(network.subnet.to_string())
        .arg("--ready-fd")
        .arg("3")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let moved = if ready_fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(ready_fd, 3)
            };
            if libc::setsid() < 0 || moved < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Nothing the command inherited without close-on-exec (its
            // caller's pipes) may stay open for the resolver's life. Marked,
            // not closed: std reports a failed exec on a pipe of its own up
            // there, and would abort the child without it.
            let marked = libc::syscall(
                libc::SYS_close_range,
                4u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if marked < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command
        .spawn()
        .map_err(|e| fail(format!("{}: {e}", binary.display())))?;
    drop(ready_w);
    // The resolver writes its port and a newline once it listens, then
    // closes its end; nothing at all means it failed (its reason is in
    // the log).
    let mut line = String::new();
    ready_r
        .read_to_string(&mut line)
        .map_err(|e| fail(e.to_string()))?;
    if line.is_empty() {
        let log = std::fs::read_to_string(dir.join("resolver.log")).unwrap_or_default();
        return Err(fail(log.lines().last().unwrap_or("it exited").to_owned()));
    }
    let pid = child.id() as i32;
    let start = start_time(pid).ok_or_else(|| fail("it exited".into()))?;
    std::fs::write(dir.join("resolver.pid"), format!("{pid} {start}\n"))
        .map_err(|e| fail(e.to_string()))?;
    // Not our child to wait for: it lives on after this command.
    std::mem::forget(child);
    Ok(())
}

/// The resolver binary: `MUELLE_DNS_BINARY`, else beside this program (or
/// one folder up, for test binaries), else from PATH.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os(BINARY_ENV) {
        return PathBuf::from(path);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        for candidate in [dir.join(BINARY), dir.join("..").join(BINARY)] {
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from(BINARY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_is_named_in_the_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let network = Network {
            id: "0".repeat(64),
            name: "n".into(),
            driver: "bridge".into(),
            bridge: "muelle-00000000".into(),
            subnet: "10.200.0.0/24".parse().expect("subnet"),
            gateway: std::net::Ipv4Addr::new(10, 200, 0, 1),
            internal: false,
            dns: true,
            labels: Default::default(),
            created: String::new(),
        };
        let missing = dir.path().join("no-muelle-dns");
        let err = start(&missing, dir.path(), &network)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no-muelle-dns: No such file or directory"),
            "{err}"
        );
    }
}
