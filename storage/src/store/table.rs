//! A typed view of one table, outside a transaction. Each write is flushed
//! before it returns; several writes that belong together go through
//! [`Store::transact`] instead (one commit, one flush).

use std::marker::PhantomData;

use super::{InTransaction, Record, Store, StoreError};

/// The records of one kind. Borrows the store, so it cannot outlive the
/// command's session.
pub struct Table<'s, V> {
    store: &'s Store,
    index: usize,
    _record: PhantomData<fn() -> V>,
}

impl<'s, V: Record> Table<'s, V> {
    pub(super) fn new(store: &'s Store, index: usize) -> Table<'s, V> {
        Table {
            store,
            index,
            _record: PhantomData,
        }
    }

    fn tree(&self) -> &sled::Tree {
        &self.store.trees[self.index]
    }

    pub fn get(&self, key: &str) -> Result<Option<V>, StoreError> {
        InTransaction::check()?;
        match self.tree().get(key)? {
            Some(bytes) => decode::<V>(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Inserts or replaces the record under its key; flushed on return.
    pub fn insert(&self, value: &V) -> Result<(), StoreError> {
        let (key, bytes) = encode(value)?;
        let _w = self.store.lock_writes()?;
        self.tree().insert(key.as_bytes(), bytes)?;
        self.store.flush()
    }

    /// Inserts the record unless its key is taken: `false` then, and nothing
    /// written (for "name already in use"). Flushed on return.
    pub fn insert_new(&self, value: &V) -> Result<bool, StoreError> {
        let (key, bytes) = encode(value)?;
        let _w = self.store.lock_writes()?;
        let swapped = self
            .tree()
            .compare_and_swap(key.as_bytes(), None::<&[u8]>, Some(bytes))?;
        if swapped.is_err() {
            return Ok(false);
        }
        self.store.flush()?;
        Ok(true)
    }

    /// Removes the record and returns it; flushed on return.
    pub fn remove(&self, key: &str) -> Result<Option<V>, StoreError> {
        let _w = self.store.lock_writes()?;
        let Some(old) = self.tree().remove(key)? else {
            return Ok(None);
        };
        self.store.flush()?;
        decode::<V>(key, &old).map(Some)
    }

    /// Every record, sorted by key. One record that does not parse fails the
    /// whole list, naming its key.
    pub fn list(&self) -> Result<Vec<V>, StoreError> {
        InTransaction::check()?;
        self.tree()
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode::<V>(&String::from_utf8_lossy(&k), &v)
            })
            .collect()
    }

    /// The keys that start with `prefix`, sorted, without decoding a
    /// record (for a lookup by id prefix).
    pub fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        InTransaction::check()?;
        self.tree()
            .scan_prefix(prefix)
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?).into_owned()))
            .collect()
    }

    /// The number of records (a scan of the table).
    pub fn len(&self) -> usize {
        self.tree().len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree().is_empty()
    }
}

pub(super) fn encode<V: Record>(value: &V) -> Result<(String, Vec<u8>), StoreError> {
    let key = value.key();
    match serde_json::to_vec(value) {
        Ok(bytes) => Ok((key, bytes)),
        Err(source) => Err(StoreError::Encode {
            table: V::TABLE,
            key,
            source,
        }),
    }
}

pub(super) fn decode<V: Record>(key: &str, bytes: &[u8]) -> Result<V, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        table: V::TABLE,
        key: key.to_owned(),
        source,
    })
}
