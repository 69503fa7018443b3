//! `Volumes`: the volumes of one data root, each a record in the store
//! plus whatever its driver keeps. Every operation either completes both
//! halves or undoes the half it made.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{
    CreateVolume, Driver, Drivers, Filter, Result, SharedDriver, Volume, VolumeError, VolumeName,
};
use crate::mounts::BindPolicy;
use crate::store::Store;

/// The caller id muelle itself mounts under, to set a new volume's owner.
const CREATE_CALLER: &str = "muelle-volume-create";

pub struct Volumes<'s> {
    pub(super) store: &'s Store,
    pub(super) drivers: Drivers,
}

impl<'s> Volumes<'s> {
    /// The volumes under `data_root`, with the default (empty) bind policy
    /// and no plugins.
    pub fn new(store: &'s Store, data_root: &Path) -> Volumes<'s> {
        Volumes::with_drivers(store, Drivers::new(data_root, BindPolicy::default()))
    }

    pub fn with_drivers(store: &'s Store, drivers: Drivers) -> Volumes<'s> {
        Volumes { store, drivers }
    }

    /// The driver of that name: `local`, or a plugin.
    pub fn driver(&self, name: &str) -> Result<SharedDriver> {
        self.drivers.get(name)
    }

    /// Creates the volume, or returns the existing one of that name when
    /// the driver matches (docker's `volume create` is idempotent).
    pub fn create(&self, req: CreateVolume) -> Result<Volume> {
        let driver_name = req.driver.clone().unwrap_or_else(|| "local".to_owned());
        let name = req.name.clone().unwrap_or_else(VolumeName::random);
        let table = self.store.table::<Volume>()?;
        if let Some(existing) = table.get(name.as_str())? {
            return same_driver(existing, &driver_name);
        }
        let driver = self.driver(&driver_name)?;
        if (req.uid.is_some() || req.gid.is_some())
            && driver_name == "local"
            && !req.options.is_empty()
        {
            return Err(VolumeError::InvalidOption {
                driver: driver_name,
                key: "uid".into(),
                reason: "--uid/--gid would change the owner of the mounted device or host folder; \
                         give uid=/gid= in o= for a tmpfs"
                    .into(),
            });
        }
        if let Err(e) = driver.create(&name, &req.options) {
            // A concurrent command may have made it meanwhile.
            return match table.get(name.as_str())? {
                Some(existing) => same_driver(existing, &driver_name),
                None => Err(e),
            };
        }
        let made = self.finish_create(driver.as_ref(), &name, req, driver_name);
        let volume = match made {
            Ok(volume) => volume,
            Err(e) => {
                let _ = driver.remove(&name);
                return Err(e);
            }
        };
        // A concurrent command may have won the name meanwhile: the store
        // decides, and the loser takes the winner's volume.
        match table.insert_new(&volume) {
            Ok(true) => Ok(volume),
            Ok(false) => table
                .get(name.as_str())?
                .ok_or_else(|| VolumeError::NotFound(name.to_string())),
            Err(e) => {
                let _ = driver.remove(&name);
                Err(e.into())
            }
        }
    }

    /// Sets the owner, then builds the record of a volume its driver made.
    fn finish_create(
        &self,
        driver: &(dyn Driver + Send + Sync),
        name: &VolumeName,
        req: CreateVolume,
        driver_name: String,
    ) -> Result<Volume> {
        if req.uid.is_some() || req.gid.is_some() {
            let path = driver.mount(name, CREATE_CALLER)?;
            let owned = std::os::unix::fs::chown(&path, req.uid, req.gid).map_err(|source| {
                VolumeError::Io {
                    context: format!("giving {} to {:?}:{:?}", path.display(), req.uid, req.gid),
                    source,
                }
            });
            driver.unmount(name, CREATE_CALLER)?;
            owned?;
        }
        let mountpoint = if driver_name == "local" {
            self.drivers.local.data_path(name)
        } else {
            driver.get(name)?.unwrap_or_default()
        };
        Ok(Volume {
            name: name.clone(),
            scope: driver.scope().as_str().to_owned(),
            driver: driver_name,
            mountpoint,
            created_at: crate::time::now_rfc3339(),
            labels: req.labels,
            options: req.options,
            anonymous: req.anonymous,
            users: BTreeSet::new(),
        })
    }

    pub fn get(&self, name: &str) -> Result<Volume> {
        self.store
            .table::<Volume>()?
            .get(name)?
            .ok_or_else(|| VolumeError::NotFound(name.to_owned()))
    }

    pub fn list(&self, filters: &[Filter]) -> Result<Vec<Volume>> {
        let all = self.store.table::<Volume>()?.list()?;
        Ok(all
            .into_iter()
            .filter(|v| filters.iter().all(|f| f.matches(v)))
            .collect())
    }

    /// Removes an unused volume: its record first (so no container can
    /// take it meanwhile), then its data; if the driver refuses, the record
    /// comes back.
    pub fn remove(&self, name: &str) -> Result<Volume> {
        let volume = self.store.transact_with(|tx| {
            let Some(volume) = tx.get::<Volume>(name)? else {
                return Err(VolumeError::NotFound(name.to_owned()));
            };
            volume.ensure_unused()?;
            tx.remove::<Volume>(name)?;
            Ok(volume)
        })?;
        let removed = self
            .driver(&volume.driver)
            .and_then(|driver| driver.remove(&volume.name));
        match removed {
            // Its data was already gone: the record was all there was.
            Ok(()) | Err(VolumeError::NotFound(_)) => Ok(volume),
            Err(e) => {
                self.store.table::<Volume>()?.insert_new(&volume)?;
                Err(e)
            }
        }
    }

    /// Renames an unused `local` volume: docker users have asked for this
    /// for years. The data folder moves first (one rename(2)); if the store
    /// refuses the new name, it moves back.
    pub fn rename(&self, old: &str, new: &VolumeName) -> Result<Volume> {
        let volume = self.get(old)?;
        volume.ensure_unused()?;
        if volume.driver != "local" {
            return Err(VolumeError::Driver {
                driver: volume.driver,
                message: "only local volumes can be renamed".into(),
            });
        }
        if self.store.table::<Volume>()?.get(new.as_str())?.is_some() {
            return Err(VolumeError::Exists(new.to_string()));
        }
        let mountpoint = self.drivers.local.rename(&volume.name, new)?;
        let renamed = Volume {
            name: new.clone(),
            mountpoint,
            ..volume.clone()
        };
        let result = self.store.transact_with(|tx| {
            let Some(current) = tx.get::<Volume>(old)? else {
                return Err(VolumeError::NotFound(old.to_owned()));
            };
            current.ensure_unused()?;
            if !tx.insert_new(&renamed)? {
                return Err(VolumeError::Exists(new.to_string()));
            }
            tx.remove::<Volume>(old)?;
            Ok(())
        });
        if let Err(e) = result {
            // Put the data back where the unchanged record says it is.
            let _ = self.drivers.local.rename(new, &volume.name);
            return Err(e);
        }
        Ok(renamed)
    }

    /// Unused anonymous volumes, or with `all` every unused volume.
    pub fn prune(&self, all: bool) -> Result<Vec<Volume>> {
        self.prune_matching(all, &|_| true)
    }

    /// [`Volumes::prune`] of the volumes `selected` accepts (`--filter`).
    pub fn prune_matching(
        &self,
        all: bool,
        selected: &dyn Fn(&Volume) -> bool,
    ) -> Result<Vec<Volume>> {
        let mut removed = Vec::new();
        for v in self.list(&[Filter::Dangling(true)])? {
            if (all || v.anonymous) && selected(&v) {
                match self.remove(v.name.as_str()) {
                    Ok(v) => removed.push(v),
                    // Taken or removed by another command meanwhile.
                    Err(VolumeError::InUse { .. } | VolumeError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(removed)
    }

    /// The host path of a volume while mounted (None when its driver has
    /// it unmounted), asking the driver rather than trusting the record.
    pub fn current_path(&self, volume: &Volume) -> Result<Option<PathBuf>> {
        self.driver(&volume.driver)?.path(&volume.name)
    }
}

fn same_driver(existing: Volume, asked: &str) -> Result<Volume> {
    if existing.driver != asked {
        return Err(VolumeError::DriverMismatch {
            name: existing.name.to_string(),
            existing: existing.driver,
            asked: asked.to_owned(),
        });
    }
    Ok(existing)
}
