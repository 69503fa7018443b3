//! `export`: a container's root filesystem as a tar stream, as docker
//! writes it: the merged view of its image and its own changes, without
//! what its volumes, binds and tmpfs mounts hold (their mount points are
//! empty folders) and without a running container's /proc, /sys and /dev
//! mounts. `import` reads it back as a one-layer image.

use std::io::Write;
use std::os::fd::BorrowedFd;
use std::path::Path;

use storage::archive;

use super::FilesError;
use super::root::View;
use crate::container::{Engine, Result};

impl Engine {
    /// Writes the container's root filesystem to `out`; returns the bytes
    /// written.
    pub fn export(&self, text: &str, out: &mut (dyn Write + Send)) -> Result<u64> {
        let store = self.open_store()?;
        let container = self.find(&store, text)?;
        let name = container.name.clone();
        self.with_root(store, &container, View::Rootfs, move |root| {
            let prune = |fd: BorrowedFd<'_>| root.prune(fd);
            let summary =
                archive::pack_entry(root.fd(), ".".as_ref(), Path::new("."), &mut *out, &prune)
                    .map_err(|source| FilesError::Archive {
                        context: format!("exporting container {name}"),
                        source,
                    })?;
            Ok(summary.bytes)
        })
    }
}
