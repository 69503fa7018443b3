//! `ps`: docker's table, `-q`, `--filter`, `--format json|TEMPLATE`.

use std::io::Write;

use anyhow::bail;
use engine::Container;
use engine::container::{PortBinding, Status};
use serde_json::{Value, json};
use storage::mounts::MountSpec;

use super::args::PsArgs;
use super::engine;
use crate::args::Global;
use crate::human;
use crate::template::{Template, align_tabs};

const DEFAULT_FORMAT: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

pub fn ps(global: &Global, args: PsArgs) -> anyhow::Result<()> {
    let filters = args
        .filter
        .iter()
        .map(|f| Filter::parse(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let engine = engine(global)?;
    let (containers, ports) = {
        let store = engine.open_store()?;
        (engine.list(&store)?, engine.all_published(&store)?)
    };
    let last = if args.latest {
        Some(1)
    } else {
        args.last.filter(|n| *n >= 0)
    };
    let show_all = args.all || last.is_some();
    let mut shown: Vec<&Container> = containers
        .iter()
        .filter(|c| show_all || c.state.status.is_live())
        .filter(|c| filters.iter().all(|f| f.matches(c)))
        .collect();
    if let Some(n) = last {
        shown.truncate(usize::try_from(n).unwrap_or(usize::MAX));
    }
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for c in shown {
            let id = if args.no_trunc {
                &c.id[..]
            } else {
                c.short_id()
            };
            writeln!(out, "{id}")?;
        }
        return Ok(());
    }
    let now = human::now();
    let rows: Vec<Value> = shown
        .iter()
        .map(|c| {
            let published = match c.state.status {
                Status::Running | Status::Paused => ports.get(&c.id).map(Vec::as_slice),
                _ => None,
            };
            row(c, now, args.no_trunc, published.unwrap_or_default())
        })
        .collect();
    match args.format.as_deref() {
        Some("json") => {
            for row in &rows {
                writeln!(out, "{row}")?;
            }
        }
        format => {
            let text = match format {
                None | Some("table") => DEFAULT_FORMAT,
                Some(other) => other,
            };
            let template = Template::parse(text)?;
            let mut rendered = String::new();
            if template.is_table() {
                rendered.push_str(&template.header(&header));
                rendered.push('\n');
            }
            for row in &rows {
                rendered.push_str(&template.render(row)?);
                rendered.push('\n');
            }
            if template.is_table() {
                rendered = align_tabs(&rendered);
            }
            out.write_all(rendered.as_bytes())?;
        }
    }
    Ok(())
}

/// docker's column headers.
fn header(field: &str) -> Option<&'static str> {
    Some(match field {
        "ID" => "CONTAINER ID",
        "Image" => "IMAGE",
        "Command" => "COMMAND",
        "RunningFor" => "CREATED",
        "CreatedAt" => "CREATED AT",
        "Status" => "STATUS",
        "Ports" => "PORTS",
        "Names" => "NAMES",
        "State" => "STATE",
        "Labels" => "LABELS",
        "Mounts" => "MOUNTS",
        "Networks" => "NETWORKS",
        "Size" => "SIZE",
        "LocalVolumes" => "LOCAL VOLUMES",
        _ => return None,
    })
}

/// One container as `ps --format json` prints it (every value a string,
/// as docker's).
/// docker's PORTS column: `127.0.0.1:8080->80/tcp, 0.0.0.0:53->53/udp`.
fn ports_text(published: &[PortBinding]) -> String {
    published
        .iter()
        .map(|p| {
            format!(
                "{}:{}->{}/{}",
                p.host_ip, p.host_port, p.private_port, p.protocol
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn row(c: &Container, now: i64, no_trunc: bool, published: &[PortBinding]) -> Value {
    let mut command = std::iter::once(c.path.as_str())
        .chain(c.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    if !no_trunc && command.chars().count() > 20 {
        command = command.chars().take(19).collect::<String>() + "…";
    }
    let mounts: Vec<String> = c
        .mounts
        .iter()
        .map(|m| match m {
            MountSpec::Volume(v) => v.name.clone().unwrap_or_default(),
            other => other.target().display().to_string(),
        })
        .collect();
    let labels: Vec<String> = c
        .config
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    json!({
        "Command": format!("\"{command}\""),
        "CreatedAt": human::go_time_string(Some(&c.created)),
        "ID": if no_trunc { c.id.as_str() } else { c.short_id() },
        "Image": c.config.image.reference,
        "Labels": labels.join(","),
        "LocalVolumes": c.mounts.iter().filter(|m| matches!(m, MountSpec::Volume(_))).count().to_string(),
        "Mounts": mounts.join(","),
        "Names": c.name,
        "Networks": network_name(c),
        "Ports": ports_text(published),
        "RunningFor": human::since(Some(&c.created)),
        "Size": "0B",
        "State": c.state.status.as_str(),
        "Status": status_text(c, now),
    })
}

/// docker's Networks column: the networks the container is on, else its
/// network mode.
fn network_name(c: &Container) -> String {
    if c.config.network.is_bridge() {
        let names: Vec<&str> = c
            .config
            .networks
            .iter()
            .map(|n| n.network.as_str())
            .collect();
        return names.join(",");
    }
    c.config.network.to_string()
}

/// docker's STATUS column: `Up 5 seconds`, `Exited (0) 2 minutes ago`.
pub fn status_text(c: &Container, now: i64) -> String {
    let ago = |time: &Option<String>| {
        time.as_deref()
            .and_then(human::parse_rfc3339)
            .map(|t| human::duration(now - t))
            .unwrap_or_else(|| "Less than a second".into())
    };
    match c.state.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", ago(&c.state.started_at)),
        Status::Paused => format!("Up {} (Paused)", ago(&c.state.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            c.state.exit_code,
            ago(&c.state.finished_at)
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            c.state.exit_code,
            ago(&c.state.finished_at)
        ),
        Status::Dead => "Dead".into(),
    }
}

/// `--filter KEY=VALUE`.
enum Filter {
    Id(String),
    Name(String),
    Label(String, Option<String>),
    Status(String),
    Exited(i32),
    Ancestor(String),
    Volume(String),
}

impl Filter {
    fn parse(text: &str) -> anyhow::Result<Filter> {
        let Some((key, value)) = text.split_once('=') else {
            bail!("bad format of filter (expected name=value)");
        };
        let value = value.to_owned();
        Ok(match key {
            "id" => Filter::Id(value),
            "name" => Filter::Name(value),
            "label" => match value.split_once('=') {
                Some((k, v)) => Filter::Label(k.to_owned(), Some(v.to_owned())),
                None => Filter::Label(value, None),
            },
            "status" => {
                const STATES: [&str; 7] = [
                    "created",
                    "restarting",
                    "running",
                    "removing",
                    "paused",
                    "exited",
                    "dead",
                ];
                if !STATES.contains(&value.as_str()) {
                    bail!(
                        "invalid filter 'status={value}': must be one of {}",
                        STATES.join(", ")
                    );
                }
                Filter::Status(value)
            }
            "exited" => Filter::Exited(
                value
                    .parse()
                    .map_err(|_| anyhow::anyhow!("invalid filter 'exited={value}'"))?,
            ),
            "ancestor" => Filter::Ancestor(value),
            "volume" => Filter::Volume(value),
            other => bail!("invalid filter '{other}'"),
        })
    }

    fn matches(&self, c: &Container) -> bool {
        match self {
            Filter::Id(prefix) => c.id.starts_with(prefix.as_str()),
            Filter::Name(part) => c.name.contains(part.as_str()),
            Filter::Label(k, v) => c
                .config
                .labels
                .get(k)
                .is_some_and(|have| v.as_ref().is_none_or(|want| want == have)),
            Filter::Status(s) => c.state.status.as_str() == s,
            Filter::Exited(code) => c.state.status == Status::Exited && c.state.exit_code == *code,
            Filter::Ancestor(image) => {
                c.config.image.reference == *image
                    || c.config.image.id.to_string() == *image
                    || c.config
                        .image
                        .id
                        .to_string()
                        .trim_start_matches("sha256:")
                        .starts_with(image.as_str())
            }
            Filter::Volume(name) => c.mounts.iter().any(|m| match m {
                MountSpec::Volume(v) => v.name.as_deref() == Some(name.as_str()),
                other => other.target().display().to_string() == *name,
            }),
        }
    }
}
