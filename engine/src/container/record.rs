//! A container's record in the metadata store (table `containers`, keyed
//! by id) and its name's (table `container-names`, keyed by name): what
//! `create` decided once (id, name, the mounts with their volume names)
//! and the state the lifecycle verbs and reconciliation keep current.

use serde::{Deserialize, Serialize};
use storage::mounts::MountSpec;
use storage::store::Record;

use crate::config::ContainerConfig;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    /// 64 hex characters.
    pub id: String,
    /// Without docker's leading `/`.
    pub name: String,
    /// RFC 3339 with nanoseconds, UTC.
    pub created: String,
    /// What the user asked for (shown by `inspect` apart from the image's).
    pub config: ContainerConfig,
    /// The image's entrypoint and command as the process will run them:
    /// docker's `Path` and `Args`.
    pub path: String,
    pub args: Vec<String>,
    /// The signal `stop` sends first: `--stop-signal`, else the image's,
    /// else SIGTERM.
    pub stop_signal: String,
    /// The mounts the container runs with: the user's, with anonymous
    /// volumes named, then one anonymous volume for each `Volumes` entry
    /// of the image that no user mount covers.
    pub mounts: Vec<MountSpec>,
    /// The volumes made for this container alone (`rm -v` and `--rm`
    /// remove them).
    #[serde(default)]
    pub anonymous_volumes: Vec<String>,
    pub state: State,
}

impl Record for Container {
    const TABLE: &'static str = "containers";
    fn key(&self) -> String {
        self.id.clone()
    }
}

impl Container {
    /// The first 12 characters of the id, as docker prints it.
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }
}

/// A name taken by a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NameEntry {
    pub name: String,
    pub id: String,
}

impl Record for NameEntry {
    const TABLE: &'static str = "container-names";
    fn key(&self) -> String {
        self.name.clone()
    }
}

/// docker's container states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// A monitor is (or should be) looking after the container.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The monitor of a live container: its pid, and its start time so that a
/// reused pid is never mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorRef {
    pub pid: i32,
    pub start_time: u64,
}

impl MonitorRef {
    pub fn of(pid: i32) -> Option<MonitorRef> {
        runtime_core::state::process_start_time(pid)
            .map(|start_time| MonitorRef { pid, start_time })
    }

    /// The same process still runs (a zombie counts as gone).
    pub fn is_alive(&self) -> bool {
        runtime_core::state::process_start_time(self.pid) == Some(self.start_time)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    /// The container's init on the host, 0 when not running.
    #[serde(default)]
    pub pid: i32,
    #[serde(default)]
    pub monitor: Option<MonitorRef>,
    #[serde(default)]
    pub exit_code: i32,
    /// Why the last start failed, or how the container was lost.
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub restart_count: u32,
    /// The restart policy's last back-off, 0 before the first restart.
    #[serde(default)]
    pub restart_delay_ms: u64,
    /// `stop`/`kill` ended the container: no restart policy applies
    /// (docker's HasBeenManuallyStopped).
    #[serde(default)]
    pub stopped_by_user: bool,
    /// The volumes mounted for the container's run (by name): what the
    /// teardown after its exit unmounts.
    #[serde(default)]
    pub mounted_volumes: Vec<String>,
}
