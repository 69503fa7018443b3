//! The only place that touches cgroupfs: read, write, mkdir, rmdir.
//!
//! Guarantee: a write or read names a file directly inside the cgroup
//! directory it is given. File names are checked here (no `/`, no `.` or `..`,
//! no NUL), so a value from a spec (a unified key, a hugepage size) can never
//! reach a file outside the container's cgroup.
//!
//! Each value goes to the kernel in one `write(2)`, as cgroupfs wants it.

use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use super::CgroupError;

/// The path of `name` inside `dir`, or an error if `name` is not a plain file name.
pub(super) fn file_path(dir: &Path, name: &str) -> Result<PathBuf, CgroupError> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.contains('\0')
        || name.contains(char::is_whitespace)
    {
        return Err(CgroupError::InvalidValue {
            what: format!("cgroup file name {name:?}"),
            reason: format!("must be a plain file name inside {}", dir.display()),
        });
    }
    Ok(dir.join(name))
}

/// Writes `value` to the file `name` of the cgroup `dir`.
pub(super) fn write(dir: &Path, name: &str, value: &str) -> Result<(), CgroupError> {
    let path = file_path(dir, name)?;
    write_path(&path, value).map_err(|source| CgroupError::Write {
        path,
        value: value.to_owned(),
        source,
    })
}

fn write_path(path: &Path, value: &str) -> io::Result<()> {
    #[cfg(test)]
    if !hooks::before_write(path, value)? {
        return Ok(());
    }
    // No O_CREAT: a missing file means a missing controller or feature, and
    // callers act on that ENOENT.
    let mut file = OpenOptions::new().write(true).truncate(true).open(path)?;
    let written = file.write(value.as_bytes())?;
    if written != value.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write: {written} of {} bytes", value.len()),
        ));
    }
    #[cfg(test)]
    hooks::record_write(path, value);
    Ok(())
}

/// Writes one value after another to files of one cgroup, keeping the
/// last file open: a list of device rules costs an open per file, not per
/// rule. cgroupfs reads each `write(2)` as a request of its own, whatever
/// the offset.
pub(super) struct Writer<'a> {
    dir: &'a Path,
    open: Option<(&'a str, PathBuf, std::fs::File)>,
}

impl<'a> Writer<'a> {
    pub(super) fn new(dir: &'a Path) -> Writer<'a> {
        Writer { dir, open: None }
    }

    pub(super) fn write(&mut self, name: &'a str, value: &str) -> Result<(), CgroupError> {
        if self.open.as_ref().is_none_or(|(open, ..)| *open != name) {
            self.open = None;
            let path = file_path(self.dir, name)?;
            let file = OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&path)
                .map_err(|source| CgroupError::Write {
                    path: path.clone(),
                    value: value.to_owned(),
                    source,
                })?;
            self.open = Some((name, path, file));
        }
        let (_, path, file) = self.open.as_mut().expect("just opened");
        let result = (|| {
            #[cfg(test)]
            if !hooks::before_write(path, value)? {
                return Ok(());
            }
            let written = file.write(value.as_bytes())?;
            if written != value.len() {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("short write: {written} of {} bytes", value.len()),
                ));
            }
            #[cfg(test)]
            hooks::record_write(path, value);
            Ok(())
        })();
        result.map_err(|source| CgroupError::Write {
            path: path.clone(),
            value: value.to_owned(),
            source,
        })
    }
}

/// Reads the file `name` of the cgroup `dir`.
pub(super) fn read(dir: &Path, name: &str) -> Result<String, CgroupError> {
    let path = file_path(dir, name)?;
    crate::kernel_files::read(&path).map_err(|source| CgroupError::Read { path, source })
}

/// Reads the file `name` of the cgroup `dir`; `None` when it does not exist.
pub(super) fn read_opt(dir: &Path, name: &str) -> Result<Option<String>, CgroupError> {
    match read(dir, name) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.errno() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) fn mkdir(path: &Path) -> io::Result<()> {
    std::fs::create_dir(path)?;
    #[cfg(test)]
    hooks::after_mkdir(path);
    Ok(())
}

pub(super) fn rmdir(path: &Path) -> io::Result<()> {
    #[cfg(test)]
    hooks::before_rmdir(path)?;
    std::fs::remove_dir(path)
}

/// Test doubles for the kernel: a log of writes, injected errors, and a
/// callback that fills a new directory with the files cgroupfs would show.
/// Thread-local, so tests running in parallel do not see each other.
#[cfg(test)]
pub(super) mod hooks {
    use std::cell::RefCell;
    use std::io;
    use std::path::{Path, PathBuf};

    type MkdirHook = Box<dyn Fn(&Path)>;
    type WriteHook = Box<dyn Fn(&Path, &str) -> Option<io::Result<()>>>;

    thread_local! {
        static WRITES: RefCell<Vec<(PathBuf, String)>> = const { RefCell::new(Vec::new()) };
        static FAILURES: RefCell<Vec<(String, i32)>> = const { RefCell::new(Vec::new()) };
        static IGNORED: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
        static ON_MKDIR: RefCell<Option<MkdirHook>> = const { RefCell::new(None) };
        static ON_WRITE: RefCell<Option<WriteHook>> = const { RefCell::new(None) };
    }

    pub fn reset() {
        WRITES.with(|w| w.borrow_mut().clear());
        FAILURES.with(|f| f.borrow_mut().clear());
        IGNORED.with(|i| i.borrow_mut().clear());
        ON_MKDIR.with(|h| *h.borrow_mut() = None);
        ON_WRITE.with(|h| *h.borrow_mut() = None);
    }

    pub fn clear_writes() {
        WRITES.with(|w| w.borrow_mut().clear());
    }

    /// The successful writes since the last `reset`, in order.
    pub fn writes() -> Vec<(PathBuf, String)> {
        WRITES.with(|w| w.borrow().clone())
    }

    /// The next write to a file called `name` (or rmdir of a directory so
    /// named) fails with `errno`.
    pub fn fail_next(name: &str, errno: i32) {
        FAILURES.with(|f| f.borrow_mut().push((name.to_owned(), errno)));
    }

    /// Writes of `value` to files called `name` succeed and are logged, but
    /// leave the file as it was: a kernel that does not act on a request.
    pub fn ignore_writes(name: &str, value: &str) {
        IGNORED.with(|i| i.borrow_mut().push((name.to_owned(), value.to_owned())));
    }

    /// `hook(path, value)` sees each write first; when it returns a result
    /// it has done the write itself (a file whose kernel semantics it fakes).
    pub fn on_write(hook: impl Fn(&Path, &str) -> Option<io::Result<()>> + 'static) {
        ON_WRITE.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
    }

    pub fn on_mkdir(hook: impl Fn(&Path) + 'static) {
        ON_MKDIR.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
    }

    /// Whether the write should reach the file.
    pub(super) fn before_write(path: &Path, value: &str) -> io::Result<bool> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        FAILURES.with(|f| {
            let mut failures = f.borrow_mut();
            match failures.iter().position(|(n, _)| n == name) {
                Some(i) => Err(io::Error::from_raw_os_error(failures.remove(i).1)),
                None => Ok(()),
            }
        })?;
        if let Some(result) =
            ON_WRITE.with(|h| h.borrow().as_ref().and_then(|hook| hook(path, value)))
        {
            result?;
            record_write(path, value);
            return Ok(false);
        }
        let ignored = IGNORED.with(|i| i.borrow().iter().any(|(n, v)| n == name && v == value));
        if ignored {
            record_write(path, value);
        }
        Ok(!ignored)
    }

    /// Failures registered for a directory's name apply to its rmdir.
    pub(super) fn before_rmdir(path: &Path) -> io::Result<()> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        FAILURES.with(|f| {
            let mut failures = f.borrow_mut();
            match failures.iter().position(|(n, _)| n == name) {
                Some(i) => Err(io::Error::from_raw_os_error(failures.remove(i).1)),
                None => Ok(()),
            }
        })
    }

    pub(super) fn record_write(path: &Path, value: &str) {
        WRITES.with(|w| w.borrow_mut().push((path.to_path_buf(), value.to_owned())));
    }

    pub(super) fn after_mkdir(path: &Path) {
        ON_MKDIR.with(|h| {
            if let Some(hook) = h.borrow().as_ref() {
                hook(path);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_names_that_leave_the_directory() {
        let dir = Path::new("/sys/fs/cgroup/x");
        for bad in [
            "",
            ".",
            "..",
            "../memory.max",
            "a/b",
            "/etc/passwd",
            "a\0b",
            "a b",
            "a\nb",
        ] {
            assert!(file_path(dir, bad).is_err(), "{bad:?} accepted");
            assert!(write(dir, bad, "1").is_err(), "{bad:?} written");
        }
        assert_eq!(
            file_path(dir, "memory.max").expect("plain name"),
            Path::new("/sys/fs/cgroup/x/memory.max")
        );
    }

    #[test]
    fn writes_replace_the_content_and_never_create_files() {
        hooks::reset();
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(tmp.path().join("pids.max"), "max\n").expect("seed");
        write(tmp.path(), "pids.max", "10").expect("write");
        assert_eq!(read(tmp.path(), "pids.max").expect("read"), "10");
        let err = write(tmp.path(), "memory.max", "1").unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT), "{err}");
        assert!(!tmp.path().join("memory.max").exists());
        assert_eq!(read_opt(tmp.path(), "memory.max").expect("read_opt"), None);
        assert_eq!(
            hooks::writes(),
            vec![(tmp.path().join("pids.max"), "10".to_owned())]
        );
    }
}
