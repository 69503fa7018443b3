//! Device rules of the spec (`linux.resources.devices`), checked once and
//! turned into what each cgroup version takes: lines for v1's `devices.allow`
//! and `devices.deny`, or the rule list the v2 eBPF filter is built from.
//!
//! Meaning, the same on both versions: rules apply in order, a later rule
//! overrides an earlier one for the device and access bits it names, and
//! what no rule allows is denied.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::CgroupError;

pub(super) const ACCESS_MKNOD: u8 = 1;
pub(super) const ACCESS_READ: u8 = 2;
pub(super) const ACCESS_WRITE: u8 = 4;
pub(super) const ACCESS_ALL: u8 = ACCESS_MKNOD | ACCESS_READ | ACCESS_WRITE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Block,
    Char,
}

/// One checked rule; `None` is a wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DeviceRule {
    pub allow: bool,
    pub kind: Option<Kind>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// `ACCESS_*` bits, never 0.
    pub access: u8,
}

impl DeviceRule {
    pub(super) fn parse(rule: &LinuxDeviceCgroup) -> Result<DeviceRule, CgroupError> {
        let invalid = |reason: String| CgroupError::InvalidValue {
            what: format!("device rule \"{rule}\""),
            reason,
        };
        let kind = match rule.typ() {
            None | Some(LinuxDeviceType::A) => None,
            Some(LinuxDeviceType::B) => Some(Kind::Block),
            // "u" is an unbuffered character device: the kernel sees a char device.
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => Some(Kind::Char),
            Some(LinuxDeviceType::P) => {
                return Err(invalid(
                    "the device cgroup does not control FIFOs (type \"p\")".to_owned(),
                ));
            }
        };
        // runc writes -1 for "any"; the kernel has no negative numbers.
        let number = |n: Option<i64>, what: &str| match n {
            None => Ok(None),
            Some(n) if n < 0 => Ok(None),
            Some(n) => u32::try_from(n)
                .map(Some)
                .map_err(|_| invalid(format!("{what} {n} is out of range"))),
        };
        let major = number(rule.major(), "major")?;
        let minor = number(rule.minor(), "minor")?;
        // Omitted access means all of it, as in crun.
        let access = match rule.access().as_deref() {
            None | Some("") => ACCESS_ALL,
            Some(text) => {
                let mut bits = 0;
                for c in text.chars() {
                    bits |= match c {
                        'r' => ACCESS_READ,
                        'w' => ACCESS_WRITE,
                        'm' => ACCESS_MKNOD,
                        _ => {
                            return Err(invalid(format!("access {text:?} is not made of r, w, m")));
                        }
                    };
                }
                bits
            }
        };
        Ok(DeviceRule {
            allow: rule.allow(),
            kind,
            major,
            minor,
            access,
        })
    }

    /// Matches every device and every access.
    pub(super) fn is_total(&self) -> bool {
        self.kind.is_none()
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == ACCESS_ALL
    }
}

pub(super) fn parse_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, CgroupError> {
    rules.iter().map(DeviceRule::parse).collect()
}

/// What to write for v1: `(file, line)` pairs in order.
///
/// The list starts by denying everything (as runc does) unless the first rule
/// already resets the list. A rule for all device types with a number or
/// partial access becomes one `b` and one `c` line, because the kernel reads
/// `a` as "everything" and ignores the rest of the line.
pub(super) fn v1_lines(rules: &[DeviceRule]) -> Vec<(&'static str, String)> {
    let mut lines = Vec::with_capacity(rules.len() + 1);
    if !rules.first().is_some_and(DeviceRule::is_total) {
        lines.push(("devices.deny", "a".to_owned()));
    }
    for rule in rules {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        if rule.is_total() {
            lines.push((file, "a".to_owned()));
            continue;
        }
        let kinds: &[char] = match rule.kind {
            Some(Kind::Block) => &['b'],
            Some(Kind::Char) => &['c'],
            None => &['b', 'c'],
        };
        for kind in kinds {
            lines.push((
                file,
                format!(
                    "{kind} {}:{} {}",
                    number(rule.major),
                    number(rule.minor),
                    access(rule.access)
                ),
            ));
        }
    }
    lines
}

fn number(n: Option<u32>) -> String {
    n.map_or_else(|| "*".to_owned(), |n| n.to_string())
}

fn access(bits: u8) -> String {
    let mut text = String::with_capacity(3);
    for (bit, c) in [(ACCESS_READ, 'r'), (ACCESS_WRITE, 'w'), (ACCESS_MKNOD, 'm')] {
        if bits & bit != 0 {
            text.push(c);
        }
    }
    text
}

#[cfg(test)]
pub(super) fn rules_from_json(json: &str) -> Vec<LinuxDeviceCgroup> {
    serde_json::from_str(json).expect("device rules json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules() {
        let rules = rules_from_json(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                {"allow": true, "type": "u", "major": -1, "access": "m"},
                {"allow": true, "type": "b", "minor": 7}]"#,
        );
        let parsed = parse_rules(&rules).expect("rules");
        assert_eq!(
            parsed,
            [
                DeviceRule {
                    allow: false,
                    kind: None,
                    major: None,
                    minor: None,
                    access: ACCESS_ALL
                },
                DeviceRule {
                    allow: true,
                    kind: Some(Kind::Char),
                    major: Some(1),
                    minor: Some(3),
                    access: ACCESS_READ | ACCESS_WRITE
                },
                DeviceRule {
                    allow: true,
                    kind: Some(Kind::Char),
                    major: None,
                    minor: None,
                    access: ACCESS_MKNOD
                },
                DeviceRule {
                    allow: true,
                    kind: Some(Kind::Block),
                    major: None,
                    minor: Some(7),
                    access: ACCESS_ALL
                },
            ]
        );
        assert!(parsed[0].is_total());
        assert!(!parsed[2].is_total());
    }

    #[test]
    fn rejects_bad_rules() {
        for json in [
            r#"[{"allow": true, "type": "p"}]"#,
            r#"[{"allow": true, "type": "c", "access": "rwx"}]"#,
            r#"[{"allow": true, "type": "c", "major": 4294967296}]"#,
        ] {
            let err = parse_rules(&rules_from_json(json)).unwrap_err();
            assert!(
                matches!(err, CgroupError::InvalidValue { .. }),
                "{json}: {err}"
            );
        }
    }

    #[test]
    fn v1_lines_deny_all_first_and_keep_order() {
        let rules = parse_rules(&rules_from_json(
            r#"[{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"},
                {"allow": true, "major": 10, "minor": 200, "access": "r"}]"#,
        ))
        .expect("rules");
        assert_eq!(
            v1_lines(&rules),
            [
                ("devices.deny", "a".to_owned()),
                ("devices.allow", "c 1:3 rwm".to_owned()),
                ("devices.deny", "c 1:3 w".to_owned()),
                ("devices.allow", "b 10:200 r".to_owned()),
                ("devices.allow", "c 10:200 r".to_owned()),
            ]
        );
    }

    #[test]
    fn v1_lines_skip_the_reset_when_the_first_rule_is_one() {
        let rules = parse_rules(&rules_from_json(
            r#"[{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "access": "m"}]"#,
        ))
        .expect("rules");
        assert_eq!(
            v1_lines(&rules),
            [
                ("devices.deny", "a".to_owned()),
                ("devices.allow", "c *:* m".to_owned())
            ]
        );
        let allow_all = parse_rules(&rules_from_json(r#"[{"allow": true}]"#)).expect("rules");
        assert_eq!(v1_lines(&allow_all), [("devices.allow", "a".to_owned())]);
        assert_eq!(v1_lines(&[]), [("devices.deny", "a".to_owned())]);
    }
}
