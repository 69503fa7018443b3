//! `system df [-v] [--format]`: docker's TYPE / TOTAL / ACTIVE / SIZE /
//! RECLAIMABLE table for images, containers, local volumes and the build
//! cache (muelle has no builder yet: always 0).
//!
//! What counts: an image's layers once however many images share them; a
//! container's own changes (its overlay upper folder, docker's SizeRw); a
//! volume's data while its driver has it (a plugin volume that is not
//! mounted has no size to show). Records are read with the store open, the
//! disk is measured after it is closed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use anyhow::Context as _;
use engine::Container;
use engine::container::Status;
use image::{Digest, ImageRecord, Images};
use serde_json::{Value, json};
use storage::mounts::MountSpec;
use storage::volume::{Volume, Volumes};

use super::{DfArgs, disk_usage};
use crate::args::Global;
use crate::human;
use crate::template::{Template, align_tabs};
use crate::text::go_json;

const SUMMARY_FORMAT: &str =
    "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";
const IMAGES_FORMAT: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}";
const CONTAINERS_FORMAT: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}";
const VOLUMES_FORMAT: &str = "table {{.Name}}\t{{.Links}}\t{{.Size}}";
const BUILD_CACHE_FORMAT: &str = "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}";

pub fn run(global: &Global, args: &DfArgs) -> anyhow::Result<()> {
    let usage = Usage::measure(global)?;
    let mut out = std::io::stdout().lock();
    match (args.verbose, args.format.as_deref()) {
        (false, Some("json")) => {
            for row in usage.summary() {
                writeln!(out, "{}", go_json(&row).context("encoding JSON")?)?;
            }
        }
        (false, format) => {
            let rows = usage.summary();
            let text = match format {
                None | Some("table") => SUMMARY_FORMAT,
                Some(other) => other,
            };
            out.write_all(render(text, &rows, &header)?.as_bytes())?;
        }
        (true, None | Some("table")) => usage.write_verbose(&mut out)?,
        (true, Some("json")) => {
            writeln!(
                out,
                "{}",
                go_json(&usage.verbose()).context("encoding JSON")?
            )?;
        }
        (true, Some(other)) => {
            let template = Template::parse(other)?;
            writeln!(out, "{}", template.render(&usage.verbose())?)?;
        }
    }
    Ok(())
}

/// Rows through a format: a table gets docker's header and layout.
fn render(
    format: &str,
    rows: &[Value],
    header: &dyn Fn(&str) -> Option<&'static str>,
) -> anyhow::Result<String> {
    let template = Template::parse(format)?;
    let mut text = String::new();
    if template.is_table() {
        text.push_str(&template.header(header));
        text.push('\n');
    }
    for row in rows {
        text.push_str(&template.render(row)?);
        text.push('\n');
    }
    Ok(if template.is_table() {
        align_tabs(&text)
    } else {
        text
    })
}

/// docker's column headers of the df tables; an ID column is named by
/// what it identifies.
fn image_header(field: &str) -> Option<&'static str> {
    if field == "ID" {
        Some("IMAGE ID")
    } else {
        header(field)
    }
}

fn container_header(field: &str) -> Option<&'static str> {
    if field == "ID" {
        Some("CONTAINER ID")
    } else {
        header(field)
    }
}

fn cache_header(field: &str) -> Option<&'static str> {
    if field == "ID" {
        Some("CACHE ID")
    } else {
        header(field)
    }
}

fn header(field: &str) -> Option<&'static str> {
    Some(match field {
        "Type" => "TYPE",
        "TotalCount" => "TOTAL",
        "Active" => "ACTIVE",
        "Size" => "SIZE",
        "Reclaimable" => "RECLAIMABLE",
        "Repository" => "REPOSITORY",
        "Tag" => "TAG",
        "CreatedSince" => "CREATED",
        "SharedSize" => "SHARED SIZE",
        "UniqueSize" => "UNIQUE SIZE",
        "Containers" => "CONTAINERS",
        "Image" => "IMAGE",
        "Command" => "COMMAND",
        "LocalVolumes" => "LOCAL VOLUMES",
        "RunningFor" => "CREATED",
        "Status" => "STATUS",
        "Names" => "NAMES",
        "Name" => "VOLUME NAME",
        "Links" => "LINKS",
        "CacheType" => "CACHE TYPE",
        "LastUsedSince" => "LAST USED",
        "UsageCount" => "USAGE",
        "Shared" => "SHARED",
        _ => return None,
    })
}

struct ImageUsage {
    record: ImageRecord,
    /// Bytes of its layers that another image has too.
    shared: u64,
    containers: usize,
}

struct ContainerUsage {
    container: Container,
    size: u64,
}

struct VolumeUsage {
    volume: Volume,
    /// `None` while the driver has the data unmounted.
    size: Option<u64>,
}

struct Usage {
    images: Vec<ImageUsage>,
    /// Every layer once.
    layers_size: u64,
    /// The layers no image of a container uses.
    images_reclaimable: u64,
    containers: Vec<ContainerUsage>,
    volumes: Vec<VolumeUsage>,
}

impl Usage {
    fn measure(global: &Global) -> anyhow::Result<Usage> {
        let engine = crate::container::engine(global)?;
        let images = Images::open(&global.root)?;
        let (records, containers, volumes) = {
            let drivers = crate::volume::drivers(global)?;
            let store = engine.open_store()?;
            let records = images.list(&store)?;
            let containers = engine.list(&store)?;
            let volumes = Volumes::with_drivers(&store, drivers).list(&[])?;
            (records, containers, volumes)
        };

        let mut layer_sizes: BTreeMap<&Digest, u64> = BTreeMap::new();
        let mut layer_images: BTreeMap<&Digest, usize> = BTreeMap::new();
        for record in &records {
            let unique: BTreeSet<&Digest> = record.layers.iter().map(|l| &l.diff_id).collect();
            for diff_id in unique {
                *layer_images.entry(diff_id).or_default() += 1;
                layer_sizes
                    .entry(diff_id)
                    .or_insert_with(|| images.layers().info(diff_id).map_or(0, |info| info.size));
            }
        }
        let users = |id: &Digest| {
            containers
                .iter()
                .filter(|c| c.config.image.id == *id)
                .count()
        };
        let used_layers: BTreeSet<&Digest> = records
            .iter()
            .filter(|r| users(&r.id) > 0)
            .flat_map(|r| r.layers.iter().map(|l| &l.diff_id))
            .collect();
        let layers_size = layer_sizes.values().sum();
        let used: u64 = used_layers.iter().map(|d| layer_sizes[d]).sum();
        let image_usage = records
            .iter()
            .map(|record| {
                let unique: BTreeSet<&Digest> = record.layers.iter().map(|l| &l.diff_id).collect();
                let shared = unique
                    .into_iter()
                    .filter(|d| layer_images[d] > 1)
                    .map(|d| layer_sizes[d])
                    .sum();
                ImageUsage {
                    record: record.clone(),
                    shared,
                    containers: users(&record.id),
                }
            })
            .collect();

        let container_usage = containers
            .iter()
            .map(|c| {
                let paths = engine.paths(&c.id);
                let changes = image::rootfs::changes_dir(paths.data(), &paths.rootfs());
                ContainerUsage {
                    container: c.clone(),
                    size: disk_usage(&changes),
                }
            })
            .collect();

        let drivers = crate::volume::drivers(global)?;
        let volume_usage = volumes
            .into_iter()
            .map(|volume| {
                let size = drivers
                    .get(&volume.driver)
                    .and_then(|d| d.path(&volume.name))
                    .ok()
                    .flatten()
                    .map(|path| disk_usage(&path));
                VolumeUsage { volume, size }
            })
            .collect();

        Ok(Usage {
            images: image_usage,
            layers_size,
            images_reclaimable: layers_size.saturating_sub(used),
            containers: container_usage,
            volumes: volume_usage,
        })
    }

    /// The four rows of the summary, as docker's formatter gives them to
    /// templates (every value a string).
    fn summary(&self) -> Vec<Value> {
        let containers_size = self.containers.iter().map(|c| c.size).sum();
        let containers_reclaimable = self
            .containers
            .iter()
            .filter(|c| c.container.state.status != Status::Running)
            .map(|c| c.size)
            .sum();
        let volumes_size = self.volumes.iter().filter_map(|v| v.size).sum();
        let volumes_reclaimable = self
            .volumes
            .iter()
            .filter(|v| v.volume.users.is_empty())
            .filter_map(|v| v.size)
            .sum();
        vec![
            row(
                "Images",
                self.images.len(),
                self.images.iter().filter(|i| i.containers > 0).count(),
                self.layers_size,
                self.images_reclaimable,
            ),
            row(
                "Containers",
                self.containers.len(),
                self.containers
                    .iter()
                    .filter(|c| c.container.state.status == Status::Running)
                    .count(),
                containers_size,
                containers_reclaimable,
            ),
            row(
                "Local Volumes",
                self.volumes.len(),
                self.volumes
                    .iter()
                    .filter(|v| !v.volume.users.is_empty())
                    .count(),
                volumes_size,
                volumes_reclaimable,
            ),
            json!({
                "Active": "0",
                "Reclaimable": human::size(0, 4),
                "Size": human::size(0, 4),
                "TotalCount": "0",
                "Type": "Build Cache",
            }),
        ]
    }

    /// Every image, container and volume, as `-v` shows them (and
    /// `-v --format` gives them to a template).
    fn verbose(&self) -> Value {
        json!({
            "Images": self.images.iter().map(image_row).collect::<Vec<_>>(),
            "Containers": self.containers.iter().map(container_row).collect::<Vec<_>>(),
            "Volumes": self.volumes.iter().map(volume_row).collect::<Vec<_>>(),
            "BuildCache": [],
        })
    }

    fn write_verbose(&self, out: &mut impl Write) -> anyhow::Result<()> {
        let images: Vec<Value> = self.images.iter().map(image_row).collect();
        let containers: Vec<Value> = self.containers.iter().map(container_row).collect();
        let volumes: Vec<Value> = self.volumes.iter().map(volume_row).collect();
        write!(out, "Images space usage:\n\n")?;
        out.write_all(render(IMAGES_FORMAT, &images, &image_header)?.as_bytes())?;
        write!(out, "\nContainers space usage:\n\n")?;
        out.write_all(render(CONTAINERS_FORMAT, &containers, &container_header)?.as_bytes())?;
        write!(out, "\nLocal Volumes space usage:\n\n")?;
        out.write_all(render(VOLUMES_FORMAT, &volumes, &header)?.as_bytes())?;
        write!(out, "\nBuild cache usage: {}\n\n", human::size(0, 4))?;
        out.write_all(render(BUILD_CACHE_FORMAT, &[], &cache_header)?.as_bytes())?;
        Ok(())
    }
}

/// One summary row: sizes as go-units' HumanSize, the reclaimable part
/// with its percentage when there is any size.
fn row(kind: &str, total: usize, active: usize, size: u64, reclaimable: u64) -> Value {
    let reclaimable_text = match reclaimable.saturating_mul(100).checked_div(size) {
        Some(percent) => format!("{} ({percent}%)", human::size(reclaimable, 4)),
        None => human::size(reclaimable, 4),
    };
    json!({
        "Active": active.to_string(),
        "Reclaimable": reclaimable_text,
        "Size": human::size(size, 4),
        "TotalCount": total.to_string(),
        "Type": kind,
    })
}

/// docker shows an image once, by its first tag.
fn image_row(usage: &ImageUsage) -> Value {
    let record = &usage.record;
    let (repository, tag) = record
        .tags
        .iter()
        .next()
        .and_then(|t| image::store::split_tag(t))
        .unwrap_or_else(|| ("<none>".to_owned(), "<none>".to_owned()));
    json!({
        "Containers": usage.containers.to_string(),
        "CreatedSince": human::since(record.created.as_deref()),
        "ID": record.id.short(),
        "Repository": repository,
        "SharedSize": human::size(usage.shared, 3),
        "Size": human::size(record.size, 3),
        "Tag": tag,
        "UniqueSize": human::size(record.size.saturating_sub(usage.shared), 3),
    })
}

fn container_row(usage: &ContainerUsage) -> Value {
    let c = &usage.container;
    let mut command = std::iter::once(c.path.as_str())
        .chain(c.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    // docker's table truncates the command to 20 characters.
    if command.chars().count() > 20 {
        command = command.chars().take(19).collect::<String>() + "…";
    }
    let volumes = c
        .mounts
        .iter()
        .filter(|m| matches!(m, MountSpec::Volume(_)))
        .count();
    json!({
        "Command": format!("\"{command}\""),
        "ID": c.short_id(),
        "Image": c.config.image.reference,
        "LocalVolumes": volumes.to_string(),
        "Names": c.name,
        "RunningFor": human::since(Some(&c.created)),
        "Size": human::size(usage.size, 3),
        "Status": crate::container::status_text(c, human::now()),
    })
}

fn volume_row(usage: &VolumeUsage) -> Value {
    json!({
        "Links": usage.volume.users.len().to_string(),
        "Name": usage.volume.name.as_str(),
        "Size": usage.size.map_or_else(|| "N/A".to_owned(), |s| human::size(s, 4)),
    })
}
