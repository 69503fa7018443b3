//! The rows of `bench network`'s tables while they are measured
//! ([`Slots`]: samples, failures, or why a row is not measured) and once
//! they are ([`Row`]).

use crate::bench::common::{RowResult, Unavailable};
use crate::bench::stats::Summary;

/// What a row measures: one operation or address of a table.
pub trait Key: Copy + PartialEq {
    /// As the table and messages name it.
    fn label(self) -> String;
    /// Its place in the table.
    fn slot(self) -> usize;
}

/// One line of a table.
pub struct Row<K> {
    pub key: K,
    pub tool: &'static str,
    pub result: RowResult<Measured>,
}

/// A row's samples and their summary.
pub struct Measured {
    pub samples: Vec<f64>,
    pub summary: Summary,
    pub failures: Vec<String>,
}

#[derive(Default)]
struct Series {
    samples: Vec<f64>,
    failures: Vec<String>,
}

/// A row being measured, or why it is not.
struct Slot<K> {
    key: K,
    tool: &'static str,
    state: Result<Series, Unavailable>,
}

/// Every row of one table being measured.
pub struct Slots<K>(Vec<Slot<K>>);

impl<K: Key> Slots<K> {
    pub fn new() -> Self {
        Slots(Vec::new())
    }

    pub fn add(&mut self, key: K, tool: &'static str, state: Result<(), Unavailable>) {
        let state = state.map(|()| Series::default());
        self.0.push(Slot { key, tool, state });
    }

    fn find(&mut self, key: K, tool: &str) -> Option<&mut Slot<K>> {
        self.0.iter_mut().find(|s| s.key == key && s.tool == tool)
    }

    pub fn live(&self, key: K, tool: &str) -> bool {
        self.0
            .iter()
            .any(|s| s.key == key && s.tool == tool && s.state.is_ok())
    }

    /// The row will not be run (again), for this reason.
    pub fn stop(&mut self, key: K, tool: &str, why: Unavailable) {
        eprintln!("{tool}, {}: {why}", key.label());
        if let Some(slot) = self.find(key, tool) {
            slot.state = Err(why);
        }
    }

    pub fn record(&mut self, key: K, tool: &str, outcome: Result<f64, String>) {
        let Some(Slot {
            state: Ok(series), ..
        }) = self.find(key, tool)
        else {
            return;
        };
        match outcome {
            Ok(value) => series.samples.push(value),
            Err(reason) => {
                eprintln!("{tool}, {}: a run failed: {reason}", key.label());
                series.failures.push(reason);
            }
        }
    }

    /// The rows in the table's order, each tool's together.
    pub fn into_rows(self) -> Vec<Row<K>> {
        let mut rows: Vec<Row<K>> = self
            .0
            .into_iter()
            .map(|slot| Row {
                key: slot.key,
                tool: slot.tool,
                result: match slot.state {
                    Ok(series) => match Summary::of(&series.samples) {
                        Some(summary) => RowResult::Measured(Measured {
                            samples: series.samples,
                            summary,
                            failures: series.failures,
                        }),
                        None => RowResult::Failed(format!(
                            "every timed run failed: {}",
                            series.failures.first().map_or("", String::as_str)
                        )),
                    },
                    Err(why) => why.to_result(),
                },
            })
            .collect();
        let tool_slot = |tool: &str| ["muelle", "podman"].iter().position(|t| *t == tool);
        rows.sort_by_key(|r| (r.key.slot(), tool_slot(r.tool)));
        rows
    }
}
