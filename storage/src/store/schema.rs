//! The schema version and the migrations between versions.
//!
//! A new database is written at the current version. An older one is brought
//! up at open by running `MIGRATIONS[v - 1]` (version v to v + 1) for each
//! version it lacks, all in one transaction together with the new version
//! number: a crash or a failing migration leaves the database as it was. A
//! database newer than this binary is refused, never written.
//!
//! To change the shape of a record: add a migration here that reads the old
//! shape (a private struct with the same `TABLE`) through the `Tx` and writes
//! the new one. The version is the number of migrations plus one.

use super::{Store, StoreError, Tx};

/// Rewrites the records of version N into the shape of version N + 1.
pub(super) type Migration = fn(&Tx<'_>) -> Result<(), StoreError>;

/// `MIGRATIONS[i]` upgrades version i + 1 to i + 2.
pub(super) const MIGRATIONS: &[Migration] = &[];

/// The schema version this binary writes and understands.
pub const SCHEMA_VERSION: u64 = MIGRATIONS.len() as u64 + 1;

/// The key of the version in the meta table; its value is a decimal number.
const VERSION_KEY: &str = "schema_version";

pub(super) fn version(store: &Store) -> Result<Option<u64>, StoreError> {
    let Some(bytes) = store.trees[Store::meta_index()].get(VERSION_KEY)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    match text.parse::<u64>() {
        Ok(v) if v > 0 => Ok(Some(v)),
        _ => Err(StoreError::BadVersion {
            path: store.path.clone(),
            found: text.into_owned(),
        }),
    }
}

/// Brings the database to the version of `migrations` (their count plus
/// one), or refuses a newer one.
pub(super) fn upgrade(store: &Store, migrations: &[Migration]) -> Result<(), StoreError> {
    let target = migrations.len() as u64 + 1;
    let found = version(store)?;
    match found {
        Some(v) if v == target => return Ok(()),
        Some(v) if v > target => {
            return Err(StoreError::TooNew {
                path: store.path.clone(),
                found: v,
                supported: target,
            });
        }
        _ => {}
    }
    store.transact(|tx| {
        // No version: a database created just now, written at the current
        // shape (the trees are empty).
        if let Some(from) = found {
            for (step, migrate) in migrations.iter().enumerate().skip(from as usize - 1) {
                migrate(tx).map_err(|e| StoreError::Migration {
                    from: step as u64 + 1,
                    source: Box::new(e),
                })?;
            }
        }
        tx.put_raw(
            Store::meta_index(),
            VERSION_KEY.to_owned(),
            Some(target.to_string().into_bytes()),
        );
        Ok(())
    })?;
    if let Some(from) = found {
        tracing::info!(path = %store.path.display(), from, to = target, "metadata store migrated");
    }
    Ok(())
}
