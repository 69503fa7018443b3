//! The copy driver: where overlayfs is unavailable, a container's root
//! filesystem is its layers copied one over another into its own folder,
//! the whiteouts of each applied to what the lower ones left (a 0:0 device
//! removes its name, an opaque folder drops the lower content).
//!
//! Each layer goes through the safe tar layer, packed with its overlay
//! whiteouts written as OCI ones and unpacked with `Whiteouts::Apply`:
//! the same descriptor-only code that unpacked it in the first place, so
//! a symlink in a layer is copied as one and never followed, and a removal
//! never leaves the target.

use std::io::{BufReader, BufWriter};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use storage::archive::{
    ArchiveError, PackOptions, UnpackOptions, Whiteouts, pack_dir_with, unpack_with,
};

use crate::error::io;
use crate::{ImageError, Result};

const PIPE_BUFFER: usize = 256 * 1024;

/// Copies `layers` (lowest first) into the existing, empty `target`.
pub fn copy_layers(layers: &[PathBuf], target: &Path) -> Result<()> {
    for layer in layers {
        copy_layer(layer, target)?;
    }
    Ok(())
}

fn open_dir(dir: &Path) -> Result<OwnedFd> {
    use nix::fcntl::{OFlag, open};
    open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| io(format!("opening layer {}", dir.display()))(e.into()))
}

fn copy_layer(layer: &Path, target: &Path) -> Result<()> {
    let source = open_dir(layer)?;
    let (reader, writer) = std::io::pipe().map_err(io("making a pipe"))?;
    let pack_options = PackOptions {
        oci_whiteouts: true,
    };
    let unpack_options = UnpackOptions {
        whiteouts: Whiteouts::Apply,
        // Only what the layer store let in is here.
        devices: true,
    };
    let (packed, unpacked) = std::thread::scope(|scope| {
        let packer = scope.spawn(move || {
            pack_dir_with(
                source,
                BufWriter::with_capacity(PIPE_BUFFER, writer),
                &pack_options,
            )
        });
        // The reader is dropped when unpack returns, so a packer still
        // writing gets EPIPE rather than waiting forever.
        let unpacked = unpack_with(
            BufReader::with_capacity(PIPE_BUFFER, reader),
            target,
            &unpack_options,
        );
        (packer.join(), unpacked)
    });
    let failed = |source| ImageError::Io {
        context: format!(
            "copying layer {} into {}",
            layer.display(),
            target.display()
        ),
        source,
    };
    let packed =
        packed.map_err(|_| failed(std::io::Error::other("the copying thread panicked")))?;
    match (packed, unpacked) {
        (Ok(_), Ok(_)) => {}
        // An unpack that stopped closes the pipe: the packer's EPIPE is
        // only the echo of the unpack's error.
        (Err(ArchiveError::Write(e)), Err(u)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            return Err(failed(std::io::Error::other(u)));
        }
        // Otherwise the packer's error first: an unpack of a stream cut
        // short only reports its symptom.
        (Err(p), _) => return Err(failed(std::io::Error::other(p))),
        (Ok(_), Err(u)) => return Err(failed(std::io::Error::other(u))),
    }
    Ok(())
}
