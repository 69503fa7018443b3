//! `muelle-monitor JOB`: the per-container monitor the engine starts (see
//! `engine::monitor`). Kept small: no logging framework, no store.

fn main() {
    let code = engine::monitor::run(&std::env::args().skip(1).collect::<Vec<_>>());
    std::process::exit(code);
}
