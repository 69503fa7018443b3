//! The on-disk state that ties separate runtime invocations to one container:
//! `<root>/<id>/state.json`, the `init` link naming its init process, and
//! the `exec.fifo` that holds a created container's init until `start`.
//!
//! The status is never stored: it is derived from the kernel on every read
//! (is the init process alive and still the same process, is the fifo there,
//! is the cgroup frozen), so a crash cannot leave a stale status behind.
//!
//! Each file is written once. `state.json` is made before anything else of
//! the container exists, with the spec as create read it (kept as raw JSON:
//! only `exec` parses it again) and what the other verbs need of it (version,
//! annotations, hooks, the cgroup create made). Init's pid and start time
//! come later, as the target of the `init` symlink: one `symlinkat(2)`,
//! atomic, and no rewrite of `state.json` (which on ext4 would also start
//! its writeback, and `delete` would wait for the disk).

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use std::collections::HashMap;

use oci_spec::runtime::{Hooks, Spec};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::cgroups::Cgroup;

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
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    pub id: ContainerId,
    /// The init process, and its start time in clock ticks since boot
    /// (field 22 of /proc/PID/stat), which tells it apart from a later
    /// process that reuses the pid. Both 0 until init is ready (in
    /// `state.json` they stay 0: the `init` link has them).
    pub pid: i32,
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339, UTC.
    pub created: String,
    /// What later verbs need of the spec, taken out of it at create time.
    pub oci_version: String,
    pub annotations: HashMap<String, String>,
    pub hooks: Option<Hooks>,
    /// Where create put the container, in every hierarchy.
    pub cgroup: Cgroup,
    /// The spec as it was at create time, as JSON: see [`Record::spec`].
    spec: Box<RawValue>,
}

impl Record {
    /// A record of a container whose init does not exist yet. `spec_json`
    /// is the text `spec` was parsed from.
    pub fn new(
        id: ContainerId,
        bundle: PathBuf,
        rootfs: PathBuf,
        spec: &Spec,
        spec_json: Box<RawValue>,
        cgroup: Cgroup,
    ) -> Record {
        Record {
            id,
            pid: 0,
            pid_start_time: 0,
            bundle,
            rootfs,
            created: now_rfc3339(),
            oci_version: spec.version().clone(),
            annotations: spec.annotations().clone().unwrap_or_default(),
            hooks: spec.hooks().clone(),
            cgroup,
            spec: spec_json,
        }
    }

    /// The whole spec as it was at create time, parsed anew: only verbs
    /// that need more than the fields above (exec) pay for it.
    pub fn spec(&self) -> Result<Spec> {
        serde_json::from_str(self.spec.get()).map_err(|e| Error::Io {
            context: format!("reading the spec of {}", self.id),
            source: e.into(),
        })
    }
}

/// `state.json` as read. Files of earlier muelle versions have the pid in
/// them and no spec-derived fields (the spec has them).
#[derive(Deserialize)]
struct Stored {
    id: ContainerId,
    #[serde(default)]
    pid: i32,
    #[serde(default)]
    pid_start_time: u64,
    bundle: PathBuf,
    rootfs: PathBuf,
    created: String,
    oci_version: Option<String>,
    #[serde(default)]
    annotations: HashMap<String, String>,
    #[serde(default)]
    hooks: Option<Hooks>,
    cgroup: Option<Cgroup>,
    spec: Box<RawValue>,
}

impl Stored {
    fn into_record(self) -> Result<Record> {
        let (oci_version, annotations, hooks, cgroup) = match (self.oci_version, self.cgroup) {
            (Some(version), Some(cgroup)) => (version, self.annotations, self.hooks, cgroup),
            // A file of an older muelle: the spec has it all.
            _ => {
                let spec: Spec = serde_json::from_str(self.spec.get()).map_err(|e| Error::Io {
                    context: format!("reading the spec of {}", self.id),
                    source: e.into(),
                })?;
                let cgroups_path = spec
                    .linux()
                    .as_ref()
                    .and_then(|l| l.cgroups_path().as_ref())
                    .map(|p| p.to_string_lossy().into_owned());
                let cgroup = Cgroup::new(cgroups_path.as_deref(), self.id.as_str())?;
                (
                    spec.version().clone(),
                    spec.annotations().clone().unwrap_or_default(),
                    spec.hooks().clone(),
                    cgroup,
                )
            }
        };
        Ok(Record {
            id: self.id,
            pid: self.pid,
            pid_start_time: self.pid_start_time,
            bundle: self.bundle,
            rootfs: self.rootfs,
            created: self.created,
            oci_version,
            annotations,
            hooks,
            cgroup,
            spec: self.spec,
        })
    }
}

/// The folder under `--root` that holds every container's state.
#[derive(Clone, Debug)]
pub struct StateRoot {
    root: PathBuf,
}

const STATE_FILE: &str = "state.json";
/// A symlink whose target is "PID START_TIME" of the container's init.
const INIT_LINK: &str = "init";
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
        let dir = self.container_dir(id);
        let mut made = fs::DirBuilder::new().mode(0o711).create(&dir);
        // The state root is made with the first container only.
        if matches!(&made, Err(e) if e.kind() == std::io::ErrorKind::NotFound) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o711)
                .create(&self.root)
                .context(|| format!("creating state root {}", self.root.display()))?;
            made = fs::DirBuilder::new().mode(0o711).create(&dir);
        }
        match made {
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

    /// Writes `state.json`, once, before anything else of the container
    /// exists (its init is recorded later by [`StateRoot::save_init`]):
    /// through a temporary name, so that a reader never sees half of it.
    pub fn save(&self, record: &Record) -> Result<()> {
        let dir = self.container_dir(&record.id);
        let tmp = dir.join(".state.json.tmp");
        let json = serde_json::to_vec(record).map_err(|e| Error::InvalidSpec(e.to_string()))?;
        let mut file = fs::File::create(&tmp).context(|| format!("writing {}", tmp.display()))?;
        file.write_all(&json)
            .context(|| format!("writing {}", tmp.display()))?;
        drop(file);
        fs::rename(&tmp, dir.join(STATE_FILE)).context(|| format!("writing state of {}", record.id))
    }

    /// Records the container's init: from now on `load` gives its pid.
    pub fn save_init(&self, id: &ContainerId, pid: i32, start_time: u64) -> Result<()> {
        let link = self.container_dir(id).join(INIT_LINK);
        std::os::unix::fs::symlink(format!("{pid} {start_time}"), &link)
            .context(|| format!("writing {}", link.display()))
    }

    pub fn load(&self, id: &ContainerId) -> Result<Record> {
        let dir = self.container_dir(id);
        let path = dir.join(STATE_FILE);
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
        let stored: Stored = serde_json::from_slice(&bytes).map_err(|e| Error::Io {
            context: format!("reading {}", path.display()),
            source: e.into(),
        })?;
        let mut record = stored.into_record()?;
        let link = dir.join(INIT_LINK);
        match fs::read_link(&link) {
            Ok(target) => {
                let parsed = target.to_str().and_then(|t| {
                    let (pid, start) = t.split_once(' ')?;
                    Some((pid.parse().ok()?, start.parse().ok()?))
                });
                let Some((pid, start_time)) = parsed else {
                    return Err(Error::Io {
                        context: format!("reading {}", link.display()),
                        source: std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("{target:?} is not \"PID START_TIME\""),
                        ),
                    });
                };
                record.pid = pid;
                record.pid_start_time = start_time;
            }
            // Init is not ready yet (or the file is an older muelle's,
            // with the pid inside).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Io {
                    context: format!("reading {}", link.display()),
                    source,
                });
            }
        }
        Ok(record)
    }

    pub fn remove(&self, id: &ContainerId) -> Result<()> {
        let dir = self.container_dir(id);
        // The files a container has, then the folder: five calls where a
        // walk of the folder takes eleven. Anything else there takes the
        // walk.
        for name in [STATE_FILE, INIT_LINK, EXEC_FIFO, ".state.json.tmp"] {
            let _ = fs::remove_file(dir.join(name));
        }
        if fs::remove_dir(&dir).is_ok() {
            return Ok(());
        }
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
    let stat = crate::kernel_files::read(Path::new(&format!("/proc/{pid}/stat"))).ok()?;
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

    fn record(root: &StateRoot, id: &str, spec_json: &str) -> Record {
        let id: ContainerId = id.parse().expect("id");
        let spec: Spec = serde_json::from_str(spec_json).expect("spec");
        let layout = crate::cgroups::Layout::unified_at("/sys/fs/cgroup");
        let cgroup = Cgroup::with_layout(layout, None, id.as_str()).expect("cgroup");
        root.create_dir(&id).expect("dir");
        let raw = RawValue::from_string(spec_json.to_owned()).expect("raw");
        Record::new(id, "/b".into(), "/b/rootfs".into(), &spec, raw, cgroup)
    }

    const SPEC: &str = r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},
        "annotations":{"a":"b"},"hooks":{"poststop":[{"path":"/bin/true"}]}}"#;

    #[test]
    fn state_json_is_written_once_and_init_comes_through_its_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = StateRoot::new(dir.path());
        let rec = record(&root, "c1", SPEC);
        root.save(&rec).expect("save");
        let loaded = root.load(&rec.id).expect("load");
        assert_eq!((loaded.pid, loaded.pid_start_time), (0, 0));
        assert_eq!(loaded.oci_version, "1.2.0");
        assert_eq!(loaded.annotations.get("a").map(String::as_str), Some("b"));
        assert!(
            loaded
                .hooks
                .as_ref()
                .and_then(|h| h.poststop().as_ref())
                .is_some()
        );
        assert_eq!(loaded.cgroup, rec.cgroup);
        // The spec comes back as create read it.
        assert_eq!(
            loaded.spec().expect("spec").annotations(),
            &Some([("a".to_owned(), "b".to_owned())].into())
        );

        let state = dir.path().join("c1/state.json");
        let before = fs::read(&state).expect("read");
        root.save_init(&rec.id, 4242, 77).expect("init");
        let loaded = root.load(&rec.id).expect("load");
        assert_eq!((loaded.pid, loaded.pid_start_time), (4242, 77));
        assert_eq!(
            fs::read(&state).expect("read"),
            before,
            "state.json untouched"
        );
        // Once: a second init is refused.
        assert!(root.save_init(&rec.id, 1, 1).is_err());
    }

    #[test]
    fn the_state_root_is_made_with_the_first_container() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = StateRoot::new(dir.path().join("a/b"));
        let id: ContainerId = "c".parse().expect("id");
        root.create_dir(&id).expect("first");
        assert!(dir.path().join("a/b/c").is_dir());
        assert!(matches!(root.create_dir(&id), Err(Error::Exists(_))));
        let other: ContainerId = "d".parse().expect("id");
        root.create_dir(&other).expect("second");
    }

    #[test]
    fn a_damaged_init_link_is_an_error_not_a_stopped_container() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = StateRoot::new(dir.path());
        let rec = record(&root, "c2", SPEC);
        root.save(&rec).expect("save");
        std::os::unix::fs::symlink("not a pid", dir.path().join("c2/init")).expect("link");
        assert!(matches!(root.load(&rec.id), Err(Error::Io { .. })));
    }

    #[test]
    fn state_of_an_earlier_muelle_still_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = StateRoot::new(dir.path());
        let id: ContainerId = "old".parse().expect("id");
        root.create_dir(&id).expect("dir");
        // The spec names a cgroup on a layout-free path: the record's cgroup is
        // resolved from it (relative to the host's mounts).
        let old = format!(
            r#"{{"id":"old","pid":123,"pid_start_time":456,"bundle":"/b","rootfs":"/b/rootfs",
            "created":"2024-01-01T00:00:00Z","spec":{SPEC}}}"#
        );
        fs::write(dir.path().join("old/state.json"), old).expect("write");
        let loaded = match root.load(&id) {
            Ok(r) => r,
            // No cgroup filesystem on this machine: nothing to resolve against.
            Err(Error::Cgroup(crate::cgroups::CgroupError::NoCgroupFs)) => return,
            Err(e) => panic!("{e}"),
        };
        assert_eq!((loaded.pid, loaded.pid_start_time), (123, 456));
        assert_eq!(loaded.oci_version, "1.2.0");
        assert_eq!(loaded.annotations.get("a").map(String::as_str), Some("b"));
        assert!(loaded.hooks.is_some());
        assert!(loaded.cgroup.paths().all(|p| p.ends_with("muelle/old")));
    }

    #[test]
    fn start_time_of_self_and_of_nothing() {
        let me = std::process::id() as i32;
        assert!(process_start_time(me).is_some());
        assert_eq!(process_start_time(i32::MAX), None);
    }
}
