//! Volume names as docker takes them: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`. A
//! valid name is a single safe path component (no `/`, no `..`).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::VolumeError;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VolumeName(String);

impl VolumeName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A random 64-hex name, as docker gives anonymous volumes.
    pub fn random() -> VolumeName {
        let mut bytes = [0u8; 32];
        // getrandom(2) never fails for 32 bytes once the pool is ready.
        let filled = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
        if filled != bytes.len() as isize {
            // Fall back on time and pid: unique enough for a name.
            let seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
                ^ u128::from(std::process::id());
            bytes[..16].copy_from_slice(&seed.to_le_bytes());
        }
        VolumeName(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }
}

impl TryFrom<String> for VolumeName {
    type Error = VolumeError;

    fn try_from(name: String) -> Result<Self, VolumeError> {
        if !crate::mounts::is_valid_volume_name(&name) || name.len() > 255 {
            return Err(VolumeError::InvalidName(name));
        }
        Ok(VolumeName(name))
    }
}

impl std::str::FromStr for VolumeName {
    type Err = VolumeError;
    fn from_str(s: &str) -> Result<Self, VolumeError> {
        VolumeName::try_from(s.to_owned())
    }
}

impl From<VolumeName> for String {
    fn from(n: VolumeName) -> String {
        n.0
    }
}

impl fmt::Display for VolumeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        for good in ["db", "my-vol_1.data", "0a"] {
            assert!(good.parse::<VolumeName>().is_ok(), "{good}");
        }
        for bad in ["", "a", "..", "../x", "a/b", "-a", ".a", "_a", "a b", "é1"] {
            assert!(bad.parse::<VolumeName>().is_err(), "{bad:?}");
        }
        let random = VolumeName::random();
        assert_eq!(random.as_str().len(), 64);
        assert!(random.as_str().parse::<VolumeName>().is_ok());
        assert_ne!(random, VolumeName::random());
    }
}
