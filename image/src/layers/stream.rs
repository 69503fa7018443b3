//! The uncompressed layer stream, made on a thread of its own: reading the
//! blob (hashed for its verification), decompressing, and hashing the
//! result for the diff id run beside the tar unpack, which spends its time
//! in the filesystem. On two cores this is what keeps muelle's unpack at
//! the speed of `tar -x` (which hashes nothing): see the bench.
//!
//! The producer sends chunks over a bounded channel (a few MiB in flight).
//! When the unpack ends well, the producer still reads to the end of the
//! stream (the diff id covers the padding after the tar's end blocks, and
//! the blob is verified only at its end); when the unpack fails, it is told
//! to stop at once.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::compression::{Compression, Decompressed};
use crate::blobs::{VerifiedReader, blob_error};
use crate::digest::HashingReader;
use crate::{Digest, Result};

const CHUNK: usize = 1 << 20;
const IN_FLIGHT: usize = 4;

/// What the producer learned once the stream ended.
pub struct Produced {
    pub diff_id: Digest,
    pub tar_size: u64,
    pub compression: Compression,
}

/// The consumer's side: a `Read` over the chunks.
pub struct ChunkReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The producer is done: the end of the stream.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Tells the producer the consumer failed and nothing more is wanted.
#[derive(Clone)]
pub struct Abandon(Arc<AtomicBool>);

impl Abandon {
    pub fn now(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

pub fn channel() -> (SyncSender<io::Result<Vec<u8>>>, ChunkReader, Abandon) {
    let (tx, rx) = sync_channel(IN_FLIGHT);
    let reader = ChunkReader {
        rx,
        chunk: Vec::new(),
        pos: 0,
    };
    (tx, reader, Abandon(Arc::new(AtomicBool::new(false))))
}

/// Reads as much of `buf` as the stream gives (a decoder returns little
/// at a time; chunks should be full).
fn fill(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The producer: runs on its own thread until the stream ends (`Some`) or
/// the consumer abandons it (`None`). `blob` is the verified reader of
/// `digest`.
pub fn produce(
    blob: VerifiedReader,
    digest: &Digest,
    tx: SyncSender<io::Result<Vec<u8>>>,
    abandon: &Abandon,
) -> Result<Option<Produced>> {
    let (compression, mut stream) = Decompressed::new(blob).map_err(|e| blob_error(digest, e))?;
    let (diff_id, tar_size) = if compression == Compression::None {
        // An uncompressed blob is its own tar: its digest, checked at its
        // end, is the diff id, and hashing it twice would cost as much as
        // writing the files.
        let Some(size) = pump(&mut stream, tx, abandon, digest)? else {
            return Ok(None);
        };
        (digest.clone(), size)
    } else {
        let mut hashing = HashingReader::new(&mut stream);
        if pump(&mut hashing, tx, abandon, digest)?.is_none() {
            return Ok(None);
        }
        hashing.finish().map_err(|e| blob_error(digest, e))?
    };
    // The blob is verified at its very end, which a decoder that stops at
    // its trailer has not read.
    io::copy(&mut stream.into_inner(), &mut io::sink()).map_err(|e| blob_error(digest, e))?;
    Ok(Some(Produced {
        diff_id,
        tar_size,
        compression,
    }))
}

/// Sends `input` to the consumer in chunks, and reads on (hashing, through
/// `input`) after a consumer that finished the tar; returns the bytes read,
/// or None when the consumer abandoned it.
fn pump(
    input: &mut impl Read,
    tx: SyncSender<io::Result<Vec<u8>>>,
    abandon: &Abandon,
    digest: &Digest,
) -> Result<Option<u64>> {
    let mut consumer = Some(tx);
    let mut total = 0u64;
    loop {
        if abandon.0.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let mut chunk = vec![0u8; CHUNK];
        let n = match fill(input, &mut chunk) {
            Ok(n) => n,
            Err(e) => {
                if let Some(tx) = &consumer {
                    // The consumer's tar reader fails too; the error that
                    // counts is this one, returned below.
                    let _ = tx.send(Err(io::Error::new(e.kind(), "reading the layer failed")));
                }
                return Err(blob_error(digest, e));
            }
        };
        if n == 0 {
            return Ok(Some(total));
        }
        total += n as u64;
        chunk.truncate(n);
        // A consumer that is gone has finished the tar: the rest is only
        // read (and hashed).
        if let Some(tx) = &consumer
            && tx.send(Ok(chunk)).is_err()
        {
            consumer = None;
        }
    }
}
