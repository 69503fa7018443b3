//! `cp`: files between a container and the host, with docker's rules for
//! what lands where (a file or a folder, an existing destination or a new
//! name, `dir/.` for the content) and docker's owners: what enters the
//! container is root's unless `-a` keeps the archived ids, what leaves it
//! is the caller's. Setuid and setgid bits go when the owner changes.
//!
//! The copy is a tar stream from one side's `pack_entry` to the other's
//! `unpack_at`, named at the source as the destination wants it (docker
//! rewrites the stream instead). A tar a user streams in (`cp -`) is read
//! whole into an unnamed file beside the data and checked by
//! `archive::scan` first, so a hostile one writes nothing.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufReader, BufWriter, PipeReader, PipeWriter, Read, Seek, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag, readlinkat};
use nix::sys::stat::{Mode, SFlag, fstat, fstatat};
use storage::archive::{self, ArchiveError, Owners, Summary, UnpackOptions, Whiteouts};

use super::host::{HostDest, HostSource};
use super::path::{ContainerPath, Tail, archive_name, clean, split};
use super::root::{RootDir, View};
use super::{FilesError, is_kernel_fs};
use crate::container::error::io;
use crate::container::{Engine, EngineError, Result};

/// Symlinks followed at the end of a container path before giving up
/// (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// Archives move through the pipe in large writes, not 512-byte blocks.
const PIPE_BUFFER: usize = 256 * 1024;

/// `cp`'s flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// `-L`: copy what a symlink at the end of the source points at.
    pub follow_link: bool,
    /// `-a`: keep the archived uid/gid of what is copied in.
    pub archive: bool,
}

/// Where `cp CONTAINER:SRC ...` writes.
pub enum CopyTarget<'a> {
    /// A host path.
    Host(&'a Path),
    /// `-`: a tar stream.
    Tar(&'a mut (dyn Write + Send)),
}

/// What `cp ... CONTAINER:DEST` reads.
pub enum CopySource<'a> {
    Host(&'a Path),
    /// `-`: a tar stream, extracted into DEST (a folder).
    Tar(&'a mut (dyn Read + Send)),
}

/// Entries that come into a container are checked as an image layer's
/// are, and keep their names (no whiteout meaning).
const INTO_CONTAINER: UnpackOptions = UnpackOptions {
    whiteouts: Whiteouts::Keep,
    devices: true,
};

/// A container's device node never becomes one on the host.
const ONTO_HOST: UnpackOptions = UnpackOptions {
    whiteouts: Whiteouts::Keep,
    devices: false,
};

impl Engine {
    /// `cp CONTAINER:SRC DEST|-`. Returns the size of the tar stream.
    pub fn copy_out(
        &self,
        text: &str,
        src: &str,
        target: CopyTarget<'_>,
        options: CopyOptions,
    ) -> Result<u64> {
        let src_path = ContainerPath::parse(src);
        let output = match target {
            CopyTarget::Host(path) => Output::Host(HostDest::resolve(path)?),
            CopyTarget::Tar(out) => Output::Tar(out),
        };
        let store = self.open_store()?;
        let container = self.find(&store, text)?;
        let name = container.name.clone();
        self.with_root(store, &container, View::Mounts, move |root| {
            let source = Source::resolve(root, &src_path, options.follow_link)
                .map_err(|e| not_found(e, src, &name))?;
            let prune = |fd: BorrowedFd<'_>| root.prune(fd);
            let context = format!("copying {name}:{src}");
            match output {
                Output::Tar(out) => {
                    let mut out = Counted::new(out);
                    archive::pack_entry(
                        source.parent.as_fd(),
                        &source.name,
                        &source.as_name,
                        &mut out,
                        &prune,
                    )
                    .map_err(archived(context))?;
                    Ok(out.bytes)
                }
                Output::Host(dest) => {
                    let (dir, rename) = dest.extraction(source.is_dir)?;
                    let as_name = rename.unwrap_or_else(|| source.as_name.clone());
                    let owners = Owners::All {
                        uid: nix::unistd::geteuid().as_raw(),
                        gid: nix::unistd::getegid().as_raw(),
                    };
                    through_pipe(
                        |out| {
                            archive::pack_entry(
                                source.parent.as_fd(),
                                &source.name,
                                &as_name,
                                out,
                                &prune,
                            )
                        },
                        |input| archive::unpack_at(input, dir, &ONTO_HOST, owners),
                    )
                    .map_err(archived(context))
                }
            }
        })
    }

    /// `cp SRC|- CONTAINER:DEST`. Returns the size of the tar stream.
    pub fn copy_in(
        &self,
        source: CopySource<'_>,
        text: &str,
        dest: &str,
        options: CopyOptions,
    ) -> Result<u64> {
        let dest_path = ContainerPath::parse(dest);
        let owners = if options.archive {
            Owners::FromArchive
        } else {
            Owners::All { uid: 0, gid: 0 }
        };
        let input = match source {
            CopySource::Tar(input) => Input::Tar(self.spool(input)?),
            CopySource::Host(path) => Input::Host(HostSource::resolve(path, options.follow_link)?),
        };
        let store = self.open_store()?;
        let container = self.find(&store, text)?;
        let name = container.name.clone();
        self.with_root(store, &container, View::Mounts, move |root| {
            let found = Dest::resolve(root, &dest_path);
            let context = format!("copying into {name}:{dest}");
            match input {
                Input::Tar(spooled) => {
                    if !(found.exists && found.is_dir) {
                        return Err(FilesError::DestinationNotDirectory {
                            container: name.clone(),
                            path: dest.to_owned(),
                        }
                        .into());
                    }
                    let dir = extraction_dir(root, &found.path, &name)?;
                    let bytes = spooled.size;
                    archive::unpack_at(
                        BufReader::new(spooled.file),
                        dir.as_fd(),
                        &INTO_CONTAINER,
                        owners,
                    )
                    .map_err(archived(context))?;
                    Ok(bytes)
                }
                Input::Host(source) => {
                    if found.exists && !found.is_dir && !found.is_file {
                        return Err(FilesError::DestinationNotFile {
                            container: name.clone(),
                            path: dest.to_owned(),
                        }
                        .into());
                    }
                    let (dir_path, rename) = found.extraction(source.is_dir)?;
                    let dir = extraction_dir(root, &dir_path, &name)?;
                    let as_name = rename.unwrap_or_else(|| source.as_name.clone());
                    let prune = |fd: BorrowedFd<'_>| is_kernel_fs(fd);
                    through_pipe(
                        |out| {
                            archive::pack_entry(
                                source.parent.as_fd(),
                                &source.name,
                                &as_name,
                                out,
                                &prune,
                            )
                        },
                        |input| archive::unpack_at(input, dir.as_fd(), &INTO_CONTAINER, owners),
                    )
                    .map_err(archived(context))
                }
            }
        })
    }

    /// Reads a user's tar whole into an unnamed file beside the data
    /// (gone when closed; the system's temporary folder when the data
    /// root cannot hold one), and checks every entry before any is
    /// written.
    fn spool(&self, input: &mut (dyn Read + Send)) -> Result<Spooled> {
        let unnamed = |dir: &Path| {
            nix::fcntl::open(
                dir,
                OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
        };
        let tmp = unnamed(self.data_root())
            .or_else(|_| unnamed(&std::env::temp_dir()))
            .map_err(|e| io("making a file to hold the archive")(e.into()))?;
        let mut file = File::from(tmp);
        let size = std::io::copy(input, &mut file).map_err(io("reading the archive"))?;
        file.rewind().map_err(io("reading the archive"))?;
        archive::scan(BufReader::new(&file), &INTO_CONTAINER).map_err(archived(
            "the archive is refused, nothing was copied".into(),
        ))?;
        file.rewind().map_err(io("reading the archive"))?;
        Ok(Spooled { file, size })
    }
}

enum Output<'a> {
    Tar(&'a mut (dyn Write + Send)),
    Host(HostDest),
}

enum Input {
    Tar(Spooled),
    Host(HostSource),
}

struct Spooled {
    file: File,
    size: u64,
}

fn archived(context: String) -> impl FnOnce(ArchiveError) -> EngineError {
    move |source| FilesError::Archive { context, source }.into()
}

/// A missing path as docker says it.
fn not_found(e: std::io::Error, path: &str, container: &str) -> EngineError {
    match e.raw_os_error() {
        Some(libc::ENOENT) => FilesError::NotFound {
            path: path.to_owned(),
            container: container.to_owned(),
        }
        .into(),
        Some(libc::ENOTDIR) => FilesError::NotADirectory.into(),
        _ => io(format!("reading {container}:{path}"))(e),
    }
}

/// The container folder `path` to extract into: existing, a folder, and
/// writable.
fn extraction_dir(root: &RootDir, path: &Path, container: &str) -> Result<OwnedFd> {
    let dir = root
        .open(path, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOTDIR) => FilesError::ExtractionPointNotDirectory.into(),
            _ => not_found(e, &path.display().to_string(), container),
        })?;
    root.check_writable(dir.as_fd())?;
    Ok(dir)
}

/// What `cp CONTAINER:SRC ...` copies: the entry `name` of the folder
/// `parent` (resolved in the root), archived as `as_name`.
struct Source {
    parent: OwnedFd,
    name: OsString,
    is_dir: bool,
    as_name: PathBuf,
}

impl Source {
    fn resolve(root: &RootDir, path: &ContainerPath, follow: bool) -> std::io::Result<Source> {
        let typed = archive_name(path.path(), path.tail());
        let split = match path.split() {
            Some(split) if path.tail() == Tail::Plain => split,
            // `dir/`, `dir/.` and `/`: the folder, symlinks followed.
            _ => {
                let dir = root.open(path.path(), OFlag::O_PATH | OFlag::O_DIRECTORY)?;
                return Ok(Source {
                    parent: dir,
                    name: OsString::from("."),
                    is_dir: true,
                    as_name: typed,
                });
            }
        };
        let (parent, name) = if follow {
            follow_links(root, split)?
        } else {
            split
        };
        let parent = root.open(&parent, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        let st = fstatat(
            parent.as_fd(),
            name.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        Ok(Source {
            parent,
            name,
            is_dir: kind(st.st_mode) == SFlag::S_IFDIR,
            as_name: typed,
        })
    }
}

fn kind(mode: u32) -> SFlag {
    SFlag::from_bits_truncate(mode) & SFlag::S_IFMT
}

/// Follows symlinks at the end of `(parent, name)` inside the root, as
/// docker does for a destination (and for a source with `-L`): each link
/// target is a container path again, resolved in the root. Returns the
/// folder and name of what is there, or of the missing entry.
fn follow_links(
    root: &RootDir,
    (mut parent, mut name): (PathBuf, OsString),
) -> std::io::Result<(PathBuf, OsString)> {
    for _ in 0..MAX_LINKS {
        let dir = match root.open(&parent, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(dir) => dir,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok((parent, name)),
            Err(e) => return Err(e),
        };
        match fstatat(dir.as_fd(), name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if kind(st.st_mode) == SFlag::S_IFLNK => {
                let target = readlinkat(dir.as_fd(), name.as_os_str())?;
                let next = clean(&parent, Path::new(&target));
                match split(&next) {
                    Some(split) => (parent, name) = split,
                    None => return Ok((PathBuf::from("/"), OsString::from("."))),
                }
            }
            Ok(_) => return Ok((parent, name)),
            Err(nix::Error::ENOENT) => return Ok((parent, name)),
            Err(e) => return Err(e.into()),
        }
    }
    Err(std::io::Error::from_raw_os_error(libc::ELOOP))
}

/// What is at `cp ... CONTAINER:DEST`, symlinks at its end followed.
struct Dest {
    /// The resolved path.
    path: PathBuf,
    parent: PathBuf,
    name: OsString,
    exists: bool,
    is_dir: bool,
    is_file: bool,
    tail: Tail,
}

impl Dest {
    fn resolve(root: &RootDir, path: &ContainerPath) -> Dest {
        let (parent, name) = match path.split() {
            Some(split) if path.tail() == Tail::Plain => {
                follow_links(root, split.clone()).unwrap_or(split)
            }
            Some(split) => split,
            None => (PathBuf::from("/"), OsString::from(".")),
        };
        let resolved = if name == "." {
            parent.clone()
        } else {
            parent.join(&name)
        };
        let st = root
            .open(&resolved, OFlag::O_PATH)
            .ok()
            .and_then(|fd| fstat(&fd).ok());
        let what = st.map(|st| kind(st.st_mode));
        Dest {
            path: resolved,
            parent,
            name,
            exists: what.is_some(),
            is_dir: what == Some(SFlag::S_IFDIR),
            is_file: what == Some(SFlag::S_IFREG),
            tail: path.tail(),
        }
    }

    /// The folder to extract into and the name the copy takes there
    /// (docker's `PrepareArchiveCopy`); `None`: the source's own name.
    fn extraction(&self, source_is_dir: bool) -> Result<(PathBuf, Option<PathBuf>)> {
        let into_parent = || Ok((self.parent.clone(), Some(PathBuf::from(&self.name))));
        match (self.exists, self.is_dir, source_is_dir) {
            (true, true, _) => Ok((self.path.clone(), None)),
            (true, false, true) => Err(FilesError::CannotCopyDirectory.into()),
            (true, false, false) | (false, _, true) => into_parent(),
            (false, _, false) if self.tail.asserts_dir() => Err(FilesError::NoSuchDirectory.into()),
            (false, _, false) => into_parent(),
        }
    }
}

/// Packs on a thread into a pipe that the caller's thread unpacks; the
/// size of the stream. The unpacker's error explains a packer that saw the
/// pipe close, and a packer's failure explains a short stream.
fn through_pipe(
    pack: impl FnOnce(&mut Counted<BufWriter<PipeWriter>>) -> archive::Result<Summary> + Send,
    unpack: impl FnOnce(PipeReader) -> archive::Result<Summary>,
) -> archive::Result<u64> {
    let (reader, writer) = std::io::pipe().map_err(|source| ArchiveError::Io {
        context: "making a pipe".into(),
        source,
    })?;
    std::thread::scope(|scope| {
        let packer = scope.spawn(move || {
            let mut out = Counted::new(BufWriter::with_capacity(PIPE_BUFFER, writer));
            pack(&mut out).map(|_| out.bytes)
        });
        let unpacked = unpack(reader);
        let packed = packer.join().unwrap_or_else(|_| {
            Err(ArchiveError::Io {
                context: "packing".into(),
                source: std::io::Error::other("the packing thread panicked"),
            })
        });
        match (packed, unpacked) {
            (Ok(bytes), Ok(_)) => Ok(bytes),
            (Err(ArchiveError::Write(_)), Err(e)) | (Ok(_), Err(e)) => Err(e),
            (Err(e), _) => Err(e),
        }
    })
}

/// A writer that counts what went through it.
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W> Counted<W> {
    fn new(inner: W) -> Counted<W> {
        Counted { inner, bytes: 0 }
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
