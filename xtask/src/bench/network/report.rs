//! The results of `bench network` for people (two tables, the targets and
//! notes) and for tools (JSON).

use serde_json::{Value, json};

use super::load::{BODY_LEN, Bounds};
use super::rows::{Key, Measured, Row};
use super::session::{PAUSE, Way};
use super::{Op, Target};
use crate::bench::common::{RowResult, render_table, timing_cells};
use crate::bench::engine::cli::Net;

/// Attaching a container to a network: under this, in milliseconds.
const ATTACH_LIMIT_MS: f64 = 5.0;
/// The published port's requests per second: at least this share of the
/// container's address's.
const PUBLISHED_SHARE: f64 = 0.9;

/// What the report says besides the rows.
pub struct Context {
    pub runs: u32,
    pub load_runs: u32,
    pub bounds: Bounds,
    /// The firewall backend the network crate picked.
    pub firewall: Option<String>,
    pub notes: Vec<String>,
    /// What the clean-up could not remove, or found left.
    pub problems: Vec<String>,
}

fn measured<'a, K: PartialEq>(rows: &'a [Row<K>], key: K, tool: &str) -> Option<&'a Measured> {
    rows.iter()
        .find(|r| r.key == key && r.tool == tool)
        .and_then(|r| match &r.result {
            RowResult::Measured(m) => Some(m),
            _ => None,
        })
}

fn median<K: PartialEq>(rows: &[Row<K>], key: K, tool: &str) -> Option<f64> {
    measured(rows, key, tool).map(|m| m.summary.median)
}

/// The network's share of `run --rm`: the difference of the medians.
fn share(times: &[Row<Op>], tool: &str) -> Option<f64> {
    Some(median(times, Op::RunRm(Net::Default), tool)? - median(times, Op::RunRm(Net::None), tool)?)
}

/// A reason cut to fit a line (the JSON keeps it whole).
fn short(reason: &str) -> String {
    const MAX: usize = 160;
    match reason.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &reason[..at]),
        None => reason.to_owned(),
    }
}

fn reason_cell(result: &RowResult<Measured>) -> Option<String> {
    match result {
        RowResult::Measured(_) => None,
        RowResult::Failed(reason) => Some(format!("failed: {}", short(reason))),
        RowResult::Skipped(reason) => Some(format!("skipped: {}", short(reason))),
    }
}

/// The row's median over muelle's, for the rows podman has too.
fn times_muelle(row: &Row<Op>, rows: &[Row<Op>]) -> Option<f64> {
    match (&row.result, row.key) {
        (RowResult::Measured(m), Op::RunRm(_)) => {
            Some(m.summary.median / median(rows, row.key, "muelle")?)
        }
        _ => None,
    }
}

/// The row's median over the same engine's on the container's address.
fn times_direct(row: &Row<Target>, rows: &[Row<Target>]) -> Option<f64> {
    match &row.result {
        RowResult::Measured(m) => Some(m.summary.median / median(rows, Target::Direct, row.tool)?),
        _ => None,
    }
}

pub fn times_table(rows: &[Row<Op>]) -> String {
    let header = [
        "operation",
        "tool",
        "runs",
        "median ms",
        "p90 ms",
        "x muelle",
    ];
    let row_cells = |row: &Row<Op>| {
        let mut cells = vec![row.key.label(), row.tool.to_owned()];
        match &row.result {
            RowResult::Measured(m) => cells.extend(timing_cells(
                m.samples.len(),
                m.failures.len(),
                &m.summary,
                times_muelle(row, rows),
            )),
            other => cells.extend(reason_cell(other)),
        }
        cells
    };
    let (run_rm, rest): (Vec<&Row<Op>>, Vec<&Row<Op>>) =
        rows.iter().partition(|r| matches!(r.key, Op::RunRm(_)));
    let mut cells: Vec<Vec<String>> = run_rm.into_iter().map(row_cells).collect();
    let muelle_share = share(rows, "muelle");
    for tool in ["muelle", "podman"] {
        if let Some(ms) = share(rows, tool) {
            cells.push(vec![
                "network's share (default - none)".to_owned(),
                tool.to_owned(),
                "-".to_owned(),
                format!("{ms:.2}"),
                "-".to_owned(),
                muelle_share.map_or("-".to_owned(), |m| format!("{:.2}x", ms / m)),
            ]);
        }
    }
    cells.extend(rest.into_iter().map(row_cells));
    render_table(&header, &cells)
}

pub fn rates_table(rows: &[Row<Target>]) -> String {
    let header = [
        "requests to",
        "tool",
        "runs",
        "median req/s",
        "min req/s",
        "x direct",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut cells = vec![row.key.label(), row.tool.to_owned()];
            match &row.result {
                RowResult::Measured(m) => {
                    let min = m.samples.iter().copied().fold(f64::INFINITY, f64::min);
                    let runs = if m.failures.is_empty() {
                        m.samples.len().to_string()
                    } else {
                        format!("{}/{}", m.samples.len(), m.samples.len() + m.failures.len())
                    };
                    cells.extend([
                        runs,
                        format!("{:.0}", m.summary.median),
                        format!("{min:.0}"),
                        times_direct(row, rows).map_or("-".to_owned(), |r| format!("{r:.2}x")),
                    ]);
                }
                other => cells.extend(reason_cell(other)),
            }
            cells
        })
        .collect();
    render_table(&header, &cells)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "not met" }
}

/// "network attach under 5 ms: met (setup X ms ...)".
pub fn attach_target(times: &[Row<Op>]) -> String {
    let text = format!("network attach under {ATTACH_LIMIT_MS:.0} ms");
    let Some(attach) = median(times, Op::Attach(Way::Fresh), "muelle") else {
        return format!("{text}: unknown, the attach has no result");
    };
    let mut details = format!("Networking::setup median {attach:.2} ms as a muelle command has it");
    if let Some(detach) = median(times, Op::Detach(Way::Fresh), "muelle") {
        details += &format!("; detach {detach:.2} ms");
    }
    if let Some(ms) = share(times, "muelle") {
        details += &format!("; run --rm default - none {ms:.2} ms");
    }
    format!("{text}: {} ({details})", verdict(attach < ATTACH_LIMIT_MS))
}

/// "published port at no less than 90% of the direct address: met (...)".
pub fn published_target(rates: &[Row<Target>]) -> String {
    let text = format!(
        "published port at no less than {:.0}% of the direct address",
        PUBLISHED_SHARE * 100.0
    );
    let (Some(published), Some(direct)) = (
        median(rates, Target::Loopback, "muelle"),
        median(rates, Target::Direct, "muelle"),
    ) else {
        return format!("{text}: unknown, muelle's published port or address has no result");
    };
    let ratio = published / direct;
    let mut details = format!(
        "127.0.0.1 {published:.0} req/s = {ratio:.2}x the container's address {direct:.0} req/s"
    );
    let mut met = ratio >= PUBLISHED_SHARE;
    if let Some(host) = median(rates, Target::HostAddress, "muelle") {
        details += &format!("; host address {host:.0} req/s = {:.2}x", host / direct);
        met &= host / direct >= PUBLISHED_SHARE;
    }
    format!("{text}: {} ({details})", verdict(met))
}

fn clean_up_line(problems: &[String]) -> String {
    if problems.is_empty() {
        "clean-up: nothing left behind (containers, stores, mounts, veths, namespace files, \
         cgroups; the bench's namespaces went with it)"
            .to_owned()
    } else {
        format!("clean-up: WARNING: {}", problems.join("; "))
    }
}

fn notes(context: &Context) -> Vec<String> {
    let b = &context.bounds;
    let mut notes = vec![
        "x muelle = median / muelle's median (above 1: muelle is faster); run --rm rows are \
         whole commands, wall time from spawn to exit"
            .to_owned(),
        "network's share = median(default network) - median(--network none) of run --rm".to_owned(),
        format!(
            "attach/detach: Networking::setup/teardown of one container on the default network, \
             timed in the network-session helper (its own namespace, store and bridge; firewall: \
             {}); `new Networking` is what each muelle command pays (the firewall backend detected \
             again), `firewall known` the network crate alone; {} ms pause after each detach",
            context.firewall.as_deref().unwrap_or("?"),
            PAUSE.as_millis()
        ),
        format!(
            "requests: HTTP/1.0 GET of a {BODY_LEN}-byte file from busybox httpd (a fork per \
             connection), a new connection each, {} client threads, at most {} requests or {} s \
             a run; x direct = median / the same engine's on the container's address",
            b.threads,
            b.requests,
            b.time.as_secs()
        ),
        "everything ran in the bench's own network and mount namespaces".to_owned(),
    ];
    notes.extend(context.notes.iter().cloned());
    notes
}

pub fn text(context: &Context, times: &[Row<Op>], rates: &[Row<Target>]) -> String {
    let mut out = format!(
        "network: {} timed runs of each, in rounds, after one untimed run\n",
        context.runs
    );
    out += &times_table(times);
    out += &format!(
        "\nrequests per second, {} load runs on each address after one untimed:\n",
        context.load_runs
    );
    out += &rates_table(rates);
    out.push('\n');
    for line in [attach_target(times), published_target(rates)] {
        out += &format!("target {line}\n");
    }
    out += "notes:\n";
    for note in notes(context) {
        out += &format!("  {note}\n");
    }
    out += &clean_up_line(&context.problems);
    out.push('\n');
    out
}

pub fn json(context: &Context, times: &[Row<Op>], rates: &[Row<Target>]) -> Value {
    let times_json: Vec<Value> = times
        .iter()
        .map(|row| {
            let head = json!({ "operation": row.key.label(), "tool": row.tool });
            row.result.to_json(head, |m| {
                json!({
                    "runs": m.samples.len(),
                    "failures": m.failures,
                    "median_ms": m.summary.median,
                    "p90_ms": m.summary.p90,
                    "times_muelle": times_muelle(row, times),
                })
            })
        })
        .collect();
    let rates_json: Vec<Value> = rates
        .iter()
        .map(|row| {
            let head = json!({ "requests_to": row.key.label(), "tool": row.tool });
            row.result.to_json(head, |m| {
                json!({
                    "runs": m.samples.len(),
                    "failures": m.failures,
                    "median_per_s": m.summary.median,
                    "samples_per_s": m.samples,
                    "times_direct": times_direct(row, rates),
                })
            })
        })
        .collect();
    json!({
        "runs": context.runs,
        "load_runs": context.load_runs,
        "times": times_json,
        "network_share_ms": {
            "muelle": share(times, "muelle"),
            "podman": share(times, "podman"),
        },
        "requests": rates_json,
        "targets": {
            "attach": attach_target(times),
            "published": published_target(rates),
        },
        "firewall": context.firewall,
        "notes": notes(context),
        "clean_up": context.problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::stats::Summary;

    fn row<K>(key: K, tool: &'static str, samples: &[f64]) -> Row<K> {
        Row {
            key,
            tool,
            result: RowResult::Measured(Measured {
                samples: samples.to_vec(),
                summary: Summary::of(samples).expect("samples"),
                failures: Vec::new(),
            }),
        }
    }

    fn times() -> Vec<Row<Op>> {
        vec![
            row(Op::RunRm(Net::Default), "muelle", &[40.0]),
            row(Op::RunRm(Net::Default), "podman", &[400.0]),
            row(Op::RunRm(Net::None), "muelle", &[30.0]),
            row(Op::RunRm(Net::None), "podman", &[300.0]),
            row(Op::Attach(Way::Fresh), "muelle", &[4.0]),
            row(Op::Detach(Way::Fresh), "muelle", &[2.0]),
        ]
    }

    #[test]
    fn targets_read_as_the_issue_asks() {
        assert_eq!(
            attach_target(&times()),
            "network attach under 5 ms: met (Networking::setup median 4.00 ms as a muelle \
             command has it; detach 2.00 ms; run --rm default - none 10.00 ms)"
        );
        let rates = vec![
            row(Target::Loopback, "muelle", &[850.0]),
            row(Target::Direct, "muelle", &[1000.0]),
        ];
        assert_eq!(
            published_target(&rates),
            "published port at no less than 90% of the direct address: not met (127.0.0.1 850 \
             req/s = 0.85x the container's address 1000 req/s)"
        );
        assert!(published_target(&rates[1..]).ends_with("has no result"));
    }

    #[test]
    fn tables_show_the_share_and_the_ratio_to_direct() {
        let table = times_table(&times());
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[2].ends_with("10.00x"), "{table}");
        assert!(lines[5].starts_with("network's share"), "{table}");
        assert!(lines[6].ends_with("10.00x"), "{table}");
        assert!(
            lines[7].starts_with("attach (setup), new Networking"),
            "{table}"
        );
        let rates = vec![
            row(Target::Loopback, "muelle", &[900.0, 950.0, 1000.0]),
            row(Target::Direct, "muelle", &[1000.0]),
            Row {
                key: Target::HostAddress,
                tool: "muelle",
                result: RowResult::Skipped("no ip".to_owned()),
            },
        ];
        let table = rates_table(&rates);
        let lines: Vec<&str> = table.lines().collect();
        let words: Vec<&str> = lines[1].split_whitespace().collect();
        assert!(words.ends_with(&["950", "900", "0.95x"]), "{table}");
        assert!(lines[3].ends_with("skipped: no ip"), "{table}");
    }
}
