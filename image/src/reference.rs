//! Image references as docker reads them: `busybox`, `busybox:1.36`,
//! `localhost/busybox`, `registry.example:5000/team/app:v2`,
//! `app@sha256:...`. A reference is normalized once (lowercase name
//! components, `docker.io/library/` for a bare docker name, tag `latest`)
//! and shown in docker's familiar form.

use std::fmt;

use crate::{Digest, ImageError};

const DEFAULT_DOMAIN: &str = "docker.io";

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageRef {
    /// `docker.io`, `localhost`, `registry:5000`.
    domain: String,
    /// `library/busybox`, `team/app`.
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// `docker.io/library/busybox`: the repository, fully qualified.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository as docker shows it (`busybox`, `localhost/busybox`).
    pub fn familiar_repository(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix("library/")
                .unwrap_or(&self.path)
                .to_owned()
        } else {
            self.repository()
        }
    }

    /// The tag; `latest` when neither a tag nor a digest was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `docker.io/library/busybox:latest`: the key a tag is stored under.
    pub fn full(&self) -> String {
        self.to_string()
    }

    /// Where a short name may live locally, in the order muelle looks: as
    /// docker (`docker.io/library/busybox`), then as podman keeps images it
    /// made itself (`localhost/busybox`). A qualified name is only itself.
    pub fn candidates(text: &str) -> Result<Vec<ImageRef>, ImageError> {
        let parsed: ImageRef = text.parse()?;
        let (name, _) = split_name(text);
        let qualified = name
            .split_once('/')
            .is_some_and(|(first, _)| is_domain(first));
        if qualified {
            return Ok(vec![parsed]);
        }
        let local = ImageRef {
            domain: "localhost".into(),
            path: name.to_owned(),
            ..parsed.clone()
        };
        Ok(vec![parsed, local])
    }
}

fn is_domain(component: &str) -> bool {
    component.contains(['.', ':']) || component == "localhost"
}

/// The name part and the rest (`:tag`, `@digest`) of a reference.
fn split_name(text: &str) -> (&str, &str) {
    let (before_digest, _) = text.split_once('@').unwrap_or((text, ""));
    // A ':' after the last '/' starts the tag (one before it is a port).
    let last_slash = before_digest.rfind('/').map_or(0, |i| i + 1);
    match before_digest[last_slash..].find(':') {
        Some(i) => text.split_at(last_slash + i),
        None => text.split_at(before_digest.len()),
    }
}

fn valid_path_component(c: &str) -> bool {
    // [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*
    let bytes = c.as_bytes();
    if bytes.is_empty()
        || !bytes[0].is_ascii_alphanumeric()
        || !bytes[bytes.len() - 1].is_ascii_alphanumeric()
    {
        return false;
    }
    let mut prev_sep = String::new();
    for &b in bytes {
        match b {
            b'a'..=b'z' | b'0'..=b'9' => prev_sep.clear(),
            b'.' | b'_' | b'-' => {
                prev_sep.push(b as char);
                let ok = prev_sep == "."
                    || prev_sep == "_"
                    || prev_sep == "__"
                    || prev_sep.bytes().all(|s| s == b'-');
                if !ok {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    host_ok
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl std::str::FromStr for ImageRef {
    type Err = ImageError;

    fn from_str(text: &str) -> Result<ImageRef, ImageError> {
        let bad = |why: &str| ImageError::InvalidReference {
            reference: text.to_owned(),
            reason: why.to_owned(),
        };
        if text.len() > 255 + 128 + 72 {
            return Err(bad("too long"));
        }
        let (name, rest) = split_name(text);
        let (tag, digest) = match rest.split_once('@') {
            Some((tag, digest)) => (tag, Some(digest.parse::<Digest>()?)),
            None => (rest, None),
        };
        let tag = match tag.strip_prefix(':') {
            Some(t) if valid_tag(t) => Some(t.to_owned()),
            Some(_) => return Err(bad("a tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")),
            None if tag.is_empty() => None,
            None => return Err(bad("unexpected text after the name")),
        };
        let (domain, path) = match name.split_once('/') {
            Some((first, rest)) if is_domain(first) => (first.to_owned(), rest.to_owned()),
            Some(_) => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
            None => (DEFAULT_DOMAIN.to_owned(), format!("library/{name}")),
        };
        if name.bytes().any(|b| b.is_ascii_uppercase())
            && !is_domain(name.split('/').next().unwrap_or(""))
        {
            return Err(bad("repository names must be lowercase"));
        }
        if !valid_domain(&domain) {
            return Err(bad("invalid registry host"));
        }
        if path.len() > 255 || !path.split('/').all(valid_path_component) {
            return Err(bad(
                "name components are [a-z0-9] separated by '.', '_', '__' or '-'",
            ));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_owned())
        } else {
            tag
        };
        Ok(ImageRef {
            domain,
            path,
            tag,
            digest,
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> ImageRef {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn names_normalize_as_docker() {
        assert_eq!(r("busybox").full(), "docker.io/library/busybox:latest");
        assert_eq!(r("busybox").familiar_repository(), "busybox");
        assert_eq!(r("team/app:v2").full(), "docker.io/team/app:v2");
        assert_eq!(r("localhost/busybox").full(), "localhost/busybox:latest");
        assert_eq!(
            r("localhost/busybox").familiar_repository(),
            "localhost/busybox"
        );
        assert_eq!(
            r("registry.example:5000/a/b:1.0").full(),
            "registry.example:5000/a/b:1.0"
        );
        let pinned = format!("app@{}", Digest::of_bytes(b""));
        assert_eq!(r(&pinned).tag(), None);
        assert!(r(&pinned).digest().is_some());
    }

    #[test]
    fn bad_references_say_why() {
        for bad in [
            "",
            "Busybox",
            "a:b:c",
            "a/../b",
            "-a",
            "a:",
            "a:-x",
            "a@sha256:zz",
            "a//b",
            "a b",
        ] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn short_names_look_in_docker_then_localhost() {
        let c = ImageRef::candidates("busybox:1").expect("candidates");
        let full: Vec<String> = c.iter().map(ImageRef::full).collect();
        assert_eq!(full, ["docker.io/library/busybox:1", "localhost/busybox:1"]);
        assert_eq!(ImageRef::candidates("localhost/x").expect("c").len(), 1);
    }
}
