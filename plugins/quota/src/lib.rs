//! The `quota` volume driver: each volume is an ext4 image of a fixed size
//! on a loop device, so a volume can never hold more than its size (what
//! docker's `local` driver cannot promise).
//!
//! ```sh
//! muelle volume create -d quota -o size=1g data
//! ```
//!
//! # Behaviour
//!
//! - `create`: option `size` (required; bytes or k/m/g/t, binary units,
//!   8m to 16t). A sparse image of that size gets an ext4 filesystem; the
//!   volume appears only once it is complete (see `staging.rs`). A name that
//!   exists is refused (Invalid); the host makes `create` idempotent itself.
//! - `mount(caller)`: the first caller attaches the image to a loop device
//!   (autoclear) and mounts it `nodev,nosuid` at `NAME/mnt`; every caller is
//!   recorded in `NAME/users` (once, however often it mounts). Callers get
//!   `NAME/mnt/_data`, which keeps `lost+found` out of their view.
//! - `unmount(caller)`: drops the caller; with none left, unmounts (not
//!   lazily), and the loop device detaches itself. Like docker, unmounting
//!   for a caller that is not recorded is not an error: it changes nothing,
//!   except that a volume left mounted with no callers (an earlier unmount
//!   that failed with EBUSY) is unmounted now, so retrying works.
//!   An unmount that fails because files are still open is a Busy error and
//!   the volume stays mounted.
//! - `path`/`get`: the data path while the filesystem is really mounted
//!   (the kernel decides, not the users file); NotFound for no volume.
//! - `remove`: Busy while mounted; never deletes through a mount.
//!
//! # Crashes and reboots
//!
//! Per-volume state changes under a lock on the volume's folder (see
//! `lock.rs`), so concurrent muelle commands take turns. The kernel's mount
//! table is the truth about mounts: after a reboot the users file may still
//! list callers while nothing is mounted. The next mount then logs a
//! warning, mounts again and starts a fresh users list; `remove` and `path`
//! look only at the real mount. A command killed between attaching a loop
//! device and mounting leaks nothing: the device is autoclear and detaches
//! when the dead process's descriptor closes.
//!
//! Images are sparse: the size is a ceiling for the volume, not space
//! reserved on the host, whose free space is shared as usual.

mod layout;
mod lock;
mod loopdev;
mod mkfs;
mod mounts;
mod options;
mod size;
mod staging;
mod users;

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use muelle_plugin_sdk::{
    DriverError, HostContext, Level, Logger, VolumeDriver, export_volume_driver,
};
use nix::errno::Errno;

use layout::{Volume, check_caller};
use lock::Mode;

pub use loopdev::devices_backed_by;

/// The driver: where its volumes live, and where its logs go.
pub struct Quota {
    /// The canonical state folder, so that paths compare equal to what the
    /// kernel reports in mountinfo and sysfs.
    state: PathBuf,
    logger: Logger,
}

impl Quota {
    fn log(&self, level: Level, message: &str) {
        self.logger.log(level, &format!("quota: {message}"));
    }

    /// Attaches the image and mounts it, all or nothing.
    fn attach_and_mount(&self, vol: &Volume) -> Result<(), DriverError> {
        let device = loopdev::attach(&vol.image)?;
        self.log(
            Level::Debug,
            &format!(
                "volume {}: attached {} to {}",
                vol.name,
                vol.image.display(),
                device.path.display()
            ),
        );
        // On failure `device` drops here, which detaches it (autoclear).
        mounts::mount_ext4(&device.path, &vol.mnt)?;
        self.log(
            Level::Debug,
            &format!(
                "volume {}: mounted {} on {}",
                vol.name,
                device.path.display(),
                vol.mnt.display()
            ),
        );
        // The mount holds the device now; our descriptor can go.
        drop(device);
        if let Err(e) = ensure_data(&vol.data) {
            self.undo_mount(vol);
            return Err(e);
        }
        Ok(())
    }

    /// Unmounts after a failed mount; only logged, since the caller already
    /// reports the failure that led here.
    fn undo_mount(&self, vol: &Volume) {
        if let Err(e) = mounts::unmount(&vol.mnt) {
            self.log(
                Level::Error,
                &format!(
                    "volume {}: could not undo the mount on {}: {}",
                    vol.name,
                    vol.mnt.display(),
                    e.desc()
                ),
            );
        }
    }

    /// The data path while mounted; for `path` and `get`.
    fn mounted_path(&self, name: &str) -> Result<Option<PathBuf>, DriverError> {
        let vol = Volume::new(&self.state, name)?;
        let _lock = lock::lock(&vol, Mode::Shared)?;
        vol.require()?;
        Ok(mounts::is_mounted(&vol.mnt)?.then_some(vol.data))
    }
}

/// Makes the data folder on the volume's first mount: root's, 0755 whatever
/// the umask (the host chowns it for `--uid/--gid`). One that exists is
/// left alone, since its owner and mode are the user's now; a symlink in
/// its place is refused, as callers would be sent elsewhere.
fn ensure_data(data: &Path) -> Result<(), DriverError> {
    let fail = |e: std::io::Error| DriverError::other(format!("making {}: {e}", data.display()));
    match std::fs::symlink_metadata(data) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(DriverError::other(format!(
            "{} is not a folder",
            data.display()
        ))),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .mode(0o755)
                .create(data)
                .map_err(fail)?;
            std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o755)).map_err(fail)
        }
        Err(e) => Err(fail(e)),
    }
}

impl VolumeDriver for Quota {
    const NAME: &'static str = "quota";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn init(host: HostContext) -> Result<Quota, DriverError> {
        let dir = &host.state_dir;
        let meta = std::fs::symlink_metadata(dir)
            .map_err(|e| DriverError::other(format!("state folder {}: {e}", dir.display())))?;
        if !meta.is_dir() {
            return Err(DriverError::other(format!(
                "state folder {} is not a folder",
                dir.display()
            )));
        }
        let state = dir
            .canonicalize()
            .map_err(|e| DriverError::other(format!("state folder {}: {e}", dir.display())))?;
        let quota = Quota {
            state,
            logger: host.logger,
        };
        quota.log(Level::Debug, &format!("ready in {}", quota.state.display()));
        Ok(quota)
    }

    fn create(&self, name: &str, options: &[(&str, &str)]) -> Result<(), DriverError> {
        let vol = Volume::new(&self.state, name)?;
        let opts = options::parse(options)?;
        // A cheap early answer; the rename below is what decides.
        if std::fs::symlink_metadata(&vol.dir).is_ok() {
            return Err(staging::exists(name));
        }
        let mkfs = mkfs::find()?;
        for problem in staging::sweep(&self.state) {
            self.log(Level::Warn, &format!("leftover not swept: {problem}"));
        }

        let staging = staging::Staging::new(&self.state)?;
        let image = staging.path.join(layout::IMAGE);
        let file = std::fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&image)
            .map_err(|e| DriverError::other(format!("creating {}: {e}", image.display())))?;
        // set_len makes a sparse file: host space is used only as data is
        // written, and never more than the size.
        file.set_len(opts.size).map_err(|e| {
            DriverError::other(format!(
                "sizing {} to {} bytes: {e}",
                image.display(),
                opts.size
            ))
        })?;
        drop(file);
        let mnt = staging.path.join(layout::MNT);
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&mnt)
            .map_err(|e| DriverError::other(format!("creating {}: {e}", mnt.display())))?;
        mkfs::run(&mkfs, &image, layout::label(name))?;
        staging.publish(&vol.dir, name)?;
        self.log(
            Level::Debug,
            &format!(
                "volume {name}: created {} ({} bytes)",
                vol.image.display(),
                opts.size
            ),
        );
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<(), DriverError> {
        let vol = Volume::new(&self.state, name)?;
        let _lock = lock::lock(&vol, Mode::Exclusive)?;
        vol.require()?;
        if mounts::is_mounted(&vol.mnt)? {
            let users = users::read(&vol.users)?;
            let by = if users.is_empty() {
                String::new()
            } else {
                format!(" by {}", users.join(", "))
            };
            return Err(DriverError::busy(format!(
                "volume {name} is in use: mounted{by}"
            )));
        }
        // Not only the volume's own mount: whatever else is mounted inside
        // its folder would be deleted through.
        if let Some(inside) = mounts::mounts_under(&vol.dir)?.first() {
            return Err(DriverError::busy(format!(
                "volume {name} is in use: {} is mounted",
                inside.display()
            )));
        }
        let trash = staging::retire(&self.state, &vol.dir)?;
        self.log(Level::Debug, &format!("volume {name}: removed"));
        // The volume is gone; a folder left behind is swept by a later create.
        if let Err(e) = staging::remove_tree(&trash) {
            self.log(Level::Warn, &format!("volume {name}: {e}"));
        }
        Ok(())
    }

    fn mount(&self, name: &str, caller: &str) -> Result<PathBuf, DriverError> {
        let vol = Volume::new(&self.state, name)?;
        check_caller(caller)?;
        let _lock = lock::lock(&vol, Mode::Exclusive)?;
        vol.require()?;
        let mut users = users::read(&vol.users)?;
        let fresh = !mounts::is_mounted(&vol.mnt)?;
        if fresh {
            if !users.is_empty() {
                // The machine restarted (or someone unmounted by hand):
                // those callers hold nothing any more.
                self.log(
                    Level::Warn,
                    &format!(
                        "volume {name}: users file lists {} but nothing is mounted; starting afresh",
                        users.join(", ")
                    ),
                );
                users.clear();
            }
            self.attach_and_mount(&vol)?;
        } else {
            // Made on the first mount; cheap to confirm, and it keeps a
            // filesystem mounted here by other means from handing out a
            // path that does not exist.
            ensure_data(&vol.data)?;
        }
        if !users.iter().any(|u| u == caller) {
            users.push(caller.to_owned());
            if let Err(e) = users::write(&vol.users, &users) {
                if fresh {
                    self.undo_mount(&vol);
                }
                return Err(e);
            }
        }
        Ok(vol.data)
    }

    fn unmount(&self, name: &str, caller: &str) -> Result<(), DriverError> {
        let vol = Volume::new(&self.state, name)?;
        check_caller(caller)?;
        let _lock = lock::lock(&vol, Mode::Exclusive)?;
        vol.require()?;
        let mut users = users::read(&vol.users)?;
        let before = users.len();
        users.retain(|u| u != caller);
        if users.len() == before {
            self.log(
                Level::Debug,
                &format!("volume {name}: {caller} had not mounted it"),
            );
        } else {
            users::write(&vol.users, &users)?;
        }
        if !users.is_empty() || !mounts::is_mounted(&vol.mnt)? {
            return Ok(());
        }
        match mounts::unmount(&vol.mnt) {
            Ok(()) => {
                self.log(
                    Level::Debug,
                    &format!("volume {name}: unmounted {}", vol.mnt.display()),
                );
                Ok(())
            }
            Err(Errno::EBUSY) => Err(DriverError::busy(format!(
                "volume {name} is busy: files in it are still open, so it stays mounted"
            ))),
            Err(e) => Err(DriverError::other(format!(
                "unmounting volume {name} from {}: {}",
                vol.mnt.display(),
                e.desc()
            ))),
        }
    }

    fn path(&self, name: &str) -> Result<Option<PathBuf>, DriverError> {
        self.mounted_path(name)
    }

    fn get(&self, name: &str) -> Result<Option<PathBuf>, DriverError> {
        self.mounted_path(name)
    }

    fn list(&self) -> Result<Vec<String>, DriverError> {
        let entries = std::fs::read_dir(&self.state)
            .map_err(|e| DriverError::other(format!("reading {}: {e}", self.state.display())))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| {
                DriverError::other(format!("reading {}: {e}", self.state.display()))
            })?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            // Staging folders (dot names) and strays fail these checks.
            if layout::check_name(&name).is_ok() && layout::holds_image(&entry.path())? {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

export_volume_driver!(Quota);
