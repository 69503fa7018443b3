//! Published ports: docker's `-p` syntax, parsed into one [`Publish`] per
//! container port.
//!
//! `-p [IP:][HOST:]CONTAINER[/PROTO]`, where HOST and CONTAINER may be
//! ranges (`8000-8009:80-89`, as many host ports as container ports, or a
//! host range and one container port: one free port of the range). An
//! empty or absent HOST is a free port the kernel picks. IPv6 host
//! addresses are refused: muelle's networks are IPv4 only.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which host port a container port is published on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPort {
    /// A free port the kernel picks.
    Any,
    Exact(u16),
    /// The first free port of the range.
    Within(u16, u16),
}

/// One container port to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    /// `None`: every host address (docker's 0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: HostPort,
    pub container_port: u16,
    pub protocol: Protocol,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortError {
    #[error("invalid published port {spec:?}: {reason}")]
    Invalid { spec: String, reason: String },
    #[error("invalid exposed port {spec:?}: use PORT[/PROTO] or a range PORT-PORT[/PROTO]")]
    InvalidExposed { spec: String },
}

/// Parses one `-p` value.
pub fn parse_publish(spec: &str) -> Result<Vec<Publish>, PortError> {
    let bad = |reason: &str| PortError::Invalid {
        spec: spec.to_owned(),
        reason: reason.to_owned(),
    };
    let (rest, protocol) = split_protocol(spec).map_err(|r| bad(&r))?;
    if rest.starts_with('[') || rest.matches(':').count() > 2 {
        return Err(bad(
            "IPv6 host addresses are not supported: muelle's networks are IPv4 only",
        ));
    }
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => (None, "", *c),
        [h, c] => (None, *h, *c),
        [ip, h, c] => (Some(*ip), *h, *c),
        _ => return Err(bad("use [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]")),
    };
    let host_ip = match ip {
        None | Some("") | Some("0.0.0.0") => None,
        Some(ip) => Some(
            ip.parse::<Ipv4Addr>()
                .map_err(|_| bad(&format!("{ip:?} is not an IPv4 address")))?,
        ),
    };
    let container = parse_range(container).map_err(|r| bad(&format!("container port: {r}")))?;
    let count = container.1 - container.0 + 1;
    let host_ports: Vec<HostPort> = if host.is_empty() {
        vec![HostPort::Any; usize::from(count)]
    } else {
        let host = parse_range(host).map_err(|r| bad(&format!("host port: {r}")))?;
        let host_count = host.1 - host.0 + 1;
        if host_count == count {
            (host.0..=host.1).map(HostPort::Exact).collect()
        } else if count == 1 {
            vec![HostPort::Within(host.0, host.1)]
        } else {
            return Err(bad(
                "the host port range must be as long as the container port range",
            ));
        }
    };
    Ok((container.0..=container.1)
        .zip(host_ports)
        .map(|(container_port, host_port)| Publish {
            host_ip,
            host_port,
            container_port,
            protocol,
        })
        .collect())
}

/// Parses an image's `ExposedPorts` key or an `--expose` value: the
/// container ports `-P` publishes.
pub fn parse_exposed(spec: &str) -> Result<Vec<(u16, Protocol)>, PortError> {
    let bad = || PortError::InvalidExposed {
        spec: spec.to_owned(),
    };
    let (ports, protocol) = split_protocol(spec).map_err(|_| bad())?;
    let (first, last) = parse_range(ports).map_err(|_| bad())?;
    Ok((first..=last).map(|p| (p, protocol)).collect())
}

fn split_protocol(spec: &str) -> Result<(&str, Protocol), String> {
    match spec.rsplit_once('/') {
        None => Ok((spec, Protocol::Tcp)),
        Some((rest, "tcp")) => Ok((rest, Protocol::Tcp)),
        Some((rest, "udp")) => Ok((rest, Protocol::Udp)),
        Some((_, "sctp")) => Err("sctp is not supported: use tcp or udp".into()),
        Some((_, other)) => Err(format!("unknown protocol {other:?}: use tcp or udp")),
    }
}

/// `PORT` or `FIRST-LAST`, ports 1 to 65535.
fn parse_range(text: &str) -> Result<(u16, u16), String> {
    let port = |p: &str| match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{p:?} is not a port number (1-65535)")),
        Ok(n) => Ok(n),
    };
    match text.split_once('-') {
        None => port(text).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if a > b {
                return Err(format!("range {text:?} ends before it starts"));
            }
            Ok((a, b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> Publish {
        let mut all = parse_publish(spec).expect(spec);
        assert_eq!(all.len(), 1, "{spec}");
        all.remove(0)
    }

    #[test]
    fn docker_forms() {
        assert_eq!(
            one("80"),
            Publish {
                host_ip: None,
                host_port: HostPort::Any,
                container_port: 80,
                protocol: Protocol::Tcp
            }
        );
        assert_eq!(one("8080:80").host_port, HostPort::Exact(8080));
        let p = one("127.0.0.1:8080:80/udp");
        assert_eq!(p.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(p.protocol, Protocol::Udp);
        assert_eq!(one("127.0.0.1::80").host_port, HostPort::Any);
        assert_eq!(one("0.0.0.0:81:80").host_ip, None);
        assert_eq!(one("8000-8009:80").host_port, HostPort::Within(8000, 8009));
        let range = parse_publish("8000-8002:80-82").expect("range");
        assert_eq!(
            range
                .iter()
                .map(|p| (p.host_port, p.container_port))
                .collect::<Vec<_>>(),
            [
                (HostPort::Exact(8000), 80),
                (HostPort::Exact(8001), 81),
                (HostPort::Exact(8002), 82)
            ]
        );
        assert_eq!(parse_publish("80-81").expect("range").len(), 2);
    }

    #[test]
    fn bad_specs_say_why() {
        for (spec, why) in [
            ("", "not a port number"),
            ("0", "not a port number"),
            ("65536", "not a port number"),
            ("80/sctp", "sctp is not supported"),
            ("80/icmp", "unknown protocol"),
            ("[::1]:80:80", "IPv6"),
            ("::1:80:80", "IPv6"),
            ("localhost:80:80", "not an IPv4 address"),
            ("8000-8001:80-82", "as long as"),
            ("90-80", "ends before it starts"),
            ("a:80", "host port"),
        ] {
            let err = parse_publish(spec).unwrap_err().to_string();
            assert!(err.contains(why), "{spec}: {err}");
        }
    }

    #[test]
    fn exposed_ports() {
        assert_eq!(parse_exposed("80/tcp").expect("80"), [(80, Protocol::Tcp)]);
        assert_eq!(parse_exposed("53/udp").expect("53"), [(53, Protocol::Udp)]);
        assert_eq!(parse_exposed("7000-7001").expect("range").len(), 2);
        assert!(parse_exposed("x/tcp").is_err());
    }
}
