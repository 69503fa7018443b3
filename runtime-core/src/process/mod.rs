//! The fork path: from the runtime process to the container's init, and the
//! messages they exchange on the way.

pub mod channel;
pub mod clone;
pub mod init;
pub mod sealed_exe;
pub mod setup;
pub mod tenant;
