//! `logs`: the container's json-file log, as docker prints it.

use std::time::SystemTime;

use engine::logs::{LogOptions, copy_log, parse_time};

use super::args::LogsArgs;
use super::engine;
use crate::args::Global;

pub fn logs(global: &Global, args: LogsArgs) -> anyhow::Result<()> {
    let engine = engine(global)?;
    let container = {
        let store = engine.open_store()?;
        engine.find(&store, &args.container)?
    };
    let now = SystemTime::now();
    let tail = match args.tail.as_str() {
        "all" => None,
        // docker reads a negative or unreadable count as "all".
        n => n.parse::<usize>().ok(),
    };
    let options = LogOptions {
        follow: args.follow,
        tail,
        timestamps: args.timestamps,
        since: args
            .since
            .as_deref()
            .map(|v| parse_time("since", v, now))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|v| parse_time("until", v, now))
            .transpose()?,
    };
    let monitor = container
        .state
        .monitor
        .filter(|_| container.state.status.is_live());
    let finished = || monitor.is_none_or(|m| !m.is_alive());
    let path = engine.paths(&container.id).log();
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    copy_log(&path, &options, &mut stdout, &mut stderr, &finished)?;
    Ok(())
}
