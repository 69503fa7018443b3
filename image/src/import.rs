//! `docker import`: a root filesystem tarball (plain, gzip or zstd) becomes
//! a one-layer image. The layer blob is the uncompressed tar, so its
//! digest is its diff_id; the config gets the host's os and architecture,
//! the `--change` instructions, and one history entry ("Imported from -",
//! or the `--message`). Same order as a load: blob and layer stored with
//! the collector held off, then one short transaction.

mod changes;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use serde_json::{Map, Value, json};
use storage::store::Store;

pub use changes::RunConfig;

use crate::manifest::{Platform, media};
use crate::store::Hold;
use crate::{ImageError, ImageRecord, ImageRef, Images, Result};

/// Imports `input` as a new image named `reference` (untagged when
/// `None`; a reference without a tag gets `latest`). Opens the metadata
/// store only to commit.
pub fn import(
    images: &Images,
    input: impl Read,
    reference: Option<ImageRef>,
    changes: &[String],
    message: Option<&str>,
) -> Result<ImageRecord> {
    // Bad changes fail before a byte of the input is read.
    let run = changes::apply(changes)?;
    let tag = match reference {
        Some(r) if r.digest().is_some() => {
            return Err(ImageError::InvalidReference {
                reference: r.full(),
                reason: "import names a tag, not a digest".to_owned(),
            });
        }
        Some(r) => Some(r.full()),
        None => None,
    };
    let hold = images.hold()?;
    let outcome = store_image(images, &hold, input, &run, tag, message).and_then(|record| {
        let store = Store::open(images.data_root())?;
        images.commit(&store, std::slice::from_ref(&record))
    });
    drop(hold);
    match outcome {
        Ok(mut stored) => stored
            .pop()
            .ok_or_else(|| ImageError::InvalidArchive("nothing was imported".to_owned())),
        Err(e) => {
            crate::formats::collect_after_failure(images);
            Err(e)
        }
    }
}

/// Stores the layer, config and manifest blobs, unpacks the layer, and
/// returns the record to commit.
fn store_image(
    images: &Images,
    hold: &Hold,
    input: impl Read,
    run: &RunConfig,
    tag: Option<String>,
    message: Option<&str>,
) -> Result<ImageRecord> {
    let plain = crate::formats::decompressed(input)?;
    let (layer, size) = images.blobs().put(plain, None)?;
    if size == 0 {
        return Err(ImageError::InvalidArchive(
            "the input is empty, not a tar archive".to_owned(),
        ));
    }
    let created = storage::time::now_rfc3339();
    let host = Platform::host();
    let config = json!({
        "created": created,
        "architecture": host.architecture,
        "os": host.os,
        "config": config_json(run),
        "rootfs": { "type": "layers", "diff_ids": [layer.to_string()] },
        "history": [{
            "created": created,
            "comment": message.unwrap_or("Imported from -"),
        }],
    });
    let config_bytes = config.to_string().into_bytes();
    let config_digest = images.blobs().put_bytes(&config_bytes)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {
            "mediaType": media::OCI_CONFIG,
            "digest": config_digest.to_string(),
            "size": config_bytes.len(),
        },
        "layers": [{
            "mediaType": media::OCI_LAYER,
            "digest": layer.to_string(),
            "size": size,
        }],
    });
    let manifest = images.blobs().put_bytes(manifest.to_string().as_bytes())?;
    let tags: BTreeSet<String> = tag.into_iter().collect();
    // Unpacking checks the blob is a tar (the diff_id is its digest).
    images.prepare(hold, &manifest, Some(media::OCI_MANIFEST), tags)
}

/// The config's `config` object, in docker's field names; empty fields are
/// left out.
fn config_json(run: &RunConfig) -> Value {
    let mut c = Map::new();
    let set = |c: &mut Map<String, Value>, key: &str, value: Value| {
        c.insert(key.to_owned(), value);
    };
    let as_set =
        |items: &[String]| Value::Object(items.iter().map(|i| (i.clone(), json!({}))).collect());
    if let Some(user) = &run.user {
        set(&mut c, "User", json!(user));
    }
    if !run.exposed_ports.is_empty() {
        set(&mut c, "ExposedPorts", as_set(&run.exposed_ports));
    }
    if !run.env.is_empty() {
        set(&mut c, "Env", json!(run.env));
    }
    if let Some(e) = &run.entrypoint {
        set(&mut c, "Entrypoint", json!(e));
    }
    if let Some(cmd) = &run.cmd {
        set(&mut c, "Cmd", json!(cmd));
    }
    if !run.volumes.is_empty() {
        set(&mut c, "Volumes", as_set(&run.volumes));
    }
    if let Some(w) = &run.working_dir {
        set(&mut c, "WorkingDir", json!(w));
    }
    if !run.labels.is_empty() {
        let labels: BTreeMap<&String, &String> = run.labels.iter().collect();
        set(&mut c, "Labels", json!(labels));
    }
    if let Some(s) = &run.stop_signal {
        set(&mut c, "StopSignal", json!(s));
    }
    Value::Object(c)
}
