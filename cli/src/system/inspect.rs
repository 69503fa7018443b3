//! `inspect NAME...`: each name is looked up among containers, then
//! images, then volumes, as docker's does (it has networks between images
//! and volumes; muelle has none yet); `--type` looks in one kind only.
//! The objects found are printed as one JSON array (or one template line
//! each), and each name found nowhere is an error line: `No such object`.

use std::io::Write;

use anyhow::{Context as _, bail};
use image::ImageError;
use serde_json::Value;
use storage::volume::{VolumeError, Volumes};

use crate::args::{Global, InspectArgs};
use crate::exit::Reported;
use crate::template::Template;
use crate::text::go_json_pretty;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Container,
    Image,
    Volume,
}

const TYPES: &str = r#""container", "image", "volume""#;

pub fn inspect(global: &Global, args: InspectArgs) -> anyhow::Result<()> {
    let kinds: &[Kind] = match args.kind.as_deref() {
        None => &[Kind::Container, Kind::Image, Kind::Volume],
        Some("container") => &[Kind::Container],
        Some("image") => &[Kind::Image],
        Some("volume") => &[Kind::Volume],
        Some("") => bail!("type is empty: must be one of {TYPES}"),
        Some(other) => bail!("unknown type: {other:?}: must be one of {TYPES}"),
    };
    let template = match args.format.as_deref() {
        None | Some("json") => None,
        Some(text) => Some(Template::parse(text)?),
    };
    let found = find(global, kinds, &args.targets, args.size)?;
    let mut objects = Vec::new();
    let mut failed = false;
    for (target, result) in args.targets.iter().zip(found) {
        match result {
            Ok(Some((kind, object))) => {
                if args.size && kind != Kind::Container {
                    eprintln!("WARNING: --size ignored for {}", kind.name());
                }
                objects.push(object);
            }
            Ok(None) => {
                eprintln!("Error: No such object: {target}");
                failed = true;
            }
            Err(e) => {
                eprintln!("Error: {e:#}");
                failed = true;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    match template {
        None => writeln!(
            out,
            "{}",
            go_json_pretty(&objects).context("encoding JSON")?
        )?,
        Some(template) => {
            for object in &objects {
                writeln!(out, "{}", template.render(object)?)?;
            }
        }
    }
    if failed {
        return Err(Reported.into());
    }
    Ok(())
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Container => "container",
            Kind::Image => "image",
            Kind::Volume => "volume",
        }
    }
}

type Found = anyhow::Result<Option<(Kind, Value)>>;

/// Each target's object, looked up in `kinds` in order with one opening of
/// the store. With one kind asked, its own "No such ..." error stands;
/// across kinds, not being found in one moves on to the next.
fn find(
    global: &Global,
    kinds: &[Kind],
    targets: &[String],
    size: bool,
) -> anyhow::Result<Vec<Found>> {
    let only = kinds.len() == 1;
    let engine = crate::container::engine(global)?;
    let images = image::Images::open(&global.root)?;
    // Keeps the collector from deleting the configs read below.
    let _hold = images.hold()?;
    let store = engine.open_store()?;
    let containers = if kinds.contains(&Kind::Container) {
        crate::container::find_all(&engine, &store, targets)
    } else {
        targets.iter().map(|_| Ok(None)).collect()
    };
    let volumes = Volumes::new(&store, &global.root);
    let mut found = Vec::new();
    for (target, container) in targets.iter().zip(containers) {
        let mut result: Found = Ok(None);
        for kind in kinds {
            result = match kind {
                Kind::Container => match &container {
                    Ok(Some(object)) => {
                        let mut object = object.clone();
                        if size {
                            add_sizes(&engine, &images, &store, &mut object);
                        }
                        Ok(Some((Kind::Container, object)))
                    }
                    Ok(None) if only => Err(anyhow::anyhow!("No such container: {target}")),
                    Ok(None) => Ok(None),
                    Err(e) => Err(anyhow::anyhow!("{e}")),
                },
                Kind::Image => match images.resolve(&store, target) {
                    Ok(record) => crate::images::inspect_value(&images, &record)
                        .map(|object| Some((Kind::Image, object))),
                    Err(ImageError::NotFound(_) | ImageError::InvalidReference { .. }) if !only => {
                        Ok(None)
                    }
                    Err(e) => Err(e.into()),
                },
                Kind::Volume => match volumes.get(target) {
                    Ok(volume) => Ok(Some((Kind::Volume, crate::volume::inspect_json(&volume)))),
                    Err(VolumeError::NotFound(_)) if !only => Ok(None),
                    Err(e) => Err(e.into()),
                },
            };
            if !matches!(result, Ok(None)) {
                break;
            }
        }
        found.push(result);
    }
    Ok(found)
}

/// docker's `--size` fields of a container: SizeRw (its own changes) and
/// SizeRootFs (those and its image's layers).
fn add_sizes(
    engine: &engine::Engine,
    images: &image::Images,
    store: &storage::store::Store,
    object: &mut Value,
) {
    let id = object["Id"].as_str().unwrap_or_default();
    let paths = engine.paths(id);
    let own = super::disk_usage(&image::rootfs::changes_dir(paths.data(), &paths.rootfs()));
    let image = object["Image"]
        .as_str()
        .and_then(|i| images.resolve(store, i).ok())
        .map_or(0, |record| record.size);
    object["SizeRw"] = own.into();
    object["SizeRootFs"] = own.saturating_add(image).into();
}
