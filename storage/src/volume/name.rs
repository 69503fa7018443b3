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
        VolumeName(crate::random::hex_id())
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
