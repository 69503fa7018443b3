//! `stats`: docker's table (`CONTAINER ID  NAME  CPU %  MEM USAGE / LIMIT
//! MEM %  NET I/O  BLOCK I/O  PIDS`), `--format json|table|TEMPLATE`.
//!
//! CPU % needs two samples: the first table comes a second after the
//! first sample (as docker's, whose daemon samples every second). Without
//! `--no-stream` a table follows every second, drawn over the last one on
//! a terminal and printed one after another otherwise; without names the
//! running containers (all with `-a`) are listed again each round. A
//! container that is not running shows zeros, as in docker.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use engine::container::{HostUsage, Sample};
use engine::{Container, Engine};
use serde_json::{Value, json};

use super::args::StatsArgs;
use super::engine;
use crate::args::Global;
use crate::exit::Reported;
use crate::human;
use crate::template::{Template, align_tabs};

const DEFAULT_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// docker's sampling interval.
const INTERVAL: Duration = Duration::from_secs(1);

pub fn stats(global: &Global, args: StatsArgs) -> anyhow::Result<()> {
    let template = match args.format.as_deref() {
        Some("json") => None,
        None | Some("table") => Some(Template::parse(DEFAULT_FORMAT)?),
        Some(other) => Some(Template::parse(other)?),
    };
    let engine = engine(global)?;
    let redraw = !args.no_stream && nix::unistd::isatty(std::io::stdout()).unwrap_or(false);
    let mut previous: HashMap<String, Sample> = HashMap::new();
    let mut out = std::io::stdout().lock();
    if redraw {
        write!(out, "\x1b[2J")?;
    }
    let mut first = true;
    loop {
        let targets = match targets(&engine, &args) {
            Ok(targets) => targets,
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                return Err(Reported.into());
            }
        };
        let host = HostUsage::read()?;
        let samples: Vec<Option<Sample>> = targets
            .iter()
            .map(|t| sample(&engine, &t.container, host))
            .collect();
        // CPU % compares with the last sample: the first one only starts.
        if first && samples.iter().any(Option::is_some) {
            first = false;
            previous = remember(&targets, &samples);
            std::thread::sleep(INTERVAL);
            continue;
        }
        first = false;
        let rows: Vec<Value> = targets
            .iter()
            .zip(&samples)
            .map(|(t, s)| row(t, s.as_ref(), previous.get(&t.container.id), args.no_trunc))
            .collect();
        let text = render(template.as_ref(), &rows)?;
        if redraw {
            // Over the last table, each line cleared to its end, and
            // whatever the last table had below this one cleared.
            write!(out, "\x1b[H")?;
            for line in text.lines() {
                writeln!(out, "{line}\x1b[K")?;
            }
            write!(out, "\x1b[J")?;
        } else {
            out.write_all(text.as_bytes())?;
        }
        out.flush()?;
        if args.no_stream {
            return Ok(());
        }
        previous = remember(&targets, &samples);
        std::thread::sleep(INTERVAL);
    }
}

/// A container shown, and how the user named it (docker's `Container`).
struct Target {
    label: String,
    container: Container,
}

/// The named containers, or the running ones (all with `-a`); the store
/// is open only for this.
fn targets(engine: &Engine, args: &StatsArgs) -> Result<Vec<Target>, engine::EngineError> {
    let store = engine.open_store()?;
    if args.containers.is_empty() {
        return Ok(engine
            .list(&store)?
            .into_iter()
            .filter(|c| args.all || c.state.status.is_live())
            .map(|c| Target {
                label: if args.no_trunc {
                    c.id.clone()
                } else {
                    c.short_id().to_owned()
                },
                container: c,
            })
            .collect());
    }
    args.containers
        .iter()
        .map(|name| {
            Ok(Target {
                label: name.clone(),
                container: engine.find(&store, name)?,
            })
        })
        .collect()
}

/// A failed read shows as zeros (the container may have stopped
/// meanwhile), with the reason in the log.
fn sample(engine: &Engine, container: &Container, host: HostUsage) -> Option<Sample> {
    engine.sample(container, host).unwrap_or_else(|e| {
        tracing::warn!("container {}: {e}", container.name);
        None
    })
}

fn remember(targets: &[Target], samples: &[Option<Sample>]) -> HashMap<String, Sample> {
    targets
        .iter()
        .zip(samples)
        .filter_map(|(t, s)| Some((t.container.id.clone(), (*s)?)))
        .collect()
}

/// One container as `stats --format json` prints it: strings, keys in
/// the order Go writes a map's.
fn row(target: &Target, now: Option<&Sample>, before: Option<&Sample>, no_trunc: bool) -> Value {
    let c = &target.container;
    let id = if no_trunc { &c.id[..] } else { c.short_id() };
    let pair = |a: u64, b: u64| format!("{} / {}", human::size(a, 3), human::size(b, 3));
    let (cpu, mem_usage, mem_perc, net, block, pids) = match now {
        Some(s) => (
            before.map_or(0.0, |b| s.cpu_percent(b)),
            format!(
                "{} / {}",
                human::binary_size(s.memory),
                human::binary_size(s.memory_limit)
            ),
            s.memory_percent(),
            pair(s.net_rx, s.net_tx),
            pair(s.block_read, s.block_write),
            s.pids,
        ),
        None => (0.0, "0B / 0B".to_owned(), 0.0, pair(0, 0), pair(0, 0), 0),
    };
    json!({
        "BlockIO": block,
        "CPUPerc": format!("{cpu:.2}%"),
        "Container": target.label,
        "ID": id,
        "MemPerc": format!("{mem_perc:.2}%"),
        "MemUsage": mem_usage,
        "Name": c.name,
        "NetIO": net,
        "PIDs": pids.to_string(),
    })
}

fn render(template: Option<&Template>, rows: &[Value]) -> anyhow::Result<String> {
    let mut text = String::new();
    let Some(template) = template else {
        for row in rows {
            text.push_str(&row.to_string());
            text.push('\n');
        }
        return Ok(text);
    };
    if template.is_table() {
        text.push_str(&template.header(&header));
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

/// docker's column headers.
fn header(field: &str) -> Option<&'static str> {
    Some(match field {
        "ID" => "CONTAINER ID",
        "Container" => "CONTAINER",
        "Name" => "NAME",
        "CPUPerc" => "CPU %",
        "MemUsage" => "MEM USAGE / LIMIT",
        "MemPerc" => "MEM %",
        "NetIO" => "NET I/O",
        "BlockIO" => "BLOCK I/O",
        "PIDs" => "PIDS",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_reads_in_binary_units() {
        assert_eq!(human::binary_size(0), "0B");
        assert_eq!(human::binary_size(1536), "1.5KiB");
        assert_eq!(human::binary_size(8_233_689_088), "7.668GiB");
    }

    #[test]
    fn the_default_table_has_dockers_header() {
        let template = Template::parse(DEFAULT_FORMAT).expect("format");
        let text = render(Some(&template), &[]).expect("render");
        let words: Vec<&str> = text
            .split("   ")
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .collect();
        assert_eq!(
            words,
            [
                "CONTAINER ID",
                "NAME",
                "CPU %",
                "MEM USAGE / LIMIT",
                "MEM %",
                "NET I/O",
                "BLOCK I/O",
                "PIDS"
            ]
        );
    }
}
