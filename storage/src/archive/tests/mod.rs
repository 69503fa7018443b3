//! Round trips, compatibility with GNU tar, and hostile archives.

mod entry;
mod hostile;
mod round_trip;
mod whiteouts;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{Builder, EntryType, Header};

/// A target folder beside an `outside` one that holds a secret, so a test
/// can tell whether anything was written, linked or changed outside.
pub struct Sandbox {
    pub tmp: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let tmp = tempfile::Builder::new()
            .prefix("muelle-archive")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir(tmp.path().join("target")).expect("target");
        std::fs::create_dir(tmp.path().join("outside")).expect("outside");
        std::fs::write(tmp.path().join("outside/secret"), "secret").expect("secret");
        Sandbox { tmp }
    }

    pub fn target(&self) -> PathBuf {
        self.tmp.path().join("target")
    }

    pub fn outside(&self) -> PathBuf {
        self.tmp.path().join("outside")
    }

    /// Everything outside the target is as `new` left it.
    pub fn assert_outside_untouched(&self) {
        let mut top: Vec<String> = std::fs::read_dir(self.tmp.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        top.sort();
        assert_eq!(top, ["outside", "target"], "nothing new beside the target");
        let outside = tree(&self.outside());
        assert_eq!(outside.keys().collect::<Vec<_>>(), ["", "secret"]);
        let secret = std::fs::symlink_metadata(self.outside().join("secret")).expect("secret");
        assert_eq!(secret.nlink(), 1, "no hard link to the secret");
        assert_eq!(
            std::fs::read_to_string(self.outside().join("secret")).expect("read"),
            "secret"
        );
    }
}

/// One file as the tests compare it.
#[derive(Debug, PartialEq, Eq)]
pub struct Seen {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Option<i64>,
    pub data: Vec<u8>,
    pub rdev: u64,
}

/// Every path under `root` (relative; "" for the root), never following
/// a symlink. Folder mtimes are left out where `dir_times` would differ.
pub fn tree(root: &Path) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_owned()];
    while let Some(path) = todo.pop() {
        let meta = std::fs::symlink_metadata(&path).expect("lstat");
        let ft = meta.file_type();
        let (kind, data) = if ft.is_dir() {
            for e in std::fs::read_dir(&path).expect("list") {
                todo.push(e.expect("entry").path());
            }
            ("dir", Vec::new())
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&path).expect("readlink");
            ("symlink", target.into_os_string().into_encoded_bytes())
        } else if ft.is_file() {
            ("file", std::fs::read(&path).expect("read"))
        } else if ft.is_fifo() {
            ("fifo", Vec::new())
        } else if ft.is_char_device() {
            ("char", Vec::new())
        } else if ft.is_block_device() {
            ("block", Vec::new())
        } else {
            ("socket", Vec::new())
        };
        let rel = path
            .strip_prefix(root)
            .expect("under root")
            .to_string_lossy()
            .into_owned();
        out.insert(
            rel,
            Seen {
                kind,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                mtime: (!ft.is_symlink()).then_some(meta.mtime()),
                data,
                rdev: meta.rdev(),
            },
        );
    }
    out
}

/// An archive entry with its name (and link name) written into the header
/// as raw bytes: `set_path` refuses the hostile names tests need.
pub fn raw_entry<W: std::io::Write>(
    b: &mut Builder<W>,
    name: &str,
    kind: EntryType,
    link: &str,
    data: &[u8],
) {
    let mut h = Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, data).expect("append");
}

/// An archive from `(name, type, link target, data)` entries.
pub fn archive(entries: &[(&str, EntryType, &str, &str)]) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        raw_entry(&mut b, name, *kind, link, data.as_bytes());
    }
    b.into_inner().expect("archive")
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
