//! MUELLE: muelle's additions to sled's recovery (see MUELLE.md): a
//! zeroing write over bytes that already read as zeros is skipped, so an
//! open after a clean shutdown writes nothing.

use std::convert::TryFrom;
use std::fs::File;
use std::io;

use super::{pread_exact_or_eof, LogOffset, MessageKind};

/// Whether `len` bytes of `buf` from `start` are all the byte sled zeroes
/// with (`MessageKind::Corrupted`); false when `buf` ends before them.
pub(crate) fn holds_zeros(buf: &[u8], start: usize, len: usize) -> bool {
    let zero: u8 = MessageKind::Corrupted.into();
    buf.get(start..start + len).map_or(false, |b| b.iter().all(|x| *x == zero))
}

/// Whether the file holds `len` zero bytes at `offset` (read back, so
/// the answer is what a zeroing write would leave).
pub(crate) fn file_holds_zeros(
    file: &File,
    offset: LogOffset,
    len: usize,
) -> io::Result<bool> {
    let mut buf = vec![0xFF; len];
    let read = pread_exact_or_eof(file, &mut buf, offset)?;
    Ok(read == len && holds_zeros(&buf, 0, len))
}

/// Writes out the range if it is dirty in the page cache, as the log's own
/// writes are made durable (`sync_file_range`): the zeros a skipped write
/// relied on may come from an earlier opener killed before its fsync.
/// Clean pages cost one system call.
pub(crate) fn sync_range(
    file: &File,
    offset: LogOffset,
    len: usize,
) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        let ret = unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                i64::try_from(offset).unwrap(),
                i64::try_from(len).unwrap(),
                libc::SYNC_FILE_RANGE_WAIT_BEFORE
                    | libc::SYNC_FILE_RANGE_WRITE
                    | libc::SYNC_FILE_RANGE_WAIT_AFTER,
            )
        };
        if ret == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ENOSYS) {
            return Err(err);
        }
    }
    let _ = (offset, len);
    file.sync_all()
}
