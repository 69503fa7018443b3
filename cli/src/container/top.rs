//! `top CONTAINER [ps OPTIONS]`: the host's `ps` (`-ef` by default),
//! only the header and the rows of the container's processes, laid out as
//! docker lays them out (columns at least 20 wide). As in docker, the rows
//! come from `ps ARGS -qPIDS` (only those processes), or from `ps ARGS`
//! when the options do not go with `-q`, and are filtered by the PID
//! column either way; a thread row (`-` for a PID, with `m`) follows its
//! process.

use anyhow::{Context, anyhow, bail};

use super::args::TopArgs;
use super::engine;
use crate::args::Global;
use crate::exit::Reported;

/// docker top's tabwriter: minimum cell width 20, padding 3.
const MIN_WIDTH: usize = 20;
const PADDING: usize = 3;

pub fn top(global: &Global, args: TopArgs) -> anyhow::Result<()> {
    match table(global, &args) {
        Ok(text) => {
            print!("{text}");
            Ok(())
        }
        Err(e) => {
            eprintln!("Error response from daemon: {e:#}");
            Err(Reported.into())
        }
    }
}

fn table(global: &Global, args: &TopArgs) -> anyhow::Result<String> {
    let ps_args: Vec<String> = if args.ps_args.is_empty() {
        vec!["-ef".to_owned()]
    } else {
        args.ps_args.clone()
    };
    check_ps_args(&ps_args.join(" "))?;
    let engine = engine(global)?;
    let (_, pids) = {
        let store = engine.open_store()?;
        engine.processes(&store, &args.container)?
    };
    let output = run_ps(&ps_args, &pids)?;
    let (titles, rows) = parse_ps(&output, &pids)?;
    Ok(layout(&titles, &rows))
}

/// docker refuses options that rename a column to PID (`-o user=PID`),
/// which would make it filter on the wrong column.
fn check_ps_args(text: &str) -> anyhow::Result<()> {
    let chars: Vec<char> = text.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c != '=' {
            continue;
        }
        let key_start = chars[..i]
            .iter()
            .rposition(|c| c.is_whitespace())
            .map(|p| p + 1);
        // docker's pattern wants whitespace before the key.
        let Some(key_start) = key_start else { continue };
        let key: String = chars[key_start..i].iter().collect();
        let value: String = chars[i + 1..]
            .iter()
            .skip_while(|c| c.is_whitespace())
            .take_while(|c| !c.is_whitespace())
            .collect();
        if value.starts_with("PID") && key != "pid" {
            bail!("specifying \"{key}={value}\" is not allowed");
        }
    }
    Ok(())
}

fn run_ps(args: &[String], pids: &[i32]) -> anyhow::Result<String> {
    let only = format!(
        "-q{}",
        pids.iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let quick = std::process::Command::new("ps")
        .args(args)
        .arg(&only)
        .output()
        .context("ps")?;
    if quick.status.success() {
        return Ok(String::from_utf8_lossy(&quick.stdout).into_owned());
    }
    // Some options (such as f) do not go with -q.
    let all = std::process::Command::new("ps")
        .args(args)
        .output()
        .context("ps")?;
    if all.status.success() {
        return Ok(String::from_utf8_lossy(&all.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&all.stderr);
    match stderr.lines().next().filter(|l| !l.is_empty()) {
        Some(line) => Err(anyhow!("ps: {line}")),
        None => Err(anyhow!("ps: {}", all.status)),
    }
}

/// The titles, and the rows whose PID is one of `pids` (a thread row
/// after its process's), each with as many cells as titles: what does not
/// fit joins the last cell.
fn parse_ps(output: &str, pids: &[i32]) -> anyhow::Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut lines = output.split('\n');
    let titles: Vec<String> = fields(lines.next().unwrap_or_default());
    let pid_index = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| anyhow!("Couldn't find PID field in ps output"))?;
    let mut rows = Vec::new();
    let mut in_container = false;
    for line in lines.filter(|l| !l.is_empty()) {
        let cells = fields(line);
        let Some(pid) = cells.get(pid_index) else {
            continue;
        };
        if pid == "-" {
            if in_container {
                rows.push(fit(cells, titles.len()));
            }
            continue;
        }
        let pid: i32 = pid
            .parse()
            .map_err(|e| anyhow!("Unexpected pid '{pid}': {e}"))?;
        in_container = pids.contains(&pid);
        if in_container {
            rows.push(fit(cells, titles.len()));
        }
    }
    Ok((titles, rows))
}

/// Go's `fieldsASCII`: split on ASCII white space.
fn fields(line: &str) -> Vec<String> {
    line.split(|c: char| c.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect()
}

fn fit(mut cells: Vec<String>, columns: usize) -> Vec<String> {
    if columns == 0 {
        return cells;
    }
    if cells.len() > columns {
        let rest = cells.split_off(columns - 1).join(" ");
        cells.push(rest);
    }
    cells.resize(columns, String::new());
    cells
}

/// Every column but the last padded to its widest cell plus 3, at least
/// 20 characters.
fn layout(titles: &[String], rows: &[Vec<String>]) -> String {
    let all: Vec<&[String]> = std::iter::once(titles)
        .chain(rows.iter().map(Vec::as_slice))
        .collect();
    let columns = titles.len();
    let widths: Vec<usize> = (0..columns.saturating_sub(1))
        .map(|i| {
            all.iter()
                .filter_map(|cells| cells.get(i))
                .map(|c| c.chars().count() + PADDING)
                .max()
                .unwrap_or(0)
                .max(MIN_WIDTH)
        })
        .collect();
    let mut out = String::new();
    for cells in all {
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if let Some(width) = widths.get(i) {
                let pad = width - cell.chars().count().min(*width);
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS: &str = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
        root           1       0  0 10:00 ?        00:00:01 /sbin/init\n\
        root         200     100  0 10:01 ?        00:00:00 sleep 60 now\n\
        root         201     200  0 10:01 ?        00:00:00 sh\n";

    #[test]
    fn only_the_containers_rows_with_the_command_whole() {
        let (titles, rows) = parse_ps(PS, &[200, 201]).expect("parse");
        assert_eq!(titles.len(), 8);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][1], "200");
        assert_eq!(rows[0][7], "sleep 60 now");
    }

    #[test]
    fn thread_rows_follow_their_process() {
        let ps =
            "USER PID TID CMD\nroot 200 - sleep\nroot - 200 -\nroot 300 - other\nroot - 300 -\n";
        let (_, rows) = parse_ps(ps, &[200]).expect("parse");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1][1], "-");
    }

    #[test]
    fn a_ps_without_pid_column_is_refused() {
        let err = parse_ps("USER CMD\nroot sh\n", &[1]).unwrap_err();
        assert_eq!(err.to_string(), "Couldn't find PID field in ps output");
    }

    #[test]
    fn columns_are_at_least_twenty_wide() {
        let text = layout(
            &["PID".into(), "CMD".into()],
            &[vec!["12".into(), "sleep 60".into()]],
        );
        assert_eq!(
            text,
            format!("PID{}CMD\n12{}sleep 60\n", " ".repeat(17), " ".repeat(18))
        );
    }

    #[test]
    fn renaming_a_column_to_pid_is_refused() {
        assert!(check_ps_args("-o pid,comm").is_ok());
        assert!(check_ps_args("-o pid=PID").is_ok());
        let err = check_ps_args("-o user=PID").unwrap_err();
        assert_eq!(err.to_string(), "specifying \"user=PID\" is not allowed");
    }
}
