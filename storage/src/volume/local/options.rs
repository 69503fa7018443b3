//! docker's options for the `local` driver: `type`, `device` and `o`, as
//! `mount -t TYPE -o O DEVICE` would take them. A volume with options has
//! its filesystem mounted on its data folder while containers use it:
//!
//! ```text
//! -o type=tmpfs -o device=tmpfs -o o=size=100m,uid=1000
//! -o type=none  -o device=/srv/data -o o=bind
//! -o type=ext4  -o device=/dev/sdb1
//! ```
//!
//! A host path given as `device` (a bind source or a block device) is
//! judged by the operator's bind policy, as a `-v` bind would be, both
//! when the volume is created and each time it is mounted.

use std::collections::BTreeMap;
use std::path::PathBuf;

use nix::mount::MsFlags;

use crate::volume::{Result, VolumeError};

const KEYS: [&str; 3] = ["type", "device", "o"];

/// A parsed `type`/`device`/`o` triple.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountOptions {
    pub fs_type: String,
    pub device: String,
    pub flags: MsFlags,
    /// What of `o` is not a flag, for the filesystem (`size=100m`).
    pub data: String,
    pub bind: bool,
}

impl MountOptions {
    /// None for a plain volume (no options); the options' problem
    /// otherwise, named as docker's users would look for it.
    pub fn parse(options: &BTreeMap<String, String>) -> Result<Option<MountOptions>> {
        if let Some(key) = options.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(invalid(key, "the local driver takes type, device and o"));
        }
        if options.is_empty() {
            return Ok(None);
        }
        let fs_type = options.get("type").cloned().unwrap_or_default();
        let o = options.get("o").cloned().unwrap_or_default();
        let (flags, data, bind) = split_o(&o)?;
        let device = match options.get("device") {
            Some(d) => d.clone(),
            None if fs_type == "tmpfs" => "tmpfs".to_owned(),
            None => {
                return Err(invalid(
                    "device",
                    "give device with type (except type=tmpfs)",
                ));
            }
        };
        if fs_type.is_empty() && !bind {
            return Err(invalid("type", "give type (or o=bind) with device"));
        }
        if fs_type.contains(['\0', ',']) || device.contains('\0') {
            return Err(invalid("type", "holds a NUL or a comma"));
        }
        if bind && !device.starts_with('/') {
            return Err(invalid(
                "device",
                "a bind's device is an absolute host path",
            ));
        }
        Ok(Some(MountOptions {
            fs_type,
            device,
            flags,
            data,
            bind,
        }))
    }

    /// The host path the operator's policy must judge: a bind source or a
    /// device node. Network sources (`:/export`, `//server/share`) and
    /// pseudo devices (`tmpfs`) are not host paths.
    pub fn host_path(&self) -> Option<PathBuf> {
        (self.device.starts_with('/') && !self.device.starts_with("//"))
            .then(|| PathBuf::from(&self.device))
    }
}

fn invalid(key: &str, reason: &str) -> VolumeError {
    VolumeError::InvalidOption {
        driver: "local".into(),
        key: key.into(),
        reason: reason.into(),
    }
}

/// Splits `o` into mount flags and filesystem data, as mount(8) does.
fn split_o(o: &str) -> Result<(MsFlags, String, bool)> {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    let mut bind = false;
    for word in o.split(',').filter(|w| !w.is_empty()) {
        let (set, clear) = match word {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "bind" => {
                bind = true;
                (MsFlags::MS_BIND, MsFlags::empty())
            }
            "rbind" => {
                bind = true;
                (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty())
            }
            // These would change mounts other than the volume's.
            "remount" | "move" | "shared" | "rshared" | "slave" | "rslave" | "private"
            | "rprivate" | "unbindable" | "runbindable" => {
                return Err(invalid(
                    "o",
                    &format!("{word} is not a volume mount option"),
                ));
            }
            other => {
                data.push(other);
                continue;
            }
        };
        flags = (flags | set) - clear;
    }
    Ok((flags, data.join(","), bind))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tmpfs_with_size_splits_flags_from_data() {
        let m = MountOptions::parse(&opts(&[("type", "tmpfs"), ("o", "size=10m,ro,uid=5")]))
            .expect("parse")
            .expect("options");
        assert_eq!(m.device, "tmpfs");
        assert_eq!(m.data, "size=10m,uid=5");
        assert_eq!(m.flags, MsFlags::MS_RDONLY);
        assert_eq!(m.host_path(), None);
    }

    #[test]
    fn a_bind_is_a_host_path_for_the_policy() {
        let m = MountOptions::parse(&opts(&[
            ("type", "none"),
            ("device", "/srv/x"),
            ("o", "bind"),
        ]))
        .expect("parse")
        .expect("options");
        assert!(m.bind);
        assert_eq!(m.host_path(), Some(PathBuf::from("/srv/x")));
        let nfs = MountOptions::parse(&opts(&[
            ("type", "nfs"),
            ("device", ":/export"),
            ("o", "addr=10.0.0.1"),
        ]))
        .expect("parse")
        .expect("options");
        assert_eq!(nfs.host_path(), None);
    }

    #[test]
    fn bad_options_name_the_key() {
        let err = |pairs: &[(&str, &str)]| {
            MountOptions::parse(&opts(pairs))
                .expect_err("refused")
                .to_string()
        };
        assert!(err(&[("size", "1")]).contains("\"size\""));
        assert!(err(&[("type", "ext4")]).contains("\"device\""));
        assert!(err(&[("device", "/dev/sdb")]).contains("\"type\""));
        assert!(err(&[("type", "none"), ("device", "rel"), ("o", "bind")]).contains("absolute"));
        assert!(err(&[("type", "tmpfs"), ("o", "remount")]).contains("remount"));
        assert_eq!(MountOptions::parse(&opts(&[])).expect("plain"), None);
    }
}
