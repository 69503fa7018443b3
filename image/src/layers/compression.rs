//! A layer blob's compression, told by its first bytes and never by its
//! media type: registries and tools label layers wrongly often enough that
//! docker and containerd sniff too.

use std::io::{self, BufReader, Chain, Cursor, Read};

use serde::{Deserialize, Serialize};

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn detect(prefix: &[u8]) -> Compression {
        if prefix.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if prefix.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// What a media type claims, for a warning when it disagrees.
    pub fn claimed_by(media_type: &str) -> Option<Compression> {
        if media_type.ends_with("gzip") {
            Some(Compression::Gzip)
        } else if media_type.ends_with("zstd") {
            Some(Compression::Zstd)
        } else if media_type.ends_with("tar") {
            Some(Compression::None)
        } else {
            None
        }
    }
}

/// Read size for the blob: large enough that reading a plain tar costs few
/// system calls, small enough to stay in cache.
const BUFFER: usize = 256 * 1024;

/// The blob as read: its sniffed first bytes put back in front.
pub type Source<R> = BufReader<Chain<Cursor<Vec<u8>>, R>>;

/// The uncompressed stream over a blob reader. `into_inner` gives the
/// buffered blob reader back, so what a decoder left unread (and the blob's
/// verification at its end) can still be reached.
pub enum Decompressed<R: Read> {
    Plain(Source<R>),
    // Multi-member: `gzip` output concatenated is one valid stream, and
    // Go's reader (docker's) accepts it.
    Gzip(Box<flate2::bufread::MultiGzDecoder<Source<R>>>),
    // zstd's reader goes on through concatenated frames by default.
    Zstd(Box<zstd::stream::read::Decoder<'static, Source<R>>>),
}

impl<R: Read> Decompressed<R> {
    /// Sniffs `input`'s first bytes and wraps it.
    pub fn new(mut input: R) -> io::Result<(Compression, Decompressed<R>)> {
        let prefix = read_prefix(&mut input)?;
        let compression = Compression::detect(&prefix);
        let source = BufReader::with_capacity(BUFFER, Cursor::new(prefix).chain(input));
        let stream = match compression {
            Compression::None => Decompressed::Plain(source),
            Compression::Gzip => {
                Decompressed::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(source)))
            }
            Compression::Zstd => {
                Decompressed::Zstd(Box::new(zstd::stream::read::Decoder::with_buffer(source)?))
            }
        };
        Ok((compression, stream))
    }

    pub fn into_inner(self) -> Source<R> {
        match self {
            Decompressed::Plain(r) => r,
            Decompressed::Gzip(d) => d.into_inner(),
            Decompressed::Zstd(d) => d.finish(),
        }
    }
}

/// The first four bytes (fewer only at the end of the blob), however the
/// reader splits them.
fn read_prefix(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut prefix = Vec::with_capacity(ZSTD_MAGIC.len());
    input
        .by_ref()
        .take(ZSTD_MAGIC.len() as u64)
        .read_to_end(&mut prefix)?;
    Ok(prefix)
}

impl<R: Read> Read for Decompressed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decompressed::Plain(r) => r.read(buf),
            Decompressed::Gzip(d) => d.read(buf),
            Decompressed::Zstd(d) => d.read(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn roundtrip(compressed: Vec<u8>, want: Compression) {
        let (found, mut stream) = Decompressed::new(compressed.as_slice()).expect("open");
        assert_eq!(found, want);
        let mut out = Vec::new();
        stream.read_to_end(&mut out).expect("read");
        assert_eq!(out, b"hello layer, hello layer");
    }

    #[test]
    fn compression_is_told_by_magic_bytes() {
        let data = b"hello layer, hello layer";
        roundtrip(data.to_vec(), Compression::None);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data[..12]).expect("gz");
        let mut both = gz.finish().expect("gz");
        // Two gzip members concatenated are one stream.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data[12..]).expect("gz");
        both.extend(gz.finish().expect("gz"));
        roundtrip(both, Compression::Gzip);
        roundtrip(
            zstd::encode_all(&data[..], 3).expect("zstd"),
            Compression::Zstd,
        );
        assert_eq!(Compression::detect(b"\x1f"), Compression::None);
        assert_eq!(
            Compression::claimed_by("application/vnd.oci.image.layer.v1.tar+gzip"),
            Some(Compression::Gzip)
        );
    }
}
