//! The built-in `local` driver: data at ROOT/volumes/NAME/_data, or, with
//! docker's `type`/`device`/`o` options, a filesystem mounted there while
//! containers use the volume (the options are kept beside it in
//! `opts.json`, as docker keeps them).
//!
//! A plain volume is a folder that needs no mounting, so its users are not
//! counted here (the store's records say who references it); a volume
//! with options counts its callers in `callers`, and the last one out
//! unmounts it.

mod callers;
mod options;

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use super::{Driver, Result, Scope, VolumeError, VolumeName};
use crate::mounts::{BindMount, BindPolicy, Propagation};
use callers::Callers;
pub use options::MountOptions;

pub struct LocalDriver {
    base: PathBuf,
    policy: BindPolicy,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> VolumeError {
    move |source| VolumeError::Io { context, source }
}

fn mkdir(path: &Path, mode: u32) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(io(format!("creating {}", path.display())))
}

/// Something is mounted on `data`. Mount ids, not device numbers, tell:
/// a bind of a host folder on the same filesystem keeps the device.
pub(crate) fn is_mounted(data: &Path) -> bool {
    match (mount_id(data), data.parent().and_then(mount_id)) {
        (Some(d), Some(p)) => d != p,
        _ => false,
    }
}

fn mount_id(path: &Path) -> Option<u64> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statx is plain-old-data, valid when zeroed.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is NUL-terminated and stx is a writable statx.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_MNT_ID,
            &mut stx,
        )
    };
    (rc == 0 && stx.stx_mask & libc::STATX_MNT_ID != 0).then_some(stx.stx_mnt_id)
}

impl LocalDriver {
    /// The driver for one data root, judging host paths in `device`
    /// options by `policy`.
    pub fn new(data_root: &Path, policy: BindPolicy) -> LocalDriver {
        LocalDriver {
            base: data_root.join("volumes"),
            policy,
        }
    }

    fn dir(&self, name: &VolumeName) -> PathBuf {
        self.base.join(name.as_str())
    }

    /// The data folder of a volume (whether or not it exists).
    pub fn data_path(&self, name: &VolumeName) -> PathBuf {
        self.dir(name).join("_data")
    }

    fn options(&self, name: &VolumeName) -> Result<Option<MountOptions>> {
        let path = self.dir(name).join("opts.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
        };
        let options: BTreeMap<String, String> =
            serde_json::from_str(&text).map_err(|e| VolumeError::Io {
                context: format!("reading {}", path.display()),
                source: std::io::Error::other(e),
            })?;
        MountOptions::parse(&options)
    }

    /// Runs the operator's policy over the host path the options reach;
    /// returns the path to mount (resolved) and whether the policy made it
    /// read-only.
    fn judge(&self, options: &MountOptions) -> Result<(String, bool)> {
        let Some(path) = options.host_path() else {
            return Ok((options.device.clone(), false));
        };
        let mut bind = BindMount {
            source: path,
            target: PathBuf::from("/"),
            read_only: options.flags.contains(MsFlags::MS_RDONLY),
            propagation: Propagation::default(),
            selinux_relabel: None,
        };
        let note = self.policy.check(&mut bind)?;
        if let Some(note) = &note {
            tracing::info!("{note}");
        }
        Ok((bind.source.to_string_lossy().into_owned(), note.is_some()))
    }

    fn mount_options(&self, options: &MountOptions, data: &Path) -> Result<()> {
        let (device, forced_ro) = self.judge(options)?;
        let flags = options.flags
            | if forced_ro {
                MsFlags::MS_RDONLY
            } else {
                MsFlags::empty()
            };
        let failed = |e: nix::Error| VolumeError::Io {
            context: format!("mounting {device} on {}", data.display()),
            source: e.into(),
        };
        let fs_type = (!options.bind).then_some(options.fs_type.as_str());
        let data_arg = (!options.data.is_empty()).then_some(options.data.as_str());
        nix::mount::mount(Some(device.as_str()), data, fs_type, flags, data_arg).map_err(failed)?;
        // A bind ignores every flag but MS_BIND|MS_REC on its first mount:
        // read-only and friends take a remount.
        let rest = flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
        if options.bind && !rest.is_empty() {
            let remount = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | rest;
            if let Err(e) =
                nix::mount::mount(None::<&str>, data, None::<&str>, remount, None::<&str>)
            {
                let _ = nix::mount::umount2(data, MntFlags::MNT_DETACH);
                return Err(failed(e));
            }
        }
        Ok(())
    }

    /// The volume folders on disk (names that are not valid volume names
    /// are not muelle's and are left alone).
    pub fn folders(&self) -> Result<Vec<VolumeName>> {
        let entries = match std::fs::read_dir(&self.base) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(format!("listing {}", self.base.display()))(e)),
        };
        let mut names: Vec<VolumeName> = entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| n.parse().ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Makes the data folder of a recorded volume again (`system check
    /// --repair`).
    pub fn recreate_folder(&self, name: &VolumeName) -> Result<PathBuf> {
        let data = self.data_path(name);
        mkdir(&data, 0o755)?;
        Ok(data)
    }

    /// Moves the volume's folder to its new name; returns the new data path.
    pub fn rename(&self, old: &VolumeName, new: &VolumeName) -> Result<PathBuf> {
        let (from, to) = (self.dir(old), self.dir(new));
        if to.exists() {
            return Err(VolumeError::Exists(new.to_string()));
        }
        if is_mounted(&from.join("_data")) {
            return Err(still_mounted(old, &from.join("_data")));
        }
        std::fs::rename(&from, &to).map_err(io(format!(
            "renaming {} to {}",
            from.display(),
            to.display()
        )))?;
        Ok(to.join("_data"))
    }
}

fn still_mounted(name: &VolumeName, data: &Path) -> VolumeError {
    VolumeError::Io {
        context: format!("volume {name}"),
        source: std::io::Error::other(format!(
            "{} is still mounted: stop the containers using it first",
            data.display()
        )),
    }
}

impl Driver for LocalDriver {
    fn name(&self) -> &str {
        "local"
    }

    fn scope(&self) -> Scope {
        Scope::Local
    }

    fn create(&self, name: &VolumeName, options: &BTreeMap<String, String>) -> Result<()> {
        if let Some(parsed) = MountOptions::parse(options)? {
            // Refuse a forbidden device now rather than at the first run.
            self.judge(&parsed)?;
        }
        mkdir(&self.base, 0o701)?;
        let dir = self.dir(name);
        let made = (|| {
            mkdir(&dir.join("_data"), 0o755)?;
            if !options.is_empty() {
                let path = dir.join("opts.json");
                let text = serde_json::to_vec(options).map_err(|e| VolumeError::Io {
                    context: format!("writing {}", path.display()),
                    source: std::io::Error::other(e),
                })?;
                std::fs::write(&path, text).map_err(io(format!("writing {}", path.display())))?;
            }
            Ok(())
        })();
        if made.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        made
    }

    /// Refuses while something is mounted on the data folder: deleting
    /// through a mount would delete whatever is mounted there (a bound
    /// host folder, a device).
    fn remove(&self, name: &VolumeName) -> Result<()> {
        let dir = self.dir(name);
        if is_mounted(&dir.join("_data")) {
            return Err(still_mounted(name, &dir.join("_data")));
        }
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(VolumeError::NotFound(name.to_string()))
            }
            Err(e) => Err(io(format!("removing {}", dir.display()))(e)),
            Ok(()) => Ok(()),
        }
    }

    fn mount(&self, name: &VolumeName, caller: &str) -> Result<PathBuf> {
        let data = self.data_path(name);
        if !data.is_dir() {
            return Err(VolumeError::NotFound(name.to_string()));
        }
        let Some(options) = self.options(name)? else {
            return Ok(data);
        };
        let path = self.dir(name).join("callers");
        let mut callers =
            Callers::lock(&path).map_err(io(format!("locking {}", path.display())))?;
        // The callers file may outlive a reboot: the kernel says whether
        // the filesystem is really there.
        if !is_mounted(&data) {
            callers.ids.clear();
            self.mount_options(&options, &data)?;
        }
        callers.ids.insert(caller.to_owned());
        callers
            .save()
            .map_err(io(format!("writing {}", path.display())))?;
        Ok(data)
    }

    fn unmount(&self, name: &VolumeName, caller: &str) -> Result<()> {
        let data = self.data_path(name);
        if self.options(name)?.is_none() {
            return Ok(());
        }
        let path = self.dir(name).join("callers");
        let mut callers =
            Callers::lock(&path).map_err(io(format!("locking {}", path.display())))?;
        callers.ids.remove(caller);
        if callers.ids.is_empty() && is_mounted(&data) {
            nix::mount::umount2(&data, MntFlags::empty()).map_err(|e| VolumeError::Driver {
                driver: "local".into(),
                message: format!("unmounting volume {name}: {e}"),
            })?;
        }
        callers
            .save()
            .map_err(io(format!("writing {}", path.display())))
    }

    fn path(&self, name: &VolumeName) -> Result<Option<PathBuf>> {
        let data = self.data_path(name);
        if self.options(name)?.is_some() && !is_mounted(&data) {
            return Ok(None);
        }
        Ok(data.is_dir().then_some(data))
    }

    fn get(&self, name: &VolumeName) -> Result<Option<PathBuf>> {
        if !self.dir(name).is_dir() {
            return Err(VolumeError::NotFound(name.to_string()));
        }
        self.path(name)
    }

    fn list(&self) -> Result<Vec<VolumeName>> {
        self.folders()
    }
}
