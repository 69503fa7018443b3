//! The results of `bench engine` for people (two tables, the targets and
//! notes) and for tools (JSON).

use serde_json::{Value, json};

use super::{MemoryRow, Op, Row};
use crate::bench::common::{RowResult, render_table, timing_cells};

/// run --rm: muelle's median at most this many times bare crun's.
const RUN_RM_LIMIT: f64 = 1.5;
/// ps -a: muelle's median under this, in milliseconds.
const PS_LIMIT_MS: f64 = 50.0;
/// The monitor's RSS under this, in kB (1 MiB).
const MONITOR_RSS_LIMIT_KIB: u64 = 1024;

/// What the report says besides the rows.
pub struct Context {
    pub runs: u32,
    pub containers: u32,
    pub notes: Vec<String>,
    /// What the clean-up could not remove, or had to force.
    pub problems: Vec<String>,
}

fn median(rows: &[Row], op: Op, tool: &str) -> Option<f64> {
    rows.iter()
        .find(|r| r.op == op && r.tool == tool)
        .and_then(|r| match &r.result {
            RowResult::Measured(m) => Some(m.summary.median),
            _ => None,
        })
}

/// The row's median over muelle's for the same operation.
fn times_muelle(row: &Row, rows: &[Row]) -> Option<f64> {
    match &row.result {
        RowResult::Measured(m) => Some(m.summary.median / median(rows, row.op, "muelle")?),
        _ => None,
    }
}

/// A reason cut to fit a line (the JSON keeps it whole).
fn short(reason: &str) -> String {
    const MAX: usize = 160;
    match reason.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &reason[..at]),
        None => reason.to_owned(),
    }
}

fn reason_cell<M>(result: &RowResult<M>) -> Option<String> {
    match result {
        RowResult::Measured(_) => None,
        RowResult::Failed(reason) => Some(format!("failed: {}", short(reason))),
        RowResult::Skipped(reason) => Some(format!("skipped: {}", short(reason))),
    }
}

pub fn table(rows: &[Row], containers: u32) -> String {
    let header = [
        "operation",
        "tool",
        "runs",
        "median ms",
        "p90 ms",
        "x muelle",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut cells = vec![row.op.label(containers), row.tool.to_owned()];
            match &row.result {
                RowResult::Measured(m) => cells.extend(timing_cells(
                    m.runs,
                    m.failures.len(),
                    &m.summary,
                    times_muelle(row, rows),
                )),
                other => cells.extend(reason_cell(other)),
            }
            cells
        })
        .collect();
    render_table(&header, &cells)
}

pub fn memory_table(memory: &[MemoryRow]) -> String {
    let header = ["process", "engine", "RSS kB", "PSS kB"];
    let cells: Vec<Vec<String>> = memory
        .iter()
        .map(|row| {
            let mut cells = vec![row.process.to_owned(), row.tool.to_owned()];
            match &row.result {
                RowResult::Measured(u) => {
                    cells.extend([u.rss_kib.to_string(), u.pss_kib.to_string()]);
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

/// "run --rm within 1.5x of bare crun run: met (muelle X ms = 1.20x crun Y ms)".
pub fn run_rm_target(rows: &[Row]) -> String {
    let text = format!("run --rm within {RUN_RM_LIMIT}x of bare crun run");
    match (
        median(rows, Op::RunRm, "muelle"),
        median(rows, Op::RunRm, "crun"),
    ) {
        (Some(muelle), Some(crun)) => format!(
            "{text}: {} (muelle {muelle:.2} ms = {:.2}x crun {crun:.2} ms)",
            verdict(muelle <= crun * RUN_RM_LIMIT),
            muelle / crun
        ),
        (None, _) => format!("{text}: unknown, muelle has no result"),
        (_, None) => format!("{text}: unknown, crun has no result"),
    }
}

/// "ps -a (1000 containers) under 50 ms: met (median X ms)".
pub fn ps_target(rows: &[Row], containers: u32) -> String {
    let text = format!("ps -a ({containers} containers) under {PS_LIMIT_MS:.0} ms");
    match median(rows, Op::Ps, "muelle") {
        Some(ms) => format!("{text}: {} (median {ms:.2} ms)", verdict(ms < PS_LIMIT_MS)),
        None => format!("{text}: unknown, muelle has no result"),
    }
}

/// "monitor RSS under 1024 kB: met (RSS X kB, PSS Y kB)".
pub fn monitor_target(memory: &[MemoryRow]) -> String {
    let text = format!("monitor RSS under {MONITOR_RSS_LIMIT_KIB} kB");
    let monitor = memory.iter().find(|m| m.tool == "muelle");
    match monitor.map(|m| &m.result) {
        Some(RowResult::Measured(u)) => format!(
            "{text}: {} (RSS {} kB, PSS {} kB)",
            verdict(u.rss_kib < MONITOR_RSS_LIMIT_KIB),
            u.rss_kib,
            u.pss_kib
        ),
        _ => format!("{text}: unknown, muelle-monitor has no result"),
    }
}

fn clean_up_line(problems: &[String]) -> String {
    if problems.is_empty() {
        "clean-up: nothing left behind (containers, stores, mounts, bundles, cgroups)".to_owned()
    } else {
        format!("clean-up: WARNING: {}", problems.join("; "))
    }
}

pub fn text(context: &Context, rows: &[Row], memory: &[MemoryRow]) -> String {
    let mut out = format!(
        "engine: {} timed runs of each, in rounds, after one untimed run; ps with {} containers\n",
        context.runs, context.containers
    );
    out += &table(rows, context.containers);
    if !memory.is_empty() {
        out +=
            "\nwatcher of one idle container (run -d IMAGE sleep 1000), /proc/PID/smaps_rollup:\n";
        out += &memory_table(memory);
    }
    out.push('\n');
    for line in [
        run_rm_target(rows),
        ps_target(rows, context.containers),
        monitor_target(memory),
    ] {
        out += &format!("target {line}\n");
    }
    out += "notes: x muelle = median / muelle's median (above 1: muelle is faster); \
            every row is a whole command, wall time from spawn to exit\n";
    for note in &context.notes {
        out += &format!("  {note}\n");
    }
    out += &clean_up_line(&context.problems);
    out.push('\n');
    out
}

pub fn json(context: &Context, rows: &[Row], memory: &[MemoryRow]) -> Value {
    let results: Vec<Value> = rows
        .iter()
        .map(|row| {
            let head = json!({ "operation": row.op.label(context.containers), "tool": row.tool });
            row.result.to_json(head, |m| {
                json!({
                    "runs": m.runs,
                    "failures": m.failures,
                    "median_ms": m.summary.median,
                    "p90_ms": m.summary.p90,
                    "times_muelle": times_muelle(row, rows),
                })
            })
        })
        .collect();
    let watchers: Vec<Value> = memory
        .iter()
        .map(|row| {
            let head = json!({ "process": row.process, "engine": row.tool });
            row.result.to_json(
                head,
                |u| json!({ "pid": u.pid, "rss_kib": u.rss_kib, "pss_kib": u.pss_kib }),
            )
        })
        .collect();
    json!({
        "runs": context.runs,
        "containers": context.containers,
        "results": results,
        "memory": watchers,
        "targets": {
            "run_rm": run_rm_target(rows),
            "ps": ps_target(rows, context.containers),
            "monitor_rss": monitor_target(memory),
        },
        "notes": context.notes,
        "clean_up": context.problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::engine::Measured;
    use crate::bench::engine::memory::Usage;
    use crate::bench::stats::Summary;

    fn row(op: Op, tool: &'static str, median: f64) -> Row {
        Row {
            op,
            tool,
            result: RowResult::Measured(Measured {
                summary: Summary {
                    median,
                    p90: median * 1.5,
                },
                runs: 20,
                failures: Vec::new(),
            }),
        }
    }

    fn rows() -> Vec<Row> {
        vec![
            row(Op::RunRm, "muelle", 12.0),
            row(Op::RunRm, "podman", 180.0),
            Row {
                op: Op::RunRm,
                tool: "docker",
                result: RowResult::Skipped("no dockerd running".to_owned()),
            },
            row(Op::RunRm, "crun", 10.0),
            Row {
                op: Op::Exec,
                tool: "muelle",
                result: RowResult::Skipped("this muelle has no `exec` yet".to_owned()),
            },
            row(Op::Ps, "muelle", 60.0),
        ]
    }

    fn memory(rss_kib: u64) -> Vec<MemoryRow> {
        vec![MemoryRow {
            tool: "muelle",
            process: "muelle-monitor",
            result: RowResult::Measured(Usage {
                pid: 1,
                rss_kib,
                pss_kib: 800,
            }),
        }]
    }

    #[test]
    fn targets_read_as_the_issue_asks() {
        let rows = rows();
        assert_eq!(
            run_rm_target(&rows),
            "run --rm within 1.5x of bare crun run: met (muelle 12.00 ms = 1.20x crun 10.00 ms)"
        );
        assert_eq!(
            ps_target(&rows, 1000),
            "ps -a (1000 containers) under 50 ms: not met (median 60.00 ms)"
        );
        assert_eq!(
            monitor_target(&memory(1116)),
            "monitor RSS under 1024 kB: not met (RSS 1116 kB, PSS 800 kB)"
        );
        assert!(monitor_target(&memory(900)).contains(": met"));
        assert!(run_rm_target(&rows[..2]).ends_with("unknown, crun has no result"));
    }

    #[test]
    fn table_compares_with_muelle_and_gives_reasons() {
        let table = table(&rows(), 1000);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("operation"), "{table}");
        assert!(lines[1].ends_with("1.00x"), "{table}");
        assert!(lines[2].ends_with("15.00x"), "{table}");
        assert!(lines[3].ends_with("skipped: no dockerd running"), "{table}");
        assert!(lines[6].starts_with("ps -a (1000)"), "{table}");
    }

    #[test]
    fn json_holds_rows_memory_and_targets() {
        let context = Context {
            runs: 20,
            containers: 1000,
            notes: Vec::new(),
            problems: Vec::new(),
        };
        let value = json(&context, &rows(), &memory(1000));
        assert_eq!(value["results"][1]["times_muelle"], 15.0);
        assert_eq!(value["results"][2]["status"], "skipped");
        assert_eq!(value["memory"][0]["rss_kib"], 1000);
        assert!(
            value["targets"]["monitor_rss"]
                .as_str()
                .unwrap_or("")
                .contains(": met")
        );
    }
}
