//! A transaction over every table. Writes are buffered here and committed
//! together by one backend transaction (atomic across tables, also after a
//! crash); reads see the committed records plus this transaction's own
//! writes. While the closure runs, the store's writer lock keeps every other
//! writer of the process out, and the database lock every other process, so
//! what a transaction reads stays true until it commits.

use std::cell::RefCell;
use std::collections::BTreeMap;

use sled::transaction::{TransactionError, Transactional};

use super::table::{decode, encode};
use super::{Record, Store, StoreError};

/// Buffered writes: (table index, key) to the new value, `None` for removed.
type Writes = BTreeMap<(usize, String), Option<Vec<u8>>>;

pub struct Tx<'a> {
    store: &'a Store,
    writes: RefCell<Writes>,
}

impl<'a> Tx<'a> {
    pub(super) fn new(store: &'a Store) -> Tx<'a> {
        Tx {
            store,
            writes: RefCell::new(Writes::new()),
        }
    }

    pub fn get<V: Record>(&self, key: &str) -> Result<Option<V>, StoreError> {
        let index = self.store.index_of(V::TABLE)?;
        match self.get_raw(index, key)? {
            Some(bytes) => decode::<V>(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Inserts or replaces the record under its key.
    pub fn insert<V: Record>(&self, value: &V) -> Result<(), StoreError> {
        let index = self.store.index_of(V::TABLE)?;
        let (key, bytes) = encode(value)?;
        self.put_raw(index, key, Some(bytes));
        Ok(())
    }

    /// Inserts the record unless its key is taken: `false` then, and
    /// nothing written.
    pub fn insert_new<V: Record>(&self, value: &V) -> Result<bool, StoreError> {
        let index = self.store.index_of(V::TABLE)?;
        let (key, bytes) = encode(value)?;
        if self.get_raw(index, &key)?.is_some() {
            return Ok(false);
        }
        self.put_raw(index, key, Some(bytes));
        Ok(true)
    }

    /// Removes the record and returns it.
    pub fn remove<V: Record>(&self, key: &str) -> Result<Option<V>, StoreError> {
        let index = self.store.index_of(V::TABLE)?;
        let old = self.get_raw(index, key)?;
        self.put_raw(index, key.to_owned(), None);
        match old {
            Some(bytes) => decode::<V>(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Every record of the table as this transaction sees it, sorted by
    /// key (for example: the containers that use a volume being removed).
    pub fn list<V: Record>(&self) -> Result<Vec<V>, StoreError> {
        let index = self.store.index_of(V::TABLE)?;
        let mut all: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for kv in self.store.trees[index].iter() {
            let (k, v) = kv?;
            all.insert(String::from_utf8_lossy(&k).into_owned(), v.to_vec());
        }
        for ((i, k), v) in self.writes.borrow().iter() {
            if *i != index {
                continue;
            }
            match v {
                Some(v) => all.insert(k.clone(), v.clone()),
                None => all.remove(k),
            };
        }
        all.iter().map(|(k, v)| decode::<V>(k, v)).collect()
    }

    pub(super) fn get_raw(&self, index: usize, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.writes.borrow().get(&(index, key.to_owned())) {
            return Ok(v.clone());
        }
        Ok(self.store.trees[index].get(key)?.map(|v| v.to_vec()))
    }

    pub(super) fn put_raw(&self, index: usize, key: String, value: Option<Vec<u8>>) {
        self.writes.borrow_mut().insert((index, key), value);
    }

    /// Applies the buffered writes in one backend transaction; `false` when
    /// there was nothing to write.
    pub(super) fn commit(self) -> Result<bool, StoreError> {
        let writes = self.writes.into_inner();
        if writes.is_empty() {
            return Ok(false);
        }
        let trees: &[sled::Tree] = &self.store.trees;
        let result: Result<(), TransactionError<()>> = trees.transaction(|views| {
            for ((index, key), value) in &writes {
                let view = &views[*index];
                match value {
                    Some(bytes) => view.insert(key.as_bytes(), bytes.as_slice())?,
                    None => view.remove(key.as_bytes())?,
                };
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(true),
            Err(TransactionError::Storage(e)) => Err(e.into()),
            // The closure above never aborts.
            Err(TransactionError::Abort(())) => unreachable!("commit closure aborted"),
        }
    }
}
