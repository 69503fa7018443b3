//! `--mount KEY=VALUE,...`, as docker's CLI reads it: a CSV line (a field
//! may be quoted to hold a comma: `"volume-opt=o=addr=10.0.0.1,rw"`), keys in
//! any case, `type` defaulting to `volume`.
//!
//! Keys: `type=bind|volume|tmpfs`, `source|src`, `target|destination|dst`,
//! `readonly|ro[=BOOL]`, `consistency` (accepted, no effect on Linux),
//! `bind-propagation`, `volume-nocopy[=BOOL]`, `volume-opt=KEY=VALUE`
//! (repeatable, keys distinct), `volume-subpath`, `tmpfs-size`, `tmpfs-mode`.
//!
//! Unlike docker, which keeps the last of repeated keys, a key given twice
//! (`src` and `source` count as one) is an error.

use super::raw::{RawMount, RawTmpfsOptions, RawVolumeOptions};
use super::tmpfs_flag::{parse_mode, parse_size};
use super::{MountError, MountKind, MountSpec};

/// Parse one `--mount` value.
pub fn parse_mount_flag(text: &str) -> Result<MountSpec, MountError> {
    let mut raw = RawMount::new(MountKind::Volume);
    let mut kind: Option<String> = None;
    let mut seen: Vec<&'static str> = Vec::new();
    for field in split_fields(text)? {
        let (key, value) = match field.split_once('=') {
            Some((key, value)) => (key.to_ascii_lowercase(), Some(value)),
            None => (field.to_ascii_lowercase(), None),
        };
        let invalid = || MountError::InvalidValue {
            key: key.clone(),
            value: value.unwrap_or_default().to_string(),
        };
        let Some(name) = canonical_key(&key) else {
            return Err(match value {
                None => MountError::NotKeyValue(field.clone()),
                Some(_) => MountError::UnknownKey {
                    key,
                    field: field.clone(),
                },
            });
        };
        if name != "volume-opt" {
            if seen.contains(&name) {
                return Err(MountError::RepeatedKey {
                    key: name,
                    text: text.to_string(),
                });
            }
            seen.push(name);
        }
        match (name, value) {
            ("readonly", None) => raw.read_only = true,
            ("readonly", Some(value)) => raw.read_only = parse_bool(value).ok_or_else(invalid)?,
            ("volume-nocopy", None) => volume(&mut raw).nocopy = true,
            ("volume-nocopy", Some(value)) => {
                volume(&mut raw).nocopy = parse_bool(value).ok_or_else(invalid)?;
            }
            (_, None) => return Err(MountError::NotKeyValue(field.clone())),
            ("type", Some(value)) => kind = Some(value.to_ascii_lowercase()),
            ("source", Some(value)) => raw.source = value.to_string(),
            ("target", Some(value)) => raw.target = value.to_string(),
            ("consistency", Some(value)) => {
                let value = value.to_ascii_lowercase();
                if !matches!(
                    value.as_str(),
                    "default" | "consistent" | "cached" | "delegated"
                ) {
                    return Err(invalid());
                }
            }
            ("bind-propagation", Some(value)) => raw.propagation = Some(value.to_ascii_lowercase()),
            ("volume-opt", Some(value)) => {
                let (opt, opt_value) = value
                    .split_once('=')
                    .filter(|(opt, _)| !opt.is_empty())
                    .ok_or_else(invalid)?;
                let options = &mut volume(&mut raw).driver_opts;
                if options.iter().any(|(k, _)| k == opt) {
                    return Err(MountError::RepeatedVolumeOpt(opt.to_string()));
                }
                options.push((opt.to_string(), opt_value.to_string()));
            }
            ("volume-subpath", Some(value)) => volume(&mut raw).subpath = Some(value.to_string()),
            ("tmpfs-size", Some(value)) => {
                let size = parse_size(value).ok_or_else(invalid)?;
                tmpfs(&mut raw).size = (size != 0).then_some(size);
            }
            ("tmpfs-mode", Some(value)) => {
                tmpfs(&mut raw).mode = Some(parse_mode(value).ok_or_else(invalid)?)
            }
            (other, Some(_)) => unreachable!("canonical_key returned {other}"),
        }
    }

    raw.kind = match kind.as_deref() {
        None | Some("volume") => MountKind::Volume,
        Some("bind") => MountKind::Bind,
        Some("tmpfs") => MountKind::Tmpfs,
        Some("") => return Err(MountError::TypeRequired),
        Some(other) => return Err(MountError::UnknownType(other.to_string())),
    };
    let mixed = |prefix| MountError::MixedOptions {
        prefix,
        kind: raw.kind,
    };
    if raw.volume.is_some() && raw.kind != MountKind::Volume {
        return Err(mixed("volume"));
    }
    if raw.propagation.is_some() && raw.kind != MountKind::Bind {
        return Err(mixed("bind"));
    }
    if raw.tmpfs.is_some() && raw.kind != MountKind::Tmpfs {
        return Err(mixed("tmpfs"));
    }
    raw.finish()
}

fn volume(raw: &mut RawMount) -> &mut RawVolumeOptions {
    raw.volume.get_or_insert_with(RawVolumeOptions::default)
}

fn tmpfs(raw: &mut RawMount) -> &mut RawTmpfsOptions {
    raw.tmpfs.get_or_insert_with(RawTmpfsOptions::default)
}

/// One name for each key and its aliases; `None` for an unknown key.
fn canonical_key(key: &str) -> Option<&'static str> {
    Some(match key {
        "type" => "type",
        "source" | "src" => "source",
        "target" | "destination" | "dst" => "target",
        "readonly" | "ro" => "readonly",
        "consistency" => "consistency",
        "bind-propagation" => "bind-propagation",
        "volume-nocopy" => "volume-nocopy",
        "volume-opt" => "volume-opt",
        "volume-subpath" => "volume-subpath",
        "tmpfs-size" => "tmpfs-size",
        "tmpfs-mode" => "tmpfs-mode",
        _ => return None,
    })
}

/// Go's `strconv.ParseBool`, which docker uses.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Split one CSV line as Go's `encoding/csv` does: a field that starts with
/// `"` runs to the closing `"` (`""` inside is one `"`) and must end there;
/// a `"` inside an unquoted field is an error.
fn split_fields(text: &str) -> Result<Vec<String>, MountError> {
    let bad = || MountError::BadQuoting(text.to_string());
    let mut fields = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next().ok_or_else(bad)? {
                    '"' if chars.next_if_eq(&'"').is_some() => field.push('"'),
                    '"' => break,
                    c => field.push(c),
                }
            }
            fields.push(field);
            match chars.next() {
                None => return Ok(fields),
                Some(',') => continue,
                Some(_) => return Err(bad()),
            }
        }
        loop {
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => break,
                Some('"') => return Err(bad()),
                Some(c) => field.push(c),
            }
        }
        fields.push(field);
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::mounts::{BindMount, Propagation, TmpfsMount, VolumeMount};

    fn err(text: &str) -> String {
        parse_mount_flag(text).unwrap_err().to_string()
    }

    fn bind(text: &str) -> BindMount {
        match parse_mount_flag(text).unwrap() {
            MountSpec::Bind(bind) => bind,
            other => panic!("not a bind: {other:?}"),
        }
    }

    fn volume(text: &str) -> VolumeMount {
        match parse_mount_flag(text).unwrap() {
            MountSpec::Volume(volume) => volume,
            other => panic!("not a volume: {other:?}"),
        }
    }

    fn tmpfs(text: &str) -> TmpfsMount {
        match parse_mount_flag(text).unwrap() {
            MountSpec::Tmpfs(tmpfs) => tmpfs,
            other => panic!("not a tmpfs: {other:?}"),
        }
    }

    fn dir() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap().to_string();
        (dir, path)
    }

    #[test]
    fn csv_fields() {
        assert_eq!(split_fields("a,b").unwrap(), ["a", "b"]);
        assert_eq!(split_fields("a,").unwrap(), ["a", ""]);
        assert_eq!(split_fields(r#""a,b",c"#).unwrap(), ["a,b", "c"]);
        assert_eq!(split_fields(r#""say ""hi""""#).unwrap(), [r#"say "hi""#]);
        for bad in [r#"a"b"#, r#""ab"#, r#""a"b"#] {
            assert!(
                matches!(split_fields(bad), Err(MountError::BadQuoting(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn bind_with_every_key() {
        let (_dir, src) = dir();
        let b = bind(&format!(
            "type=bind,source={src},target=/data,readonly,bind-propagation=rslave,consistency=cached"
        ));
        assert_eq!(b.source, PathBuf::from(&src));
        assert_eq!(b.target, Path::new("/data"));
        assert!(b.read_only);
        assert_eq!(b.propagation, Propagation::RSlave);
        assert_eq!(b.selinux_relabel, None);
    }

    #[test]
    fn aliases_and_case() {
        let (_dir, src) = dir();
        let b = bind(&format!(
            "TYPE=Bind,src={src},dst=/a,RO=true,Bind-Propagation=SHARED"
        ));
        assert_eq!((b.read_only, b.propagation), (true, Propagation::Shared));
        let b = bind(&format!("type=bind,source={src},destination=/a,ro=false"));
        assert!(!b.read_only);
        assert_eq!(b.propagation, Propagation::RPrivate);
    }

    #[test]
    fn readonly_values() {
        for (value, read_only) in [
            ("1", true),
            ("t", true),
            ("True", true),
            ("0", false),
            ("F", false),
        ] {
            assert_eq!(
                volume(&format!("src=v1,dst=/a,readonly={value}")).read_only,
                read_only
            );
        }
        assert_eq!(
            err("src=v1,dst=/a,readonly=yes"),
            "invalid value for readonly: yes"
        );
    }

    #[test]
    fn bind_source_must_exist() {
        let (_dir, src) = dir();
        assert_eq!(
            err(&format!("type=bind,src={src}/x,dst=/a")),
            format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {src}/x"
            )
        );
    }

    #[test]
    fn bind_source_is_required_and_absolute() {
        assert_eq!(
            err("type=bind,dst=/a"),
            "invalid mount config for type \"bind\": field Source must not be empty"
        );
        assert_eq!(
            err("type=bind,src=./data,dst=/a"),
            "invalid mount config for type \"bind\": invalid mount path: './data' mount path must be absolute"
        );
    }

    #[test]
    fn bad_propagation() {
        let (_dir, src) = dir();
        assert_eq!(
            err(&format!(
                "type=bind,src={src},dst=/a,bind-propagation=sideways"
            )),
            "invalid mount config for type \"bind\": invalid propagation mode: sideways"
        );
    }

    #[test]
    fn volume_with_every_key() {
        let v = volume(
            r#"type=volume,source=data,target=/db,ro,volume-nocopy,volume-opt=type=nfs,"volume-opt=o=addr=10.0.0.1,rw",volume-subpath=sub/./dir"#,
        );
        assert_eq!(v.name.as_deref(), Some("data"));
        assert_eq!(v.target, Path::new("/db"));
        assert!(v.read_only && v.nocopy);
        assert_eq!(
            v.driver_opts,
            [
                ("type".to_string(), "nfs".to_string()),
                ("o".to_string(), "addr=10.0.0.1,rw".to_string())
            ]
        );
        assert_eq!(v.subpath.as_deref(), Some(Path::new("sub/dir")));
        assert!(!volume("src=data,dst=/db,volume-nocopy=false").nocopy);
    }

    #[test]
    fn type_defaults_to_volume() {
        let v = volume("target=/cache");
        assert_eq!(v.name, None);
        assert_eq!(v.target, Path::new("/cache"));
    }

    #[test]
    fn volume_rules() {
        let cases = [
            (
                "src=../etc,dst=/a",
                "\"../etc\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path",
            ),
            (
                "dst=/a,volume-subpath=x",
                "invalid mount config for type \"volume\": must not set Subpath when using anonymous volumes",
            ),
            (
                "src=v1,dst=/a,volume-subpath=/x",
                "invalid mount config for type \"volume\": subpath must be a relative path within the volume: /x",
            ),
            (
                "src=v1,dst=/a,volume-subpath=a/../../b",
                "invalid mount config for type \"volume\": subpath must be a relative path within the volume: a/../../b",
            ),
            (
                "src=v1,dst=/a,volume-subpath=..",
                "invalid mount config for type \"volume\": subpath must be a relative path within the volume: ..",
            ),
            (
                "src=v1,dst=/a,volume-subpath=",
                "invalid mount config for type \"volume\": subpath must be a relative path within the volume: ",
            ),
            (
                "dst=/a,readonly",
                "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes",
            ),
            (
                "src=v1,dst=/a,volume-opt=novalue",
                "invalid value for volume-opt: novalue",
            ),
            (
                "src=v1,dst=/a,volume-opt==x",
                "invalid value for volume-opt: =x",
            ),
            (
                "src=v1,dst=/a,volume-opt=o=1,volume-opt=o=2",
                "volume-opt 'o' is given more than once",
            ),
            (
                "src=v1,dst=/a,volume-nocopy=maybe",
                "invalid value for volume-nocopy: maybe",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(err(text), message, "{text}");
        }
    }

    #[test]
    fn tmpfs_with_every_key() {
        let t = tmpfs("type=tmpfs,dst=/run,tmpfs-size=64m,tmpfs-mode=1777,readonly");
        assert_eq!(t.target, Path::new("/run"));
        assert_eq!(
            (t.size, t.mode, t.read_only),
            (Some(64 << 20), Some(0o1777), true)
        );
        assert_eq!(tmpfs("type=tmpfs,dst=/run,tmpfs-size=0").size, None);
    }

    #[test]
    fn tmpfs_rules() {
        let cases = [
            (
                "type=tmpfs,dst=/run,tmpfs-size=big",
                "invalid value for tmpfs-size: big",
            ),
            (
                "type=tmpfs,dst=/run,tmpfs-mode=888",
                "invalid value for tmpfs-mode: 888",
            ),
            (
                "type=tmpfs,src=x,dst=/run",
                "invalid mount config for type \"tmpfs\": field Source must not be specified",
            ),
            (
                "type=tmpfs,dst=run",
                "invalid mount config for type \"tmpfs\": invalid mount path: 'run' mount path must be absolute",
            ),
            (
                "type=tmpfs",
                "invalid mount config for type \"tmpfs\": field Target must not be empty",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(err(text), message, "{text}");
        }
    }

    #[test]
    fn target_rules() {
        assert_eq!(
            err("src=v1"),
            "invalid mount config for type \"volume\": field Target must not be empty"
        );
        assert_eq!(
            err("src=v1,dst=/"),
            "invalid mount config for type \"volume\": invalid specification: destination can't be '/'"
        );
        assert_eq!(
            err("src=v1,dst=p"),
            "invalid mount config for type \"volume\": invalid mount path: 'p' mount path must be absolute"
        );
    }

    #[test]
    fn syntax_errors() {
        let cases = [
            (
                "type=bind,src=/a,dst=/b,shiny",
                "invalid field 'shiny' must be a key=value pair",
            ),
            ("type", "invalid field 'type' must be a key=value pair"),
            ("type=bind,", "invalid field '' must be a key=value pair"),
            (
                "type=bind,colour=red",
                "unexpected key 'colour' in 'colour=red'",
            ),
            ("type=,dst=/a", "type is required"),
            (
                "type=npipe,dst=/a",
                "invalid mount config for type \"npipe\": mount type unknown",
            ),
            (
                "type=bind,src=/a,dst=/b,volume-nocopy",
                "cannot mix 'volume-*' options with mount type 'bind'",
            ),
            (
                "type=tmpfs,dst=/b,volume-opt=a=b",
                "cannot mix 'volume-*' options with mount type 'tmpfs'",
            ),
            (
                "src=v1,dst=/b,bind-propagation=shared",
                "cannot mix 'bind-*' options with mount type 'volume'",
            ),
            (
                "type=bind,src=/a,dst=/b,tmpfs-size=1m",
                "cannot mix 'tmpfs-*' options with mount type 'bind'",
            ),
            (
                "src=v1,dst=/b,consistency=eventual",
                "invalid value for consistency: eventual",
            ),
            (
                "src=v1,dst=/b,\"x",
                "invalid quoting in 'src=v1,dst=/b,\"x'",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(err(text), message, "{text}");
        }
    }

    #[test]
    fn repeated_keys_are_refused() {
        let cases = [
            ("src=v1,source=v2,dst=/a", "source"),
            ("src=v1,dst=/a,target=/b", "target"),
            ("src=v1,dst=/a,ro,readonly=false", "readonly"),
            ("type=volume,type=bind,dst=/a", "type"),
            (
                "type=tmpfs,dst=/a,tmpfs-size=1m,tmpfs-size=2m",
                "tmpfs-size",
            ),
        ];
        for (text, key) in cases {
            assert_eq!(
                err(text),
                format!("'{key}' is given more than once in '{text}'")
            );
        }
    }
}
