//! The metadata store: one database at `ROOT/metadata.db` holding muelle's
//! records (volumes, containers, images, networks) as typed tables.
//!
//! muelle has no daemon, and the backend (sled 0.34) lets one process at a
//! time open the database. So a command opens the store once, reads and
//! writes, and drops it; [`Store::open`] waits (bounded, 10 s by default)
//! while another command holds it, then fails with [`StoreError::Busy`].
//! Never hold a `Store` in a long-running process (a container's monitor,
//! `run -it`): every other command would wait for it.
//!
//! Guarantees:
//! - Every write path flushes before it returns: [`Table::insert`],
//!   [`Table::insert_new`], [`Table::remove`] and [`Store::transact`] (when
//!   it wrote). A write that returned `Ok` survives `process::exit` and
//!   `kill -9`. Dropping the store flushes again, best effort; call
//!   [`Store::flush`] to see that error.
//! - [`Store::transact`] is atomic across tables: after a crash at any
//!   moment, all of its writes are there or none.
//! - The schema version lives in the `meta` table; opening migrates an older
//!   database in one transaction and refuses a newer one.
//!
//! Values are JSON (readable with any tool that dumps the database), keyed by
//! [`Record::key`]. The backend is a detail: nothing outside this module
//! names sled.

mod error;
mod schema;
mod table;
mod tx;

#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use error::{BackendError, StoreError};
pub use schema::SCHEMA_VERSION;
pub use table::Table;
pub use tx::Tx;

/// How long [`Store::open`] waits for another command to release the store.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// The file name of the database folder under the data root.
pub const DB_NAME: &str = "metadata.db";

/// The tables a [`Record`] may name. Adding one here is all a new record
/// kind needs (an empty table reads as empty in an older database).
pub const TABLES: &[&str] = &[
    "volumes",
    "containers",
    "images",
    "networks",
    "container-names",
    "network-addresses",
];

/// The store's own table (schema version); no record may name it.
const META: &str = "meta";

/// A record kind: its table and its key.
pub trait Record: serde::Serialize + serde::de::DeserializeOwned {
    /// One of [`TABLES`].
    const TABLE: &'static str;
    /// The record's key in its table; [`Table::list`] sorts by it.
    fn key(&self) -> String;
}

/// An open metadata store. Open it once per command, drop it as soon as the
/// command's reads and writes are done.
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    /// One tree per entry of [`TABLES`], then the meta tree.
    trees: Vec<sled::Tree>,
    /// Serialises writers in this process, so that a transaction's reads stay
    /// true until it commits.
    write_lock: Mutex<()>,
    /// A write happened since the last flush.
    dirty: std::sync::atomic::AtomicBool,
}

thread_local! {
    /// Set while this thread runs a `transact` closure: a write through a
    /// `Table` then would wait on `write_lock` forever.
    static IN_TRANSACTION: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as inside a transaction until dropped (a panic in the
/// closure included).
struct InTransaction;

impl InTransaction {
    fn enter() -> InTransaction {
        IN_TRANSACTION.with(|t| t.set(true));
        InTransaction
    }

    /// Refuses a `Table` call made from inside a transaction.
    fn check() -> Result<(), StoreError> {
        if IN_TRANSACTION.with(Cell::get) {
            return Err(StoreError::InTransaction);
        }
        Ok(())
    }
}

impl Drop for InTransaction {
    fn drop(&mut self) {
        IN_TRANSACTION.with(|t| t.set(false));
    }
}

impl Store {
    /// Opens `ROOT/metadata.db`, creating it (and ROOT) on first use, and
    /// waits up to [`DEFAULT_WAIT`] while another command holds it.
    pub fn open(data_root: &Path) -> Result<Store, StoreError> {
        Store::open_with_timeout(data_root, DEFAULT_WAIT)
    }

    /// [`Store::open`], waiting at most `wait` for another command.
    pub fn open_with_timeout(data_root: &Path, wait: Duration) -> Result<Store, StoreError> {
        Store::open_with(data_root, wait, schema::MIGRATIONS)
    }

    fn open_with(
        data_root: &Path,
        wait: Duration,
        migrations: &[schema::Migration],
    ) -> Result<Store, StoreError> {
        let path = data_root.join(DB_NAME);
        let db = open_db(&path, wait)?;
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source: BackendError(source),
        };
        let mut trees = Vec::with_capacity(TABLES.len() + 1);
        for name in TABLES.iter().chain([&META]) {
            trees.push(db.open_tree(name).map_err(open_err)?);
        }
        let store = Store {
            path,
            db,
            trees,
            write_lock: Mutex::new(()),
            dirty: std::sync::atomic::AtomicBool::new(false),
        };
        schema::upgrade(&store, migrations)?;
        Ok(store)
    }

    /// The database folder, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version on disk (after open: [`SCHEMA_VERSION`]).
    pub fn schema_version(&self) -> Result<u64, StoreError> {
        Ok(schema::version(self)?.unwrap_or(0))
    }

    /// A typed view of `V`'s table; an error when `V::TABLE` is not one of
    /// [`TABLES`].
    pub fn table<V: Record>(&self) -> Result<Table<'_, V>, StoreError> {
        Ok(Table::new(self, self.index_of(V::TABLE)?))
    }

    /// Runs `f` as one transaction over every table: its writes land all
    /// together or not at all, and are flushed before this returns. An `Err`
    /// from `f` discards them. Other writers of this process wait meanwhile;
    /// `f` runs once. Inside `f`, use only the [`Tx`]: a [`Table`] or a
    /// nested `transact` returns [`StoreError::InTransaction`].
    pub fn transact<R>(
        &self,
        f: impl Fn(&mut Tx<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.transact_with(f)
    }

    /// [`Store::transact`] with the caller's error type, so that a domain
    /// error ("volume is in use") aborts the transaction and comes back as
    /// is.
    pub fn transact_with<R, E: From<StoreError>>(
        &self,
        f: impl Fn(&mut Tx<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        let _guard = self.lock_writes()?;
        let mut tx = Tx::new(self);
        let value = {
            let _inside = InTransaction::enter();
            f(&mut tx)?
        };
        if tx.commit()? {
            self.flush()?;
        }
        Ok(value)
    }

    /// Writes everything to disk. Every write path of the store already
    /// does; this is for a caller who wants to be sure before it exits.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.dirty
            .store(false, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn index_of(&self, table: &'static str) -> Result<usize, StoreError> {
        TABLES
            .iter()
            .position(|t| *t == table)
            .ok_or(StoreError::UnknownTable(table))
    }

    fn meta_index() -> usize {
        TABLES.len()
    }

    /// The in-process writer lock; refuses (instead of deadlocking) when this
    /// thread is inside a transaction.
    fn lock_writes(&self) -> Result<std::sync::MutexGuard<'_, ()>, StoreError> {
        InTransaction::check()?;
        self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
        // A panic inside a transaction leaves nothing half-written (writes
        // are buffered until commit), so a poisoned lock is still good.
        Ok(self.write_lock.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Drop for Store {
    /// Every write path flushed already; only a store that was written
    /// through the backend directly (never, outside this module) could
    /// hold unflushed data. A read-only command pays no fsync here.
    fn drop(&mut self) {
        if !self.dirty.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        if let Err(e) = self.db.flush() {
            tracing::warn!(path = %self.path.display(), "metadata store: flush on close failed: {e}");
        }
    }
}

/// The log segment size of a new database. sled reads the whole active
/// segment at every open (twice), so the segment size is paid by every
/// command: at sled's default (512 KiB) that is 1 MiB of copying, at
/// 128 KiB a quarter of it (`bench storage`, when sled also rewrote the
/// segment's tail at every open: create and rm 12 → 8 ms). It also bounds
/// the log an open replays (vendor/sled/MUELLE.md). A log message
/// over a quarter of a segment (32 KiB here: a tree node, up to about 16
/// records) goes to a blob file of its own, which is correct, only slower.
const SEGMENT_SIZE: usize = 128 * 1024;

/// The segment size to open the database at `path` with: the one it was
/// created with, which sled stores in its `conf` file and refuses to
/// change, or [`SEGMENT_SIZE`] for a new database. `None` (unreadable
/// `conf`): sled's default, and sled's own check says what is wrong.
fn segment_size(path: &Path) -> Option<usize> {
    match std::fs::read(path.join("conf")) {
        Ok(conf) => String::from_utf8_lossy(&conf)
            .lines()
            .find_map(|line| line.strip_prefix("segment_size: "))
            .and_then(|n| n.trim().parse().ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(SEGMENT_SIZE),
        Err(_) => None,
    }
}

/// Opens the database, retrying while another process holds its lock.
fn open_db(path: &Path, wait: Duration) -> Result<sled::Db, StoreError> {
    let mut config = sled::Config::new()
        .path(path)
        // Every write path flushes itself: no background flusher thread.
        .flush_every_ms(None);
    if let Some(size) = segment_size(path) {
        config = config.segment_size(size);
    }
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(e) if is_lock_busy(&e) => {
                let waited = start.elapsed();
                if waited >= wait {
                    return Err(StoreError::Busy {
                        path: path.to_owned(),
                        waited,
                    });
                }
                std::thread::sleep(jitter(pause).min(wait - waited));
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(source) => {
                return Err(StoreError::Open {
                    path: path.to_owned(),
                    source: BackendError(source),
                });
            }
        }
    }
}

/// sled 0.34 reports a held lock as an `Other` I/O error with this text
/// (from `flock` returning `EWOULDBLOCK`); it has no typed variant for it.
fn is_lock_busy(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => io.to_string().contains("could not acquire lock"),
        _ => false,
    }
}

/// Spreads the retries of waiting commands apart: from half to all of `d`.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().wrapping_mul(2_654_435_761);
    let frac = f64::from(nanos % 1000) / 2000.0 + 0.5;
    d.mul_f64(frac)
}
