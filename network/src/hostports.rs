//! Host ports held for published container ports. Traffic to a published
//! port is forwarded by the firewall (DNAT) and never reaches a socket on
//! the host, but muelle still binds each host port, as docker's proxy
//! and podman's conmon do: a port that a host program (or another
//! container) has is refused at once with a clear error, and no program
//! can take it while the container runs. The sockets go to the
//! container's monitor, which holds them until the container exits.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;

use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, socket};

use crate::ports::{HostPort, Protocol, Publish};
use crate::record::PortBinding;

#[derive(Debug, thiserror::Error)]
pub enum HostPortError {
    #[error("Bind for {address} failed: port is already allocated")]
    Allocated { address: String },
    #[error(
        "Bind for {address} failed: no free port in {first}-{last}: free one, or choose another range"
    )]
    RangeFull {
        address: String,
        first: u16,
        last: u16,
    },
    #[error("Bind for {address} failed: {source}")]
    Bind { address: String, source: nix::Error },
}

/// One held host port.
#[derive(Debug)]
pub struct Held {
    pub binding: PortBinding,
    pub socket: OwnedFd,
}

/// Binds a host port for each of `publish`. All or nothing: on error,
/// the sockets bound so far are closed (the ports free again).
pub fn reserve(publish: &[Publish]) -> Result<Vec<Held>, HostPortError> {
    publish.iter().map(reserve_one).collect()
}

fn reserve_one(p: &Publish) -> Result<Held, HostPortError> {
    let ip = p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let (socket, host_port) = match p.host_port {
        HostPort::Exact(port) => (bind_port(ip, port, p.protocol)?, port),
        HostPort::Any => {
            let socket = bind_port(ip, 0, p.protocol)?;
            let port = bound_port(&socket, ip, p.protocol)?;
            (socket, port)
        }
        HostPort::Within(first, last) => (first..=last)
            .find_map(|port| match bind_port(ip, port, p.protocol) {
                Ok(socket) => Some(Ok((socket, port))),
                Err(HostPortError::Allocated { .. }) => None,
                Err(e) => Some(Err(e)),
            })
            .unwrap_or_else(|| {
                Err(HostPortError::RangeFull {
                    address: ip.to_string(),
                    first,
                    last,
                })
            })?,
    };
    Ok(Held {
        binding: PortBinding {
            protocol: p.protocol,
            host_ip: p.host_ip,
            host_port,
            container_port: p.container_port,
        },
        socket,
    })
}

/// A socket bound to `ip:port`, without SO_REUSEADDR: no other socket
/// binds the port while ours is there, and a port a program listens on
/// is refused. TCP ones do not listen: a connection that the firewall
/// did not forward is refused at once, not left waiting in a queue no
/// one reads. (A port whose last connections are in TIME_WAIT is
/// refused too, for up to a minute.)
fn bind_port(ip: Ipv4Addr, port: u16, protocol: Protocol) -> Result<OwnedFd, HostPortError> {
    let address = SocketAddrV4::new(ip, port);
    let fail = |source: nix::Error| match source {
        nix::Error::EADDRINUSE => HostPortError::Allocated {
            address: address.to_string(),
        },
        source => HostPortError::Bind {
            address: address.to_string(),
            source,
        },
    };
    let kind = match protocol {
        Protocol::Tcp => SockType::Stream,
        Protocol::Udp => SockType::Datagram,
    };
    let socket = socket(AddressFamily::Inet, kind, SockFlag::SOCK_CLOEXEC, None).map_err(fail)?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&socket),
        &SockaddrIn::from(address),
    )
    .map_err(fail)?;
    Ok(socket)
}

fn bound_port(socket: &OwnedFd, ip: Ipv4Addr, protocol: Protocol) -> Result<u16, HostPortError> {
    let fail = |source| HostPortError::Bind {
        address: format!("{ip}:0/{protocol}"),
        source,
    };
    let address: SockaddrIn = getsockname(std::os::fd::AsRawFd::as_raw_fd(socket)).map_err(fail)?;
    Ok(address.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::parse_publish;

    #[test]
    fn a_taken_port_is_refused_with_dockers_words() {
        let held = reserve(&parse_publish("127.0.0.1::80").expect("spec")).expect("free port");
        assert_eq!(held.len(), 1);
        let port = held[0].binding.host_port;
        assert_ne!(port, 0);
        // The same port again, for TCP: taken.
        let again = parse_publish(&format!("127.0.0.1:{port}:80")).expect("spec");
        let err = reserve(&again).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("Bind for 127.0.0.1:{port} failed: port is already allocated")
        );
        // A host program can't take it either.
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_err());
        drop(held);
        // Free again once the holder is gone.
        let back = reserve(&again).expect("free again");
        assert_eq!(back[0].binding.host_port, port);
    }

    #[test]
    fn a_range_takes_its_first_free_port_and_all_or_nothing() {
        let first = reserve(&parse_publish("127.0.0.1::80").expect("spec")).expect("port");
        let port = first[0].binding.host_port;
        if port == u16::MAX {
            return;
        }
        let spec = format!("127.0.0.1:{}-{}:80", port, port + 1);
        match reserve(&parse_publish(&spec).expect("spec")) {
            Ok(held) => assert_eq!(held[0].binding.host_port, port + 1),
            // Someone else has port + 1: the range is full.
            Err(e) => assert!(e.to_string().contains("no free port"), "{e}"),
        }
        // UDP and TCP of one port are separate.
        let udp = format!("127.0.0.1:{port}:53/udp");
        let held = reserve(&parse_publish(&udp).expect("spec")).expect("udp");
        assert_eq!(held[0].binding.protocol, Protocol::Udp);
    }
}
