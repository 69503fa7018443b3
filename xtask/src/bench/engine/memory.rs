//! The memory of the process that watches a container: muelle's
//! `muelle-monitor`, podman's `conmon`. RSS counts every page mapped, PSS
//! shares the ones other processes map too (the binary, libc) among them:
//! both from `/proc/PID/smaps_rollup`.

use std::fs;

use super::guard;

/// One watcher process, measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub pid: i32,
    pub rss_kib: u64,
    pub pss_kib: u64,
}

/// The live process called `comm` whose command line names `id`.
pub fn watcher(comm: &str, id: &str) -> Result<i32, String> {
    let found: Vec<i32> = guard::processes_naming(id)
        .into_iter()
        .filter(|p| p.comm == comm)
        .map(|p| p.pid)
        .collect();
    match found[..] {
        [pid] => Ok(pid),
        [] => Err(format!("no {comm} process names container {id}")),
        _ => Err(format!(
            "{} {comm} processes name container {id}",
            found.len()
        )),
    }
}

pub fn usage(pid: i32) -> Result<Usage, String> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let text = fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let field =
        |name: &str| field_kib(&text, name).ok_or_else(|| format!("{path} has no {name} line"));
    Ok(Usage {
        pid,
        rss_kib: field("Rss")?,
        pss_kib: field("Pss")?,
    })
}

/// The value of a `Name:   1234 kB` line.
fn field_kib(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_and_pss_not_their_look_alikes() {
        let text = "55d0-7ffd ---p 00000000 00:00 0 [rollup]\n\
                    Rss:                1116 kB\n\
                    Pss:                 819 kB\n\
                    Pss_Dirty:           348 kB\n";
        assert_eq!(field_kib(text, "Rss"), Some(1116));
        assert_eq!(field_kib(text, "Pss"), Some(819));
        assert_eq!(field_kib(text, "Pss_Anon"), None);
    }

    #[test]
    fn measures_this_process() {
        let pid = i32::try_from(std::process::id()).expect("pid");
        let usage = usage(pid).expect("smaps_rollup");
        assert!(
            usage.rss_kib > 0 && usage.pss_kib <= usage.rss_kib,
            "{usage:?}"
        );
    }
}
