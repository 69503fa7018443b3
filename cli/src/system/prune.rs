//! `system prune [-a] [--volumes] [-f] [--filter]`: docker's question, then
//! its pruners in docker's order — stopped containers, networks (muelle
//! has none yet), anonymous volumes (only with `--volumes`), dangling
//! images (every unused one with `-a`), build cache (none yet) — each
//! through the same code as its own `prune` verb, and the total.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::SystemTime;

use anyhow::bail;
use engine::Container;
use storage::volume::Volume;

use super::{PruneArgs, disk_usage};
use crate::args::Global;
use crate::human;
use crate::progress::Progress;

pub fn run(global: &Global, args: &PruneArgs) -> anyhow::Result<()> {
    let filter = Filter::parse(&args.filter)?;
    if args.volumes && filter.until.is_some() {
        bail!(r#"The "until" filter is not supported with "--volumes""#);
    }
    if !args.force && !crate::exit::ask(&question(args, &filter))? {
        return Ok(());
    }
    let mut report = Vec::new();
    let mut reclaimed = 0;
    {
        let progress = Progress::spinner("Deleting stopped containers");
        reclaimed += prune_containers(global, &filter, &mut report)?;
        progress.set_message("Deleting unused networks");
        prune_networks(global, &filter, &mut report)?;
        if args.volumes {
            progress.set_message("Deleting unused anonymous volumes");
            reclaimed += prune_volumes(global, false, &filter, &mut report)?;
        }
        progress.set_message("Deleting unused images");
        let image_labels = filter.image_labels(global)?;
        let pruned = crate::images::prune_images(global, args.all, &|record| {
            filter.selects(
                record.created.as_deref(),
                image_labels.get(&record.id).unwrap_or(&BTreeMap::new()),
            )
        })?;
        pruned.write_report(&mut report)?;
        reclaimed += pruned.bytes;
    }
    let mut out = std::io::stdout().lock();
    out.write_all(&report)?;
    writeln!(out, "Total reclaimed space: {}", human::size(reclaimed, 4))?;
    Ok(())
}

/// docker's confirmation text, item by item.
fn question(args: &PruneArgs, filter: &Filter) -> String {
    let mut warnings = vec![
        "all stopped containers",
        "all networks not used by at least one container",
    ];
    if args.volumes {
        warnings.push("all anonymous volumes not used by at least one container");
    }
    warnings.push(if args.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    });
    warnings.push(if args.all {
        "all build cache"
    } else {
        "unused build cache"
    });
    let mut text = String::from("WARNING! This will remove:");
    for w in warnings {
        text.push_str("\n  - ");
        text.push_str(w);
    }
    text.push('\n');
    if !filter.shown.is_empty() {
        text.push_str("\n  Items to be pruned will be filtered with:");
        for f in &filter.shown {
            text.push_str("\n  - ");
            text.push_str(f);
        }
        text.push('\n');
    }
    text.push_str("\nAre you sure you want to continue?");
    text
}

/// `Engine::prune` of the stopped containers the filter selects; their own
/// changes are measured first, with the store closed, and counted for
/// those that went.
/// The user-defined networks no running container is on (docker's
/// `Deleted Networks:` section).
fn prune_networks(global: &Global, filter: &Filter, report: &mut Vec<u8>) -> anyhow::Result<()> {
    let engine = crate::container::engine(global)?;
    let store = engine.open_store()?;
    let removed =
        engine.network_prune_matching(&store, &|n| filter.selects(Some(&n.created), &n.labels))?;
    if !removed.is_empty() {
        writeln!(report, "Deleted Networks:")?;
        for name in &removed {
            writeln!(report, "{name}")?;
        }
        writeln!(report)?;
    }
    Ok(())
}

pub(crate) fn prune_containers(
    global: &Global,
    filter: &Filter,
    report: &mut Vec<u8>,
) -> anyhow::Result<u64> {
    let engine = crate::container::engine(global)?;
    let stopped: Vec<Container> = {
        let store = engine.open_store()?;
        engine
            .list(&store)?
            .into_iter()
            .filter(|c| !c.state.status.is_live())
            .collect()
    };
    let sizes: BTreeMap<String, u64> = stopped
        .iter()
        .map(|c| {
            let paths = engine.paths(&c.id);
            let changes = image::rootfs::changes_dir(paths.data(), &paths.rootfs());
            (c.id.clone(), disk_usage(&changes))
        })
        .collect();
    let removed = {
        let store = engine.open_store()?;
        engine.prune_matching(&store, &|c| {
            filter.selects(Some(&c.created), &c.config.labels)
        })?
    };
    if !removed.is_empty() {
        writeln!(report, "Deleted Containers:")?;
        for c in &removed {
            writeln!(report, "{}", c.id)?;
        }
        writeln!(report)?;
    }
    Ok(removed
        .iter()
        .map(|c| sizes.get(&c.id).copied().unwrap_or(0))
        .sum())
}

/// `volume prune` (anonymous volumes no container uses) of the volumes the
/// filter selects, their data measured before it goes.
/// With `all`, named volumes no container uses go too (`volume prune -a`).
pub(crate) fn prune_volumes(
    global: &Global,
    all: bool,
    filter: &Filter,
    report: &mut Vec<u8>,
) -> anyhow::Result<u64> {
    let candidates: Vec<Volume> = crate::volume::with_volumes(global, |volumes| {
        Ok(volumes.list(&[storage::volume::Filter::Dangling(true)])?)
    })?;
    let drivers = crate::volume::drivers(global)?;
    let sizes: BTreeMap<String, u64> = candidates
        .iter()
        .filter(|v| all || v.anonymous)
        .map(|v| {
            let size = drivers
                .get(&v.driver)
                .and_then(|d| d.path(&v.name))
                .ok()
                .flatten()
                .map_or(0, |path| disk_usage(&path));
            (v.name.to_string(), size)
        })
        .collect();
    let removed = crate::volume::with_volumes(global, |volumes| {
        Ok(volumes.prune_matching(all, &|v| filter.selects(None, &v.labels))?)
    })?;
    if !removed.is_empty() {
        writeln!(report, "Deleted Volumes:")?;
        for v in &removed {
            writeln!(report, "{}", v.name)?;
        }
        writeln!(report)?;
    }
    Ok(removed
        .iter()
        .map(|v| sizes.get(v.name.as_str()).copied().unwrap_or(0))
        .sum())
}

/// docker's prune filters: `label=KEY[=VALUE]` (all must match),
/// `label!=KEY[=VALUE]` (none may), `until=TIME` (created before it).
#[derive(Debug, Default)]
pub(crate) struct Filter {
    labels: Vec<(String, Option<String>)>,
    not_labels: Vec<(String, Option<String>)>,
    /// Seconds since the epoch.
    until: Option<i64>,
    /// As given, for the question.
    shown: Vec<String>,
}

impl Filter {
    pub(crate) fn parse(filters: &[String]) -> anyhow::Result<Filter> {
        let mut parsed = Filter::default();
        for text in filters {
            let (key, value, negated) = if let Some((key, value)) = text.split_once("!=") {
                (key, value, true)
            } else if let Some((key, value)) = text.split_once('=') {
                (key, value, false)
            } else {
                bail!("bad format of filter (expected name=value)");
            };
            match (key, negated) {
                ("label", _) => {
                    let label = match value.split_once('=') {
                        Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                        None => (value.to_owned(), None),
                    };
                    if negated {
                        parsed.not_labels.push(label);
                    } else {
                        parsed.labels.push(label);
                    }
                }
                ("until", false) => {
                    let time = engine::logs::parse_time("until", value, SystemTime::now())?;
                    let seconds = time.unix_nanos().div_euclid(1_000_000_000);
                    parsed.until = Some(i64::try_from(seconds).unwrap_or(i64::MAX));
                }
                _ => bail!("invalid filter '{key}'"),
            }
            parsed.shown.push(text.clone());
        }
        parsed.shown.sort();
        Ok(parsed)
    }

    /// Whether an object created at `created` (RFC 3339; unknown counts as
    /// long ago, as docker's zero time) with `labels` is to be pruned.
    fn selects(&self, created: Option<&str>, labels: &BTreeMap<String, String>) -> bool {
        let has = |(k, v): &(String, Option<String>)| {
            labels
                .get(k)
                .is_some_and(|have| v.as_ref().is_none_or(|want| want == have))
        };
        if let Some(until) = self.until
            && created.and_then(human::parse_rfc3339).unwrap_or(i64::MIN) >= until
        {
            return false;
        }
        self.labels.iter().all(has) && !self.not_labels.iter().any(has)
    }

    /// The images' labels (from their configs), read only when a label
    /// filter needs them.
    fn image_labels(
        &self,
        global: &Global,
    ) -> anyhow::Result<BTreeMap<image::Digest, BTreeMap<String, String>>> {
        if self.labels.is_empty() && self.not_labels.is_empty() {
            return Ok(BTreeMap::new());
        }
        let images = image::Images::open(&global.root)?;
        let _hold = images.hold()?;
        let records = {
            let store = storage::store::Store::open(&global.root)?;
            images.list(&store)?
        };
        Ok(records
            .iter()
            .map(|r| {
                let labels = images
                    .config(r)
                    .ok()
                    .and_then(|c| c.config().clone())
                    .and_then(|c| c.labels().clone())
                    .unwrap_or_default();
                (r.id.clone(), labels.into_iter().collect())
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_question_is_dockers() {
        let args = PruneArgs {
            all: false,
            volumes: false,
            force: false,
            filter: Vec::new(),
        };
        assert_eq!(
            question(&args, &Filter::default()),
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n  - unused build cache\n\nAre you sure you want to continue?"
        );
        let args = PruneArgs {
            all: true,
            volumes: true,
            force: false,
            filter: vec!["label=a".into()],
        };
        let filter = Filter::parse(&args.filter).expect("filter");
        assert_eq!(
            question(&args, &filter),
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all anonymous volumes not used by at least one container\n  - all images without at least one container associated to them\n  - all build cache\n\n  Items to be pruned will be filtered with:\n  - label=a\n\nAre you sure you want to continue?"
        );
    }

    #[test]
    fn filters_select_by_label_and_age() {
        let labels: BTreeMap<String, String> = [("team".to_owned(), "web".to_owned())].into();
        let none = BTreeMap::new();
        let f = Filter::parse(&["label=team".into()]).expect("label");
        assert!(f.selects(None, &labels));
        assert!(!f.selects(None, &none));
        let f = Filter::parse(&["label!=team=web".into()]).expect("label!=");
        assert!(!f.selects(None, &labels));
        assert!(f.selects(None, &none));
        let f = Filter::parse(&["until=2020-01-01T00:00:00Z".into()]).expect("until");
        assert!(f.selects(Some("2019-06-01T00:00:00Z"), &none));
        assert!(!f.selects(Some("2021-06-01T00:00:00Z"), &none));
        assert!(f.selects(None, &none), "no date counts as long ago");
        assert!(Filter::parse(&["dangling=true".into()]).is_err());
        assert!(Filter::parse(&["label".into()]).is_err());
    }
}
