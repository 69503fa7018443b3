//! Content-addressed blobs in an OCI image layout (`ROOT/image`:
//! `oci-layout`, `index.json`, `blobs/sha256/<hex>`), so that other OCI
//! tools (skopeo, umoci) can read muelle's store.
//!
//! A blob enters through a temporary file and is renamed to its digest
//! only after its content hashed to it: a blob file's name is always its
//! digest. Reading verifies again, so a blob corrupted on disk is found,
//! named, and refused rather than used.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::HashingReader;
use crate::error::io;
use crate::{Digest, ImageError, Result};

const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// Manifests, configs and indexes are read whole; nothing legitimate comes
/// near this (docker caps manifests at 4 MiB).
pub const MAX_METADATA_BLOB: u64 = 8 << 20;

#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// The layout under `data_root/image`, made when missing.
    pub fn open(data_root: &Path) -> Result<BlobStore> {
        let root = data_root.join("image");
        let blobs = root.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(io(format!("creating {}", blobs.display())))?;
        let layout = root.join(LAYOUT_FILE);
        if !layout.exists() {
            std::fs::write(&layout, LAYOUT).map_err(io(format!("writing {}", layout.display())))?;
        }
        let index = root.join("index.json");
        if !index.exists() {
            std::fs::write(
                &index,
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
            )
            .map_err(io(format!("writing {}", index.display())))?;
        }
        Ok(BlobStore { root })
    }

    /// `ROOT/image`: the OCI layout's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Stores what `input` holds and returns its digest and size. With
    /// `expected`, content that hashes to anything else is refused and
    /// nothing is stored.
    pub fn put(&self, input: impl Read, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let dir = self.root.join("blobs/sha256");
        let mut tmp = tempfile_in(&dir)?;
        let mut reader = HashingReader::new(input);
        let copied = io::copy(&mut reader, &mut tmp.file)
            .and_then(|_| tmp.file.flush())
            .and_then(|()| tmp.file.sync_data());
        copied.map_err(io(format!("storing a blob in {}", dir.display())))?;
        let (digest, size) = reader.finish().map_err(io("reading a blob".to_owned()))?;
        if let Some(expected) = expected
            && *expected != digest
        {
            return Err(ImageError::CorruptBlob {
                expected: expected.clone(),
                actual: digest,
            });
        }
        let final_path = self.path(&digest);
        std::fs::rename(&tmp.path, &final_path).map_err(io(format!("storing blob {digest}")))?;
        tmp.keep();
        Ok((digest, size))
    }

    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        self.put(bytes, None).map(|(d, _)| d)
    }

    /// A reader over the blob that fails with `CorruptBlob` at its end if
    /// the content does not hash to `digest`.
    pub fn reader(&self, digest: &Digest) -> Result<VerifiedReader> {
        let path = self.path(digest);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ImageError::BlobNotFound(digest.clone()));
            }
            Err(e) => return Err(io(format!("opening {}", path.display()))(e)),
        };
        Ok(VerifiedReader {
            inner: Some(HashingReader::new(file)),
            expected: digest.clone(),
        })
    }

    /// The whole (small) blob, verified: manifests, configs, indexes.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let reader = self.reader(digest)?;
        let read = reader.take(MAX_METADATA_BLOB + 1).read_to_end(&mut bytes);
        read.map_err(|e| blob_error(digest, e))?;
        if bytes.len() as u64 > MAX_METADATA_BLOB {
            return Err(ImageError::Io {
                context: format!("reading blob {digest}"),
                source: io::Error::other(format!(
                    "larger than {MAX_METADATA_BLOB} bytes: not a manifest or config"
                )),
            });
        }
        Ok(bytes)
    }

    pub fn remove(&self, digest: &Digest) -> Result<()> {
        match std::fs::remove_file(self.path(digest)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(io(format!("removing blob {digest}"))(e))
            }
            _ => Ok(()),
        }
    }

    /// Every stored blob (files whose names are not digests are not ours).
    pub fn list(&self) -> Result<Vec<Digest>> {
        let dir = self.root.join("blobs/sha256");
        let entries = std::fs::read_dir(&dir).map_err(io(format!("listing {}", dir.display())))?;
        let mut all: Vec<Digest> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| format!("sha256:{n}").parse().ok())
            .collect();
        all.sort();
        Ok(all)
    }
}

/// Turns the corruption signal of a [`VerifiedReader`] back into its
/// typed error.
pub fn blob_error(digest: &Digest, e: io::Error) -> ImageError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Corrupt>())
    {
        Some(Corrupt(actual)) => ImageError::CorruptBlob {
            expected: digest.clone(),
            actual: actual.clone(),
        },
        None => ImageError::Io {
            context: format!("reading blob {digest}"),
            source: e,
        },
    }
}

#[derive(Debug)]
struct Corrupt(Digest);

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "content hashes to {}", self.0)
    }
}

impl std::error::Error for Corrupt {}

pub struct VerifiedReader {
    inner: Option<HashingReader<File>>,
    expected: Digest,
}

impl Read for VerifiedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(0);
        };
        let n = inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let Some(done) = self.inner.take() else {
                return Ok(0);
            };
            let (actual, _) = done.finish()?;
            if actual != self.expected {
                return Err(io::Error::new(io::ErrorKind::InvalidData, Corrupt(actual)));
            }
        }
        Ok(n)
    }
}

/// A temporary file removed on drop unless kept.
struct TempFile {
    file: File,
    path: PathBuf,
    kept: bool,
}

impl TempFile {
    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn tempfile_in(dir: &Path) -> Result<TempFile> {
    for attempt in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = dir.join(format!(".tmp-{}-{nanos}-{attempt}", std::process::id()));
        match File::options().write(true).create_new(true).open(&path) {
            Ok(file) => {
                return Ok(TempFile {
                    file,
                    path,
                    kept: false,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(format!("creating a file in {}", dir.display()))(e)),
        }
    }
    Err(ImageError::Io {
        context: format!("creating a file in {}", dir.display()),
        source: io::Error::other("no free temporary name"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_named_by_their_content_and_checked_on_read() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(root.path()).expect("open");
        let d = store.put_bytes(b"layer").expect("put");
        assert_eq!(d, Digest::of_bytes(b"layer"));
        assert_eq!(store.read(&d).expect("read"), b"layer");
        assert!(root.path().join("image/oci-layout").is_file());

        let wrong = Digest::of_bytes(b"other");
        let err = store
            .put(&b"layer"[..], Some(&wrong))
            .expect_err("mismatch");
        assert!(matches!(err, ImageError::CorruptBlob { .. }), "{err}");
        assert!(!store.contains(&wrong), "nothing stored under a wrong name");
        assert_eq!(
            store.list().expect("list"),
            vec![d.clone()],
            "no temp file left"
        );

        std::fs::write(store.path(&d), b"evil!").expect("corrupt it");
        let err = store.read(&d).expect_err("corrupt");
        assert!(
            err.to_string().starts_with(&format!("blob {d} is corrupt")),
            "{err}"
        );
    }
}
