//! `state`, `list` and `ps`: read-only views of containers.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::error::Result;
use crate::state::{ContainerId, Record, StateRoot, Status};

/// The state JSON of the OCI spec, with runc's extra fields (engines such
/// as podman read `created` and `rootfs`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

impl OciState {
    pub fn of(record: &Record, status: Status) -> OciState {
        OciState {
            oci_version: record.oci_version.clone(),
            id: record.id.to_string(),
            // A stopped container has no process; runc reports 0.
            pid: if status == Status::Stopped {
                0
            } else {
                record.pid
            },
            status,
            bundle: record.bundle.clone(),
            rootfs: record.rootfs.clone(),
            created: record.created.clone(),
            owner: String::new(),
            annotations: record.annotations.clone(),
        }
    }
}

pub fn state(root: &StateRoot, id: &ContainerId) -> Result<OciState> {
    let record = root.load(id)?;
    let status = status_of(root, &record);
    Ok(OciState::of(&record, status))
}

fn status_of(root: &StateRoot, record: &Record) -> Status {
    crate::state::status(root, record, || record.cgroup.is_frozen().unwrap_or(false))
}

/// One row of `list`.
pub struct Listed {
    pub state: OciState,
}

/// Every container under the root; folders without a readable state (a
/// create in progress) are skipped.
pub fn list(root: &StateRoot) -> Result<Vec<Listed>> {
    let mut out = Vec::new();
    for id in root.ids()? {
        if let Ok(record) = root.load(&id) {
            let status = status_of(root, &record);
            out.push(Listed {
                state: OciState::of(&record, status),
            });
        }
    }
    Ok(out)
}

/// The pids in the container's cgroup.
pub fn processes(root: &StateRoot, id: &ContainerId) -> Result<Vec<i32>> {
    let record = root.load(id)?;
    let cgroup = &record.cgroup;
    if !cgroup.exists() {
        return Ok(Vec::new());
    }
    let mut pids = cgroup.procs()?;
    pids.sort_unstable();
    Ok(pids)
}
