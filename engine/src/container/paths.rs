//! Where a container's files are. Under the data root (kept across
//! reboots): `containers/ID/` with the root filesystem's own folders
//! (upper, work), the mounted root filesystem `rootfs`, the log and the
//! files muelle writes for it (hostname, hosts, resolv.conf). Under the
//! run root (gone at reboot, as is everything it describes): the bundle's
//! `config.json`, the monitor's own and exit files, and runtime-core's state.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct ContainerPaths {
    id: String,
    data: PathBuf,
    run: PathBuf,
}

impl ContainerPaths {
    pub fn new(data_root: &Path, run_root: &Path, id: &str) -> ContainerPaths {
        ContainerPaths {
            id: id.to_owned(),
            data: data_root.join("containers").join(id),
            run: run_root.join("containers").join(id),
        }
    }

    /// `ROOT/containers/ID`: the root filesystem's container folder.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// `ROOT/containers/.trash/ID`: where a removed container's folder
    /// waits for its monitor to delete it (`run --rm`).
    pub fn trash(&self) -> PathBuf {
        let containers = self.data.parent().unwrap_or(&self.data);
        containers.join(".trash").join(&self.id)
    }

    /// `RUNROOT/containers/ID`: the OCI bundle.
    pub fn run(&self) -> &Path {
        &self.run
    }

    pub fn rootfs(&self) -> PathBuf {
        self.data.join("rootfs")
    }

    /// docker's name for the json-file log.
    pub fn log(&self) -> PathBuf {
        self.data.join(format!("{}-json.log", self.id))
    }

    pub fn hostname(&self) -> PathBuf {
        self.data.join("hostname")
    }

    pub fn hosts(&self) -> PathBuf {
        self.data.join("hosts")
    }

    pub fn resolv_conf(&self) -> PathBuf {
        self.data.join("resolv.conf")
    }

    pub fn config_json(&self) -> PathBuf {
        self.run.join("config.json")
    }

    /// Written by the monitor once the container runs ([`MonitorFile`]):
    /// a start whose command was killed before it recorded the monitor
    /// is found through it.
    ///
    /// [`MonitorFile`]: crate::monitor::MonitorFile
    pub fn monitor_file(&self) -> PathBuf {
        self.run.join("monitor")
    }

    /// The monitor's socket for `attach`.
    pub fn attach_socket(&self) -> PathBuf {
        self.run.join("attach.sock")
    }

    /// Written by the monitor when the container's init exits.
    pub fn exit_file(&self) -> PathBuf {
        self.run.join("exit")
    }
}

/// runtime-core's state root for muelle's containers.
pub fn runtime_root(run_root: &Path) -> PathBuf {
    run_root.join("runtime")
}
