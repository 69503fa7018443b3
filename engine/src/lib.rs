//! muelle's engine: composes runtime-core, storage and image into docker's
//! container lifecycle, without a daemon.
//!
//! So far: a container's configuration as `run`/`create` flags give it
//! ([`config`]), and its translation, with the image's configuration, into
//! the OCI runtime spec runtime-core runs ([`spec`]).

pub mod config;
pub mod container;
pub mod logs;
pub mod monitor;
pub mod spec;

pub use config::{ContainerConfig, ImageSource};
pub use container::{Container, Engine, EngineError};
pub use spec::{ResolvedMounts, SpecError, build};
