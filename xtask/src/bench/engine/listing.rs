//! `ps -a` and `ps -a -q` with many containers (`--containers`, 1000 by
//! default), made by `create IMAGE true` one command each and never
//! started: what is timed is the listing, not the containers.
//!
//! muelle's are always made. podman's only when making them fits in
//! [`PODMAN_FILL_CAP`]: the bench estimates the whole from the first
//! [`ESTIMATE_AFTER`] and gives up, with the reason in podman's rows,
//! when it would not fit (or once the cap passed anyway); the containers
//! made so far are removed at once, freeing the podman locks they hold.
//!
//! Every run's output is checked: a list without all the containers is a
//! failed run, whatever the exit status.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::cli::{Cli, Flavor};
use super::{Args, Bench, Op, ROUND_RUNS, copy, guard};
use crate::bench::common::Unavailable;

/// The longest the bench spends making podman's containers.
const PODMAN_FILL_CAP: Duration = Duration::from_secs(180);
/// Containers made before the estimate.
const ESTIMATE_AFTER: u32 = 50;

pub fn measure(bench: &mut Bench, args: &Args) -> Result<()> {
    let expected = args.containers;
    for cli in &mut bench.clis {
        let tool = cli.name();
        if !bench.slots.live(Op::Ps, tool) {
            continue;
        }
        let cap = (cli.flavor == Flavor::Podman).then_some(PODMAN_FILL_CAP);
        let filled = match cli.remove_all() {
            Err(e) => Err(Unavailable::Failed(format!(
                "cannot empty the instance: {e}"
            ))),
            Ok(()) => fill(cli, expected, cap)?,
        };
        if let Err(why) = filled {
            if let Err(e) = cli.remove_all() {
                eprintln!("{tool}: {e}");
            }
            for op in [Op::Ps, Op::PsQuiet] {
                bench.slots.stop(op, tool, copy(&why));
            }
            continue;
        }
        for op in [Op::Ps, Op::PsQuiet] {
            guard::check()?;
            bench
                .slots
                .warm(op, tool, list_once(cli, op, expected).map(drop));
        }
    }

    let rounds = args.runs.div_ceil(ROUND_RUNS);
    for round in 0..rounds {
        let runs = ROUND_RUNS.min(args.runs - round * ROUND_RUNS);
        eprintln!("ps round {}/{rounds}: {runs} timed runs of each", round + 1);
        for op in [Op::Ps, Op::PsQuiet] {
            for cli in &mut bench.clis {
                let tool = cli.name();
                for _ in 0..runs {
                    guard::check()?;
                    if !bench.slots.live(op, tool) {
                        break;
                    }
                    let outcome = list_once(cli, op, expected);
                    bench.slots.record(op, tool, outcome);
                }
            }
        }
    }
    Ok(())
}

/// Makes `count` containers, one `create` each. The outer error is an
/// interrupt; the inner one says why the instance has not got them all.
fn fill(
    cli: &mut Cli,
    count: u32,
    cap: Option<Duration>,
) -> Result<Result<(), Unavailable>, anyhow::Error> {
    let tool = cli.name();
    let started = Instant::now();
    for made in 1..=count {
        guard::check()?;
        let args = cli.create_args(&["true"]);
        if let Err(e) = cli.output(&args) {
            return Ok(Err(Unavailable::Failed(format!(
                "create, container {made}: {e}"
            ))));
        }
        let elapsed = started.elapsed().as_secs_f64();
        let projected = elapsed / f64::from(made) * f64::from(count);
        if let Some(cap) = cap
            && ((made == ESTIMATE_AFTER && projected > cap.as_secs_f64())
                || elapsed > cap.as_secs_f64())
        {
            let why = format!(
                "making {count} containers would take about {projected:.0} s ({made} took \
                 {elapsed:.1} s), more than the {} s the bench allows it",
                cap.as_secs()
            );
            eprintln!("{tool}: {why}");
            return Ok(Err(Unavailable::Skipped(why)));
        }
        if made % 250 == 0 && made < count {
            eprintln!("{tool}: {made}/{count} containers made");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "{tool}: made {count} containers for ps in {elapsed:.1} s ({:.1} ms each)",
        elapsed * 1000.0 / f64::from(count)
    );
    Ok(Ok(()))
}

/// One timed `ps -a` or `ps -a -q`, failed unless it lists `expected`
/// containers.
fn list_once(cli: &mut Cli, op: Op, expected: u32) -> Result<f64, String> {
    let args: &[&str] = match op {
        Op::PsQuiet => &["ps", "-a", "-q"],
        _ => &["ps", "-a"],
    };
    let ms = cli.timed(args)?;
    let text = cli.last_output();
    let listed = text
        .lines()
        .map(str::trim)
        .filter(|line| match op {
            Op::PsQuiet => line.len() >= 12 && line.bytes().all(|b| b.is_ascii_hexdigit()),
            _ => line.contains("busybox"),
        })
        .count();
    if listed != expected as usize {
        return Err(format!(
            "`{}` listed {listed} of the {expected} containers",
            args.join(" ")
        ));
    }
    Ok(ms)
}
