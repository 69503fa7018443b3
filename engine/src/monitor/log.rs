//! docker's json-file log: one JSON object a line,
//! `{"log":"...","stream":"stdout","time":"RFC3339Nano"}`, rotated by size
//! into one backup (`LOG.1`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The longest `log` field: longer output without a newline is split.
pub const MAX_LINE: usize = 16 * 1024;

pub struct JsonLog {
    path: PathBuf,
    file: File,
    size: u64,
    max: u64,
}

impl JsonLog {
    /// Opens (appends to) `path`, rotating once it would pass `max` bytes.
    pub fn open(path: &Path, max: u64) -> std::io::Result<JsonLog> {
        let file = Self::open_file(path)?;
        let size = file.metadata()?.len();
        Ok(JsonLog {
            path: path.to_path_buf(),
            file,
            size,
            max,
        })
    }

    fn open_file(path: &Path) -> std::io::Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)
    }

    /// Appends one entry for `bytes` (a line with its newline, or a piece).
    pub fn write(&mut self, stream: &str, bytes: &[u8]) -> std::io::Result<()> {
        let entry = entry(stream, bytes, &runtime_core::state::now_rfc3339());
        if self.size > 0 && self.size + entry.len() as u64 > self.max {
            self.rotate()?;
        }
        self.file.write_all(entry.as_bytes())?;
        self.size += entry.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let mut backup = self.path.clone().into_os_string();
        backup.push(".1");
        std::fs::rename(&self.path, backup)?;
        self.file = Self::open_file(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// One log line, newline included. Bytes that are not UTF-8 become U+FFFD,
/// as docker's do.
pub fn entry(stream: &str, bytes: &[u8], time: &str) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut line = serde_json::json!({"log": text, "stream": stream, "time": time}).to_string();
    line.push('\n');
    line
}

/// Splits what a stream produced into log entries: whole lines, or
/// pieces of [`MAX_LINE`] bytes.
#[derive(Default)]
pub struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    /// Adds `bytes` and hands every complete entry to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut dyn FnMut(&[u8])) {
        self.pending.extend_from_slice(bytes);
        let mut start = 0;
        loop {
            let rest = &self.pending[start..];
            match rest.iter().position(|b| *b == b'\n') {
                Some(i) if i < MAX_LINE => {
                    out(&rest[..=i]);
                    start += i + 1;
                }
                _ if rest.len() >= MAX_LINE => {
                    out(&rest[..MAX_LINE]);
                    start += MAX_LINE;
                }
                _ => break,
            }
        }
        self.pending.drain(..start);
    }

    /// What is left without a newline, at the end of the stream.
    pub fn finish(&mut self, out: &mut dyn FnMut(&[u8])) {
        if !self.pending.is_empty() {
            out(&self.pending);
            self.pending.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut buffer = LineBuffer::default();
        let mut got = Vec::new();
        for chunk in chunks {
            buffer.push(chunk, &mut |e| got.push(e.to_vec()));
        }
        buffer.finish(&mut |e| got.push(e.to_vec()));
        got
    }

    #[test]
    fn lines_and_pieces() {
        assert_eq!(
            split(&[b"a\nb", b"c\n", b"tail"]),
            vec![b"a\n".to_vec(), b"bc\n".to_vec(), b"tail".to_vec()]
        );
        let long = vec![b'x'; MAX_LINE + 5];
        let got = split(&[&long, b"\n"]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].len(), MAX_LINE);
        assert_eq!(got[1], b"xxxxx\n".to_vec());
    }

    #[test]
    fn entries_are_docker_json() {
        let e = entry(
            "stderr",
            b"he said \"hi\"\n",
            "2026-01-01T00:00:00.000000000Z",
        );
        assert_eq!(
            e,
            "{\"log\":\"he said \\\"hi\\\"\\n\",\"stream\":\"stderr\",\"time\":\"2026-01-01T00:00:00.000000000Z\"}\n"
        );
    }

    #[test]
    fn rotates_into_one_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ct.log");
        let mut log = JsonLog::open(&path, 300).unwrap();
        for i in 0..20 {
            log.write("stdout", format!("line {i}\n").as_bytes())
                .unwrap();
        }
        let current = std::fs::read_to_string(&path).unwrap();
        let backup = std::fs::read_to_string(dir.path().join("ct.log.1")).unwrap();
        assert!(current.len() <= 300 && backup.len() <= 300);
        assert!(current.contains("line 19"));
        assert!(!dir.path().join("ct.log.2").exists());
    }
}
