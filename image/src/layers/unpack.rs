//! One layer blob → one layer folder. A producer thread reads the blob
//! (verified at its end), decompresses it (told by magic bytes) and hashes
//! the tar for the diff id (see `stream`); this thread unpacks the tar with
//! storage's safe archive code into a temporary folder, which is renamed
//! to the diff id once everything checked out.

use std::ffi::CString;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use storage::archive::{UnpackOptions, Whiteouts};

use super::compression::Compression;
use super::stream;
use super::{DIFF_DIR, INFO_FILE, LayerForm, LayerInfo, LayerStore, TEMP_PREFIX, Unpacked};
use crate::blobs::blob_error;
use crate::error::io;
use crate::{BlobStore, Digest, ImageError, Result};

/// A folder being made; removed on drop unless it was renamed into place.
struct TempDir {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.armed
            && let Err(e) = std::fs::remove_dir_all(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!("{} not removed: {e}", self.path.display());
        }
    }
}

fn temp_dir(root: &Path) -> Result<TempDir> {
    for attempt in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = root.join(format!(
            "{TEMP_PREFIX}{}-{nanos}-{attempt}",
            std::process::id()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(TempDir { path, armed: true }),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(format!("creating a folder in {}", root.display()))(e)),
        }
    }
    Err(ImageError::Io {
        context: format!("creating a folder in {}", root.display()),
        source: io::Error::other("no free temporary name"),
    })
}

/// What reading the blob through to its end gave.
struct Outcome {
    diff_id: Digest,
    tar_size: u64,
    compression: Compression,
    size: u64,
}

pub(super) fn unpack(
    store: &LayerStore,
    blobs: &BlobStore,
    blob: &Digest,
    media_type: &str,
    expected: Option<&Digest>,
) -> Result<Unpacked> {
    let temp = temp_dir(&store.root)?;
    let diff = temp.path.join(DIFF_DIR);
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&diff)
        .map_err(io(format!("creating {}", diff.display())))?;
    let stream = match read_into(store, blobs, blob, &diff) {
        Ok(stream) => stream,
        // Damage on disk shows up first as bad compressed data or a torn
        // tar, long before the digest check at the end: the blob is
        // checked whole, so the error names the real cause.
        Err(e) => return Err(corrupt_or(blobs, blob, e)),
    };
    if let Some(claimed) = Compression::claimed_by(media_type)
        && claimed != stream.compression
    {
        tracing::warn!(
            "layer {blob}: media type {media_type} but the content is {:?}; unpacked as {:?}",
            claimed,
            stream.compression
        );
    }
    if let Some(expected) = expected
        && *expected != stream.diff_id
    {
        return Err(ImageError::DiffIdMismatch {
            blob: blob.clone(),
            expected: expected.clone(),
            actual: stream.diff_id,
        });
    }
    let info = LayerInfo {
        diff_id: stream.diff_id.clone(),
        size: stream.size,
        tar_size: stream.tar_size,
        blob: blob.clone(),
        compression: stream.compression,
        form: store.form(),
    };
    write_info(&temp.path, &info)?;
    place(store, temp, &stream.diff_id)?;
    Ok(Unpacked {
        diff_id: stream.diff_id,
        size: stream.size,
    })
}

fn read_into(store: &LayerStore, blobs: &BlobStore, blob: &Digest, diff: &Path) -> Result<Outcome> {
    let reader = blobs.reader(blob)?;
    let options = UnpackOptions {
        whiteouts: match store.form() {
            LayerForm::Overlay => Whiteouts::Overlay,
            LayerForm::Oci => Whiteouts::Oci,
        },
        devices: store.devices,
    };
    let (tx, chunks, abandon) = stream::channel();
    let (produced, unpacked) = std::thread::scope(|scope| {
        let producer = {
            let abandon = abandon.clone();
            scope.spawn(move || stream::produce(reader, blob, tx, &abandon))
        };
        let unpacked = storage::archive::unpack_with(chunks, diff, &options);
        // `chunks` is gone with the unpack: a producer still sending sees
        // the consumer left; after a failure it stops at once.
        if unpacked.is_err() {
            abandon.now();
        }
        (producer.join(), unpacked)
    });
    let produced = produced.map_err(|_| ImageError::Io {
        context: format!("unpacking layer {blob}"),
        source: io::Error::other("the reading thread panicked"),
    })?;
    let layer = |source| ImageError::Layer {
        blob: blob.clone(),
        source,
    };
    let (produced, summary) = match (produced, unpacked) {
        (Ok(Some(produced)), Ok(summary)) => (produced, summary),
        // A stream that failed (bad compressed data, a corrupt blob) is
        // the cause; the unpack only saw it end.
        (Err(e), _) => return Err(e),
        // The unpack refused an entry; the producer stopped when told.
        (Ok(_), Err(e)) => return Err(layer(e)),
        (Ok(None), Ok(_)) => {
            return Err(ImageError::Io {
                context: format!("unpacking layer {blob}"),
                source: io::Error::other("the layer stream stopped early"),
            });
        }
    };
    Ok(Outcome {
        diff_id: produced.diff_id,
        tar_size: produced.tar_size,
        compression: produced.compression,
        size: summary.bytes,
    })
}

/// `err`, or `CorruptBlob` when the blob does not hash to its name.
fn corrupt_or(blobs: &BlobStore, blob: &Digest, err: ImageError) -> ImageError {
    if matches!(
        err,
        ImageError::CorruptBlob { .. } | ImageError::BlobNotFound(_)
    ) {
        return err;
    }
    let check = blobs
        .reader(blob)
        .and_then(|mut r| io::copy(&mut r, &mut io::sink()).map_err(|e| blob_error(blob, e)));
    match check {
        Err(corrupt @ ImageError::CorruptBlob { .. }) => corrupt,
        _ => err,
    }
}

fn write_info(dir: &Path, info: &LayerInfo) -> Result<()> {
    let path = dir.join(INFO_FILE);
    let text = serde_json::to_vec(info).map_err(|e| ImageError::Io {
        context: format!("writing {}", path.display()),
        source: io::Error::other(e),
    })?;
    let mut file =
        std::fs::File::create(&path).map_err(io(format!("writing {}", path.display())))?;
    file.write_all(&text)
        .map_err(io(format!("writing {}", path.display())))
}

/// Renames the finished folder to its diff id. If another unpack (another
/// image, another muelle process) placed it first, that one is kept and
/// this one discarded: a layer is unpacked into one folder, shared. One of
/// the other form is replaced (`remove` refuses while a mount uses it).
fn place(store: &LayerStore, mut temp: TempDir, diff_id: &Digest) -> Result<()> {
    let final_path = store.dir(diff_id);
    if store.complete(diff_id) && !store.exists(diff_id) {
        tracing::info!("layer {diff_id}: replacing the folder of the other whiteout form");
        store.remove(diff_id)?;
    }
    match rename_noreplace(&temp.path, &final_path) {
        Ok(()) => {
            temp.armed = false;
            Ok(())
        }
        Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) => {
            tracing::debug!("layer {diff_id} was unpacked meanwhile; keeping that one");
            Ok(())
        }
        Err(e) => Err(io(format!("storing layer {diff_id}"))(e)),
    }
}

/// rename(2) that fails rather than replace an existing (even empty) folder.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a path"))
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: two NUL-terminated paths, relative to the working directory.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
