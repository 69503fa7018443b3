//! The on-disk state that ties separate runtime invocations to one container:
//! `<root>/<id>/state.json` and the `exec.fifo` that holds a created
//! container's init until `start`.
//!
//! The status is never stored: it is derived from the kernel on every read
//! (is the init process alive and still the same process, is the fifo there,
//! is the cgroup frozen), so a crash cannot leave a stale status behind.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

/// A validated container id: safe to use as a single path component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

impl ContainerId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ContainerId {
    type Error = Error;

    fn try_from(id: String) -> Result<Self> {
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.');
        if id.is_empty()
            || id.len() > 1024
            || id == "."
            || id == ".."
            || !id.chars().all(valid_char)
        {
            return Err(Error::InvalidId(id));
        }
        Ok(ContainerId(id))
    }
}

impl std::str::FromStr for ContainerId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        ContainerId::try_from(s.to_owned())
    }
}

impl From<ContainerId> for String {
    fn from(id: ContainerId) -> String {
        id.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The OCI lifecycle status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // pad, not write_str: tables give a width.
        f.pad(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What `create` records about a container for later invocations.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub id: ContainerId,
    /// The init process, and its start time in clock ticks since boot
    /// (field 22 of /proc/PID/stat), which tells it apart from a later
    /// process that reuses the pid.
    pub pid: i32,
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339, UTC.
    pub created: String,
    /// The spec as it was at create time: later verbs need its hooks,
    /// cgroups path, namespaces and process defaults.
    pub spec: Spec,
}

/// The folder under `--root` that holds every container's state.
#[derive(Clone, Debug)]
pub struct StateRoot {
    root: PathBuf,
}

const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

impl StateRoot {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateRoot { root: root.into() }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn container_dir(&self, id: &ContainerId) -> PathBuf {
        self.root.join(id.as_str())
    }

    pub fn exec_fifo(&self, id: &ContainerId) -> PathBuf {
        self.container_dir(id).join(EXEC_FIFO)
    }

    /// Creates the container's folder; fails if the id is taken.
    pub fn create_dir(&self, id: &ContainerId) -> Result<PathBuf> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.root)
            .context(|| format!("creating state root {}", self.root.display()))?;
        let dir = self.container_dir(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::Exists(id.to_string()))
            }
            Err(source) => Err(Error::Io {
                context: format!("creating state folder {}", dir.display()),
                source,
            }),
        }
    }

    /// Writes the record atomically (temp file + rename), so a reader never
    /// sees half of it.
    pub fn save(&self, record: &Record) -> Result<()> {
        let dir = self.container_dir(&record.id);
        let tmp = dir.join(".state.json.tmp");
        let json = serde_json::to_vec(record).map_err(|e| Error::InvalidSpec(e.to_string()))?;
        let mut file = fs::File::create(&tmp).context(|| format!("writing {}", tmp.display()))?;
        file.write_all(&json)
            .context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, dir.join(STATE_FILE)).context(|| format!("writing state of {}", record.id))
    }

    pub fn load(&self, id: &ContainerId) -> Result<Record> {
        let path = self.container_dir(id).join(STATE_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()));
            }
            Err(source) => {
                return Err(Error::Io {
                    context: format!("reading {}", path.display()),
                    source,
                });
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| Error::Io {
            context: format!("reading {}", path.display()),
            source: e.into(),
        })
    }

    pub fn remove(&self, id: &ContainerId) -> Result<()> {
        let dir = self.container_dir(id);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
                context: format!("removing {}", dir.display()),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Where compiled seccomp programs are kept (see
    /// `seccomp::compile_cached`). Its name holds a character no container
    /// id may hold, so no container's state folder can be it.
    pub fn seccomp_cache(&self) -> PathBuf {
        self.root.join("@seccomp-cache")
    }

    /// Every container id with a state folder, sorted.
    pub fn ids(&self) -> Result<Vec<ContainerId>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io {
                    context: format!("listing {}", self.root.display()),
                    source,
                });
            }
        };
        let mut ids: Vec<ContainerId> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|name| ContainerId::try_from(name).ok())
            .collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(ids)
    }
}

/// What the kernel says of a process: alive (and which start time), or gone.
/// A zombie counts as gone: it will never run again.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields
    // after it are counted from the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // `rest` starts at field 3; start time is field 22.
    fields.nth(18)?.parse().ok()
}

impl Record {
    /// Whether the recorded init process is still the one running.
    pub fn init_alive(&self) -> bool {
        // pid 0: a create that never got as far as init. (And kill(2)
        // with 0 or less would signal us, never the container.)
        self.pid > 0 && process_start_time(self.pid) == Some(self.pid_start_time)
    }
}

/// Derives the status from the kernel and the state folder.
pub fn status(root: &StateRoot, record: &Record, frozen: impl FnOnce() -> bool) -> Status {
    if !record.init_alive() {
        return Status::Stopped;
    }
    if root.exec_fifo(&record.id).exists() {
        return Status::Created;
    }
    if frozen() {
        return Status::Paused;
    }
    Status::Running
}

/// The current time as RFC 3339 in UTC, with nanoseconds (runc's form).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_single_safe_path_components() {
        for good in ["a", "abc-123_x.y+z", "0"] {
            assert!(good.parse::<ContainerId>().is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "a\0b", "é"] {
            assert!(bad.parse::<ContainerId>().is_err(), "{bad:?}");
        }
        assert!("x".repeat(1025).parse::<ContainerId>().is_err());
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let now = now_rfc3339();
        assert!(now.ends_with('Z') && now.len() == 30, "{now}");
        assert!(humantime::parse_rfc3339(&now).is_ok());
    }

    #[test]
    fn start_time_of_self_and_of_nothing() {
        let me = std::process::id() as i32;
        assert!(process_start_time(me).is_some());
        assert_eq!(process_start_time(i32::MAX), None);
    }
}
