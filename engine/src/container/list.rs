//! `ps`: every container, refreshed, newest first.

use storage::store::Store;

use super::record::Container;
use super::{Engine, Result};

impl Engine {
    pub fn list(&self, store: &Store) -> Result<Vec<Container>> {
        let mut all = Vec::new();
        for container in store.table::<Container>()?.list()? {
            all.push(self.refresh(store, container)?);
        }
        // RFC 3339 UTC with nanoseconds sorts as text.
        all.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(all)
    }
}
