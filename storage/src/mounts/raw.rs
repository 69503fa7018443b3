//! The one road from a flag's words to a [`MountSpec`]: `-v` and `--mount`
//! fill a [`RawMount`] (as docker's CLI fills its `mount.Mount`), and
//! [`RawMount::finish`] applies docker's checks of a mount's configuration
//! once, in docker's order, so both flags refuse the same things alike.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use super::{
    BindMount, ConfigProblem, MountError, MountKind, MountSpec, Propagation, Relabel, TmpfsMount,
    VolumeMount,
};

/// `volume-*` options; present (`Some`) once any was given.
#[derive(Debug, Default)]
pub(super) struct RawVolumeOptions {
    pub nocopy: bool,
    pub driver_opts: Vec<(String, String)>,
    pub subpath: Option<String>,
}

/// `tmpfs-*` options; present (`Some`) once any was given.
#[derive(Debug, Default)]
pub(super) struct RawTmpfsOptions {
    pub size: Option<u64>,
    pub mode: Option<u32>,
}

/// A mount as written, before it is checked. Empty strings mean "not given",
/// as in docker.
#[derive(Debug)]
pub(super) struct RawMount {
    pub kind: MountKind,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub relabel: Option<Relabel>,
    /// Bind options: the propagation word, not yet checked.
    pub propagation: Option<String>,
    pub volume: Option<RawVolumeOptions>,
    pub tmpfs: Option<RawTmpfsOptions>,
}

impl RawMount {
    pub fn new(kind: MountKind) -> RawMount {
        RawMount {
            kind,
            source: String::new(),
            target: String::new(),
            read_only: false,
            relabel: None,
            propagation: None,
            volume: None,
            tmpfs: None,
        }
    }

    pub fn finish(self) -> Result<MountSpec, MountError> {
        let kind = self.kind;
        let config = |problem| MountError::Config { kind, problem };
        let target = clean_target(&self.target).map_err(config)?;
        match kind {
            MountKind::Bind => self.finish_bind(target).map_err(config),
            MountKind::Volume => self.finish_volume(target),
            MountKind::Tmpfs => self.finish_tmpfs(target).map_err(config),
        }
    }

    fn finish_bind(self, target: PathBuf) -> Result<MountSpec, ConfigProblem> {
        if self.source.is_empty() {
            return Err(ConfigProblem::MissingField("Source"));
        }
        let propagation = match self.propagation {
            None => Propagation::default(),
            Some(word) => {
                Propagation::from_word(&word).ok_or(ConfigProblem::InvalidPropagation(word))?
            }
        };
        if self.volume.is_some() {
            return Err(ConfigProblem::ExtraField("VolumeOptions"));
        }
        if self.tmpfs.is_some() {
            return Err(ConfigProblem::ExtraField("TmpfsOptions"));
        }
        if !self.source.starts_with('/') {
            return Err(ConfigProblem::NotAbsolute(self.source));
        }
        let source = clean_absolute(&self.source);
        match std::fs::metadata(&source) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                return Err(ConfigProblem::BindSourceMissing(source));
            }
            Err(e) => {
                return Err(ConfigProblem::BindSourceStat {
                    path: source,
                    source: e,
                });
            }
        }
        Ok(MountSpec::Bind(BindMount {
            source,
            target,
            read_only: self.read_only,
            propagation,
            selinux_relabel: self.relabel,
        }))
    }

    fn finish_volume(self, target: PathBuf) -> Result<MountSpec, MountError> {
        let config = |problem| MountError::Config {
            kind: MountKind::Volume,
            problem,
        };
        if self.propagation.is_some() {
            return Err(config(ConfigProblem::ExtraField("BindOptions")));
        }
        if self.tmpfs.is_some() {
            return Err(config(ConfigProblem::ExtraField("TmpfsOptions")));
        }
        let options = self.volume.unwrap_or_default();
        let name = if self.source.is_empty() {
            None
        } else if is_valid_volume_name(&self.source) {
            Some(self.source)
        } else {
            return Err(MountError::InvalidVolumeName(self.source));
        };
        let subpath = match options.subpath {
            None => None,
            Some(_) if name.is_none() => {
                return Err(config(ConfigProblem::AnonymousWithSubpath));
            }
            Some(text) => {
                Some(clean_subpath(&text).ok_or(config(ConfigProblem::InvalidSubpath(text)))?)
            }
        };
        if self.read_only && name.is_none() {
            return Err(config(ConfigProblem::AnonymousReadOnly));
        }
        if let Some(relabel) = self.relabel {
            // VolumeMount has no place for it: a volume's data is muelle's,
            // labelled when the volume is created.
            tracing::info!(
                ?relabel,
                ?target,
                "SELinux relabel option on a volume ignored"
            );
        }
        Ok(MountSpec::Volume(VolumeMount {
            name,
            target,
            read_only: self.read_only,
            nocopy: options.nocopy,
            driver_opts: options.driver_opts,
            subpath,
        }))
    }

    fn finish_tmpfs(self, target: PathBuf) -> Result<MountSpec, ConfigProblem> {
        if self.propagation.is_some() {
            return Err(ConfigProblem::ExtraField("BindOptions"));
        }
        if !self.source.is_empty() {
            return Err(ConfigProblem::ExtraField("Source"));
        }
        if self.volume.is_some() {
            return Err(ConfigProblem::ExtraField("VolumeOptions"));
        }
        let options = self.tmpfs.unwrap_or_default();
        Ok(MountSpec::Tmpfs(TmpfsMount {
            target,
            size: options.size,
            mode: options.mode,
            read_only: self.read_only,
        }))
    }
}

/// Whether `name` is a valid volume name: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`
/// (so at least two characters, and never `..` or a `/`).
pub fn is_valid_volume_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest: Vec<u8> = bytes.collect();
    first_ok
        && !rest.is_empty()
        && rest
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A mount target: required, absolute, not `/` once clean.
pub(super) fn clean_target(text: &str) -> Result<PathBuf, ConfigProblem> {
    if text.is_empty() {
        return Err(ConfigProblem::MissingField("Target"));
    }
    if !text.starts_with('/') {
        return Err(ConfigProblem::NotAbsolute(text.to_string()));
    }
    let target = clean_absolute(text);
    if target == Path::new("/") {
        return Err(ConfigProblem::RootTarget);
    }
    Ok(target)
}

/// Lexical clean of an absolute path, as Go's `path.Clean`: repeated `/`,
/// `.` and trailing `/` go, `..` removes the component before it (and stays
/// at `/`). Nothing on disk is read.
pub(super) fn clean_absolute(text: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in Path::new(text).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// A volume subpath: relative, no `..`, not empty once `.` are dropped.
fn clean_subpath(text: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in Path::new(text).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names() {
        for good in ["ab", "data", "my-vol_1.2", "0x", "A.b"] {
            assert!(is_valid_volume_name(good), "{good}");
        }
        for bad in [
            "", "a", "..", ".a", "-a", "_a", "a/b", "a b", "a:b", "/abs", "é1",
        ] {
            assert!(!is_valid_volume_name(bad), "{bad}");
        }
    }

    #[test]
    fn clean_absolute_is_lexical() {
        assert_eq!(clean_absolute("/a//b/./c/"), Path::new("/a/b/c"));
        assert_eq!(clean_absolute("/a/../b"), Path::new("/b"));
        assert_eq!(clean_absolute("/../.."), Path::new("/"));
    }

    #[test]
    fn target_rules() {
        assert_eq!(clean_target("/data/").unwrap(), Path::new("/data"));
        assert!(matches!(
            clean_target(""),
            Err(ConfigProblem::MissingField("Target"))
        ));
        assert!(matches!(clean_target("data"), Err(ConfigProblem::NotAbsolute(p)) if p == "data"));
        assert!(matches!(clean_target("/"), Err(ConfigProblem::RootTarget)));
        assert!(matches!(
            clean_target("/a/.."),
            Err(ConfigProblem::RootTarget)
        ));
    }

    #[test]
    fn subpath_rules() {
        assert_eq!(clean_subpath("a/./b/").unwrap(), Path::new("a/b"));
        for bad in ["", ".", "/a", "../a", "a/../b", "a/.."] {
            assert_eq!(clean_subpath(bad), None, "{bad}");
        }
    }
}
