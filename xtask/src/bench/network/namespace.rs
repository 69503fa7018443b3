//! The bench's own network and mount namespaces. [`enter`] moves the
//! bench into new ones before it starts anything, so every process it
//! starts (muelle, its monitors and containers, podman, the helper) shares
//! them: bridges, veths, nftables and iptables rules, published ports and
//! the namespaces' bind mounts never reach the host's, and they go with
//! the last process of the bench. The mount namespace is private (no
//! propagation either way), so a mount the clean-up misses goes with it
//! too.
//!
//! `/sys` stays the host's (remounting it would drop the cgroup mounts
//! below it that the runtimes need): what the bench's tools read of the
//! network there describes the host, which none of them relies on (they
//! use netlink and `/proc/sys/net`, which follow the reader's namespace).
//!
//! [`leftovers`] says what the engines' clean-up left in the namespace
//! (links, muelle's published-port rules, namespace files) before it goes.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The address [`add_host_address`] gives the bench's namespace
/// (TEST-NET-1: never routed anywhere).
pub const HOST_ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// Moves the calling thread (the bench's only one) into a new network
/// namespace, with `lo` up, and a new private mount namespace.
pub fn enter() -> Result<()> {
    // Namespaces are a thread's: another thread would stay outside.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(threads) = status.lines().find_map(|l| l.strip_prefix("Threads:"))
        && threads.trim() != "1"
    {
        bail!(
            "the bench has {} threads: it must enter its namespaces alone",
            threads.trim()
        );
    }
    // SAFETY: unshare takes flags and touches no memory of ours.
    if unsafe { libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWNS) } != 0 {
        return Err(io::Error::last_os_error())
            .context("cannot create the bench's network and mount namespaces");
    }
    // SAFETY: static NUL-terminated strings; null type and data are valid
    // for a propagation change.
    let private = unsafe {
        libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if private != 0 {
        return Err(io::Error::last_os_error())
            .context("cannot make the bench's mount namespace private");
    }
    set_up(c"lo").context("cannot bring lo up in the bench's network namespace")
}

/// Sets an interface up with the classic ioctl (no netlink needed here).
fn set_up(name: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: socket takes plain integers.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket and nothing else owns it.
    let socket = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
    // SAFETY: ifreq is plain data for which all-zero bytes are valid.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.to_bytes();
    if bytes.len() >= request.ifr_name.len() {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    for (slot, &byte) in request.ifr_name.iter_mut().zip(bytes) {
        *slot = byte as libc::c_char;
    }
    // SAFETY: a valid socket and a valid ifreq for both calls.
    unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(io::Error::last_os_error());
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(fd, libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Gives the bench's namespace a non-loopback address of its own,
/// [`HOST_ADDRESS`] (with `ip`, on `lo`: every local address is reached
/// through it, and a dummy link needs a module the kernel may lack), as a
/// host has on its network card; the reason when it cannot.
pub fn add_host_address() -> Result<Ipv4Addr> {
    let Some(ip) = crate::util::find_program("ip") else {
        bail!("no `ip` (apt-get install iproute2)");
    };
    let address = format!("{HOST_ADDRESS}/32");
    let args = ["addr", "add", &address, "dev", "lo"];
    let output = Command::new(&ip)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run ip")?;
    if !output.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(HOST_ADDRESS)
}

/// What the engines left in the bench's namespace after their clean-up:
/// links other than loopback and the bridges, muelle's published-port
/// rules, files in muelle's namespace folders `netns_dirs`.
pub fn leftovers(netns_dirs: &[PathBuf]) -> Vec<String> {
    let mut problems = published_rules();
    // /proc/net follows the reader's network namespace (/sys would not).
    match std::fs::read_to_string("/proc/net/dev") {
        Ok(text) => {
            let kept = ["lo", "muelle0", "podman0"];
            let left: Vec<&str> = text
                .lines()
                .skip(2)
                .filter_map(|l| l.split(':').next().map(str::trim))
                .filter(|name| !kept.contains(name))
                .collect();
            if !left.is_empty() {
                problems.push(format!(
                    "links left after the clean-up: {}",
                    left.join(", ")
                ));
            }
        }
        Err(e) => problems.push(format!("cannot read /proc/net/dev: {e}")),
    }
    for netns in netns_dirs {
        let Ok(entries) = std::fs::read_dir(netns) else {
            continue;
        };
        let left: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if !left.is_empty() {
            problems.push(format!(
                "muelle left {} network namespace files in {}: {}",
                left.len(),
                netns.display(),
                left.join(", ")
            ));
        }
    }
    problems
}

/// The published ports left in muelle's nftables maps (`ports`,
/// `addr_ports`) of the bench's namespace: none once every container is
/// gone. Nothing to say without nft or muelle's table.
fn published_rules() -> Vec<String> {
    let Some(nft) = crate::util::find_program("nft") else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    for map in ["ports", "addr_ports"] {
        let Ok(output) = Command::new(&nft)
            .args(["list", "map", "ip", "muelle", map])
            .stdin(Stdio::null())
            .output()
        else {
            continue;
        };
        let text = String::from_utf8_lossy(&output.stdout);
        if let Some(elements) = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("elements"))
        {
            problems.push(format!(
                "muelle's published ports outlived their containers (nft map ip muelle {map}: {elements})"
            ));
        }
    }
    problems
}
