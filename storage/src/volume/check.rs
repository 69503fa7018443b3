//! `system check` for volumes: the store and the disk must agree. A crash
//! between a volume's two halves (record, folder) leaves one without the
//! other; this finds them and, when asked, mends them without losing data.

use std::collections::BTreeSet;

use super::{CreateVolume, Result, Volume, VolumeName, Volumes};

/// One disagreement, and what `--repair` does about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A record whose data folder is gone: repair makes an empty one (a
    /// container may still reference the volume).
    MissingData(VolumeName),
    /// A folder under ROOT/volumes with no record: repair records it again
    /// as a volume, so its data can be seen and removed on purpose.
    Unrecorded(VolumeName),
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::MissingData(n) => write!(f, "volume {n}: its data folder is missing"),
            Finding::Unrecorded(n) => write!(f, "volume folder {n}: no volume record"),
        }
    }
}

impl Volumes<'_> {
    pub fn check(&self, repair: bool) -> Result<Vec<Finding>> {
        let records = self.list(&[])?;
        let recorded: BTreeSet<&str> = records.iter().map(|v| v.name.as_str()).collect();
        let mut findings: Vec<Finding> = records
            .iter()
            .filter(|v| v.driver == "local" && !v.mountpoint.is_dir())
            .map(|v| Finding::MissingData(v.name.clone()))
            .collect();
        findings.extend(
            self.drivers
                .local
                .folders()?
                .into_iter()
                .filter(|name| !recorded.contains(name.as_str()))
                .map(Finding::Unrecorded),
        );
        if repair {
            for finding in &findings {
                self.repair(finding, &records)?;
            }
        }
        Ok(findings)
    }

    fn repair(&self, finding: &Finding, records: &[Volume]) -> Result<()> {
        match finding {
            Finding::MissingData(name) => {
                if let Some(v) = records.iter().find(|v| &v.name == name) {
                    self.drivers.local.recreate_folder(name)?;
                    tracing::info!("recreated {}", v.mountpoint.display());
                }
            }
            Finding::Unrecorded(name) => {
                self.create(CreateVolume {
                    name: Some(name.clone()),
                    ..Default::default()
                })?;
            }
        }
        Ok(())
    }
}
