//! `rename`: a container's name moves in one transaction.

use storage::store::Store;

use super::naming::parse_name;
use super::record::{Container, NameEntry};
use super::{Engine, EngineError, Result};

impl Engine {
    pub fn rename(&self, store: &Store, text: &str, new_name: &str) -> Result<Container> {
        let mut container = self.find(store, text)?;
        let new_name = parse_name(new_name)?;
        if new_name == container.name {
            return Err(EngineError::RenameSame(new_name));
        }
        let old = std::mem::replace(&mut container.name, new_name.clone());
        store.transact_with(|tx| {
            if !tx.insert_new(&NameEntry {
                name: new_name.clone(),
                id: container.id.clone(),
            })? {
                let id = tx
                    .get::<NameEntry>(&new_name)?
                    .map(|e| e.id)
                    .unwrap_or_default();
                return Err(EngineError::NameInUse {
                    name: new_name.clone(),
                    id,
                });
            }
            tx.remove::<NameEntry>(&old)?;
            tx.insert(&container)?;
            Ok(())
        })?;
        Ok(container)
    }
}
