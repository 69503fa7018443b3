//! `--volumes-from CONTAINER[:ro|:rw]`: a new container gets another's
//! volume and bind mounts, at the same places. As docker: the user's own
//! mounts win on the same target; `ro`/`rw` override each mount's mode,
//! otherwise it is kept; tmpfs mounts are not shared.

use std::path::Path;

use storage::mounts::MountSpec;
use storage::store::Store;

use super::{EngineError, Result, lookup};

/// The mounts `entries` bring, skipping targets in `taken` (and those an
/// earlier entry brought).
pub(super) fn inherited(
    store: &Store,
    entries: &[String],
    taken: &[&Path],
) -> Result<Vec<MountSpec>> {
    let mut mounts: Vec<MountSpec> = Vec::new();
    for entry in entries {
        let (name, mode) = match entry.rsplit_once(':') {
            Some((name, mode)) => (name, Some(parse_mode(mode)?)),
            None => (entry.as_str(), None),
        };
        let source = lookup(store, name)?;
        for mount in &source.mounts {
            let target = mount.target();
            if taken.contains(&target) || mounts.iter().any(|m| m.target() == target) {
                continue;
            }
            let mut mount = mount.clone();
            match &mut mount {
                MountSpec::Volume(v) => v.read_only = mode.unwrap_or(v.read_only),
                MountSpec::Bind(b) => b.read_only = mode.unwrap_or(b.read_only),
                MountSpec::Tmpfs(_) => continue,
            }
            mounts.push(mount);
        }
    }
    Ok(mounts)
}

/// `ro` (true) or `rw` (false); docker also takes SELinux's `z`/`Z`,
/// which mean nothing here and are refused rather than ignored.
fn parse_mode(mode: &str) -> Result<bool> {
    match mode {
        "ro" => Ok(true),
        "rw" => Ok(false),
        _ => Err(EngineError::InvalidMode(mode.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_like_docker() {
        assert!(parse_mode("ro").unwrap());
        assert!(!parse_mode("rw").unwrap());
        assert_eq!(
            parse_mode("rx").unwrap_err().to_string(),
            "invalid mode: rx"
        );
    }
}
