//! The network flags of `run`/`create`: `--ip`, `--network-alias`,
//! `--mac-address` for the network `--network` names, and `-p`/`-P`
//! checked against the network mode.

use std::net::Ipv4Addr;

use network::EndpointConfig;

use super::error::FlagError;
use super::flags::NetworkMode;

/// The network flags as given.
#[derive(Debug, Default)]
pub struct NetworkFlags<'a> {
    pub ip: Option<&'a str>,
    pub aliases: &'a [String],
    pub mac: Option<&'a str>,
    pub publish: &'a [String],
    pub publish_all: bool,
}

/// The networks a container of `mode` joins: the one it names, with the
/// flags' address, aliases and MAC. Other modes join none, and refuse
/// those flags.
pub fn endpoints(
    mode: &NetworkMode,
    flags: &NetworkFlags<'_>,
) -> Result<Vec<EndpointConfig>, FlagError> {
    let ip = flags
        .ip
        .map(|ip| {
            ip.parse::<Ipv4Addr>()
                .map_err(|_| FlagError::InvalidIp(ip.to_owned()))
        })
        .transpose()?;
    let mac = flags.mac.map(parse_mac).transpose()?;
    check_aliases(flags.aliases)?;
    let network = match mode {
        NetworkMode::Bridge => {
            if ip.is_some() {
                return Err(FlagError::IpOnDefaultNetwork);
            }
            if !flags.aliases.is_empty() {
                return Err(FlagError::AliasOnDefaultNetwork);
            }
            network::DEFAULT_NETWORK.to_owned()
        }
        NetworkMode::Named(name) => name.clone(),
        other => {
            let given = [
                (ip.is_some(), "--ip"),
                (!flags.aliases.is_empty(), "--network-alias"),
                (mac.is_some(), "--mac-address"),
            ];
            if let Some((_, flag)) = given.iter().find(|(set, _)| *set) {
                return Err(FlagError::NeedsBridgeNetwork {
                    flag,
                    mode: other.to_string(),
                });
            }
            if (!flags.publish.is_empty() || flags.publish_all) && *other != NetworkMode::Host {
                return Err(FlagError::PublishWithoutNetwork);
            }
            return Ok(Vec::new());
        }
    };
    for spec in flags.publish {
        network::ports::parse_publish(spec)?;
    }
    Ok(vec![EndpointConfig {
        network,
        ip,
        aliases: flags.aliases.to_vec(),
        mac,
    }])
}

/// `--network-alias` and `network connect --alias`: names the resolver
/// can answer.
pub fn check_aliases(aliases: &[String]) -> Result<(), FlagError> {
    match aliases.iter().find(|a| !is_dns_name(a)) {
        Some(bad) => Err(FlagError::InvalidAlias(bad.clone())),
        None => Ok(()),
    }
}

/// A name the network's resolver can answer: labels of letters, digits,
/// `-` and `_`, split by dots, 253 characters at most.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `aa:bb:cc:dd:ee:ff` (or with dashes), kept lowercase with colons.
pub fn parse_mac(text: &str) -> Result<String, FlagError> {
    let bytes: Vec<&str> = text.split([':', '-']).collect();
    let valid = bytes.len() == 6
        && bytes
            .iter()
            .all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit()));
    if !valid {
        return Err(FlagError::InvalidMac(text.to_owned()));
    }
    Ok(bytes.join(":").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_network_gets_the_flags() {
        let aliases = ["db".to_owned()];
        let flags = NetworkFlags {
            ip: Some("10.78.0.9"),
            aliases: &aliases,
            mac: Some("02-42-AA-bb-cc-dd"),
            ..NetworkFlags::default()
        };
        let got = endpoints(&NetworkMode::Named("back".into()), &flags).unwrap();
        assert_eq!(
            got,
            [EndpointConfig {
                network: "back".into(),
                ip: Some(Ipv4Addr::new(10, 78, 0, 9)),
                aliases: vec!["db".into()],
                mac: Some("02:42:aa:bb:cc:dd".into()),
            }]
        );
        let default = endpoints(&NetworkMode::Bridge, &NetworkFlags::default()).unwrap();
        assert_eq!(default[0].network, "muelle");
    }

    #[test]
    fn refusals_in_dockers_words() {
        let ip = NetworkFlags {
            ip: Some("10.0.0.2"),
            ..NetworkFlags::default()
        };
        let err = endpoints(&NetworkMode::Bridge, &ip)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "user specified IP address is supported on user defined networks only"
        );
        let err = endpoints(&NetworkMode::Host, &ip).unwrap_err().to_string();
        assert!(err.contains("--ip"), "{err}");
        let bad_ip = NetworkFlags {
            ip: Some("10.0.0"),
            ..NetworkFlags::default()
        };
        assert!(endpoints(&NetworkMode::Named("n".into()), &bad_ip).is_err());
        assert!(parse_mac("02:42:aa:bb:cc").is_err());
        for bad in ["a b", "x#y", "", "a..b", "-"] {
            let aliases = [bad.to_owned()];
            let flags = NetworkFlags {
                aliases: &aliases,
                ..NetworkFlags::default()
            };
            let named = NetworkMode::Named("n".into());
            if bad == "-" {
                assert!(endpoints(&named, &flags).is_ok());
                continue;
            }
            let err = endpoints(&named, &flags).unwrap_err().to_string();
            assert!(err.contains("invalid network alias"), "{bad}: {err}");
        }
        assert!(parse_mac("02:42:aa:bb:cc:zz").is_err());
        let publish = ["80".to_owned()];
        let p = NetworkFlags {
            publish: &publish,
            ..NetworkFlags::default()
        };
        let err = endpoints(&NetworkMode::None, &p).unwrap_err().to_string();
        assert!(err.contains("port publishing"), "{err}");
        // docker discards ports with the host's network.
        assert!(endpoints(&NetworkMode::Host, &p).unwrap().is_empty());
        let bad = ["80/sctp".to_owned()];
        let p = NetworkFlags {
            publish: &bad,
            ..NetworkFlags::default()
        };
        assert!(endpoints(&NetworkMode::Bridge, &p).is_err());
    }
}
