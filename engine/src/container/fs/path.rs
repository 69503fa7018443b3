//! Paths as `docker cp` reads them: a container path is relative to the
//! container's `/` and cleaned lexically (`..` stops at `/`), and its end
//! says what is copied: `dir` the folder itself, `dir/` the same but only
//! if it is a folder (a symlink there is followed), `dir/.` its content.
//! A host path is the user's own, relative to the working directory.
//!
//! These are only names: every container path is resolved by the kernel
//! inside the container's root (see `root`), never joined to a host path.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// What the end of a path says about the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// `a/b`: the entry itself, whatever it is.
    Plain,
    /// `a/b/`: the folder (a symlink there followed), by its own name.
    Slash,
    /// `a/b/.`: the content of the folder.
    Dot,
}

impl Tail {
    pub fn of(text: &[u8]) -> Tail {
        if text == b"." || text.ends_with(b"/.") {
            Tail::Dot
        } else if text.ends_with(b"/") {
            Tail::Slash
        } else {
            Tail::Plain
        }
    }

    /// docker's `assertsDirectory`: the user said it is a folder.
    pub fn asserts_dir(self) -> bool {
        self != Tail::Plain
    }
}

/// A path in the container, absolute and clean, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPath {
    path: PathBuf,
    tail: Tail,
}

impl ContainerPath {
    pub fn parse(text: &str) -> ContainerPath {
        ContainerPath {
            path: clean(Path::new("/"), Path::new(text)),
            tail: Tail::of(text.as_bytes()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `/` is its own content: nothing names it.
    pub fn tail(&self) -> Tail {
        if self.path == Path::new("/") {
            Tail::Dot
        } else {
            self.tail
        }
    }

    /// The parent folder and the last component (`/` has none).
    pub fn split(&self) -> Option<(PathBuf, OsString)> {
        split(&self.path)
    }
}

/// `path` (absolute, clean) as its parent and last component.
pub fn split(path: &Path) -> Option<(PathBuf, OsString)> {
    let name = path.file_name()?.to_os_string();
    let parent = path.parent().unwrap_or(Path::new("/")).to_owned();
    Some((parent, name))
}

/// `rel` against the folder `base` (absolute, clean), cleaned lexically:
/// an absolute `rel` starts again from `/`, `..` never climbs above `/`.
pub fn clean(base: &Path, rel: &Path) -> PathBuf {
    let mut parts: Vec<&OsStr> = base
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p),
            _ => None,
        })
        .collect();
    for c in rel.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => parts.clear(),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop();
            }
            Component::Normal(p) => parts.push(p),
        }
    }
    let mut out = PathBuf::from("/");
    out.extend(parts);
    out
}

/// The name an entry is archived under when it is copied by its own name:
/// the last component the user typed (docker renames a followed symlink's
/// target after the link).
pub fn archive_name(path: &Path, tail: Tail) -> PathBuf {
    match (tail, path.file_name()) {
        (Tail::Dot, _) | (_, None) => PathBuf::from("."),
        (_, Some(name)) => PathBuf::from(name),
    }
}

/// A host path's text as `Tail` reads it.
pub fn host_tail(path: &Path) -> Tail {
    Tail::of(path.as_os_str().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_are_absolute_and_clean() {
        let p = ContainerPath::parse("tmp/foo/");
        assert_eq!(p.path(), Path::new("/tmp/foo"));
        assert_eq!(p.tail(), Tail::Slash);
        let p = ContainerPath::parse("/tmp/../../etc/.");
        assert_eq!(p.path(), Path::new("/etc"));
        assert_eq!(p.tail(), Tail::Dot);
        let p = ContainerPath::parse("/");
        assert_eq!(p.tail(), Tail::Dot);
        assert_eq!(p.split(), None);
        let p = ContainerPath::parse("/a/b");
        assert_eq!(p.split(), Some((PathBuf::from("/a"), OsString::from("b"))));
    }

    #[test]
    fn link_targets_resolve_lexically_below_the_root() {
        assert_eq!(
            clean(Path::new("/a/b"), Path::new("../../../../etc")),
            Path::new("/etc")
        );
        assert_eq!(
            clean(Path::new("/a"), Path::new("/x/./y")),
            Path::new("/x/y")
        );
        assert_eq!(clean(Path::new("/a"), Path::new("c")), Path::new("/a/c"));
    }

    #[test]
    fn archive_names_follow_what_was_typed() {
        assert_eq!(
            archive_name(Path::new("/etc"), Tail::Plain),
            Path::new("etc")
        );
        assert_eq!(
            archive_name(Path::new("/etc"), Tail::Slash),
            Path::new("etc")
        );
        assert_eq!(archive_name(Path::new("/etc"), Tail::Dot), Path::new("."));
        assert_eq!(archive_name(Path::new("/"), Tail::Plain), Path::new("."));
    }
}
