//! `create`: a container's record, its name, and the volumes it uses.
//! Nothing runs and nothing is mounted until `start`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use image::Images;
use storage::mounts::{MountSpec, VolumeMount, check_distinct_targets};
use storage::store::Store;
use storage::volume::{CreateVolume, VolumeError, VolumeName, Volumes};

use super::naming::{new_id, parse_name, random_name};
use super::record::{Container, NameEntry, State};
use super::{Engine, EngineError, Result, volumes_from};
use crate::config::{ContainerConfig, ImageSource};
use crate::spec;

pub struct CreateRequest {
    pub config: ContainerConfig,
    /// `--name`; `None`: a random `adjective_scientist`.
    pub name: Option<String>,
}

impl Engine {
    /// The image `text` names, for a new container's config (docker's
    /// `No such image` when there is none: muelle does not pull yet).
    pub fn image_source(&self, store: &Store, text: &str) -> Result<ImageSource> {
        let record = Images::open(&self.data_root)?.resolve(store, text)?;
        Ok(ImageSource {
            id: record.id,
            reference: text.to_owned(),
        })
    }

    /// Records a new container. On failure nothing is left: no record, no
    /// name, no anonymous volume.
    pub fn create(&self, store: &Store, request: CreateRequest) -> Result<Container> {
        let CreateRequest { config, name } = request;
        let images = Images::open(&self.data_root)?;
        let image = images.resolve(store, &config.image.id.to_string())?;
        let image_config = images.config(&image)?;
        let command = spec::command(&config, &image_config)?;
        let names = store.table::<NameEntry>()?;
        let name = match name {
            Some(text) => parse_name(&text)?,
            None => random_name(|n| names.get(n).ok().flatten().is_some()),
        };
        if let Some(entry) = names.get(&name)? {
            return Err(EngineError::NameInUse { name, id: entry.id });
        }
        check_distinct_targets(&config.mounts)?;
        // A network that does not exist is refused now, as docker does,
        // not at the start.
        for endpoint in &config.networks {
            network::networks::find(store, &endpoint.network)?;
        }
        let id = new_id();

        let volumes = self.volumes(store)?;
        let mut made = MadeVolumes {
            volumes: &volumes,
            anonymous: Vec::new(),
        };
        let user_targets: Vec<&std::path::Path> =
            config.mounts.iter().map(MountSpec::target).collect();
        let shared = volumes_from::inherited(store, &config.volumes_from, &user_targets)?;
        let mut mounts = Vec::with_capacity(config.mounts.len() + shared.len());
        for mount in config.mounts.iter().chain(&shared) {
            mounts.push(match mount {
                MountSpec::Bind(bind) => {
                    let mut bind = bind.clone();
                    if let Some(note) = self.policy.check(&mut bind)? {
                        tracing::warn!("{note}");
                    }
                    MountSpec::Bind(bind)
                }
                MountSpec::Volume(volume) => MountSpec::Volume(made.volume_for(volume)?),
                MountSpec::Tmpfs(tmpfs) => MountSpec::Tmpfs(tmpfs.clone()),
            });
        }
        // Each folder the image declares gets an anonymous volume, unless
        // the user mounts something there.
        let declared = image_config
            .config()
            .as_ref()
            .and_then(|c| c.volumes().clone())
            .unwrap_or_default();
        for target in declared {
            let target = PathBuf::from(&target);
            if !target.is_absolute() || mounts.iter().any(|m| m.target() == target) {
                continue;
            }
            let anonymous = VolumeMount {
                name: None,
                target,
                read_only: false,
                nocopy: false,
                driver_opts: Vec::new(),
                subpath: None,
            };
            mounts.push(MountSpec::Volume(made.volume_for(&anonymous)?));
        }

        let stop_signal = config
            .stop_signal
            .clone()
            .or_else(|| {
                image_config
                    .config()
                    .as_ref()
                    .and_then(|c| c.stop_signal().clone())
                    .and_then(|s| crate::config::parse_stop_signal(&s).ok())
            })
            .unwrap_or_else(|| "SIGTERM".to_owned());
        let mut args = command.into_iter();
        let container = Container {
            id: id.clone(),
            name: name.clone(),
            created: runtime_core::state::now_rfc3339(),
            path: args.next().unwrap_or_default(),
            args: args.collect(),
            stop_signal,
            mounts,
            anonymous_volumes: made.anonymous.iter().map(|v| v.to_string()).collect(),
            config,
            state: State::default(),
        };
        let volume_names = volume_names(&container.mounts);
        store.transact_with(|tx| {
            if !tx.insert_new(&NameEntry {
                name: name.clone(),
                id: id.clone(),
            })? {
                let id = tx
                    .get::<NameEntry>(&name)?
                    .map(|e| e.id)
                    .unwrap_or_default();
                return Err(EngineError::NameInUse {
                    name: name.clone(),
                    id,
                });
            }
            tx.insert(&container)?;
            for volume in &volume_names {
                Volumes::add_user(tx, volume, &id)?;
            }
            Ok(())
        })?;
        made.anonymous.clear();
        Ok(container)
    }
}

/// The names of the volumes among `mounts`.
pub(super) fn volume_names(mounts: &[MountSpec]) -> Vec<String> {
    mounts
        .iter()
        .filter_map(|m| match m {
            MountSpec::Volume(v) => v.name.clone(),
            _ => None,
        })
        .collect()
}

/// The anonymous volumes a create made, removed again unless it finished.
struct MadeVolumes<'v, 's> {
    volumes: &'v Volumes<'s>,
    anonymous: Vec<VolumeName>,
}

impl MadeVolumes<'_, '_> {
    /// The mount with its volume's name: a named volume is used as it is
    /// or made (docker makes it on first use), an anonymous one made.
    fn volume_for(&mut self, mount: &VolumeMount) -> Result<VolumeMount> {
        let options: BTreeMap<String, String> = mount.driver_opts.iter().cloned().collect();
        let name = match &mount.name {
            Some(name) => match self.volumes.get(name) {
                Ok(volume) => volume.name,
                Err(VolumeError::NotFound(_)) => {
                    self.volumes
                        .create(CreateVolume {
                            name: Some(VolumeName::try_from(name.clone())?),
                            options,
                            ..CreateVolume::default()
                        })?
                        .name
                }
                Err(e) => return Err(e.into()),
            },
            None => {
                let volume = self.volumes.create(CreateVolume {
                    options,
                    anonymous: true,
                    ..CreateVolume::default()
                })?;
                self.anonymous.push(volume.name.clone());
                volume.name
            }
        };
        Ok(VolumeMount {
            name: Some(name.to_string()),
            ..mount.clone()
        })
    }
}

impl Drop for MadeVolumes<'_, '_> {
    fn drop(&mut self) {
        for name in &self.anonymous {
            if let Err(e) = self.volumes.remove(name.as_str()) {
                tracing::warn!("removing anonymous volume {name} after a failed create: {e}");
            }
        }
    }
}
