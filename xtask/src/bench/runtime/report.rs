//! The results of `bench runtime` for people (a table and the target line)
//! and for tools (JSON).

use serde_json::{Value, json};

use super::{Args, Measured, Row, RowResult, Runtime, VARIANTS, Variant};
use crate::bench::common::timing_cells;

/// The goal the bench tracks, from the issue that asked for it.
const TARGET: &str = "muelle faster than crun";

fn measured(rows: &[Row], runtime: Runtime, variant: Variant) -> Option<&Measured> {
    rows.iter()
        .find(|r| r.runtime == runtime && r.variant == variant)
        .and_then(|r| match &r.result {
            RowResult::Measured(m) => Some(m),
            _ => None,
        })
}

/// Median time of `row` divided by crun's median for the same variant.
fn ratio_to_crun(row: &Row, rows: &[Row]) -> Option<f64> {
    let crun = measured(rows, Runtime::Crun, row.variant)?;
    match &row.result {
        RowResult::Measured(m) => Some(m.summary.median / crun.summary.median),
        _ => None,
    }
}

/// Whether muelle beat crun's median in `variant`, in words.
fn target_state(rows: &[Row], variant: Variant) -> String {
    let muelle = measured(rows, Runtime::Muelle, variant);
    let crun = measured(rows, Runtime::Crun, variant);
    match (muelle, crun) {
        (Some(m), Some(c)) => {
            let verdict = if m.summary.median < c.summary.median {
                "met"
            } else {
                "not met"
            };
            format!(
                "{verdict} (median: muelle {:.2} ms, crun {:.2} ms)",
                m.summary.median, c.summary.median
            )
        }
        (None, _) => "unknown: muelle-runtime has no result".to_owned(),
        (_, None) => "unknown: crun has no result".to_owned(),
    }
}

/// The results as an aligned table, one line per row.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "runtime",
        "variant",
        "runs",
        "median ms",
        "p90 ms",
        "vs crun",
        "peak RSS KiB",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut cells = vec![row.runtime.name().to_owned(), row.variant.name().to_owned()];
            match &row.result {
                RowResult::Measured(m) => {
                    cells.extend(timing_cells(
                        m.runs,
                        m.failures.len(),
                        &m.summary,
                        ratio_to_crun(row, rows),
                    ));
                    cells.push(m.peak_rss_kib.to_string());
                }
                RowResult::Failed(reason) => cells.push(format!("failed: {reason}")),
                RowResult::Skipped(reason) => cells.push(format!("skipped: {reason}")),
            }
            cells
        })
        .collect();
    super::super::common::render_table(&header, &cells)
}

/// The target line and its state in each variant.
pub fn target(rows: &[Row]) -> String {
    let mut out = format!("target: {TARGET}\n");
    for variant in VARIANTS {
        out += &format!("  {}: {}\n", variant.name(), target_state(rows, variant));
    }
    out
}

/// The results, settings and target state as one JSON document.
pub fn json(args: &Args, rows: &[Row]) -> Value {
    let target: serde_json::Map<String, Value> = VARIANTS
        .iter()
        .map(|v| (v.name().to_owned(), Value::String(target_state(rows, *v))))
        .collect();
    json!({
        "runs": args.runs,
        "warmup": args.warmup,
        "results": rows.iter().map(|row| row_json(row, rows)).collect::<Vec<_>>(),
        "target": { "text": TARGET, "variants": target },
    })
}

fn row_json(row: &Row, rows: &[Row]) -> Value {
    let head = json!({ "runtime": row.runtime.name(), "variant": row.variant.name() });
    row.result.to_json(head, |m| {
        json!({
            "runs": m.runs,
            "failures": m.failures,
            "median_ms": m.summary.median,
            "p90_ms": m.summary.p90,
            "ratio_to_crun": ratio_to_crun(row, rows),
            "peak_rss_kib": m.peak_rss_kib,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::stats::Summary;

    fn measured_row(runtime: Runtime, variant: Variant, median: f64) -> Row {
        Row {
            runtime,
            variant,
            result: RowResult::Measured(Measured {
                summary: Summary {
                    median,
                    p90: median * 1.5,
                },
                runs: 20,
                failures: Vec::new(),
                peak_rss_kib: 4096,
            }),
        }
    }

    fn rows() -> Vec<Row> {
        vec![
            measured_row(Runtime::Muelle, Variant::NoNetns, 3.0),
            Row {
                runtime: Runtime::Muelle,
                variant: Variant::Netns,
                result: RowResult::Failed("boom".to_owned()),
            },
            Row {
                runtime: Runtime::Runc,
                variant: Variant::NoNetns,
                result: RowResult::Skipped("not installed".to_owned()),
            },
            measured_row(Runtime::Crun, Variant::NoNetns, 6.0),
            measured_row(Runtime::Crun, Variant::Netns, 8.0),
        ]
    }

    #[test]
    fn table_shows_ratio_to_crun_and_reasons() {
        let table = table(&rows());
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("runtime         variant   runs  median ms"));
        assert!(
            lines[1].contains("3.00") && lines[1].contains("0.50x"),
            "{table}"
        );
        assert!(lines[2].ends_with("netns     failed: boom"), "{table}");
        assert!(lines[3].contains("skipped: not installed"), "{table}");
        assert!(
            lines[4].contains("1.00x") && lines[4].ends_with("4096"),
            "{table}"
        );
    }

    #[test]
    fn target_is_met_only_with_both_results() {
        let target = target(&rows());
        assert!(target.starts_with("target: muelle faster than crun\n"));
        assert!(target.contains("no-netns: met (median: muelle 3.00 ms, crun 6.00 ms)"));
        assert!(target.contains("netns: unknown: muelle-runtime has no result"));
    }
}
