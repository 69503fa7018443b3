//! `-v SRC:DST[:OPTS]` / `--volume`, as docker parses it on Linux.
//!
//! - `DST` alone is an anonymous volume; `SRC:DST` with `SRC` an absolute
//!   path is a bind, any other `SRC` a volume name.
//! - `OPTS` is a comma list of at most one of each group: `ro|rw`, `z|Z`,
//!   a propagation word (binds only), `nocopy` (volumes only), and docker's
//!   `consistent|cached|delegated` (accepted, no effect on Linux).
//!
//! Unlike docker, a bind source that does not exist is an error (docker
//! creates it as root), and a source such as `./data` is a volume name, so it
//! is refused rather than resolved against the working folder.

use super::raw::{RawMount, RawVolumeOptions};
use super::{MountError, MountKind, MountSpec, Propagation, Relabel};

/// Parse one `-v` value.
pub fn parse_volume_flag(text: &str) -> Result<MountSpec, MountError> {
    let parts: Vec<&str> = text.splitn(4, ':').collect();
    if parts[0].is_empty() {
        return Err(MountError::InvalidSpec(text.to_string()));
    }
    let (source, target, mode_text) = match parts[..] {
        [target] => ("", target, ""),
        // `DST:MODE` is not a volume: volumes without a source take no mode.
        [_, second] if parse_mode(second).is_some() => {
            return Err(MountError::InvalidSpec(text.to_string()));
        }
        [source, target] => (source, target, ""),
        [source, target, mode] => (source, target, mode),
        _ => return Err(MountError::InvalidSpec(text.to_string())),
    };
    let mode = parse_mode(mode_text).ok_or_else(|| MountError::InvalidMode(mode_text.into()))?;

    let kind = if source.starts_with('/') {
        MountKind::Bind
    } else {
        MountKind::Volume
    };
    let mut raw = RawMount::new(kind);
    raw.source = source.to_string();
    raw.target = target.to_string();
    raw.read_only = mode.read_only;
    raw.relabel = mode.relabel;
    raw.propagation = mode.propagation.map(|p| p.as_str().to_string());
    if mode.nocopy {
        raw.volume = Some(RawVolumeOptions {
            nocopy: true,
            ..RawVolumeOptions::default()
        });
    }
    raw.finish()
}

#[derive(Debug, Default)]
struct Mode {
    read_only: bool,
    relabel: Option<Relabel>,
    propagation: Option<Propagation>,
    nocopy: bool,
}

/// The options after the second `:`; `None` when a word is unknown or a
/// group appears twice (`ro,rw`, `z,Z`, `shared,slave` ...). Empty is valid.
fn parse_mode(text: &str) -> Option<Mode> {
    let mut mode = Mode::default();
    if text.is_empty() {
        return Some(mode);
    }
    let (mut rw, mut label, mut copy, mut consistency) = (false, false, false, false);
    for word in text.split(',') {
        let seen = match word {
            "ro" | "rw" => {
                mode.read_only = word == "ro";
                &mut rw
            }
            "z" | "Z" => {
                mode.relabel = Some(if word == "z" {
                    Relabel::Shared
                } else {
                    Relabel::Private
                });
                &mut label
            }
            "nocopy" => {
                mode.nocopy = true;
                &mut copy
            }
            "consistent" | "cached" | "delegated" => &mut consistency,
            other => {
                let propagation = Propagation::from_word(other)?;
                if mode.propagation.replace(propagation).is_some() {
                    return None;
                }
                continue;
            }
        };
        if std::mem::replace(seen, true) {
            return None;
        }
    }
    Some(mode)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::mounts::{BindMount, VolumeMount};

    fn err(text: &str) -> String {
        parse_volume_flag(text).unwrap_err().to_string()
    }

    fn bind(text: &str) -> BindMount {
        match parse_volume_flag(text).unwrap() {
            MountSpec::Bind(bind) => bind,
            other => panic!("not a bind: {other:?}"),
        }
    }

    fn volume(text: &str) -> VolumeMount {
        match parse_volume_flag(text).unwrap() {
            MountSpec::Volume(volume) => volume,
            other => panic!("not a volume: {other:?}"),
        }
    }

    fn dir() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap().to_string();
        (dir, path)
    }

    #[test]
    fn bind_with_defaults() {
        let (_dir, src) = dir();
        let b = bind(&format!("{src}:/data"));
        assert_eq!(b.source, PathBuf::from(&src));
        assert_eq!(b.target, Path::new("/data"));
        assert!(!b.read_only);
        assert_eq!(b.propagation, Propagation::RPrivate);
        assert_eq!(b.selinux_relabel, None);
    }

    #[test]
    fn bind_with_every_option() {
        let (_dir, src) = dir();
        let b = bind(&format!("{src}/./:/data//x/:ro,Z,rshared,cached"));
        assert_eq!(b.source, PathBuf::from(&src));
        assert_eq!(b.target, Path::new("/data/x"));
        assert!(b.read_only);
        assert_eq!(b.propagation, Propagation::RShared);
        assert_eq!(b.selinux_relabel, Some(Relabel::Private));
        let b = bind(&format!("{src}:/data:z,rw,slave"));
        assert!(!b.read_only);
        assert_eq!(b.propagation, Propagation::Slave);
        assert_eq!(b.selinux_relabel, Some(Relabel::Shared));
    }

    #[test]
    fn bind_source_must_exist() {
        let (_dir, src) = dir();
        assert_eq!(
            err(&format!("{src}/missing:/data")),
            format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {src}/missing"
            )
        );
        assert!(
            !Path::new(&format!("{src}/missing")).exists(),
            "never created"
        );
    }

    #[test]
    fn bind_source_under_a_file_does_not_exist() {
        let (_dir, src) = dir();
        std::fs::write(format!("{src}/file"), "").unwrap();
        assert_eq!(
            err(&format!("{src}/file/x:/data")),
            format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {src}/file/x"
            )
        );
    }

    #[test]
    fn named_volume() {
        let v = volume("data:/var/lib/db:ro,nocopy");
        assert_eq!(v.name.as_deref(), Some("data"));
        assert_eq!(v.target, Path::new("/var/lib/db"));
        assert!(v.read_only);
        assert!(v.nocopy);
        assert!(v.driver_opts.is_empty());
        assert_eq!(v.subpath, None);
    }

    #[test]
    fn relabel_on_a_volume_is_accepted() {
        assert_eq!(volume("data:/x:Z").name.as_deref(), Some("data"));
    }

    #[test]
    fn anonymous_volume() {
        let v = volume("/cache/");
        assert_eq!(v.name, None);
        assert_eq!(v.target, Path::new("/cache"));
        assert!(!v.read_only && !v.nocopy);
    }

    #[test]
    fn relative_source_is_a_volume_name_and_checked() {
        for bad in ["..", "../etc", "./data", "a/b", "x"] {
            assert_eq!(
                err(&format!("{bad}:/data")),
                format!(
                    "\"{bad}\" includes invalid characters for a local volume name, only \
                     \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a \
                     host directory, use absolute path"
                )
            );
        }
    }

    #[test]
    fn target_must_be_absolute() {
        let (_dir, src) = dir();
        assert_eq!(
            err(&format!("{src}:data")),
            "invalid mount config for type \"bind\": invalid mount path: 'data' mount path must be absolute"
        );
        assert_eq!(
            err("vol:p"),
            "invalid mount config for type \"volume\": invalid mount path: 'p' mount path must be absolute"
        );
        assert_eq!(
            err("p"),
            "invalid mount config for type \"volume\": invalid mount path: 'p' mount path must be absolute"
        );
    }

    #[test]
    fn target_must_not_be_root() {
        let (_dir, src) = dir();
        assert_eq!(
            err(&format!("{src}:/")),
            "invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
        );
        assert_eq!(
            err("vol:/x/.."),
            "invalid mount config for type \"volume\": invalid specification: destination can't be '/'"
        );
    }

    #[test]
    fn wrong_shapes_are_invalid_specs() {
        for text in [
            "a:b:c:d",
            "a:b:c:d:e",
            ":/x",
            "",
            "/x:ro",
            "/x:",
            "vol:rw,z",
        ] {
            assert_eq!(err(text), format!("invalid volume specification: '{text}'"));
        }
    }

    #[test]
    fn unknown_repeated_or_conflicting_modes() {
        let (_dir, src) = dir();
        for mode in [
            "xyz",
            "ro,ro",
            "ro,rw",
            "z,Z",
            "shared,slave",
            "nocopy,nocopy",
            "RO",
            "ro,",
            "cached,delegated",
        ] {
            assert_eq!(
                err(&format!("{src}:/x:{mode}")),
                format!("invalid mode: {mode}")
            );
        }
    }

    #[test]
    fn propagation_is_for_binds_only() {
        assert_eq!(
            err("vol:/x:rshared"),
            "invalid mount config for type \"volume\": field BindOptions must not be specified"
        );
    }

    #[test]
    fn nocopy_is_for_volumes_only() {
        let (_dir, src) = dir();
        assert_eq!(
            err(&format!("{src}:/x:nocopy")),
            "invalid mount config for type \"bind\": field VolumeOptions must not be specified"
        );
    }

    #[test]
    fn empty_mode_is_accepted() {
        let (_dir, src) = dir();
        assert!(!bind(&format!("{src}:/x:")).read_only);
    }
}
