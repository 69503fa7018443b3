//! `store-session ROOT read|write NAME`: one metadata store session, as a
//! `muelle volume` command has it, timed inside this process. A helper of
//! `cargo xtask bench storage` (built with `--features store-session`),
//! which runs it once per sample: a command is one process, and opens the
//! store once.
//!
//! - `read`: open, get the volume NAME, close.
//! - `write`: open, insert a copy of NAME as `NAME-session` (or remove that
//!   copy when it is there, so that two runs leave the store as it was),
//!   flushed as every write is, close.
//!
//! Prints one JSON line: `open_ms`, `work_ms`, `close_ms`, `total_ms`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use storage::store::Store;
use storage::volume::{Volume, VolumeName};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, mode, name] = args.as_slice() else {
        eprintln!("usage: store-session ROOT read|write NAME");
        return ExitCode::from(2);
    };
    match session(Path::new(root), mode, name) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("store-session: {e}");
            ExitCode::FAILURE
        }
    }
}

fn session(root: &Path, mode: &str, name: &str) -> Result<String, String> {
    let write = match mode {
        "read" => false,
        "write" => true,
        other => return Err(format!("unknown mode {other:?}: use read or write")),
    };
    let started = Instant::now();
    let store = Store::open(root).map_err(|e| e.to_string())?;
    let opened = Instant::now();
    let work = if write {
        write_one(&store, name)
    } else {
        read_one(&store, name)
    };
    let worked = Instant::now();
    drop(store);
    let closed = Instant::now();
    work?;
    let ms = |from: Instant, to: Instant| (to - from).as_secs_f64() * 1000.0;
    Ok(serde_json::json!({
        "open_ms": ms(started, opened),
        "work_ms": ms(opened, worked),
        "close_ms": ms(worked, closed),
        "total_ms": ms(started, closed),
    })
    .to_string())
}

fn read_one(store: &Store, name: &str) -> Result<(), String> {
    let table = store.table::<Volume>().map_err(|e| e.to_string())?;
    match table.get(name) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(format!("no volume {name:?} in the store")),
        Err(e) => Err(e.to_string()),
    }
}

fn write_one(store: &Store, name: &str) -> Result<(), String> {
    let table = store.table::<Volume>().map_err(|e| e.to_string())?;
    let copy = format!("{name}-session");
    if table.get(&copy).map_err(|e| e.to_string())?.is_some() {
        return table.remove(&copy).map(drop).map_err(|e| e.to_string());
    }
    let mut volume = table
        .get(name)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no volume {name:?} in the store"))?;
    volume.name = copy.parse::<VolumeName>().map_err(|e| e.to_string())?;
    match table.insert_new(&volume) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("volume {copy:?} appeared meanwhile")),
        Err(e) => Err(e.to_string()),
    }
}
