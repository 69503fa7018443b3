//! `image inspect` (docker's JSON array) and `history`.

use std::collections::BTreeSet;
use std::io::Write;

use anyhow::{Context, bail};
use image::store::{HistoryEntry, familiar, repo_digest};
use image::{ImageRecord, Images};
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Map, Value, json};

use super::Reported;
use crate::args::{Global, HistoryArgs, ImageInspectArgs};
use crate::human;
use crate::template::Template;
use crate::text::{ellipsis, go_json, go_json_pretty, table};

/// docker's image `Config` fields that an image config carries; anything
/// else in the (untrusted) config is not shown.
const CONFIG_FIELDS: [&str; 14] = [
    "User",
    "ExposedPorts",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "OnBuild",
    "Labels",
    "StopSignal",
    "StopTimeout",
    "Shell",
];

pub fn inspect(
    global: &Global,
    args: &ImageInspectArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let template = match args.format.as_deref() {
        None | Some("json") => None,
        Some(text) => Some(Template::parse(text)?),
    };
    let images = super::images(global)?;
    // Keeps the collector from deleting the configs read below, after the
    // store is closed.
    let _hold = images.hold()?;
    let resolved = super::with_store(global, |store| {
        Ok(args
            .images
            .iter()
            .map(|name| images.resolve(store, name))
            .collect::<Vec<_>>())
    })?;
    let mut found = Vec::new();
    let mut failed = false;
    for result in resolved {
        match result
            .map_err(anyhow::Error::from)
            .and_then(|r| inspect_json(&images, &r))
        {
            Ok(json) => found.push(json),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    // As docker: the images found are printed even when some were not.
    match template {
        None => writeln!(out, "{}", go_json_pretty(&found).context("encoding JSON")?)?,
        Some(template) => {
            for image in &found {
                let value = serde_json::to_value(image).context("encoding JSON")?;
                writeln!(out, "{}", template.render(&value)?)?;
            }
        }
    }
    if failed {
        return Err(Reported.into());
    }
    Ok(())
}

/// docker's `image inspect` object for one image, as a value (in docker's
/// key order) for `inspect` and templates.
pub(crate) fn inspect_value(images: &Images, record: &ImageRecord) -> anyhow::Result<Value> {
    serde_json::to_value(inspect_json(images, record)?).context("encoding JSON")
}

/// docker's `image inspect` object for one image.
fn inspect_json(images: &Images, record: &ImageRecord) -> anyhow::Result<Ordered> {
    let bytes = images.config_bytes(record)?;
    let raw: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("config {} is not JSON", record.id))?;
    let text = |key: &str| raw.get(key).and_then(Value::as_str).unwrap_or_default();
    let empty = Map::new();
    let run = raw
        .get("config")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    // docker's field order, its empty values for the fields it always
    // prints, and the others only when the image sets them.
    let always = [
        "User",
        "Env",
        "Cmd",
        "Volumes",
        "WorkingDir",
        "Entrypoint",
        "OnBuild",
        "Labels",
    ];
    let mut config = Ordered::default();
    for key in CONFIG_FIELDS {
        match run.get(key).filter(|v| !v.is_null()) {
            Some(v) => config.push(key, v.clone()),
            None if always.contains(&key) => {
                let empty = if matches!(key, "User" | "WorkingDir") {
                    json!("")
                } else {
                    Value::Null
                };
                config.push(key, empty);
            }
            None => {}
        }
    }
    let repo_tags: Vec<String> = record.tags.iter().map(|t| familiar(t)).collect();
    let repo_digests: BTreeSet<String> = record
        .tags
        .iter()
        .filter_map(|t| repo_digest(t, &record.manifest))
        .collect();
    let layers: Vec<String> = record
        .layers
        .iter()
        .map(|l| l.diff_id.to_string())
        .collect();
    let mut json = Ordered::default();
    json.push("Id", json!(record.id.to_string()));
    json.push("RepoTags", json!(repo_tags));
    json.push("RepoDigests", json!(repo_digests));
    json.push("Parent", json!(""));
    json.push("Comment", json!(text("comment")));
    let created = record.created.as_deref().unwrap_or_else(|| text("created"));
    json.push("Created", json!(created));
    json.push("DockerVersion", json!(text("docker_version")));
    json.push("Author", json!(text("author")));
    json.push_object("Config", config);
    json.push("Architecture", json!(record.architecture));
    if let Some(variant) = raw.get("variant").and_then(Value::as_str) {
        json.push("Variant", json!(variant));
    }
    json.push("Os", json!(record.os));
    json.push("Size", json!(record.size));
    let mut rootfs = Ordered::default();
    rootfs.push("Type", json!("layers"));
    rootfs.push("Layers", json!(layers));
    json.push_object("RootFS", rootfs);
    // muelle does not record when a tag was set; docker prints Go's zero
    // time for "never", so scripts reading the field still work.
    json.push("Metadata", json!({ "LastTagTime": "0001-01-01T00:00:00Z" }));
    Ok(json)
}

/// A JSON object that keeps its keys in the order pushed (serde_json's map
/// sorts them), so `inspect` reads in docker's order.
#[derive(Debug, Default)]
struct Ordered(Vec<(&'static str, Field)>);

#[derive(Debug)]
enum Field {
    Value(Value),
    Object(Ordered),
}

impl Ordered {
    fn push(&mut self, key: &'static str, value: Value) {
        self.0.push((key, Field::Value(value)));
    }

    fn push_object(&mut self, key: &'static str, value: Ordered) {
        self.0.push((key, Field::Object(value)));
    }
}

impl Serialize for Ordered {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, field) in &self.0 {
            match field {
                Field::Value(v) => map.serialize_entry(key, v)?,
                Field::Object(o) => map.serialize_entry(key, o)?,
            }
        }
        map.end()
    }
}

pub fn history(global: &Global, args: &HistoryArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let json = match args.format.as_deref() {
        None | Some("table") => false,
        Some("json") => true,
        Some(other) => bail!("unsupported --format {other:?}: use table or json"),
    };
    let images = super::images(global)?;
    let _hold = images.hold()?;
    let record = super::with_store(global, |store| Ok(images.resolve(store, &args.image)?))?;
    let entries = images.history(&record)?;
    let trunc = !args.no_trunc;
    let id = |e: &HistoryEntry| match &e.id {
        Some(id) if trunc => id.short().to_owned(),
        Some(id) => id.to_string(),
        None => "<missing>".to_owned(),
    };
    if args.quiet {
        for e in &entries {
            writeln!(out, "{}", id(e))?;
        }
        return Ok(());
    }
    let created = |e: &HistoryEntry| {
        if args.human {
            human::since(e.created.as_deref())
        } else {
            human::rfc3339(e.created.as_deref())
        }
    };
    let created_by = |e: &HistoryEntry| {
        let by = e.created_by.replace('\t', " ");
        if trunc { ellipsis(&by, 45) } else { by }
    };
    let size = |e: &HistoryEntry| {
        if args.human {
            human::size(e.size, 3)
        } else {
            e.size.to_string()
        }
    };
    if json {
        for e in &entries {
            let line = json!({
                "Comment": e.comment,
                "CreatedAt": human::rfc3339(e.created.as_deref()),
                "CreatedBy": created_by(e),
                "CreatedSince": created(e),
                "ID": id(e),
                "Size": size(e),
            });
            writeln!(out, "{}", go_json(&line).context("encoding JSON")?)?;
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| vec![id(e), created(e), created_by(e), size(e), e.comment.clone()])
        .collect();
    table(
        out,
        &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        &rows,
    )?;
    Ok(())
}
