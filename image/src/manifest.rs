//! Manifests, indexes and configs as they come from outside: OCI image
//! manifests and indexes, Docker schema2 manifests and manifest lists, and
//! JSON without a `mediaType` (older tools omit it), told apart by shape.
//!
//! Everything here is untrusted input: it is size-limited before it is
//! parsed, every digest is checked to be `sha256:<hex>` (so it is a safe
//! blob file name), and counts are bounded. The oci-spec types do the
//! parsing (Docker schema2 has the same shape as OCI); this module turns
//! them into small owned types whose digests are muelle's [`Digest`].

use std::collections::BTreeMap;
use std::fmt;

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};

use crate::blobs::MAX_METADATA_BLOB;
use crate::{Digest, ImageError, Result};

/// The media types muelle reads and writes.
pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_SCHEMA1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";

    /// The layer media type for a blob of this compression (by magic).
    pub fn oci_layer_for(blob_start: &[u8]) -> &'static str {
        if blob_start.starts_with(&[0x1f, 0x8b]) {
            OCI_LAYER_GZIP
        } else if blob_start.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            OCI_LAYER_ZSTD
        } else {
            OCI_LAYER
        }
    }
}

/// The OCI annotation naming an image in a layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's (and docker's) annotation with the full image name.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// More layers than overlayfs can stack (its limit is near 500 lower
/// folders with short paths); docker itself stops at 127.
const MAX_LAYERS: usize = 500;
/// Entries of an index: real multi-platform indexes have a few dozen.
const MAX_INDEX_ENTRIES: usize = 1000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub annotations: BTreeMap<String, String>,
    pub platform: Option<Platform>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl Platform {
    /// linux and the architecture this muelle was built for, in OCI's
    /// (Go's) names.
    pub fn host() -> Platform {
        Platform {
            os: "linux".to_owned(),
            architecture: oci_arch(std::env::consts::ARCH).to_owned(),
            variant: None,
        }
    }
}

/// Rust's name of an architecture in OCI's (GOARCH) words.
pub fn oci_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        "mips" if cfg!(target_endian = "little") => "mipsle",
        other => other,
    }
}

/// An image manifest (OCI or Docker schema2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The manifest's own media type (declared, or OCI's when untyped).
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Document {
    Manifest(Manifest),
    Index(Index),
}

fn invalid(what: &str, reason: impl Into<String>) -> ImageError {
    ImageError::InvalidManifest {
        what: what.to_owned(),
        reason: reason.into(),
    }
}

/// Parses a manifest or an index. `declared` is the media type a
/// descriptor gave for it, if any; `what` names it in errors (its digest or
/// file name).
pub fn parse(bytes: &[u8], declared: Option<&str>, what: &str) -> Result<Document> {
    if bytes.len() as u64 > MAX_METADATA_BLOB {
        return Err(invalid(
            what,
            format!("larger than {MAX_METADATA_BLOB} bytes"),
        ));
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| invalid(what, format!("not JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(invalid(what, "not a JSON object"));
    };
    let own = object.get("mediaType").and_then(|m| m.as_str());
    if let (Some(own), Some(declared)) = (own, declared)
        && own != declared
    {
        // A descriptor's type and the document's must agree, or one blob
        // could be read as two different things.
        return Err(invalid(
            what,
            format!("its mediaType {own} differs from the descriptor's {declared}"),
        ));
    }
    let media_type = own.or(declared).map(str::to_owned);
    let media_type = media_type.as_deref();
    if object.get("schemaVersion").and_then(|v| v.as_u64()) == Some(1)
        || matches!(
            media_type,
            Some(media::DOCKER_SCHEMA1 | media::DOCKER_SCHEMA1_SIGNED)
        )
    {
        return Err(invalid(
            what,
            "Docker schema1 manifests are not supported (deprecated since 2017)",
        ));
    }
    let is_index = match media_type {
        Some(media::OCI_INDEX | media::DOCKER_LIST) => true,
        Some(media::OCI_MANIFEST | media::DOCKER_MANIFEST) => false,
        Some(other) => {
            return Err(invalid(
                what,
                format!("media type {other} is not an image manifest or index"),
            ));
        }
        None if object.contains_key("manifests") => true,
        None if object.contains_key("config") && object.contains_key("layers") => false,
        None => return Err(invalid(what, "neither an image manifest nor an index")),
    };
    if is_index {
        let index: ImageIndex = serde_json::from_value(value)
            .map_err(|e| invalid(what, format!("not an image index: {e}")))?;
        if index.manifests().len() > MAX_INDEX_ENTRIES {
            return Err(invalid(
                what,
                format!("more than {MAX_INDEX_ENTRIES} manifests"),
            ));
        }
        let manifests = index
            .manifests()
            .iter()
            .map(|d| descriptor(d, what))
            .collect::<Result<_>>()?;
        Ok(Document::Index(Index {
            media_type: media_type.unwrap_or(media::OCI_INDEX).to_owned(),
            manifests,
        }))
    } else {
        let manifest: ImageManifest = serde_json::from_value(value)
            .map_err(|e| invalid(what, format!("not an image manifest: {e}")))?;
        if manifest.layers().len() > MAX_LAYERS {
            return Err(invalid(what, format!("more than {MAX_LAYERS} layers")));
        }
        let config = descriptor(manifest.config(), what)?;
        if !matches!(
            config.media_type.as_str(),
            media::OCI_CONFIG | media::DOCKER_CONFIG
        ) {
            return Err(invalid(
                what,
                format!(
                    "config type {} is not a container image's (an OCI artifact?)",
                    config.media_type
                ),
            ));
        }
        if config.size > MAX_METADATA_BLOB {
            return Err(invalid(what, "its config is too large"));
        }
        let layers = manifest
            .layers()
            .iter()
            .map(|d| descriptor(d, what))
            .collect::<Result<_>>()?;
        Ok(Document::Manifest(Manifest {
            media_type: media_type.unwrap_or(media::OCI_MANIFEST).to_owned(),
            config,
            layers,
        }))
    }
}

fn descriptor(d: &oci_spec::image::Descriptor, what: &str) -> Result<Descriptor> {
    let digest = Digest::try_from(d.digest())
        .map_err(|_| invalid(what, format!("digest {} is not sha256", d.digest())))?;
    Ok(Descriptor {
        media_type: d.media_type().to_string(),
        digest,
        size: d.size(),
        annotations: d
            .annotations()
            .as_ref()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        platform: d.platform().as_ref().map(|p| Platform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone(),
        }),
    })
}

impl Index {
    /// The entry for `want`: same os and architecture; among several
    /// (arm variants), the one with `want`'s variant, else one without a
    /// variant, else the first. Entries without a platform are skipped
    /// (attestations, artifacts).
    pub fn select(&self, want: &Platform, what: &str) -> Result<&Descriptor> {
        let matching: Vec<&Descriptor> = self
            .manifests
            .iter()
            .filter(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == want.os && p.architecture == want.architecture)
            })
            .collect();
        let variant = |d: &&Descriptor| d.platform.as_ref().and_then(|p| p.variant.clone());
        let chosen = matching
            .iter()
            .find(|d| want.variant.is_some() && variant(d) == want.variant)
            .or_else(|| matching.iter().find(|d| variant(d).is_none()))
            .or_else(|| matching.first());
        match chosen {
            Some(d) => Ok(d),
            None => {
                let mut offered: Vec<String> = self
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(Platform::to_string))
                    .collect();
                offered.dedup();
                Err(ImageError::NoMatchingPlatform {
                    what: what.to_owned(),
                    wanted: want.to_string(),
                    offered: if offered.is_empty() {
                        "none".to_owned()
                    } else {
                        offered.join(", ")
                    },
                })
            }
        }
    }
}

/// Parses an image config (OCI or Docker; unknown fields are ignored).
pub fn parse_config(bytes: &[u8], what: &str) -> Result<ImageConfiguration> {
    if bytes.len() as u64 > MAX_METADATA_BLOB {
        return Err(invalid(
            what,
            format!("config larger than {MAX_METADATA_BLOB} bytes"),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| invalid(what, format!("not an image config: {e}")))
}

/// The config's `rootfs.diff_ids`, checked.
pub fn diff_ids(config: &ImageConfiguration, what: &str) -> Result<Vec<Digest>> {
    config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| {
            d.parse::<Digest>()
                .map_err(|_| invalid(what, format!("rootfs diff_id {d:?} is not sha256:<hex>")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> String {
        Digest::of_bytes(&[n]).to_string()
    }

    fn manifest_json(media_type: Option<&str>) -> String {
        let mt = media_type
            .map(|m| format!(r#""mediaType":"{m}","#))
            .unwrap_or_default();
        format!(
            r#"{{"schemaVersion":2,{mt}"config":{{"mediaType":"{}","digest":"{}","size":2}},
            "layers":[{{"mediaType":"{}","digest":"{}","size":10}}]}}"#,
            media::DOCKER_CONFIG,
            d(1),
            media::DOCKER_LAYER_GZIP,
            d(2)
        )
    }

    fn index_json(platforms: &[(&str, &str, Option<&str>)]) -> String {
        let entries: Vec<String> = platforms
            .iter()
            .enumerate()
            .map(|(i, (os, arch, variant))| {
                let v = variant
                    .map(|v| format!(r#","variant":"{v}""#))
                    .unwrap_or_default();
                format!(
                    r#"{{"mediaType":"{}","digest":"{}","size":5,"platform":{{"os":"{os}","architecture":"{arch}"{v}}}}}"#,
                    media::DOCKER_MANIFEST,
                    d(i as u8)
                )
            })
            .collect();
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{}]}}"#,
            media::DOCKER_LIST,
            entries.join(",")
        )
    }

    #[test]
    fn docker_and_untyped_manifests_parse() {
        for mt in [
            Some(media::DOCKER_MANIFEST),
            Some(media::OCI_MANIFEST),
            None,
        ] {
            let doc = parse(manifest_json(mt).as_bytes(), None, "m").expect("parse");
            let Document::Manifest(m) = doc else {
                panic!("not a manifest")
            };
            assert_eq!(m.media_type, mt.unwrap_or(media::OCI_MANIFEST));
            assert_eq!(m.layers.len(), 1);
            assert_eq!(m.config.digest.to_string(), d(1));
        }
    }

    #[test]
    fn the_host_platform_is_picked_from_a_list() {
        let json = index_json(&[
            ("linux", "arm", Some("v7")),
            ("linux", "arm64", Some("v8")),
            ("linux", "amd64", None),
        ]);
        let Document::Index(index) = parse(json.as_bytes(), None, "i").expect("parse") else {
            panic!("not an index")
        };
        let amd = Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        };
        assert_eq!(
            index.select(&amd, "i").expect("amd64").digest.to_string(),
            d(2)
        );
        let arm64 = Platform {
            architecture: "arm64".into(),
            ..amd.clone()
        };
        assert_eq!(
            index.select(&arm64, "i").expect("arm64").digest.to_string(),
            d(1)
        );
        let s390 = Platform {
            architecture: "s390x".into(),
            ..amd
        };
        let err = index.select(&s390, "i").expect_err("none").to_string();
        assert!(
            err.contains("linux/s390x")
                && err.contains("linux/arm/v7, linux/arm64/v8, linux/amd64"),
            "{err}"
        );
    }

    #[test]
    fn hostile_or_foreign_documents_are_refused() {
        let cases = [
            (r#"{"schemaVersion":1,"fsLayers":[]}"#.to_owned(), "schema1"),
            ("[]".to_owned(), "not a JSON object"),
            (r#"{"schemaVersion":2}"#.to_owned(), "neither"),
            (
                manifest_json(None).replace(&d(2), "sha512:abcd"),
                "not an image manifest",
            ),
            (
                manifest_json(None).replace(&d(2), &format!("sha384:{}", "a".repeat(96))),
                "is not sha256",
            ),
            (
                manifest_json(None).replace(media::DOCKER_CONFIG, "application/x-artifact"),
                "artifact",
            ),
        ];
        for (json, why) in cases {
            let err = parse(json.as_bytes(), None, "m")
                .expect_err(why)
                .to_string();
            assert!(err.contains(why), "{why}: {err}");
        }
        let big = vec![b' '; MAX_METADATA_BLOB as usize + 1];
        assert!(parse(&big, None, "m").is_err());
        let err = parse(
            manifest_json(Some(media::OCI_MANIFEST)).as_bytes(),
            Some(media::OCI_INDEX),
            "m",
        )
        .expect_err("mismatch");
        assert!(err.to_string().contains("differs"), "{err}");
    }

    #[test]
    fn rust_architectures_map_to_oci_names() {
        assert_eq!(oci_arch("x86_64"), "amd64");
        assert_eq!(oci_arch("aarch64"), "arm64");
        assert_eq!(oci_arch("riscv64"), "riscv64");
        assert_eq!(Platform::host().os, "linux");
    }
}
