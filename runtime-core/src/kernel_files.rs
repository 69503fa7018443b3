//! Reads of the small files the kernel generates (procfs, cgroupfs):
//! open, read into a buffer big enough for the whole text, close. The
//! std way (`fs::read_to_string`) asks for the size first, which these
//! files report as 0, and then reads in 32-byte steps that double: nine
//! calls instead of four for a /proc/PID/stat.

use std::io::Read;
use std::path::Path;

/// The whole text of `path`.
pub(crate) fn read(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut text = String::with_capacity(4096);
    file.read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_generated_and_regular_files_whole() {
        for path in [
            "/proc/version",
            "/proc/self/cmdline",
            "/proc/self/mountinfo",
        ] {
            let path = Path::new(path);
            assert_eq!(
                read(path).expect("read"),
                std::fs::read_to_string(path).expect("std"),
                "{}",
                path.display()
            );
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let big = "x".repeat(10_000);
        std::fs::write(dir.path().join("f"), &big).expect("write");
        assert_eq!(read(&dir.path().join("f")).expect("read"), big);
        assert!(read(&dir.path().join("missing")).is_err());
    }
}
