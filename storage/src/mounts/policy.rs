//! The operator's bind-mount policy: which host paths a container may reach
//! through a bind, from the `[mounts]` section of `/etc/muelle/muelle.toml`.
//!
//! ```toml
//! [mounts]
//! deny = ["/etc", "/var/lib/muelle"]     # never bound (default: none, as docker)
//! allow_only_under = ["/srv", "/home"]   # if set, binds only under these roots
//! read_only = ["/srv/shared"]            # binds reaching these are forced read-only
//! ```
//!
//! What [`BindPolicy::check`] guarantees:
//! - it judges the bind's source after resolving every symlink in it, and
//!   replaces the source with that resolved path, so what is mounted is what
//!   was judged (`/tmp/link -> /etc` is judged, and mounted, as `/etc`);
//! - roots match whole path components (`/etcfoo` is not under `/etc`);
//!   a root written through a symlink matches both as written and resolved;
//! - a bind that *contains* a denied root is refused too (binding `/` would
//!   reach `/etc`), and one that contains a read-only root is made read-only
//!   as a whole;
//! - a refusal names the file and the rule that refused it.
//!
//! Other sections of the file belong to other parts of muelle and are not
//! read here; an unknown key inside `[mounts]` is an error naming it.

use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::BindMount;
use super::raw::clean_absolute;

/// Where the operator's configuration lives.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/muelle/muelle.toml";

/// The `[mounts]` rules. The default has none: every bind is allowed.
#[derive(Debug, Clone, Default)]
pub struct BindPolicy {
    /// The file the rules came from, named in refusals.
    origin: PathBuf,
    deny: Vec<Root>,
    allow_only_under: Option<Vec<Root>>,
    read_only: Vec<Root>,
}

/// A root path of a rule: as the operator wrote it (cleaned), and where it
/// resolves on the host when that differs.
#[derive(Debug, Clone)]
struct Root {
    written: PathBuf,
    resolved: Option<PathBuf>,
}

impl Root {
    fn new(written: PathBuf) -> Root {
        let resolved = std::fs::canonicalize(&written)
            .ok()
            .filter(|resolved| *resolved != written);
        Root { written, resolved }
    }

    fn paths(&self) -> impl Iterator<Item = &Path> {
        std::iter::once(self.written.as_path()).chain(self.resolved.as_deref())
    }

    /// `path` is this root or below it.
    fn covers(&self, path: &Path) -> bool {
        self.paths().any(|root| path.starts_with(root))
    }

    /// This root is strictly below `path`.
    fn is_inside(&self, path: &Path) -> bool {
        self.paths()
            .any(|root| root.starts_with(path) && root != path)
    }
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    mounts: MountsSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MountsSection {
    #[serde(default)]
    deny: Vec<String>,
    allow_only_under: Option<Vec<String>>,
    #[serde(default)]
    read_only: Vec<String>,
}

impl BindPolicy {
    /// Read the policy from `path`; a missing file is the default policy.
    pub fn load(path: &Path) -> Result<BindPolicy, PolicyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => BindPolicy::parse(&text, path),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(BindPolicy {
                origin: path.to_path_buf(),
                ..BindPolicy::default()
            }),
            Err(source) => Err(PolicyError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The policy in `text` (a whole muelle.toml); refusals name the file
    /// `muelle.toml`.
    pub fn from_toml_str(text: &str) -> Result<BindPolicy, PolicyError> {
        BindPolicy::parse(text, Path::new("muelle.toml"))
    }

    fn parse(text: &str, origin: &Path) -> Result<BindPolicy, PolicyError> {
        let file: ConfigFile = toml::from_str(text).map_err(|source| PolicyError::Parse {
            path: origin.to_path_buf(),
            source: Box::new(source),
        })?;
        let roots = |key: &'static str, entries: Vec<String>| {
            entries
                .into_iter()
                .map(|entry| {
                    if entry.starts_with('/') {
                        Ok(Root::new(clean_absolute(&entry)))
                    } else {
                        Err(PolicyError::RelativeRoot {
                            path: origin.to_path_buf(),
                            key,
                            entry,
                        })
                    }
                })
                .collect::<Result<Vec<Root>, PolicyError>>()
        };
        let mounts = file.mounts;
        Ok(BindPolicy {
            origin: origin.to_path_buf(),
            deny: roots("deny", mounts.deny)?,
            allow_only_under: mounts
                .allow_only_under
                .map(|entries| roots("allow_only_under", entries))
                .transpose()?,
            read_only: roots("read_only", mounts.read_only)?,
        })
    }

    /// Judge one bind. On success its source is the resolved host path, and
    /// it is read-only when a `read_only` rule says so; the note (when the
    /// rule changed it) is for the caller to print.
    pub fn check(&self, bind: &mut BindMount) -> Result<Option<ReadOnlyNote>, PolicyError> {
        let requested = bind.source.clone();
        let resolved =
            std::fs::canonicalize(&requested).map_err(|source| PolicyError::Resolve {
                path: requested.clone(),
                source,
            })?;
        let refused = |rule| PolicyError::Refused {
            requested: requested.clone(),
            resolved: resolved.clone(),
            origin: self.origin.clone(),
            rule,
        };
        if let Some(root) = self.deny.iter().find(|root| root.covers(&resolved)) {
            return Err(refused(Refusal::Denied(root.written.clone())));
        }
        if let Some(root) = self.deny.iter().find(|root| root.is_inside(&resolved)) {
            return Err(refused(Refusal::DeniedInside(root.written.clone())));
        }
        if let Some(allowed) = &self.allow_only_under
            && !allowed.iter().any(|root| root.covers(&resolved))
        {
            let roots = allowed.iter().map(|root| root.written.clone()).collect();
            return Err(refused(Refusal::NotAllowed(roots)));
        }
        bind.source = resolved;
        if bind.read_only {
            return Ok(None);
        }
        let rule = self
            .read_only
            .iter()
            .find(|root| root.covers(&bind.source) || root.is_inside(&bind.source));
        Ok(rule.map(|root| {
            bind.read_only = true;
            ReadOnlyNote {
                requested,
                resolved: bind.source.clone(),
                origin: self.origin.clone(),
                root: root.written.clone(),
            }
        }))
    }
}

/// A bind the policy made read-only. Displays as a line for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnlyNote {
    pub requested: PathBuf,
    pub resolved: PathBuf,
    pub origin: PathBuf,
    /// The `read_only` root that matched.
    pub root: PathBuf,
}

impl fmt::Display for ReadOnlyNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bind mount of {} made read-only by {}: mounts.read_only contains \"{}\"",
            shown(&self.requested, &self.resolved),
            self.origin.display(),
            self.root.display()
        )
    }
}

/// The rule that refused a bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The source is a denied root or below it.
    Denied(PathBuf),
    /// A denied root is below the source.
    DeniedInside(PathBuf),
    /// `allow_only_under` is set and none of its roots holds the source.
    NotAllowed(Vec<PathBuf>),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Denied(root) => write!(f, "mounts.deny contains \"{}\"", root.display()),
            Refusal::DeniedInside(root) => write!(
                f,
                "mounts.deny contains \"{}\", which is inside it",
                root.display()
            ),
            Refusal::NotAllowed(roots) if roots.is_empty() => {
                f.write_str("mounts.allow_only_under is empty")
            }
            Refusal::NotAllowed(roots) => {
                f.write_str("mounts.allow_only_under holds only ")?;
                for (i, root) in roots.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}\"{}\"", root.display())?;
                }
                Ok(())
            }
        }
    }
}

/// `/x`, or `/x (resolves to /y)` when a symlink was followed.
fn shown(requested: &Path, resolved: &Path) -> String {
    if requested == resolved {
        requested.display().to_string()
    } else {
        format!(
            "{} (resolves to {})",
            requested.display(),
            resolved.display()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", .path.display())]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{}: mounts.{key} entry \"{entry}\" is not an absolute path", .path.display())]
    RelativeRoot {
        path: PathBuf,
        key: &'static str,
        entry: String,
    },
    #[error("cannot resolve bind source {}: {source}", .path.display())]
    Resolve {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "bind mount of {} refused by {}: {rule}",
        shown(.requested, .resolved),
        .origin.display()
    )]
    Refused {
        requested: PathBuf,
        resolved: PathBuf,
        origin: PathBuf,
        rule: Refusal,
    },
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::mounts::Propagation;

    fn bind(source: &Path) -> BindMount {
        BindMount {
            source: source.to_path_buf(),
            target: "/data".into(),
            read_only: false,
            propagation: Propagation::default(),
            selinux_relabel: None,
        }
    }

    fn policy(toml: &str) -> BindPolicy {
        BindPolicy::from_toml_str(toml).unwrap()
    }

    /// A temporary folder (resolved, as /tmp may be a symlink) with `dirs`.
    fn tree(dirs: &[&str]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        for d in dirs {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        (dir, root)
    }

    fn refusal(policy: &BindPolicy, source: &Path) -> String {
        policy.check(&mut bind(source)).unwrap_err().to_string()
    }

    #[test]
    fn default_policy_allows_everything() {
        let (_dir, root) = tree(&["a"]);
        let mut b = bind(&root.join("a/../a"));
        assert_eq!(BindPolicy::default().check(&mut b).unwrap(), None);
        assert_eq!(b.source, root.join("a"), "source resolved");
        assert!(!b.read_only);
        assert_eq!(policy("").check(&mut bind(Path::new("/"))).unwrap(), None);
    }

    #[test]
    fn deny_names_the_rule() {
        let p = policy("[mounts]\ndeny = [\"/etc\", \"/var/lib/muelle\"]\n");
        assert_eq!(
            refusal(&p, Path::new("/etc/passwd")),
            "bind mount of /etc/passwd refused by muelle.toml: mounts.deny contains \"/etc\""
        );
        assert_eq!(
            refusal(&p, Path::new("/etc")),
            "bind mount of /etc refused by muelle.toml: mounts.deny contains \"/etc\""
        );
    }

    #[test]
    fn deny_matches_components_not_text() {
        let (_dir, root) = tree(&["etc", "etcfoo"]);
        let p = policy(&format!("[mounts]\ndeny = [\"{}/etc/\"]\n", root.display()));
        p.check(&mut bind(&root.join("etcfoo"))).unwrap();
        assert!(p.check(&mut bind(&root.join("etc"))).is_err());
    }

    #[test]
    fn deny_sees_through_symlinks_in_the_source() {
        let (_dir, root) = tree(&[]);
        symlink("/etc", root.join("link")).unwrap();
        let p = policy("[mounts]\ndeny = [\"/etc\"]\n");
        assert_eq!(
            refusal(&p, &root.join("link")),
            format!(
                "bind mount of {} (resolves to /etc) refused by muelle.toml: mounts.deny contains \"/etc\"",
                root.join("link").display()
            )
        );
    }

    #[test]
    fn deny_root_written_through_a_symlink_still_matches() {
        let (_dir, root) = tree(&["real/secret"]);
        symlink(root.join("real"), root.join("alias")).unwrap();
        let p = policy(&format!(
            "[mounts]\ndeny = [\"{}/alias\"]\n",
            root.display()
        ));
        assert!(matches!(
            p.check(&mut bind(&root.join("real/secret"))),
            Err(PolicyError::Refused {
                rule: Refusal::Denied(_),
                ..
            })
        ));
    }

    #[test]
    fn deny_refuses_a_bind_that_contains_a_denied_root() {
        let (_dir, root) = tree(&["var/lib/muelle", "var/log"]);
        let p = policy(&format!(
            "[mounts]\ndeny = [\"{}/var/lib/muelle\"]\n",
            root.display()
        ));
        assert_eq!(
            refusal(&p, &root.join("var")),
            format!(
                "bind mount of {0}/var refused by muelle.toml: mounts.deny contains \"{0}/var/lib/muelle\", which is inside it",
                root.display()
            )
        );
        p.check(&mut bind(&root.join("var/log"))).unwrap();
    }

    #[test]
    fn allow_only_under() {
        let (_dir, root) = tree(&["srv/app", "home", "opt", "srvx"]);
        let p = policy(&format!(
            "[mounts]\nallow_only_under = [\"{0}/srv\", \"{0}/home\"]\n",
            root.display()
        ));
        p.check(&mut bind(&root.join("srv/app"))).unwrap();
        p.check(&mut bind(&root.join("home"))).unwrap();
        assert_eq!(
            refusal(&p, &root.join("opt")),
            format!(
                "bind mount of {0}/opt refused by muelle.toml: mounts.allow_only_under holds only \"{0}/srv\", \"{0}/home\"",
                root.display()
            )
        );
        assert!(p.check(&mut bind(&root.join("srvx"))).is_err());
        assert!(
            p.check(&mut bind(&root)).is_err(),
            "a parent of a root is not under it"
        );
    }

    #[test]
    fn allow_only_under_sees_through_symlinks() {
        let (_dir, root) = tree(&["srv"]);
        symlink("/etc", root.join("srv/escape")).unwrap();
        let p = policy(&format!(
            "[mounts]\nallow_only_under = [\"{}/srv\"]\n",
            root.display()
        ));
        assert!(matches!(
            p.check(&mut bind(&root.join("srv/escape"))),
            Err(PolicyError::Refused {
                rule: Refusal::NotAllowed(_),
                ..
            })
        ));
    }

    #[test]
    fn empty_allow_only_under_allows_nothing() {
        let (_dir, root) = tree(&[]);
        let p = policy("[mounts]\nallow_only_under = []\n");
        assert_eq!(
            refusal(&p, &root),
            format!(
                "bind mount of {} refused by muelle.toml: mounts.allow_only_under is empty",
                root.display()
            )
        );
    }

    #[test]
    fn deny_wins_over_allow() {
        let (_dir, root) = tree(&["srv/secret"]);
        let p = policy(&format!(
            "[mounts]\nallow_only_under = [\"{0}/srv\"]\ndeny = [\"{0}/srv/secret\"]\n",
            root.display()
        ));
        assert!(matches!(
            p.check(&mut bind(&root.join("srv/secret"))),
            Err(PolicyError::Refused {
                rule: Refusal::Denied(_),
                ..
            })
        ));
    }

    #[test]
    fn read_only_is_forced_with_a_note() {
        let (_dir, root) = tree(&["srv/shared/x", "srv/own"]);
        let p = policy(&format!(
            "[mounts]\nread_only = [\"{}/srv/shared\"]\n",
            root.display()
        ));

        let mut b = bind(&root.join("srv/shared/x"));
        let note = p.check(&mut b).unwrap().expect("a note");
        assert!(b.read_only);
        assert_eq!(
            note.to_string(),
            format!(
                "bind mount of {0}/srv/shared/x made read-only by muelle.toml: mounts.read_only contains \"{0}/srv/shared\"",
                root.display()
            )
        );

        let mut b = bind(&root.join("srv"));
        assert!(
            p.check(&mut b).unwrap().is_some(),
            "contains a read-only root"
        );
        assert!(b.read_only);

        let mut b = bind(&root.join("srv/own"));
        assert_eq!(p.check(&mut b).unwrap(), None);
        assert!(!b.read_only);

        let mut b = bind(&root.join("srv/shared"));
        b.read_only = true;
        assert_eq!(
            p.check(&mut b).unwrap(),
            None,
            "already read-only: nothing to note"
        );
    }

    #[test]
    fn missing_source_is_an_error() {
        let (_dir, root) = tree(&[]);
        let err = refusal(&BindPolicy::default(), &root.join("gone"));
        assert!(
            err.starts_with(&format!(
                "cannot resolve bind source {}/gone: ",
                root.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let err = BindPolicy::from_toml_str("[mounts]\ndeny = []\nallow = [\"/srv\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("muelle.toml: "), "{err}");
        assert!(err.contains("unknown field `allow`"), "{err}");
    }

    #[test]
    fn other_sections_are_not_ours() {
        let p = policy("root = \"/x\"\n[plugins]\nfolders = []\n[mounts]\ndeny = [\"/etc\"]\n");
        assert!(p.check(&mut bind(Path::new("/etc"))).is_err());
    }

    #[test]
    fn wrong_types_and_relative_roots_are_errors() {
        let err = BindPolicy::from_toml_str("[mounts]\ndeny = \"/etc\"\n").unwrap_err();
        assert!(matches!(err, PolicyError::Parse { .. }), "{err}");
        assert_eq!(
            BindPolicy::from_toml_str("[mounts]\nread_only = [\"srv\"]\n")
                .unwrap_err()
                .to_string(),
            "muelle.toml: mounts.read_only entry \"srv\" is not an absolute path"
        );
    }

    #[test]
    fn load_from_a_file() {
        let (_dir, root) = tree(&["conf"]);
        let path = root.join("conf/muelle.toml");
        std::fs::write(&path, "[mounts]\ndeny = [\"/etc\"]\n").unwrap();
        let p = BindPolicy::load(&path).unwrap();
        assert_eq!(
            refusal(&p, Path::new("/etc/passwd")),
            format!(
                "bind mount of /etc/passwd refused by {}: mounts.deny contains \"/etc\"",
                path.display()
            )
        );
        std::fs::write(&path, "[mounts]\nnope = 1\n").unwrap();
        let err = BindPolicy::load(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&path.display().to_string()) && err.contains("nope"),
            "{err}"
        );
    }

    #[test]
    fn missing_file_is_the_default_policy() {
        let (_dir, root) = tree(&[]);
        let p = BindPolicy::load(&root.join("absent.toml")).unwrap();
        assert_eq!(p.check(&mut bind(Path::new("/etc"))).unwrap(), None);
    }

    #[test]
    fn unreadable_file_is_an_error() {
        let (_dir, root) = tree(&["folder.toml"]);
        assert!(matches!(
            BindPolicy::load(&root.join("folder.toml")),
            Err(PolicyError::Read { .. })
        ));
    }
}
