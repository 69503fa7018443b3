//! `muelle images` / `image ls`: one row per tag (one `<none>` row for an
//! untagged image), newest image first.

use std::collections::BTreeSet;
use std::io::Write;

use anyhow::{Context, bail};
use image::store::{ImageRow, rows};
use serde_json::json;

use crate::args::{Global, ImagesArgs};
use crate::human;
use crate::text::{glob, go_json, table};

const NONE: &str = "<none>";

/// The `--filter`s docker's `images` takes that muelle can answer.
#[derive(Debug, Default)]
struct Filters {
    dangling: Option<bool>,
    /// Globs on `repository:tag` or `repository`; any may match.
    references: Vec<String>,
}

impl Filters {
    fn parse(filters: &[String], reference: Option<&str>) -> anyhow::Result<Filters> {
        let mut parsed = Filters::default();
        for f in filters {
            let Some((key, value)) = f.split_once('=') else {
                bail!("bad format of filter {f:?} (expected name=value)");
            };
            match key {
                "dangling" => {
                    let wanted = match value.to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => bail!("invalid filter 'dangling={value}': use true or false"),
                    };
                    if parsed.dangling.is_some_and(|d| d != wanted) {
                        bail!("conflicting dangling filters: give one of true or false");
                    }
                    parsed.dangling = Some(wanted);
                }
                "reference" => parsed.references.push(value.to_owned()),
                // before, since, until and label need more than the records
                // hold; said plainly rather than ignored.
                _ => bail!("invalid filter '{key}': muelle images takes dangling= and reference="),
            }
        }
        // `docker images REPOSITORY[:TAG]` is a reference filter.
        parsed.references.extend(reference.map(str::to_owned));
        for pattern in &parsed.references {
            glob(pattern, "").map_err(|e| anyhow::anyhow!("invalid reference filter: {e}"))?;
        }
        Ok(parsed)
    }

    fn keep(&self, row: &ImageRow) -> bool {
        if let Some(dangling) = self.dangling
            && dangling != row.repository.is_none()
        {
            return false;
        }
        if self.references.is_empty() {
            return true;
        }
        // docker's FamiliarMatch: `busybox:latest`, then `busybox`.
        let Some(repo) = &row.repository else {
            return false;
        };
        let mut names = vec![repo.clone()];
        if let Some(tag) = &row.tag {
            names.insert(0, format!("{repo}:{tag}"));
        }
        self.references
            .iter()
            .any(|p| names.iter().any(|n| glob(p, n).unwrap_or(false)))
    }
}

pub fn run(global: &Global, args: &ImagesArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let json = match args.format.as_deref() {
        None | Some("table") => false,
        Some("json") => true,
        Some(other) => bail!("unsupported --format {other:?}: use table or json"),
    };
    let filters = Filters::parse(&args.filter, args.reference.as_deref())?;
    let images = super::images(global)?;
    let records = super::with_store(global, |store| Ok(images.list(store)?))?;
    let rows: Vec<ImageRow> = rows(&records)
        .into_iter()
        .filter(|r| filters.keep(r))
        .collect();
    let id = |row: &ImageRow| {
        if args.no_trunc {
            row.id.to_string()
        } else {
            row.id.short().to_owned()
        }
    };
    if args.quiet {
        let mut seen = BTreeSet::new();
        for row in &rows {
            if seen.insert(row.id.clone()) {
                writeln!(out, "{}", id(row))?;
            }
        }
        return Ok(());
    }
    let repository = |row: &ImageRow| row.repository.clone().unwrap_or_else(|| NONE.into());
    let tag = |row: &ImageRow| row.tag.clone().unwrap_or_else(|| NONE.into());
    if json {
        for row in &rows {
            let size = human::size(row.size, 3);
            let line = json!({
                "Containers": "N/A",
                "CreatedAt": human::go_time_string(row.created.as_deref()),
                "CreatedSince": human::since(row.created.as_deref()),
                // As docker: the digest only with --digests.
                "Digest": if args.digests { row.digest.to_string() } else { NONE.into() },
                "ID": id(row),
                "Repository": repository(row),
                "SharedSize": "N/A",
                "Size": size,
                "Tag": tag(row),
                "UniqueSize": "N/A",
                "VirtualSize": size,
            });
            writeln!(out, "{}", go_json(&line).context("encoding JSON")?)?;
        }
        return Ok(());
    }
    let mut header = vec!["REPOSITORY", "TAG"];
    if args.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut cells = vec![repository(row), tag(row)];
            if args.digests {
                cells.push(row.digest.to_string());
            }
            cells.extend([
                id(row),
                human::since(row.created.as_deref()),
                human::size(row.size, 3),
            ]);
            cells
        })
        .collect();
    table(out, &header, &cells)?;
    Ok(())
}
