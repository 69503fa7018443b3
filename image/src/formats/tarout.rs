//! Writing archives: plain tar entries owned by root, mode 0644, time 0
//! (the same images give the same archive), and blobs streamed from the
//! store with their digest checked as they go out.

use std::io::{self, Read, Write};

use crate::blobs::blob_error;
use crate::error::io;
use crate::{BlobStore, Digest, ImageError, Result};

pub struct TarOut<W: Write> {
    builder: tar::Builder<Guard<W>>,
}

/// The output, closed for good after the first failure: tar's builder
/// writes the end-of-archive blocks when dropped, which must not make a
/// failed save look like a complete archive.
struct Guard<W> {
    inner: W,
    poisoned: bool,
}

impl<W: Write> Write for Guard<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.poisoned {
            return Err(io::Error::other("the save failed"));
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn header(name: &str, size: u64, kind: tar::EntryType, mode: u32) -> Result<tar::Header> {
    let mut h = tar::Header::new_gnu();
    h.set_path(name)
        .map_err(io(format!("naming archive entry {name}")))?;
    h.set_size(size);
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    Ok(h)
}

fn write_error(e: io::Error) -> ImageError {
    io("writing the archive")(e)
}

/// Gives exactly `remaining` bytes of a verified blob reader, then reads
/// it to its end so that it checks the digest; a blob that changed size
/// since it was measured is an error, not a short or long tar entry.
struct Exact<R> {
    inner: R,
    remaining: u64,
    /// The read side failed (so the error is the blob's, not the output's).
    failed: bool,
}

impl<R: Read> Exact<R> {
    fn fail(&mut self, e: io::Error) -> io::Error {
        self.failed = true;
        e
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe) {
                Ok(0) => Ok(0),
                Ok(_) => Err(self.fail(io::Error::other("the blob grew while it was saved"))),
                Err(e) => Err(self.fail(e)),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        match self.inner.read(&mut buf[..want]) {
            Ok(0) => Err(self.fail(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the blob shrank while it was saved",
            ))),
            Ok(n) => {
                self.remaining -= n as u64;
                Ok(n)
            }
            Err(e) => Err(self.fail(e)),
        }
    }
}

impl<W: Write> TarOut<W> {
    pub fn new(out: W) -> TarOut<W> {
        TarOut {
            builder: tar::Builder::new(Guard {
                inner: out,
                poisoned: false,
            }),
        }
    }

    fn check<T>(&mut self, result: Result<T>) -> Result<T> {
        if result.is_err() {
            self.builder.get_mut().poisoned = true;
        }
        result
    }

    pub fn dir(&mut self, name: &str) -> Result<()> {
        let h = header(name, 0, tar::EntryType::Directory, 0o755)?;
        let done = self.builder.append(&h, io::empty()).map_err(write_error);
        self.check(done)
    }

    pub fn bytes(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let h = header(name, data.len() as u64, tar::EntryType::Regular, 0o644)?;
        let done = self.builder.append(&h, data).map_err(write_error);
        self.check(done)
    }

    /// The blob `digest` as entry `name`, verified on the way out: a
    /// corrupt blob fails the save with `CorruptBlob` (the output is then
    /// incomplete; callers write to a temporary file).
    pub fn blob(&mut self, name: &str, blobs: &BlobStore, digest: &Digest) -> Result<()> {
        let done = self.blob_inner(name, blobs, digest);
        self.check(done)
    }

    fn blob_inner(&mut self, name: &str, blobs: &BlobStore, digest: &Digest) -> Result<()> {
        let size = std::fs::metadata(blobs.path(digest))
            .map_err(|_| ImageError::BlobNotFound(digest.clone()))?
            .len();
        let mut reader = Exact {
            inner: blobs.reader(digest)?,
            remaining: size,
            failed: false,
        };
        let h = header(name, size, tar::EntryType::Regular, 0o644)?;
        match self.builder.append(&h, &mut reader) {
            Ok(()) => Ok(()),
            Err(e) if reader.failed => Err(blob_error(digest, e)),
            Err(e) => Err(write_error(e)),
        }
    }

    pub fn finish(self) -> Result<()> {
        let mut out = self.builder.into_inner().map_err(write_error)?;
        out.inner.flush().map_err(write_error)
    }
}
