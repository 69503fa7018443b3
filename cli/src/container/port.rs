//! `port`: a container's published ports, as docker lists them.

use std::cmp::Ordering;
use std::io::Write;

use anyhow::bail;
use clap::Args;
use engine::container::PortBinding;

use crate::args::Global;

#[derive(Args, Debug, Clone)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Only this port's bindings.
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

pub fn port(global: &Global, args: PortArgs) -> anyhow::Result<()> {
    let engine = super::engine(global)?;
    let (_, bindings) = {
        let store = engine.open_store()?;
        engine.ports(&store, &args.container)?
    };
    let lines = match &args.port {
        Some(wanted) => {
            let (port, protocol) = wanted.split_once('/').unwrap_or((wanted, "tcp"));
            let protocol = if protocol.is_empty() { "tcp" } else { protocol };
            let Ok(port) = port.parse::<u16>() else {
                bail!("invalid port ({port})");
            };
            let lines: Vec<String> = bindings
                .iter()
                .filter(|b| b.private_port == port && b.protocol == protocol)
                .map(host_address)
                .collect();
            if lines.is_empty() {
                // docker's words; main adds the `Error: ` docker's text has.
                bail!(
                    "No public port '{port}/{protocol}' published for {}",
                    args.container
                );
            }
            lines
        }
        None => {
            let mut lines: Vec<String> = bindings
                .iter()
                .map(|b| format!("{}/{} -> {}", b.private_port, b.protocol, host_address(b)))
                .collect();
            lines.sort_by(|a, b| natural(a, b));
            lines
        }
    };
    let mut out = std::io::stdout().lock();
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Go's `net.JoinHostPort`: an IPv6 address in brackets.
fn host_address(binding: &PortBinding) -> String {
    if binding.host_ip.contains(':') {
        format!("[{}]:{}", binding.host_ip, binding.host_port)
    } else {
        format!("{}:{}", binding.host_ip, binding.host_port)
    }
}

/// docker's natural order: runs of digits compare as numbers.
fn natural(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        let (Some(x), Some(y)) = (a.chars().next(), b.chars().next()) else {
            return a.len().cmp(&b.len());
        };
        if x.is_ascii_digit() && y.is_ascii_digit() {
            let end_a = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
            let end_b = b.find(|c: char| !c.is_ascii_digit()).unwrap_or(b.len());
            let (na, nb) = (
                a[..end_a].trim_start_matches('0'),
                b[..end_b].trim_start_matches('0'),
            );
            let by_number = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if by_number != Ordering::Equal {
                return by_number;
            }
            (a, b) = (&a[end_a..], &b[end_b..]);
        } else {
            if x != y {
                return x.cmp(&y);
            }
            (a, b) = (&a[x.len_utf8()..], &b[y.len_utf8()..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_sort_naturally_and_ipv6_is_bracketed() {
        let mut lines = vec![
            "8080/tcp -> 0.0.0.0:1",
            "80/tcp -> 0.0.0.0:2",
            "443/tcp -> x",
        ];
        lines.sort_by(|a, b| natural(a, b));
        assert_eq!(
            lines,
            [
                "80/tcp -> 0.0.0.0:2",
                "443/tcp -> x",
                "8080/tcp -> 0.0.0.0:1"
            ]
        );
        let b = PortBinding {
            private_port: 80,
            protocol: "tcp".into(),
            host_ip: "::".into(),
            host_port: 8080,
        };
        assert_eq!(host_address(&b), "[::]:8080");
    }
}
