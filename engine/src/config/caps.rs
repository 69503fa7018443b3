//! `--cap-add` / `--cap-drop` names: docker's (`NET_ADMIN`, `cap_net_admin`,
//! `ALL`), kept as `CAP_*` names in the record.

use std::fmt;

use oci_spec::runtime::Capability;
use runtime_core::capabilities;
use serde::{Deserialize, Serialize};

use super::FlagError;

/// Every capability by kernel index, the list docker's `ALL` and
/// `--privileged` draw from (limited to what the running kernel knows when
/// the spec is built).
pub const KERNEL_CAPABILITIES: [&str; 41] = capabilities::NAMES;

/// One `--cap-add`/`--cap-drop` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapName {
    /// `ALL`: every capability (add), or none but the added ones (drop).
    All,
    One(Capability),
}

/// A capability as docker reads it: any case, `CAP_` optional, or `ALL`.
pub fn parse_cap(text: &str) -> Result<CapName, FlagError> {
    if text.eq_ignore_ascii_case("ALL") {
        return Ok(CapName::All);
    }
    capabilities::from_name(text)
        .map(CapName::One)
        .ok_or_else(|| {
            let upper = text.to_ascii_uppercase();
            // Docker names the capability as it normalized it.
            let shown = if upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            };
            FlagError::UnknownCapability(shown)
        })
}

impl fmt::Display for CapName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapName::All => f.write_str("ALL"),
            CapName::One(cap) => f.write_str(capabilities::name(*cap)),
        }
    }
}

// Stored as docker shows them in `inspect` (`CAP_NET_ADMIN`, `ALL`).
impl Serialize for CapName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CapName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_cap(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_any_docker_form() {
        for text in ["NET_ADMIN", "net_admin", "CAP_NET_ADMIN", "cap_net_admin"] {
            assert_eq!(
                parse_cap(text).unwrap(),
                CapName::One(Capability::NetAdmin),
                "{text}"
            );
        }
        assert_eq!(parse_cap("all").unwrap(), CapName::All);
        assert_eq!(parse_cap("ALL").unwrap(), CapName::All);
    }

    #[test]
    fn unknown_names_read_like_docker() {
        assert_eq!(
            parse_cap("foo").unwrap_err().to_string(),
            r#"unknown capability: "CAP_FOO""#
        );
        assert_eq!(
            parse_cap("cap_bar").unwrap_err().to_string(),
            r#"unknown capability: "CAP_BAR""#
        );
    }

    #[test]
    fn the_list_is_in_kernel_order_and_known_to_the_runtime() {
        for name in KERNEL_CAPABILITIES {
            let cap = capabilities::from_name(name).unwrap();
            assert_eq!(capabilities::name(cap), name);
        }
        for (i, name) in KERNEL_CAPABILITIES.iter().enumerate() {
            assert_eq!(
                format!("{}", runtime_core::capabilities::CapMask(1 << i)),
                *name
            );
        }
    }
}
