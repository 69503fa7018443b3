//! `--tmpfs DST[:OPTS]`, and the size and mode words it shares with
//! `--mount type=tmpfs,tmpfs-size=,tmpfs-mode=`.
//!
//! `OPTS` is a comma list: `ro|rw`, `size=SIZE` (docker's units: `512k`,
//! `64m`, `1g`, `1.5GiB`, plain bytes), `mode=OCTAL`, and `noexec`, `nosuid`,
//! `nodev`, which muelle always applies. Each option at most once. The
//! kernel's other tmpfs options (`exec`, `uid=`, `nr_inodes=` ...) are
//! refused by name rather than dropped.

use super::raw::clean_target;
use super::{ConfigProblem, MountError, MountKind, MountSpec, TmpfsMount};

/// Parse one `--tmpfs` value.
pub fn parse_tmpfs_flag(text: &str) -> Result<MountSpec, MountError> {
    parse(text).map_err(|problem| MountError::Config {
        kind: MountKind::Tmpfs,
        problem,
    })
}

fn parse(text: &str) -> Result<MountSpec, ConfigProblem> {
    let (target, options) = text.split_once(':').unwrap_or((text, ""));
    let mut mount = TmpfsMount {
        target: clean_target(target)?,
        size: None,
        mode: None,
        read_only: false,
    };
    if options.is_empty() {
        return Ok(MountSpec::Tmpfs(mount));
    }
    let mut seen: Vec<&str> = Vec::new();
    for option in options.split(',') {
        let (name, value) = match option.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (option, None),
        };
        if seen.contains(&name) {
            return Err(ConfigProblem::RepeatedOption(name.to_string()));
        }
        if matches!(name, "ro" | "rw") && seen.iter().any(|s| matches!(*s, "ro" | "rw")) {
            return Err(ConfigProblem::ReadOnlyConflict);
        }
        seen.push(name);
        match (name, value) {
            ("ro", None) => mount.read_only = true,
            ("rw", None) => mount.read_only = false,
            ("size", Some(value)) => {
                let size = parse_size(value)
                    .ok_or_else(|| ConfigProblem::InvalidSize(value.to_string()))?;
                mount.size = (size != 0).then_some(size);
            }
            ("mode", Some(value)) => {
                mount.mode = Some(
                    parse_mode(value)
                        .ok_or_else(|| ConfigProblem::InvalidTmpfsMode(value.to_string()))?,
                );
            }
            ("noexec" | "nosuid" | "nodev", None) => {}
            ("exec" | "suid" | "dev", None) => {
                return Err(ConfigProblem::UnsupportedOption(name.to_string()));
            }
            _ => return Err(ConfigProblem::UnknownOption(option.to_string())),
        }
    }
    Ok(MountSpec::Tmpfs(mount))
}

/// A size in bytes, as docker's `RAMInBytes`: a number (a fraction allowed),
/// an optional space, and an optional unit `b`, or `k|m|g|t|p` (powers of
/// 1024) followed by nothing, `b` or `ib`, in any case. `None` when invalid
/// or too large.
pub(super) fn parse_size(text: &str) -> Option<u64> {
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_end);
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let multiplier: u64 = match unit.as_str() {
        "" | "b" => 1,
        _ => {
            let mut chars = unit.chars();
            let letter = chars.next()?;
            if !matches!(chars.as_str(), "" | "b" | "ib") {
                return None;
            }
            let power = match letter {
                'k' => 1,
                'm' => 2,
                'g' => 3,
                't' => 4,
                'p' => 5,
                _ => return None,
            };
            1u64 << (10 * power)
        }
    };
    match number.split_once('.') {
        None if !number.is_empty() => number.parse::<u64>().ok()?.checked_mul(multiplier),
        Some((whole, fraction))
            if !whole.is_empty() && !fraction.is_empty() && !fraction.contains('.') =>
        {
            let bytes = number.parse::<f64>().ok()? * multiplier as f64;
            // Truncated, as docker does.
            (bytes < u64::MAX as f64).then_some(bytes as u64)
        }
        _ => None,
    }
}

/// Octal permission bits, at most `7777`, digits only (no sign).
pub(super) fn parse_mode(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|mode| *mode <= 0o7777)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn tmpfs(text: &str) -> TmpfsMount {
        match parse_tmpfs_flag(text).unwrap() {
            MountSpec::Tmpfs(tmpfs) => tmpfs,
            other => panic!("not a tmpfs: {other:?}"),
        }
    }

    fn err(text: &str) -> String {
        parse_tmpfs_flag(text).unwrap_err().to_string()
    }

    #[test]
    fn sizes_in_docker_units() {
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("512b"), Some(512));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("64m"), Some(64 << 20));
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("1gb"), Some(1 << 30));
        assert_eq!(parse_size("2 t"), Some(2 << 40));
        assert_eq!(parse_size("1p"), Some(1 << 50));
        assert_eq!(parse_size("1.5k"), Some(1536));
        assert_eq!(parse_size("0"), Some(0));
    }

    #[test]
    fn bad_sizes() {
        for bad in [
            "",
            "m",
            "-1",
            "1x",
            "1kk",
            "1kib2",
            "1bb",
            "1.",
            ".5",
            "1.2.3",
            "50%",
            "1  m",
            "99999999999999999999",
            "16777216p",
            "1é",
            "1ék",
        ] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("1777"), Some(0o1777));
        assert_eq!(parse_mode("0755"), Some(0o755));
        assert_eq!(parse_mode("0"), Some(0));
        for bad in ["", "8", "+777", "-1", "17777", "rwx", "0x1ff"] {
            assert_eq!(parse_mode(bad), None, "{bad}");
        }
    }

    #[test]
    fn target_only() {
        let t = tmpfs("/run/");
        assert_eq!(t.target, Path::new("/run"));
        assert_eq!((t.size, t.mode, t.read_only), (None, None, false));
    }

    #[test]
    fn all_options() {
        let t = tmpfs("/run:rw,size=64m,mode=1777,noexec,nosuid,nodev");
        assert_eq!(
            (t.size, t.mode, t.read_only),
            (Some(64 << 20), Some(0o1777), false)
        );
        let t = tmpfs("/run:ro,size=0");
        assert_eq!((t.size, t.read_only), (None, true));
    }

    #[test]
    fn target_errors() {
        assert_eq!(
            err("run:size=1m"),
            "invalid mount config for type \"tmpfs\": invalid mount path: 'run' mount path must be absolute"
        );
        assert_eq!(
            err("/"),
            "invalid mount config for type \"tmpfs\": invalid specification: destination can't be '/'"
        );
        assert_eq!(
            err(":rw"),
            "invalid mount config for type \"tmpfs\": field Target must not be empty"
        );
    }

    #[test]
    fn option_errors() {
        let cases = [
            ("/t:size=lots", "invalid size: 'lots'"),
            (
                "/t:mode=999",
                "invalid mode: 999 (octal permission bits, at most 7777)",
            ),
            ("/t:size=1m,size=2m", "option size is given more than once"),
            ("/t:ro,ro", "option ro is given more than once"),
            ("/t:ro,rw", "options ro and rw conflict"),
            (
                "/t:exec",
                "option exec is not supported (muelle mounts a tmpfs noexec,nosuid,nodev)",
            ),
            ("/t:uid=1000", "unknown option 'uid=1000'"),
            ("/t:size", "unknown option 'size'"),
            ("/t:ro=1", "unknown option 'ro=1'"),
            ("/t:rw,", "unknown option ''"),
        ];
        for (text, problem) in cases {
            assert_eq!(
                err(text),
                format!("invalid mount config for type \"tmpfs\": {problem}"),
                "{text}"
            );
        }
    }
}
