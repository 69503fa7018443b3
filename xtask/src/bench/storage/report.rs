//! The results of `bench storage` for people (a table and the target line)
//! and for tools (JSON).

use serde_json::{Value, json};

use super::{Args, Measured, OPS, Op, Row, RowResult, Tool};
use crate::bench::common::timing_cells;

/// The goal the bench tracks, from the issue that asked for it.
const TARGET: &str = "each muelle command under 10 ms and faster than podman's";

/// The time limit of the target, in milliseconds.
const TARGET_MS: f64 = 10.0;

fn measured(rows: &[Row], tool: Tool, op: Op) -> Option<&Measured> {
    rows.iter()
        .find(|r| r.tool == tool && r.op == op)
        .and_then(|r| match &r.result {
            RowResult::Measured(m) => Some(m),
            _ => None,
        })
}

/// Median time of `row` divided by podman's median for the same operation.
fn ratio_to_podman(row: &Row, rows: &[Row]) -> Option<f64> {
    let podman = measured(rows, Tool::Podman, row.op)?;
    match &row.result {
        RowResult::Measured(m) => Some(m.summary.median / podman.summary.median),
        _ => None,
    }
}

/// Whether muelle's median for `op` is under [`TARGET_MS`] and under
/// podman's, in words.
fn target_state(rows: &[Row], op: Op) -> String {
    let Some(m) = measured(rows, Tool::Muelle, op) else {
        return "unknown: muelle has no result".to_owned();
    };
    let muelle = m.summary.median;
    let Some(p) = measured(rows, Tool::Podman, op) else {
        let verdict = if muelle < TARGET_MS {
            "unknown: under 10 ms, but podman has no result"
        } else {
            "not met: not under 10 ms"
        };
        return format!("{verdict} (median: muelle {muelle:.2} ms)");
    };
    let podman = p.summary.median;
    let verdict = match (muelle < TARGET_MS, muelle < podman) {
        (true, true) => "met",
        (false, true) => "not met: not under 10 ms",
        (true, false) => "not met: not faster than podman",
        (false, false) => "not met: not under 10 ms nor faster than podman",
    };
    format!("{verdict} (median: muelle {muelle:.2} ms, podman {podman:.2} ms)")
}

/// The results as an aligned table, one line per row.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "operation",
        "tool",
        "runs",
        "median ms",
        "p90 ms",
        "vs podman",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut cells = vec![row.op.name().to_owned(), row.tool.name().to_owned()];
            match &row.result {
                RowResult::Measured(m) => {
                    cells.extend(timing_cells(
                        m.runs,
                        m.failures.len(),
                        &m.summary,
                        ratio_to_podman(row, rows),
                    ));
                }
                RowResult::Failed(reason) => cells.push(format!("failed: {reason}")),
                RowResult::Skipped(reason) => cells.push(format!("skipped: {reason}")),
            }
            cells
        })
        .collect();
    super::super::common::render_table(&header, &cells)
}

/// The target line and its state for each operation.
pub fn target(rows: &[Row]) -> String {
    let mut out = format!("target: {TARGET}\n");
    let width = OPS.iter().map(|op| op.name().len()).max().unwrap_or(0) + 1;
    for op in OPS {
        let label = format!("{}:", op.name());
        out += &format!("  {label:<width$} {}\n", target_state(rows, op));
    }
    out
}

/// The results, settings and target state as one JSON document, with the
/// store session's costs when they were measured.
pub fn json(args: &Args, rows: &[Row], store_session: Option<Value>) -> Value {
    let target: serde_json::Map<String, Value> = OPS
        .iter()
        .map(|op| (op.name().to_owned(), Value::String(target_state(rows, *op))))
        .collect();
    json!({
        "runs": args.runs,
        "warmup": args.warmup,
        "volumes": args.volumes,
        "results": rows.iter().map(|row| row_json(row, rows)).collect::<Vec<_>>(),
        "target": { "text": TARGET, "operations": target },
        "store_session": store_session,
    })
}

fn row_json(row: &Row, rows: &[Row]) -> Value {
    let head = json!({ "operation": row.op.name(), "tool": row.tool.name() });
    row.result.to_json(head, |m| {
        json!({
            "runs": m.runs,
            "failures": m.failures,
            "median_ms": m.summary.median,
            "p90_ms": m.summary.p90,
            "ratio_to_podman": ratio_to_podman(row, rows),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::stats::Summary;

    fn measured_row(op: Op, tool: Tool, median: f64) -> Row {
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
            measured_row(Op::Create, Tool::Muelle, 4.0),
            measured_row(Op::Create, Tool::Podman, 16.0),
            measured_row(Op::Ls, Tool::Muelle, 12.0),
            measured_row(Op::Ls, Tool::Podman, 20.0),
            measured_row(Op::Inspect, Tool::Muelle, 3.0),
            Row {
                op: Op::Inspect,
                tool: Tool::Podman,
                result: RowResult::Skipped("not installed".to_owned()),
            },
            Row {
                op: Op::Rm,
                tool: Tool::Muelle,
                result: RowResult::Failed("boom".to_owned()),
            },
            measured_row(Op::Rm, Tool::Podman, 15.0),
        ]
    }

    #[test]
    fn table_shows_ratio_to_podman_and_reasons() {
        let table = table(&rows());
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("operation       tool    runs  median ms"),
            "{table}"
        );
        assert!(
            lines[1].contains("4.00") && lines[1].ends_with("0.25x"),
            "{table}"
        );
        assert!(lines[2].ends_with("1.00x"), "{table}");
        assert!(
            lines[6].ends_with("podman  skipped: not installed"),
            "{table}"
        );
        assert!(lines[7].ends_with("muelle  failed: boom"), "{table}");
    }

    #[test]
    fn target_needs_both_under_10_ms_and_faster() {
        let target = target(&rows());
        assert!(target.starts_with(&format!("target: {TARGET}\n")));
        assert!(target.contains("volume create:  met (median: muelle 4.00 ms, podman 16.00 ms)"));
        assert!(target.contains("volume ls:      not met: not under 10 ms"));
        assert!(target.contains("volume inspect: unknown: under 10 ms, but podman has no result"));
        assert!(target.contains("volume rm:      unknown: muelle has no result"));
    }
}
