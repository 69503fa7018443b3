//! runtime-core turns an OCI runtime bundle (`config.json` + rootfs) into an
//! isolated process, as the OCI runtime specification describes, and keeps
//! the on-disk state that lets separate invocations (`create`, `start`,
//! `kill`, `delete`) act on the same container.
//!
//! The crate guarantees that a failed `create` leaves nothing behind: no
//! cgroup, no state folder, no process.

pub mod capabilities;
pub mod cgroups;
pub mod console;
pub mod container;
pub mod error;
pub mod hooks;
mod kernel_files;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod state;

pub use error::{Error, Result};
