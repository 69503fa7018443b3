//! storage holds what muelle keeps on disk beyond a container's life: the
//! metadata store (one sled database under the data root, opened for the
//! moment a command reads or writes it), volumes and the drivers behind
//! them, the tar archives volumes are exported to and imported from, and
//! the parsing and policy of bind mounts.

pub mod archive;
pub mod mounts;
pub mod plugin;
pub mod random;
pub mod store;
pub mod time;
pub mod volume;
