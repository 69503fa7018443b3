//! Paths inside the container's root, resolved by the kernel as if the
//! rootfs were `/` (openat2 with RESOLVE_IN_ROOT): a symlink in the image
//! that points at `/etc` resolves to the rootfs's own etc, never the
//! host's. Mounts then target the opened file through /proc/self/fd, so
//! no path is resolved twice (no window for a symlink swap).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

fn openat2(dirfd: RawFd, path: &Path, flags: i32, resolve: u64) -> std::io::Result<OwnedFd> {
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    loop {
        // SAFETY: valid pointers to a NUL-terminated path and an open_how
        // of the size we pass.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                c_path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel returned a new descriptor we now own.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        }
        let err = std::io::Error::last_os_error();
        // EAGAIN: a concurrent rename raced the lookup; ask again.
        if err.raw_os_error() != Some(libc::EAGAIN) && err.kind() != std::io::ErrorKind::Interrupted
        {
            return Err(err);
        }
    }
}

const IN_ROOT: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// The container's root folder, open.
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

/// What to create at a mount destination that does not exist yet.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// A container path made relative (no leading `/`), refusing `..`: the spec
/// says destinations are absolute container paths, and `..` has no business
/// in one.
pub fn relative(container_path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in container_path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::InvalidSpec(format!(
                    "path {} must not contain '..'",
                    container_path.display()
                )));
            }
        }
    }
    Ok(out)
}

impl Root {
    pub fn open(path: &Path) -> Result<Root> {
        let fd = openat2(libc::AT_FDCWD, path, libc::O_PATH | libc::O_DIRECTORY, 0).map_err(
            |source| Error::Io {
                context: format!("opening rootfs {}", path.display()),
                source,
            },
        )?;
        Ok(Root {
            fd,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `container_path` (O_PATH) inside the root.
    pub fn open_in(&self, container_path: &Path) -> std::io::Result<OwnedFd> {
        let rel = relative(container_path)
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        let rel = if rel.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            rel
        };
        openat2(self.fd.as_raw_fd(), &rel, libc::O_PATH, IN_ROOT)
    }

    /// Opens `container_path` (O_PATH) without following a symlink in its
    /// last component: the file lstat(2) would describe.
    pub fn open_in_nofollow(&self, container_path: &Path) -> std::io::Result<OwnedFd> {
        let rel = relative(container_path)
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        openat2(
            self.fd.as_raw_fd(),
            &rel,
            libc::O_PATH | libc::O_NOFOLLOW,
            IN_ROOT,
        )
    }

    /// Opens `container_path`, creating it (and its missing parents as
    /// folders, mode 0755) when absent.
    pub fn create_in(&self, container_path: &Path, kind: Kind) -> Result<OwnedFd> {
        let rel = relative(container_path)?;
        let err = |source: std::io::Error| Error::Io {
            context: format!(
                "creating mount point {} in {}",
                container_path.display(),
                self.path.display()
            ),
            source,
        };
        // Most mount points exist, or only their last component is
        // missing: look the whole path up first, and climb only as far as
        // needed.
        match self.open_in(container_path) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(err(e)),
            Err(_) => {}
        }
        let (Some(parent_path), Some(name)) = (rel.parent(), rel.file_name()) else {
            // The root itself cannot be missing.
            return Err(err(std::io::Error::from_raw_os_error(libc::ENOENT)));
        };
        let parent = self.create_in(&Path::new("/").join(parent_path), Kind::Dir)?;
        let name = CString::new(name.as_encoded_bytes())
            .map_err(|_| err(std::io::Error::from_raw_os_error(libc::EINVAL)))?;
        // The parent fd is a folder already resolved in the root: creating
        // a plain name in it cannot leave the root.
        create_entry(&parent, &name, kind).map_err(err)?;
        self.open_in(container_path).map_err(err)
    }
}

/// Creates `name` in `parent` (an existing one is fine: a racing creator
/// or a symlink, which the caller's next lookup resolves in the root).
fn create_entry(parent: &OwnedFd, name: &CString, kind: Kind) -> std::io::Result<()> {
    let made = match kind {
        Kind::File => {
            // SAFETY: plain syscall on a valid fd and C string.
            let fd = unsafe {
                libc::openat(
                    parent.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC
                        | libc::O_WRONLY,
                    0o644,
                )
            };
            if fd >= 0 {
                // SAFETY: closing the descriptor we just opened.
                unsafe { libc::close(fd) };
            }
            fd
        }
        // SAFETY: plain syscall on a valid fd and C string.
        Kind::Dir => unsafe { libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), 0o755) },
    };
    if made < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e);
        }
    }
    Ok(())
}

/// The magic-link path through which mount(2) reaches an opened file.
pub fn proc_fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn parent_components_are_refused() {
        assert!(relative(Path::new("/a/../../etc")).is_err());
        assert_eq!(
            relative(Path::new("/a/./b")).expect("rel"),
            PathBuf::from("a/b")
        );
    }

    #[test]
    fn a_symlink_out_of_the_root_stays_inside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir(&rootfs).expect("mkdir");
        // The image's "etc" points at the host's /etc, and "up" climbs out.
        symlink("/etc", rootfs.join("etc")).expect("symlink");
        symlink("../../../..", rootfs.join("up")).expect("symlink");
        let root = Root::open(&rootfs).expect("open root");

        root.create_in(Path::new("/etc/muelle-test/x"), Kind::File)
            .unwrap_err();
        assert!(
            !Path::new("/etc/muelle-test").exists(),
            "must not touch the host's /etc"
        );

        root.create_in(Path::new("/up/tmp/inside"), Kind::Dir)
            .expect("climbing stops at the root");
        assert!(rootfs.join("tmp/inside").is_dir());
    }

    #[test]
    fn files_and_folders_are_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Root::open(dir.path()).expect("open root");
        root.create_in(Path::new("/a/b/c"), Kind::Dir).expect("dir");
        root.create_in(Path::new("/a/f"), Kind::File).expect("file");
        assert!(dir.path().join("a/b/c").is_dir());
        assert!(dir.path().join("a/f").is_file());
        root.create_in(Path::new("/a/f"), Kind::File)
            .expect("existing file is fine");
    }
}
